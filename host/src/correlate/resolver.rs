//! The `/proc` fallback, off the pipeline thread: for a live process the events did not
//! place yet, a worker thread reads `/proc/<pid>/cgroup` (and the cgroup's id and
//! `memory.max`); the stage picks the answers up on its next batch. Requests go through a
//! bounded channel (a full channel drops the request and counts it), and every pid and path
//! is asked at most once per TTL, so the cost is bounded whatever the event rate.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use compact_str::CompactString;

use crate::correlate::cgroup_path;
use crate::correlate::lru::BoundedMap;

/// Where the resolver reads from (the real file systems, or a fake in tests).
pub trait ProcSource: Send + 'static {
    /// The cgroup path of a live process.
    fn cgroup_of(&self, pid: u32) -> Option<String>;
    /// The cgroup id (inode of the cgroup directory) of a path.
    fn cgroup_id(&self, path: &str) -> Option<u64>;
    /// The memory limit of a cgroup (`None` for `max` or unknown).
    fn memory_max(&self, path: &str) -> Option<u64>;
}

/// `/proc` and `/sys/fs/cgroup`.
#[derive(Debug, Clone)]
pub struct FsSource {
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
}

impl Default for FsSource {
    fn default() -> Self {
        FsSource {
            proc_root: PathBuf::from("/proc"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }
}

impl ProcSource for FsSource {
    fn cgroup_of(&self, pid: u32) -> Option<String> {
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        cgroup_path::from_proc_cgroup(&text).map(str::to_owned)
    }

    fn cgroup_id(&self, path: &str) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        // v2 (or the unified mount of a hybrid host), else the v1 memory hierarchy.
        let rel = path.trim_start_matches('/');
        ["", "unified", "memory"].iter().find_map(|h| {
            std::fs::metadata(self.cgroup_root.join(h).join(rel))
                .ok()
                .map(|m| m.ino())
        })
    }

    fn memory_max(&self, path: &str) -> Option<u64> {
        let rel = path.trim_start_matches('/');
        let v2 = std::fs::read_to_string(self.cgroup_root.join(rel).join("memory.max"));
        let text = v2.or_else(|_| {
            std::fs::read_to_string(
                self.cgroup_root
                    .join("memory")
                    .join(rel)
                    .join("memory.limit_in_bytes"),
            )
        });
        text.ok()?.trim().parse().ok()
    }
}

enum Request {
    Pid(u32),
    Limit(CompactString),
}

/// An answer from the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A process's cgroup.
    Pid {
        /// The process.
        pid: u32,
        /// Its cgroup path.
        path: String,
        /// The cgroup id.
        cgroup_id: Option<u64>,
    },
    /// A cgroup's memory limit.
    Limit {
        /// The path.
        path: CompactString,
        /// `memory.max`.
        max: u64,
    },
}

fn answer(src: &dyn ProcSource, req: Request) -> Option<Answer> {
    match req {
        Request::Pid(pid) => {
            let path = src.cgroup_of(pid)?;
            let cgroup_id = src.cgroup_id(&path);
            Some(Answer::Pid {
                pid,
                path,
                cgroup_id,
            })
        }
        Request::Limit(path) => src.memory_max(&path).map(|max| Answer::Limit { path, max }),
    }
}

/// Counters of the resolver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverCounts {
    /// Requests sent to the worker.
    pub requests: u64,
    /// Requests dropped because the channel was full.
    pub dropped: u64,
    /// Answers applied.
    pub answers: u64,
}

/// The resolver handle owned by the stage.
pub struct Resolver {
    tx: Option<SyncSender<Request>>,
    rx: Receiver<Answer>,
    inline: Option<Box<dyn ProcSource>>,
    inline_answers: Vec<Answer>,
    asked_pids: BoundedMap<u32, ()>,
    asked_paths: BoundedMap<CompactString, ()>,
    thread: Option<JoinHandle<()>>,
    /// Counters.
    pub counts: ResolverCounts,
}

/// How long a pid or path is not asked again.
const ASK_TTL_NS: u64 = 60 * 1_000_000_000;

