//! What is due when in simulated time: a queue of actions by due time, first come first out
//! among actions due at the same millisecond.
//!
//! Nearly everything a simulated world schedules falls within seconds of now (a relay's
//! delivery, a link's round trip, a participant's next deadline), so the near future is a
//! ring of one bucket per millisecond and only the far future waits in a heap. At 10,000
//! participants a binary heap of every action took about a twentieth of the simulator's time,
//! most of it moving entries up and down a heap of a few hundred thousand.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::participant::Millis;

/// How far ahead the ring reaches, in milliseconds: beyond it, the heap.
const RING_MS: usize = 8_192;

/// Actions by due time.
#[derive(Debug)]
pub struct Timeline<T> {
    /// `ring[(head + i) % RING_MS]` holds what is due at `start + i`, in the order scheduled.
    ring: Vec<VecDeque<T>>,
    head: usize,
    /// The time of the bucket at `head`: nothing is due before it.
    start: Millis,
    /// How many actions the ring holds.
    in_ring: usize,
    /// What is due at or after `start + RING_MS`, by due time, then order scheduled.
    far: BinaryHeap<Reverse<Later<T>>>,
    /// Orders the far future's actions due at the same time.
    seq: u64,
}

/// An action in the far future.
#[derive(Debug)]
struct Later<T> {
    at: Millis,
    seq: u64,
    action: T,
}

impl<T> PartialEq for Later<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Later<T> {}
impl<T> PartialOrd for Later<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Later<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<T> Timeline<T> {
    /// An empty timeline whose clock starts at `start`.
    pub fn new(start: Millis) -> Self {
        Self {
            ring: (0..RING_MS).map(|_| VecDeque::new()).collect(),
            head: 0,
            start,
            in_ring: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Schedules `action` at `at`, after everything already scheduled then. A time already
    /// passed counts as the earliest still to come.
    pub fn push(&mut self, at: Millis, action: T) {
        let at = at.max(self.start);
        let ahead = (at - self.start) as usize;
        if ahead < RING_MS {
            self.ring[(self.head + ahead) % RING_MS].push_back(action);
            self.in_ring += 1;
        } else {
            self.seq += 1;
            self.far.push(Reverse(Later {
                at,
                seq: self.seq,
                action,
            }));
        }
    }

    /// The first action due at or before `until`, with its time; none if nothing is.
    pub fn pop(&mut self, until: Millis) -> Option<(Millis, T)> {
        loop {
            if let Some(action) = self.ring[self.head].pop_front() {
                self.in_ring -= 1;
                return Some((self.start, action));
            }
            // The bucket of now is empty: move on to the next time anything is due.
            let next = if self.in_ring > 0 {
                self.start + 1
            } else {
                self.far.peek()?.0.at
            };
            if next > until {
                return None;
            }
            self.advance_to(next);
        }
    }

    /// Moves the ring's start to `to` (all buckets before it empty), taking in from the far
    /// future what the ring now reaches.
    fn advance_to(&mut self, to: Millis) {
        let steps = to - self.start;
        if steps as usize >= RING_MS {
            // The ring is empty: start it afresh at `to`.
            self.head = 0;
        } else {
            self.head = (self.head + steps as usize) % RING_MS;
        }
        self.start = to;
        let reach = self.start + RING_MS as Millis;
        while let Some(Reverse(later)) = self.far.peek() {
            if later.at >= reach {
                break;
            }
            let Some(Reverse(later)) = self.far.pop() else {
                break;
            };
            // In due-time order, and before anything pushed from now on: the order scheduled.
            let ahead = (later.at - self.start) as usize;
            self.ring[(self.head + ahead) % RING_MS].push_back(later.action);
            self.in_ring += 1;
        }
    }

    /// Nothing is scheduled.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.in_ring == 0 && self.far.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{RING_MS, Timeline};

    /// Everything due up to `until`, in order.
    fn drain(timeline: &mut Timeline<&'static str>, until: u64) -> Vec<(u64, &'static str)> {
        std::iter::from_fn(|| timeline.pop(until)).collect()
    }

    #[test]
    fn actions_come_by_due_time_then_in_the_order_scheduled() {
        let mut timeline = Timeline::new(1_000);
        let far = 1_000 + 3 * RING_MS as u64 + 7;
        timeline.push(far, "far, first");
        timeline.push(1_005, "b");
        timeline.push(1_002, "a");
        timeline.push(1_005, "c");
        timeline.push(far, "far, second");
        timeline.push(1_000 + RING_MS as u64, "just beyond the ring");
        assert_eq!(timeline.pop(1_001), None, "nothing due yet");
        assert_eq!(
            drain(&mut timeline, 1_005),
            [(1_002, "a"), (1_005, "b"), (1_005, "c")]
        );
        // Scheduled now, while the ring has moved on: after what was due before it.
        timeline.push(1_005, "now");
        timeline.push(far, "far, third");
        assert_eq!(
            drain(&mut timeline, u64::MAX),
            [
                (1_005, "now"),
                (1_000 + RING_MS as u64, "just beyond the ring"),
                (far, "far, first"),
                (far, "far, second"),
                (far, "far, third"),
            ]
        );
        assert!(timeline.is_empty());
    }

    #[test]
    fn the_far_future_and_the_ring_keep_the_order_scheduled_at_the_same_time() {
        let mut timeline = Timeline::new(0);
        let at = RING_MS as u64 + 10;
        timeline.push(at, "scheduled from afar");
        timeline.push(20, "step");
        assert_eq!(timeline.pop(20), Some((20, "step")));
        // The ring reaches `at` now: this one goes after the one scheduled from afar.
        timeline.push(at, "scheduled near");
        timeline.push(5, "overdue");
        assert_eq!(
            timeline.pop(20),
            Some((20, "overdue")),
            "a past time is now"
        );
        assert_eq!(
            drain(&mut timeline, at),
            [(at, "scheduled from afar"), (at, "scheduled near")]
        );
    }
}
