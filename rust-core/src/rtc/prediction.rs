//! Answers a child can write before they arrive.
//!
//! Between our peers the parent answers the child's offer, and the answer crosses the relays:
//! two legs and the relay's work, ~100 ms on an 80 ms path and several hundred when a TCP
//! segment is lost on the way. The parent's first ICE check reaches the child over one leg,
//! about half of that. Everything the child needs from the answer to start ICE and DTLS is
//! known before it arrives:
//! - the parent's ICE credentials, which the parent derives from the offer's
//!   ([`answering_credentials`]): the offer's password is a secret of the pair (the offer
//!   travels sealed to the parent), so the derived one is too;
//! - the parent's DTLS certificate, one per session, whose fingerprint the parent publishes
//!   with its JOIN (and a host with its space);
//! - the DTLS roles (the answerer is the client) and the media section, which mirrors the
//!   offer's.
//!
//! So the child applies the [`predicted_answer`] while its RESERVE is on its way, answers
//! the parent's first check and nominates the pair at once; when the real answer arrives it
//! only has to [`agree`] with the prediction, and its candidates are added.

use sha2::{Digest, Sha256};

/// An ICE user fragment and password, as the SDP's `a=ice-ufrag` and `a=ice-pwd` carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
}

/// The value of an SDP attribute line `a=<name>:<value>`, first occurrence.
fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines().find_map(|line| {
        line.trim()
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
            .map(str::trim)
    })
}

/// The ICE candidates a description carries, as `candidate:…` (the `a=` stripped).
pub fn candidates(sdp: &str) -> impl Iterator<Item = &str> {
    sdp.lines()
        .filter_map(|line| line.trim().strip_prefix("a="))
        .filter(|attr| attr.starts_with("candidate:"))
}

/// The ICE credentials of a description.
pub fn credentials(sdp: &str) -> Option<IceCredentials> {
    Some(IceCredentials {
        ufrag: attribute(sdp, "ice-ufrag")?.to_owned(),
        pwd: attribute(sdp, "ice-pwd")?.to_owned(),
    })
}

/// The DTLS fingerprint of a description, as `sha-256 AB:CD:…`.
pub fn fingerprint(sdp: &str) -> Option<&str> {
    attribute(sdp, "fingerprint")
}

/// The ICE credentials a parent answers `offer` with. RFC 8445 asks for at least 24 bits of
/// randomness in the fragment and 128 in the password; both come from the offer's password,
/// which only the two ends know. Hex keeps them within `ice-char`.
pub fn answering_credentials(offer: &str) -> Option<IceCredentials> {
    let theirs = credentials(offer)?;
    let derive = |label: &str, len: usize| {
        let mut hash = Sha256::new();
        hash.update(b"nostr-spaces answer ");
        hash.update(label.as_bytes());
        hash.update([0]);
        hash.update(theirs.ufrag.as_bytes());
        hash.update([0]);
        hash.update(theirs.pwd.as_bytes());
        let digest = hash.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        hex[..len].to_owned()
    };
    Some(IceCredentials {
        ufrag: derive("ice-ufrag", 16),
        pwd: derive("ice-pwd", 32),
    })
}

