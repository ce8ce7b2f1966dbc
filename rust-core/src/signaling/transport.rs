//! The WebSocket transport to relays, with Nagle's algorithm off.
//!
//! Signaling is bursts of small messages (an OFFER then its ICE candidates, a JOIN then a
//! presence). With Nagle on, the second message of a burst waits for the ACK of the first,
//! which the relay delays by up to 40 ms (delayed ACK): measured on loopback, one publish in
//! two took 41–44 ms instead of 0.2–0.5 ms. nostr-sdk's default transport does not set
//! TCP_NODELAY, so this one does; proxies (SOCKS) still go through the default transport.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_wsocket::Message;
use async_wsocket::message::CloseFrame;
use futures::stream::SplitSink;
use futures::{Sink, SinkExt, StreamExt};
use nostr::types::Url;
use nostr_sdk::transport::websocket::{
    DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream as Socket};

type Connected = Result<(WebSocketSink, WebSocketStream), nostr_sdk::error::Error>;

/// Connects to relays over TCP with `TCP_NODELAY` (TLS for `wss://`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LowLatencyTransport;

impl WebSocketTransport for LowLatencyTransport {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        proxy: Option<SocketAddr>,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + 'a>> {
        if proxy.is_some() {
            return DefaultWebsocketTransport.connect(url, proxy);
        }
        Box::pin(async move {
            let host = url
                .host_str()
                .ok_or_else(|| nostr_sdk::error::Error::transport("relay URL without a host"))?;
            let port = url
                .port_or_known_default()
                .ok_or_else(|| nostr_sdk::error::Error::transport("relay URL without a port"))?;
            let tcp = TcpStream::connect((host, port))
                .await
                .map_err(nostr_sdk::error::Error::transport)?;
            tcp.set_nodelay(true)
                .map_err(nostr_sdk::error::Error::transport)?;
            let (socket, _) = tokio_tungstenite::client_async_tls(url.as_str(), tcp)
                .await
                .map_err(nostr_sdk::error::Error::transport)?;
            let (sink, stream) = socket.split();
            let sink: WebSocketSink = Box::pin(FrameSink(sink));
            let stream: WebSocketStream = Box::pin(stream.filter_map(|frame| async move {
                match frame {
                    Ok(frame) => message(frame).map(Ok),
                    Err(e) => Some(Err(nostr_sdk::error::Error::transport(e))),
                }
            }));
            Ok((sink, stream))
        })
    }
}

/// A tungstenite frame as nostr-sdk's message; raw frames never come out of a read.
fn message(frame: Frame) -> Option<Message> {
    Some(match frame {
        Frame::Text(text) => Message::Text(text.to_string()),
        Frame::Binary(data) => Message::Binary(data.to_vec()),
        Frame::Ping(data) => Message::Ping(data.to_vec()),
        Frame::Pong(data) => Message::Pong(data.to_vec()),
        Frame::Close(frame) => Message::Close(frame.map(CloseFrame::from)),
        Frame::Frame(_) => return None,
    })
}

/// Writes nostr-sdk's messages as tungstenite frames (a plain wrapper: nostr-sdk warns that
/// `sink_map_err` can panic here).
struct FrameSink(SplitSink<Socket<MaybeTlsStream<TcpStream>>, Frame>);

impl Sink<Message> for FrameSink {
    type Error = nostr_sdk::error::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0
            .poll_ready_unpin(cx)
            .map_err(nostr_sdk::error::Error::transport)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.0
            .start_send_unpin(Frame::from(item))
            .map_err(nostr_sdk::error::Error::transport)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0
            .poll_flush_unpin(cx)
            .map_err(nostr_sdk::error::Error::transport)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0
            .poll_close_unpin(cx)
            .map_err(nostr_sdk::error::Error::transport)
    }
}
