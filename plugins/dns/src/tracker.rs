//! Pairs responses with their queries and finds the queries that got no response in time.
//! Pure: time is passed in (CLOCK_BOOTTIME ns of the records and of `expire`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::record::Transport;

/// What identifies one outstanding query: the socket, the transaction id and the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Socket cookie (one socket may have many queries outstanding).
    pub cookie: u64,
    /// Transaction id.
    pub id: u16,
    /// The server's address and port.
    pub server: (IpAddr, u16),
    /// UDP or TCP.
    pub transport: Transport,
}

/// An outstanding query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// When it was sent.
    pub ts_boot_ns: u64,
    /// Sender's tgid.
    pub pid: u32,
    /// Sender's thread.
    pub tid: u32,
    /// Sender's comm.
    pub comm: String,
    /// v2 cgroup id of the socket.
    pub cgroup_id: u64,
    /// The local address and port.
    pub local: (IpAddr, u16),
    /// The first question's name.
    pub name: Option<String>,
    /// Its QTYPE.
    pub qtype: u16,
}

/// Outstanding queries, bounded.
#[derive(Debug)]
pub struct Tracker {
    pending: HashMap<Key, Query>,
    /// Send order, for expiry (entries whose query was answered or replaced are skipped).
    order: VecDeque<(u64, Key)>,
    timeout_ns: u64,
    max_pending: usize,
    /// Queries not tracked because `max_pending` were outstanding (no response pairing, no
    /// timeout for them).
    pub overflow: u64,
}

impl Tracker {
    /// A tracker that gives up on a query after `timeout_ns` and tracks at most
    /// `max_pending` at once.
    pub fn new(timeout_ns: u64, max_pending: usize) -> Self {
        Tracker {
            pending: HashMap::new(),
            order: VecDeque::new(),
            timeout_ns,
            max_pending,
            overflow: 0,
        }
    }

    /// Queries outstanding.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no query is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records a query sent. A retry with the same key replaces the earlier one (latency is
    /// then measured from the retry). Returns false when it could not be tracked.
    pub fn query(&mut self, key: Key, query: Query) -> bool {
        if self.pending.len() >= self.max_pending && !self.pending.contains_key(&key) {
            self.overflow += 1;
            return false;
        }
        self.order.push_back((query.ts_boot_ns, key.clone()));
        self.pending.insert(key, query);
        true
    }

    /// The query a response answers, if it is outstanding (removed).
    pub fn response(&mut self, key: &Key) -> Option<Query> {
        self.pending.remove(key)
    }

    /// The queries older than the timeout at `now_boot_ns` (removed), oldest first.
    pub fn expire(&mut self, now_boot_ns: u64) -> Vec<(Key, Query)> {
        let mut expired = Vec::new();
        while let Some((sent, _)) = self.order.front() {
            if now_boot_ns.saturating_sub(*sent) < self.timeout_ns {
                break;
            }
            let (sent, key) = self.order.pop_front().expect("front exists");
            if self.pending.get(&key).is_some_and(|q| q.ts_boot_ns == sent) {
                if let Some(q) = self.pending.remove(&key) {
                    expired.push((key, q));
                }
            }
        }
        // Bound the order queue when answered entries pile up ahead of a slow one.
        if self.order.len() > 4 * self.max_pending.max(1024) {
            let pending = &self.pending;
            self.order
                .retain(|(sent, key)| pending.get(key).is_some_and(|q| q.ts_boot_ns == *sent));
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> Key {
        Key {
            cookie: 1,
            id,
            server: ("127.0.0.1".parse().unwrap(), 53),
            transport: Transport::Udp,
        }
    }

    fn query(ts: u64) -> Query {
        Query {
            ts_boot_ns: ts,
            pid: 1,
            tid: 1,
            comm: "t".into(),
            cgroup_id: 0,
            local: ("127.0.0.1".parse().unwrap(), 5000),
            name: Some("a.test".into()),
            qtype: 1,
        }
    }

    #[test]
    fn pairs_and_expires() {
        let mut t = Tracker::new(100, 10);
        assert!(t.query(key(1), query(0)));
        assert!(t.query(key(2), query(10)));
        assert_eq!(t.response(&key(1)).unwrap().ts_boot_ns, 0);
        assert_eq!(t.response(&key(1)), None, "answered once");
        assert!(t.expire(109).is_empty());
        let expired = t.expire(110);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, key(2));
        assert_eq!(expired[0].1.ts_boot_ns, 10);
        assert!(t.is_empty());
    }

    #[test]
    fn a_retry_restarts_the_clock() {
        let mut t = Tracker::new(100, 10);
        t.query(key(1), query(0));
        t.query(key(1), query(50));
        assert!(t.expire(120).is_empty(), "the retry is younger");
        assert_eq!(t.expire(150).len(), 1);
    }

    #[test]
    fn overflow_is_counted() {
        let mut t = Tracker::new(100, 2);
        assert!(t.query(key(1), query(0)));
        assert!(t.query(key(2), query(0)));
        assert!(!t.query(key(3), query(0)));
        assert_eq!(t.overflow, 1);
        assert_eq!(t.len(), 2);
    }
}
