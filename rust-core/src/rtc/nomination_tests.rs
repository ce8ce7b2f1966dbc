//! Two real ICE agents (the `rtc-ice` the links run, with the links' nomination waits and
//! check pace) over a simulated wire, in simulated time: how many round trips a link spends
//! in ICE before DTLS may start. Deterministic: no socket, no clock read after the epoch.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::rtc::ice::candidate::candidate_host::CandidateHostConfig;
use ::rtc::ice::candidate::{Candidate, CandidateConfig};
use ::rtc::ice::state::ConnectionState;
use ::rtc::ice::{Agent, AgentConfig, Event};
use ::rtc::sansio::Protocol;
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::config::{LinkConfig, NominationWaits};

/// One way across the simulated wire: the lossy bed's 40 ms per link.
const ONE_WAY: Duration = Duration::from_millis(40);

fn agent(epoch: Instant, config: &LinkConfig) -> Agent {
    let waits = NominationWaits::for_config(config);
    let agent_config = AgentConfig {
        check_interval: config.ice_check_interval,
        host_acceptance_min_wait: Some(waits.host),
        prflx_acceptance_min_wait: Some(waits.peer_reflexive),
        srflx_acceptance_min_wait: Some(waits.server_reflexive),
        relay_acceptance_min_wait: Some(waits.relay),
        ..AgentConfig::default()
    };
    let crypto = ::rtc::crypto::default_provider().expect("a crypto provider is built in");
    Agent::new(epoch, Arc::new(agent_config), crypto).expect("agent")
}

/// A host candidate at `addr`, as a link gathers one.
pub(super) fn host_candidate(addr: SocketAddr) -> Candidate {
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..CandidateConfig::default()
        },
        ..CandidateHostConfig::default()
    }
    .new_candidate_host()
    .expect("host candidate")
}

/// A packet on the wire: when it lands, and at which end (0 or 1).
struct InFlight {
    at: Instant,
    to: usize,
    packet: TaggedBytesMut,
}

/// What each end of [`connect`] saw.
struct Connected {
    /// When it selected a pair, from the start of its checks.
    after: [Option<Duration>; 2],
    /// The pairs selected (local, remote).
    pairs: [Option<(SocketAddr, SocketAddr)>; 2],
    /// Whether, on selecting, it asked its driver for a timer pass at once.
    pass_at_once: [bool; 2],
}

/// Runs both agents until each has selected a pair, or 2 s of simulated time pass.
fn connect(controlled_starts_first: Duration) -> Connected {
    let config = LinkConfig::default();
    let epoch = Instant::now();
    let addrs: [SocketAddr; 2] = [
        "10.0.0.1:5000".parse().expect("addr"),
        "10.0.0.2:6000".parse().expect("addr"),
    ];
    let mut agents = [agent(epoch, &config), agent(epoch, &config)];
    for (k, agent) in agents.iter_mut().enumerate() {
        agent
            .add_local_candidate(host_candidate(addrs[k]))
            .expect("local candidate");
    }
    let credentials: Vec<_> = agents
        .iter()
        .map(|a| a.get_local_credentials().clone())
        .collect();
    // The answerer (controlled, 1) has the offer and starts first; the offerer (controlling,
    // 0) starts when the answer arrives.
    let starts = [epoch + controlled_starts_first, epoch];
    let mut started = [false, false];
    let mut now = epoch;
    let mut wire: VecDeque<InFlight> = VecDeque::new();
    let mut connected = [None, None];
    let mut pass_at_once = [false, false];
    let mut selected = [false, false];
    while now < epoch + Duration::from_secs(2) && connected.iter().any(Option::is_none) {
        for k in 0..2 {
            if !started[k] && now >= starts[k] {
                started[k] = true;
                let other = &credentials[1 - k];
                agents[k]
                    .start_connectivity_checks(now, k == 0, other.ufrag.clone(), other.pwd.clone())
                    .expect("start");
                agents[k]
                    .add_remote_candidate(host_candidate(addrs[1 - k]))
                    .expect("remote candidate");
            }
        }
        for (k, agent) in agents.iter_mut().enumerate() {
            while let Some(packet) = agent.poll_write() {
                wire.push_back(InFlight {
                    at: now + ONE_WAY,
                    to: 1 - k,
                    packet,
                });
            }
            while let Some(event) = agent.poll_event() {
                if let Event::ConnectionStateChange(ConnectionState::Connected) = event.event {
                    connected[k].get_or_insert(now - starts[k]);
                }
            }
        }
        let mut next = epoch + Duration::from_secs(2);
        for k in 0..2 {
            next = next.min(if started[k] {
                agents[k].poll_timeout().unwrap_or(next)
            } else {
                starts[k]
            });
        }
        if let Some(first) = wire.iter().map(|p| p.at).min() {
            next = next.min(first);
        }
        now = next.max(now);
        // Deliver what lands now; then the timers that are due.
        let (landing, flying): (Vec<_>, Vec<_>) = wire.drain(..).partition(|p| p.at <= now);
        wire.extend(flying);
        for InFlight { to, packet, .. } in landing {
            let transport = TransportContext {
                local_addr: packet.transport.peer_addr,
                peer_addr: packet.transport.local_addr,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            };
            if started[to] {
                let _ = agents[to].handle_read(TaggedBytesMut {
                    now,
                    transport,
                    message: packet.message,
                });
            }
        }
        for k in 0..2 {
            if !selected[k] && agents[k].get_selected_candidate_pair().is_some() {
                // The selection starts a DTLS client whose first flight only leaves on a
                // timer pass of the peer connection: one must be due now.
                selected[k] = true;
                pass_at_once[k] = agents[k].poll_timeout().is_some_and(|t| t <= now);
            }
        }
        for k in 0..2 {
            if started[k] && agents[k].poll_timeout().is_some_and(|t| t <= now) {
                agents[k].handle_timeout(now).expect("timeout");
            }
        }
    }
    let pairs = [0, 1].map(|k| {
        agents[k]
            .get_selected_candidate_pair()
            .map(|(local, remote)| (local.addr(), remote.addr()))
    });
    Connected {
        after: connected,
        pairs,
        pass_at_once,
    }
}

#[test]
fn the_offerer_selects_a_direct_pair_after_one_check_round_trip() {
    // The answerer starts 80 ms earlier (its answer's trip to the offerer and back), as over
    // the relays: its early checks meet an offerer that cannot answer them yet.
    let Connected {
        after,
        pairs,
        pass_at_once,
    } = connect(Duration::from_millis(80));
    let rtt = ONE_WAY * 2;
    let offerer = after[0].expect("the offerer connects");
    let answerer = after[1].expect("the answerer connects");
    // One round trip and the time to process it; regular nomination took two round trips and
    // up to a check interval between them.
    assert!(
        offerer <= rtt + Duration::from_millis(5),
        "offerer after {offerer:?}"
    );
    // The answerer selects on the nomination itself, half a round trip in.
    assert!(
        answerer <= ONE_WAY + Duration::from_millis(85),
        "answerer after {answerer:?}"
    );
    // Both ends on the same path.
    let [Some(a), Some(b)] = pairs else {
        panic!("both select a pair: {pairs:?}")
    };
    assert_eq!((a.0, a.1), (b.1, b.0));
    // And neither leaves its DTLS flight waiting for the next check tick.
    assert_eq!(pass_at_once, [true, true]);
}
