//! The DTLS identity of a session: one certificate for all its links.

use ::rtc::crypto::{self, SignatureScheme};
use ::rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};

use super::RtcError;

/// A session's DTLS certificate and its fingerprint.
///
/// Browsers make one per peer connection unless told otherwise; a session makes one and uses
/// it on every link, so that its fingerprint can be published once (with the JOIN, or the
/// host's space) and a child can write its parent's answer before it arrives
/// (`rtc::prediction`). The fingerprint in a signed event binds the certificate to the key
/// as the one in a signed answer does.
#[derive(Debug, Clone)]
pub struct Certificate {
    certificate: RTCCertificate,
    fingerprint: String,
}

impl Certificate {
    /// A fresh ECDSA P-256 certificate, as webrtc-rs and browsers make by default.
    pub fn generate() -> Result<Self, RtcError> {
        let failed = |e: &dyn std::fmt::Display| RtcError::WebRtc(format!("certificate: {e}"));
        let provider = crypto::default_provider().map_err(|e| failed(&e))?;
        let params =
            CertificateParams::new(vec!["nostr-spaces".to_owned()]).map_err(|e| failed(&e))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| failed(&e))?;
        let fingerprint = certificate
            .get_fingerprints(provider.crypto())
            .map_err(|e| failed(&e))?
            .into_iter()
            .next()
            .map(|f| format!("{} {}", f.algorithm, f.value.to_ascii_uppercase()))
            .ok_or_else(|| failed(&"no fingerprint"))?;
        Ok(Self {
            certificate,
            fingerprint,
        })
    }

    /// `sha-256 AB:CD:…`, as the SDP's `a=fingerprint` carries it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The certificate as webrtc-rs takes it.
    pub(crate) fn rtc(&self) -> RTCCertificate {
        self.certificate.clone()
    }
}
