//! Two real peer connections (webrtc-rs's sans-IO `rtc`, with the links' settings) over a
//! simulated wire, in simulated time: how long after the answerer wrote its answer the
//! offerer's first packet of audio arrives, with the answer crossing the relays or predicted
//! (`rtc::prediction`). Between our peers the answerer is the parent, the end that sends.
//! Deterministic: no socket, no clock read after the epoch.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ::rtc::peer_connection::configuration::RTCConfigurationBuilder;
use ::rtc::peer_connection::configuration::media_engine::MediaEngine;
use ::rtc::peer_connection::configuration::setting_engine::SettingEngine;
use ::rtc::peer_connection::event::RTCPeerConnectionEvent;
use ::rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use ::rtc::peer_connection::sdp::RTCSessionDescription;
use ::rtc::peer_connection::state::RTCPeerConnectionState;
use ::rtc::peer_connection::transport::RTCIceCandidate;
use ::rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use ::rtc::rtp_transceiver::RTCRtpSenderId;
use ::rtc::sansio::Protocol;
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::link::audio_track;
use super::nomination_tests::host_candidate;
use super::{Certificate, LinkConfig, prediction};

/// One way across the simulated wire: the lossy bed's 40 ms per link.
const ONE_WAY: Duration = Duration::from_millis(40);
/// The answer's way back over the relays, while the answerer already checks.
const ANSWER_TRIP: Duration = Duration::from_millis(80);
const SSRC: u32 = 0x5157_ace5;

/// A peer connection as a link builds it: default codecs, one Opus track, one host candidate,
/// and `certificate` as its DTLS identity (a fresh one without).
fn peer(
    epoch: Instant,
    addr: SocketAddr,
    settings: SettingEngine,
    certificate: Option<&Certificate>,
) -> (RTCPeerConnection, RTCRtpSenderId) {
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("codecs");
    let mut configuration = RTCConfigurationBuilder::new();
    if let Some(certificate) = certificate {
        configuration = configuration.with_certificates(vec![certificate.rtc()]);
    }
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(configuration.build())
        .with_setting_engine(settings)
        .with_media_engine(media)
        .build(epoch)
        .expect("peer connection");
    let candidate = host_candidate(addr);
    pc.add_local_candidate(
        RTCIceCandidate::from(&candidate)
            .to_json()
            .expect("candidate json"),
    )
    .expect("local candidate");
    let sender = pc.add_track(audio_track("test", SSRC)).expect("track");
    (pc, sender)
}

struct InFlight {
    at: Instant,
    to: usize,
    packet: TaggedBytesMut,
}

/// How the offerer comes to its remote description.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// It waits for the answer to cross the relays.
    Relayed,
    /// It applies the predicted answer with its offer; the real one only has to agree.
    Predicted,
}

/// What the offerer heard, from the moment the answerer wrote its answer.
struct Heard {
    /// When the first packet of the answerer's audio arrived.
    first_audio: Option<Duration>,
    /// Packets of audio the answerer sent, and the offerer received, in the first
    /// `run` after the answer.
    sent: u32,
    received: u32,
}

