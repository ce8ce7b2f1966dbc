//! `spaces relay`: the embedded Nostr relay on its own, for a space on a LAN or a test bed.

use std::net::SocketAddr;
use std::time::Duration;

use spaces_core::signaling::EmbeddedRelay;

use crate::BadArgument;

/// Arguments of `spaces relay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address and port to serve on: `0.0.0.0:7777` for the LAN, port 0 for any free one.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7777")]
    listen: String,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
}

/// Runs the relay; prints `relay <url>` once it accepts connections.
pub fn run(args: &Args) -> Result<(), BadArgument> {
    let addr: SocketAddr = args.listen.parse().map_err(|e| BadArgument {
        argument: "--listen",
        reason: format!("{:?} is not ADDR:PORT: {e}", args.listen),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BadArgument {
            argument: "relay",
            reason: e.to_string(),
        })?;
    runtime.block_on(async {
        let relay = EmbeddedRelay::listen(addr).await.map_err(|e| BadArgument {
            argument: "--listen",
            reason: e.to_string(),
        })?;
        println!("relay {}", relay.url());
        match args.seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        relay.shutdown();
        Ok(())
    })
}