/// The answer a parent of our dialect gives to `offer`, written by the child: the offer's
/// session and media section with the parent's credentials and `fingerprint`, the parent as
/// DTLS client, directions mirrored, and without candidates (the parent's checks bring its
/// address; the real answer's candidates are added when it arrives) or SSRCs (a single audio
/// section takes the parent's stream as it comes). `None` for an offer that is not ours: more
/// than one media section, or no ICE credentials.
pub fn predicted_answer(offer: &str, fingerprint: &str) -> Option<String> {
    if offer.lines().filter(|l| l.starts_with("m=")).count() != 1 {
        return None;
    }
    let ours = answering_credentials(offer)?;
    let mut answer = String::with_capacity(offer.len());
    for line in offer.lines().map(str::trim_end) {
        let Some(attr) = line.strip_prefix("a=") else {
            answer.push_str(line);
            answer.push_str("\r\n");
            continue;
        };
        let written = match attr.split_once(':').map_or(attr, |(name, _)| name) {
            "fingerprint" => format!("a=fingerprint:{fingerprint}"),
            "setup" => "a=setup:active".to_owned(),
            "ice-ufrag" => format!("a=ice-ufrag:{}", ours.ufrag),
            "ice-pwd" => format!("a=ice-pwd:{}", ours.pwd),
            "sendonly" => "a=recvonly".to_owned(),
            "recvonly" => "a=sendonly".to_owned(),
            "candidate" | "end-of-candidates" | "ssrc" | "ssrc-group" | "msid" | "ice-options" => {
                continue;
            }
            _ => line.to_owned(),
        };
        answer.push_str(&written);
        answer.push_str("\r\n");
    }
    Some(answer)
}

/// Whether the real `answer` is the one predicted for `offer` with `fingerprint`: the same
/// credentials, certificate and DTLS role. Anything else (a parent of another dialect, a
/// certificate changed since it was published) means the prediction was wrong.
pub fn agree(offer: &str, fingerprint: &str, answer: &str) -> bool {
    let setup = attribute(answer, "setup");
    answering_credentials(offer).is_some_and(|ours| credentials(answer) == Some(ours))
        && self::fingerprint(answer).is_some_and(|f| f.eq_ignore_ascii_case(fingerprint))
        && setup == Some("active")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=fingerprint:sha-256 AD:4E\r\na=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:0\r\n\
        a=ice-ufrag:mDDORqRfBZvuvPci\r\na=ice-pwd:FtTTwgrLzdvSfmXKDhscCKLMiPFIhfkf\r\n\
        a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=msid:spaces-x audio\r\n\
        a=ssrc:1364700389 cname:spaces-x\r\na=sendrecv\r\n\
        a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n";

    #[test]
    fn the_parents_credentials_follow_from_the_offer_alone() {
        let ours = answering_credentials(OFFER).expect("credentials");
        assert_eq!(ours.ufrag.len(), 16);
        assert_eq!(ours.pwd.len(), 32);
        assert_eq!(answering_credentials(OFFER), Some(ours.clone()));
        let other = OFFER.replace("FtTTwgrLzdvSfmXKDhscCKLMiPFIhfkf", "another-password-of-22");
        assert_ne!(answering_credentials(&other), Some(ours));
    }

    #[test]
    fn a_predicted_answer_mirrors_the_offer_with_the_parents_identity() {
        let answer = predicted_answer(OFFER, "sha-256 4F:9B").expect("an answer");
        assert!(answer.contains("a=fingerprint:sha-256 4F:9B\r\n"));
        assert!(answer.contains("a=setup:active\r\n"));
        assert!(answer.contains("a=mid:0\r\n") && answer.contains("a=rtpmap:111 opus/48000/2"));
        assert!(!answer.contains("candidate") && !answer.contains("ssrc"));
        assert!(!answer.contains("mDDORqRfBZvuvPci"));
        assert!(agree(OFFER, "sha-256 4f:9b", &answer));
        assert!(!agree(OFFER, "sha-256 00:00", &answer));
        let passive = answer.replace("a=setup:active", "a=setup:passive");
        assert!(!agree(OFFER, "sha-256 4F:9B", &passive));
    }

    #[test]
    fn offers_not_of_our_shape_are_not_predicted() {
        let two = format!("{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
        assert_eq!(predicted_answer(&two, "sha-256 4F"), None);
        let bare = OFFER.replace("a=ice-pwd:FtTTwgrLzdvSfmXKDhscCKLMiPFIhfkf\r\n", "");
        assert_eq!(predicted_answer(&bare, "sha-256 4F"), None);
    }
}
