//! A bounded memory of applied event ids, so duplicates are recognised without growing forever.

use std::collections::{HashSet, VecDeque};

use nostr::prelude::EventId;

/// Remembers the last `capacity` ids, forgetting the oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    capacity: usize,
    ids: HashSet<EventId>,
    order: VecDeque<EventId>,
}

impl Seen {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn contains(&self, id: &EventId) -> bool {
        self.ids.contains(id)
    }

    pub(crate) fn insert(&mut self, id: EventId) {
        if self.ids.insert(id) {
            self.order.push_back(id);
            if self.order.len() > self.capacity
                && let Some(oldest) = self.order.pop_front()
            {
                self.ids.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let id = |n: u8| EventId::from_byte_array([n; 32]);
        let mut seen = Seen::new(2);
        seen.insert(id(1));
        seen.insert(id(2));
        seen.insert(id(2));
        assert!(seen.contains(&id(1)));
        seen.insert(id(3));
        assert!(!seen.contains(&id(1)));
        assert!(seen.contains(&id(2)) && seen.contains(&id(3)));
    }
}
