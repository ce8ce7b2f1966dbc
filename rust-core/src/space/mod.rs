//! The space state machine every participant runs. Pure: verified events and the current
//! time go in, new state and [`Command`]s come out; [`Rejection`]s say why an event was
//! ignored.

mod command;
mod reducer;
mod rejection;
mod seen;
mod state;

pub use command::Command;
pub use reducer::ADMIN_COMMAND_TTL_SECS;
pub use rejection::Rejection;
pub use state::{Clock, LinkState, Member, SEEN_CAPACITY, Space};

#[cfg(test)]
mod tests;
