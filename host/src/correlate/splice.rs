//! The output of a batch processed in place: the events stay where the ring delivered them,
//! and the few changes to that order (an event held back for span attachment, a group or
//! prediction event emitted after the event that produced it) are recorded by position and
//! spliced in at the end. A batch without such changes is its own output: no event moves.

use crate::event::Event;

/// Changes to a batch, by position.
#[derive(Debug, Default)]
pub struct Splice {
    /// Positions whose event left the batch (held back), ascending.
    removed: Vec<usize>,
    /// Events to insert after a position, in order, positions ascending.
    inserted: Vec<(usize, Event)>,
}

impl Splice {
    /// Forgets the changes of the last batch (keeps the allocations).
    pub fn clear(&mut self) {
        self.removed.clear();
        self.inserted.clear();
    }

    /// Whether the batch is its own output.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.inserted.is_empty()
    }

    /// The event at `at` left the batch. Positions come in ascending order.
    pub fn remove(&mut self, at: usize) {
        debug_assert!(self.removed.last().is_none_or(|last| *last < at));
        self.removed.push(at);
    }

    /// `event` goes out after position `at` (after the event there, if it stays, and after
    /// what was inserted at `at` before). Positions come in ascending order.
    pub fn insert_after(&mut self, at: usize, event: Event) {
        debug_assert!(self.inserted.last().is_none_or(|(last, _)| *last <= at));
        self.inserted.push((at, event));
    }

    /// Appends `batch` with the changes applied to `out`, leaving `batch` empty.
    pub fn apply(&mut self, batch: &mut Vec<Event>, out: &mut Vec<Event>) {
        if self.is_empty() {
            out.append(batch);
            return;
        }
        out.reserve(batch.len() + self.inserted.len());
        let mut removed = self.removed.iter().copied().peekable();
        let mut inserted = self.inserted.drain(..).peekable();
        for (at, event) in batch.drain(..).enumerate() {
            if removed.next_if_eq(&at).is_none() {
                out.push(event);
            }
            while let Some((_, e)) = inserted.next_if(|(i, _)| *i == at) {
                out.push(e);
            }
        }
        // Positions past the end (none are made, but nothing is lost if they were).
        out.extend(inserted.map(|(_, e)| e));
        self.removed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;

    fn ev(name: &str) -> Event {
        Event::new(name, "test", Severity::Info, 0)
    }

    fn names(v: &[Event]) -> Vec<&str> {
        v.iter().map(|e| e.event_type.as_str()).collect()
    }

    #[test]
    fn an_unchanged_batch_is_its_own_output() {
        let mut s = Splice::default();
        let mut batch = vec![ev("a"), ev("b")];
        let mut out = vec![ev("released")];
        s.apply(&mut batch, &mut out);
        assert_eq!(names(&out), ["released", "a", "b"]);
        assert!(batch.is_empty());
    }

    #[test]
    fn removed_positions_leave_and_inserted_events_follow_their_position() {
        let mut s = Splice::default();
        let mut batch = vec![ev("a"), ev("b"), ev("c"), ev("d")];
        s.insert_after(0, ev("a-group"));
        s.remove(1);
        s.insert_after(1, ev("older-held"));
        s.insert_after(1, ev("older-held-group"));
        s.insert_after(3, ev("d-prediction"));
        let mut out = Vec::new();
        s.apply(&mut batch, &mut out);
        assert_eq!(
            names(&out),
            [
                "a",
                "a-group",
                "older-held",
                "older-held-group",
                "c",
                "d",
                "d-prediction"
            ]
        );
        assert!(s.is_empty(), "applied changes are spent");
    }
}