impl Resolver {
    /// A resolver with a worker thread reading `source`; `queue` requests may wait.
    pub fn spawn(
        source: impl ProcSource,
        queue: usize,
        max_cached: usize,
    ) -> std::io::Result<Self> {
        let (tx, req_rx) = mpsc::sync_channel::<Request>(queue.max(1));
        let (ans_tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tapio-resolver".into())
            .spawn(move || {
                while let Ok(req) = req_rx.recv() {
                    if let Some(a) = answer(&source, req) {
                        if ans_tx.send(a).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Resolver {
            tx: Some(tx),
            rx,
            inline: None,
            inline_answers: Vec::new(),
            asked_pids: BoundedMap::new(max_cached, ASK_TTL_NS),
            asked_paths: BoundedMap::new(max_cached, ASK_TTL_NS),
            thread: Some(thread),
            counts: ResolverCounts::default(),
        })
    }

    /// A resolver that answers at once from `source` on the calling thread: for tests and
    /// replays with a fake source only (never with [`FsSource`] on the pipeline thread).
    pub fn inline(source: impl ProcSource) -> Self {
        let (_tx, rx) = mpsc::channel();
        Resolver {
            tx: None,
            rx,
            inline: Some(Box::new(source)),
            inline_answers: Vec::new(),
            asked_pids: BoundedMap::new(100_000, ASK_TTL_NS),
            asked_paths: BoundedMap::new(100_000, ASK_TTL_NS),
            thread: None,
            counts: ResolverCounts::default(),
        }
    }

    /// A resolver that never asks anything.
    pub fn disabled() -> Self {
        struct Nothing;
        impl ProcSource for Nothing {
            fn cgroup_of(&self, _: u32) -> Option<String> {
                None
            }
            fn cgroup_id(&self, _: &str) -> Option<u64> {
                None
            }
            fn memory_max(&self, _: &str) -> Option<u64> {
                None
            }
        }
        let mut r = Self::inline(Nothing);
        r.inline = None;
        r
    }

    fn send(&mut self, req: Request) {
        if let Some(src) = &self.inline {
            self.counts.requests += 1;
            if let Some(a) = answer(src.as_ref(), req) {
                self.inline_answers.push(a);
            }
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(req) {
            Ok(()) => self.counts.requests += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.counts.dropped += 1,
        }
    }

    /// Asks for the cgroup of `pid` unless asked within the TTL.
    pub fn ask_pid(&mut self, pid: u32, now_ns: u64) {
        if self.asked_pids.get(&pid).is_some() {
            return;
        }
        self.asked_pids.entry(pid, now_ns, || ());
        self.send(Request::Pid(pid));
    }

    /// Asks for the memory limit of `path` unless asked within the TTL.
    pub fn ask_limit(&mut self, path: &str, now_ns: u64) {
        let key = CompactString::new(path);
        if self.asked_paths.get(&key).is_some() {
            return;
        }
        self.asked_paths.entry(key.clone(), now_ns, || ());
        self.send(Request::Limit(key));
    }

    /// Answers that arrived since the last call.
    pub fn poll(&mut self, out: &mut Vec<Answer>) {
        out.append(&mut self.inline_answers);
        while let Ok(a) = self.rx.try_recv() {
            out.push(a);
        }
        self.counts.answers += out.len() as u64;
    }

    /// Forgets asked pids and paths past their TTL.
    pub fn expire(&mut self, now_ns: u64) {
        self.asked_pids.expire(now_ns);
        self.asked_paths.expire(now_ns);
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_proc_of_this_process_off_thread() {
        let mut r = Resolver::spawn(FsSource::default(), 16, 100).unwrap();
        let me = std::process::id();
        r.ask_pid(me, 1);
        r.ask_pid(me, 2); // cached: not asked twice
        assert_eq!(r.counts.requests, 1);
        let mut got = Vec::new();
        for _ in 0..200 {
            r.poll(&mut got);
            if !got.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let want =
            cgroup_path::from_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap())
                .unwrap()
                .to_owned();
        match &got[..] {
            [Answer::Pid {
                pid,
                path,
                cgroup_id,
            }] => {
                assert_eq!((*pid, path), (me, &want));
                assert!(cgroup_id.is_some(), "the cgroup directory exists");
            }
            other => panic!("unexpected answers {other:?}"),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        struct Slow;
        impl ProcSource for Slow {
            fn cgroup_of(&self, _: u32) -> Option<String> {
                std::thread::sleep(std::time::Duration::from_millis(50));
                None
            }
            fn cgroup_id(&self, _: &str) -> Option<u64> {
                None
            }
            fn memory_max(&self, _: &str) -> Option<u64> {
                None
            }
        }
        let mut r = Resolver::spawn(Slow, 2, 1000).unwrap();
        for pid in 0..50 {
            r.ask_pid(pid, 0);
        }
        assert!(r.counts.dropped > 0, "{:?}", r.counts);
        assert_eq!(r.counts.requests + r.counts.dropped, 50);
    }
}
