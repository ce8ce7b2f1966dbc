//! The in-process relay used when the user names none: everything runs on one machine with
//! no set-up.
//!
//! nostr-sdk's `LocalRelay` stores and matches events; the TCP side is ours so that sockets get
//! `TCP_NODELAY`: with Nagle on, the relay's OK after a broadcast waited for the client's
//! delayed ACK, 40 ms per signaling round trip (see `transport.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use nostr_sdk::prelude::{LocalRelay, RateLimit, RelayUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::SignalingError;

/// Largest HTTP upgrade request accepted.
const MAX_REQUEST: usize = 8 * 1024;

/// A Nostr relay running inside this process on 127.0.0.1 (memory storage).
pub struct EmbeddedRelay {
    relay: LocalRelay,
    url: RelayUrl,
    port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl EmbeddedRelay {
    /// Starts a relay on 127.0.0.1:`port` (0 or `None`: any free port).
    pub async fn start(port: Option<u16>) -> Result<Self, SignalingError> {
        Self::listen(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.unwrap_or(0),
        ))
        .await
    }

    /// Starts a relay on `addr` (port 0: any free port): `0.0.0.0:7777` serves a LAN.
    pub async fn listen(addr: SocketAddr) -> Result<Self, SignalingError> {
        let relay = LocalRelay::builder()
            // One machine runs every participant of a demo: the default 60 events/minute
            // per connection would throttle a single listener's ICE trickle.
            .rate_limit(RateLimit {
                max_reqs: 1_000,
                notes_per_minute: 1_000_000,
            })
            .build();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| SignalingError::EmbeddedRelay(format!("{addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| SignalingError::EmbeddedRelay(e.to_string()))?;
        let port = bound.port();
        let url = RelayUrl::parse(&format!("ws://{bound}"))
            .map_err(|e| SignalingError::EmbeddedRelay(e.to_string()))?;
        let accept = tokio::spawn(accept(listener, relay.clone()));
        tracing::info!(%url, "embedded relay started");
        Ok(Self {
            relay,
            url,
            port,
            accept,
        })
    }

    /// Its `ws://ADDR:PORT` URL (as bound: `ws://127.0.0.1:PORT` from [`Self::start`]).
    pub fn url(&self) -> &RelayUrl {
        &self.url
    }

    /// Its TCP port.
    pub fn port(&self) -> Option<u16> {
        Some(self.port)
    }

    /// Stops it; clients see the connection drop.
    pub fn shutdown(&self) {
        tracing::info!(url = %self.url, "embedded relay stopping");
        self.accept.abort();
        self.relay.shutdown();
    }
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        self.accept.abort();
        self.relay.shutdown();
    }
}

async fn accept(listener: TcpListener, relay: LocalRelay) {
    loop {
        let (mut stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "embedded relay cannot accept");
                continue;
            }
        };
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            if let Err(e) = upgrade(&mut stream).await {
                tracing::debug!(%addr, error = %e, "not a WebSocket upgrade");
                return;
            }
            if let Err(e) = relay.take_connection(stream, addr).await {
                tracing::debug!(%addr, error = %e, "relay connection ended");
            }
        });
    }
}

/// Answers the HTTP upgrade (RFC 6455 §4.2) and leaves the stream ready for WebSocket frames.
async fn upgrade(stream: &mut TcpStream) -> std::io::Result<()> {
    let invalid = |reason: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, reason);
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // A client sends nothing after its request until it has read our 101.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        request.extend_from_slice(&chunk[..n]);
        if request.len() > MAX_REQUEST {
            return Err(invalid("upgrade request too large"));
        }
    }
    let text = String::from_utf8_lossy(&request);
    let key = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim().to_owned())
        .ok_or_else(|| invalid("no Sec-WebSocket-Key"))?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
}
