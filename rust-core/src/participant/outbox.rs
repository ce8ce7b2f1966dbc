//! How late the relays let our events through. Relays rate-limit every author, and what they
//! hold back reaches its readers late: a CONFIRM held back reaches its requester after it gave
//! up (it waits [`super::RESERVE_TIMEOUT`]) and keeps one of our outputs for a link that never
//! comes; our own RESERVEs and seat announcements wait behind it. In the simulator at 10,000
//! peers, a relay that climbed to depth 1 with 64 free outputs drew a flood of requests and
//! answered them all: the relays let its events through up to 57 s late, and when its seat
//! was later handed on, its own search for a parent timed out fifteen times in a row while
//! its subtree went silent for 25 s.
//!
//! So we keep the relays' account of our events, as they do (GCRA), at the limit we assume
//! they set: 10 events a second with bursts of 30, a common relay setting and the simulator's
//! default. A relay that allows more costs us nothing but some answers given later; one that
//! allows less holds our events back as before. Admissions wait until a CONFIRM would be let
//! through at most [`ADMIT_LATE_MS`] late (until then the requester hears nothing and asks
//! elsewhere when its wait ends); refusals go out only while [`KEPT_FOR_OURS`] events of the
//! burst are left for our own requests and announcements.

use super::Millis;

/// The events per second we assume relays let an author publish, sustained.
const PER_SEC: f64 = 10.0;

/// The events we assume relays let an author publish at once.
const BURST: f64 = 30.0;

/// The latest a CONFIRM may be let through: it still reaches its requester within the
/// requester's wait ([`super::RESERVE_TIMEOUT`], 2 s from its RESERVE), after two relay
/// hops. Silence costs a requester that whole wait, so a CONFIRM a little late is the better
/// answer: in the simulator at 10,000 weak-first, 1.5 s rather than 1 s left the longest
/// interruption of the rush at 38 / 18 s rather than 50 / 35 s (seeds 1 / 3).
const ADMIT_LATE_MS: f64 = 1_500.0;

/// Events of the burst a refusal leaves for our own requests and announcements.
const KEPT_FOR_OURS: f64 = 10.0;

/// Events a link we open or answer publishes besides the RESERVE or CONFIRM: its ICE
/// candidates, sent as the driver gathers them.
pub const ICE_PER_LINK: f64 = 1.0;

const INTERVAL_MS: f64 = 1_000.0 / PER_SEC;
const TOLERANCE_MS: f64 = INTERVAL_MS * (BURST - 1.0);

/// Our events as the relays count them.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    /// The theoretical arrival time of our next event (GCRA), in our clock's milliseconds.
    tat: f64,
}

impl Outbox {
    /// `events` handed to the relays at `now`.
    pub fn sent(&mut self, events: f64, now: Millis) {
        let now = now as f64;
        self.tat = self.tat.max(now) + events * INTERVAL_MS;
    }

    /// How late an event handed over after `events` more at `now` would be let through.
    fn late_after(&self, events: f64, now: Millis) -> f64 {
        let tat = self.tat.max(now as f64) + events * INTERVAL_MS;
        (tat - INTERVAL_MS - TOLERANCE_MS - now as f64).max(0.0)
    }

    /// Whether a CONFIRM and its link's candidates would reach the relays in time.
    pub fn may_admit(&self, now: Millis) -> bool {
        self.late_after(1.0 + ICE_PER_LINK, now) <= ADMIT_LATE_MS
    }

    /// Whether a refusal would still leave [`KEPT_FOR_OURS`] events of the burst.
    pub fn may_refuse(&self, now: Millis) -> bool {
        self.late_after(1.0 + KEPT_FOR_OURS, now) <= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_leave_room_for_our_own_events_and_admissions_stop_once_they_would_come_late() {
        let mut outbox = Outbox::default();
        let now = 10_000;
        let refused = (0..100)
            .take_while(|_| {
                let ok = outbox.may_refuse(now);
                if ok {
                    outbox.sent(1.0, now);
                }
                ok
            })
            .count();
        assert_eq!(refused as f64, BURST - KEPT_FOR_OURS);
        // The rest of the burst, and a second beyond it, for admissions.
        let admitted = (0..100)
            .take_while(|_| {
                let ok = outbox.may_admit(now);
                if ok {
                    outbox.sent(1.0 + ICE_PER_LINK, now);
                }
                ok
            })
            .count();
        let late_events = ADMIT_LATE_MS / INTERVAL_MS;
        assert_eq!(
            admitted as f64,
            ((KEPT_FOR_OURS + late_events) / (1.0 + ICE_PER_LINK)).floor()
        );
        assert!(!outbox.may_refuse(now));
        // The relays let ten events a second through: an admission (two events) is on time
        // again once one more has gone, a refusal once the burst's share for our own is back.
        assert!(!outbox.may_admit(now));
        assert!(outbox.may_admit(now + 100));
        assert!(!outbox.may_refuse(now + 2_400));
        assert!(outbox.may_refuse(now + 2_500));
    }
}