/// Connects an offerer (0) and an answerer (1) running `settings`; the answerer sends a
/// packet of audio every 20 ms from the moment it reports its connection up.
fn connect(config: &LinkConfig, way: Answer, run: Duration) -> Heard {
    let epoch = Instant::now();
    let addrs: [SocketAddr; 2] = [
        "10.0.0.1:5000".parse().expect("addr"),
        "10.0.0.2:6000".parse().expect("addr"),
    ];
    let parents = Certificate::generate().expect("certificate");
    let (mut offerer, _) = peer(epoch, addrs[0], config.setting_engine(None), None);
    let offer = offerer.create_offer(None).expect("offer");
    offerer
        .set_local_description(epoch, offer.clone())
        .expect("local offer");
    let (mut answerer, sender) = peer(
        epoch,
        addrs[1],
        config.setting_engine(prediction::answering_credentials(&offer.sdp)),
        Some(&parents),
    );
    if way == Answer::Predicted {
        let predicted = prediction::predicted_answer(&offer.sdp, parents.fingerprint())
            .expect("our offer is predictable");
        offerer
            .set_remote_description(
                epoch,
                RTCSessionDescription::answer(predicted).expect("predicted answer"),
            )
            .expect("predicted answer applies");
    }
    answerer
        .set_remote_description(epoch, offer.clone())
        .expect("remote offer");
    let answer = answerer.create_answer(None).expect("answer");
    answerer
        .set_local_description(epoch, answer.clone())
        .expect("local answer");
    let answered = epoch + ANSWER_TRIP;
    let mut answer = Some(answer);
    let mut pcs = [offerer, answerer];
    let mut wire: VecDeque<InFlight> = VecDeque::new();
    let mut now = epoch;
    let mut sending_from = None;
    let mut next_frame = None;
    let mut heard = Heard {
        first_audio: None,
        sent: 0,
        received: 0,
    };
    let end = answered + run;
    while now < end {
        if now >= answered
            && let Some(answer) = answer.take()
        {
            match way {
                Answer::Relayed => pcs[0]
                    .set_remote_description(now, answer)
                    .expect("remote answer"),
                Answer::Predicted => assert!(
                    prediction::agree(&offer.sdp, parents.fingerprint(), &answer.sdp),
                    "the answer is the predicted one"
                ),
            }
        }
        if next_frame.is_some_and(|t| t <= now) {
            let mut rtp_sender = pcs[1].rtp_sender(sender).expect("sender");
            let payload_type = rtp_sender
                .get_parameters()
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type)
                .expect("a negotiated codec");
            heard.sent += 1;
            let packet = ::rtc::rtp::packet::Packet {
                header: ::rtc::rtp::header::Header {
                    version: 2,
                    payload_type,
                    sequence_number: heard.sent as u16,
                    timestamp: heard.sent * 960,
                    ssrc: SSRC,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(&[0xf8, 0xff, 0xfe]),
            };
            rtp_sender.write_rtp(now, packet).expect("write rtp");
            next_frame = next_frame.map(|t| t + Duration::from_millis(20));
        }
        for (k, pc) in pcs.iter_mut().enumerate() {
            while let Some(packet) = pc.poll_write() {
                wire.push_back(InFlight {
                    at: now + ONE_WAY,
                    to: 1 - k,
                    packet,
                });
            }
            while let Some(event) = pc.poll_event() {
                if k == 1
                    && let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                        RTCPeerConnectionState::Connected,
                    ) = event
                {
                    sending_from.get_or_insert(now);
                    next_frame.get_or_insert(now);
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
                if k == 0 && matches!(message, RTCMessage::RtpPacket(..)) {
                    heard.received += 1;
                    heard.first_audio.get_or_insert(now - epoch);
                }
            }
        }
        // As the links' driver does: writes and events first, then a timer that is due, then
        // the next datagram or timer.
        let mut fired = false;
        for pc in &mut pcs {
            if pc.poll_timeout().is_some_and(|t| t <= now) {
                pc.handle_timeout(now).expect("timeout");
                fired = true;
            }
        }
        if fired || next_frame.is_some_and(|t| t <= now) {
            continue;
        }
        let mut next = end;
        for pc in &mut pcs {
            next = next.min(pc.poll_timeout().unwrap_or(end));
        }
        if let Some(first) = wire.iter().map(|p| p.at).min() {
            next = next.min(first);
        }
        if answer.is_some() {
            next = next.min(answered);
        }
        if let Some(frame) = next_frame {
            next = next.min(frame);
        }
        now = next.max(now);
        // One datagram at a time, the writes and events it causes handled before the next:
        // the packets behind a flight were sent after it, not with it.
        let landing = wire
            .iter()
            .position(|p| p.at <= now)
            .and_then(|i| wire.remove(i));
        if let Some(InFlight { to, packet, .. }) = landing {
            let transport = TransportContext {
                local_addr: packet.transport.peer_addr,
                peer_addr: packet.transport.local_addr,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            };
            // A datagram a connection cannot use yet is dropped, as a socket's would be.
            let _ = pcs[to].handle_read(TaggedBytesMut {
                now,
                transport,
                message: packet.message,
            });
        }
    }
    heard
}

#[test]
fn the_parents_audio_lands_two_round_trips_after_the_answer() {
    let heard = connect(
        &LinkConfig::default(),
        Answer::Relayed,
        Duration::from_secs(1),
    );
    let rtt = ONE_WAY * 2;
    let first = heard.first_audio.expect("the offerer hears the answerer") - ANSWER_TRIP;
    // A nomination, the answerer's ClientHello with its response, the offerer's ServerHello
    // flight, the answerer's Finished flight with its first audio behind it: two round trips.
    // With the answerer as DTLS server, or without False Start, it is three.
    assert!(
        first <= rtt * 2 + Duration::from_millis(10),
        "first audio after {first:?}"
    );
    // Audio sent before the offerer's Finished came back is kept, and none after it is lost.
    assert!(heard.sent >= 40, "sent {}", heard.sent);
    assert!(
        heard.received + 2 >= heard.sent,
        "sent {}, received {}",
        heard.sent,
        heard.received
    );
}

#[test]
fn with_a_predicted_answer_the_parents_audio_lands_before_its_answer_would() {
    let relayed = connect(
        &LinkConfig::default(),
        Answer::Relayed,
        Duration::from_secs(1),
    );
    let predicted = connect(
        &LinkConfig::default(),
        Answer::Predicted,
        Duration::from_secs(1),
    );
    let relayed = relayed.first_audio.expect("heard with the relayed answer");
    let first = predicted
        .first_audio
        .expect("heard with the predicted answer");
    // The parent's check (one way), the offerer's nomination back, the ClientHello, the
    // offerer's flight, the Finished with the audio behind it: five ways from the answer,
    // where the relayed answer costs its trip and then four.
    assert_eq!(first, ONE_WAY * 5, "against {relayed:?} relayed");
    assert_eq!(relayed, ANSWER_TRIP + ONE_WAY * 4);
    assert!(
        predicted.received + 2 >= predicted.sent,
        "sent {}, received {}",
        predicted.sent,
        predicted.received
    );
}
