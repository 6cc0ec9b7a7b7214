//! What a plugin asks the runtime to load: its embedded object, the programs and where they
//! attach, the ring size and wakeup batching, and global constants.

use std::time::Duration;

/// Where a program attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// A raw tracepoint (`SEC("raw_tp/...")`), by tracepoint name (`sys_exit`). No tracefs.
    RawTracepoint(&'static str),
    /// A BTF-typed tracepoint (`SEC("tp_btf/...")`), by name (`sched_process_exec`). No
    /// tracefs; typed arguments.
    BtfTracepoint(&'static str),
    /// A classic tracepoint (`SEC("tracepoint/...")`): needs tracefs (mounted on demand).
    Tracepoint {
        /// Category (`sock`).
        category: &'static str,
        /// Name (`inet_sock_set_state`).
        name: &'static str,
    },
    /// A `cgroup_skb` program (`SEC("cgroup_skb/egress")` / `ingress`) attached to the
    /// root of the cgroup v2 hierarchy (mounted on demand, see [`crate::cgroup2`]) with a
    /// BPF link (coexists with other programs there): it sees the packets of every socket
    /// of the host and must return 1 (pass) to leave them alone.
    CgroupSkb {
        /// Egress (packets sent) or ingress (packets received).
        egress: bool,
    },
}

impl Attach {
    /// The attach target as text, for errors and logs.
    pub fn target(&self) -> String {
        match self {
            Attach::RawTracepoint(name) => format!("raw_tp/{name}"),
            Attach::BtfTracepoint(name) => format!("tp_btf/{name}"),
            Attach::Tracepoint { category, name } => format!("tracepoint/{category}/{name}"),
            Attach::CgroupSkb { egress: true } => "cgroup_skb/egress (cgroup v2 root)".into(),
            Attach::CgroupSkb { egress: false } => "cgroup_skb/ingress (cgroup v2 root)".into(),
        }
    }
}

/// One program of the object and its attach point.
#[derive(Debug, Clone)]
pub struct ProgramSpec {
    /// The program's function name in the C source.
    pub name: &'static str,
    /// Where it attaches.
    pub attach: Attach,
    /// When true, failing to load or attach it degrades the plugin instead of failing it
    /// (for hooks missing on some kernels).
    pub optional: bool,
}

impl ProgramSpec {
    /// A required program.
    pub const fn new(name: &'static str, attach: Attach) -> Self {
        ProgramSpec {
            name,
            attach,
            optional: false,
        }
    }
    /// An optional program (see [`ProgramSpec::optional`]).
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// Everything needed to bring up one plugin's BPF object.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    /// Name for logs and errors (`process`).
    pub name: &'static str,
    /// The object bytes, embedded with [`include_bpf_object!`](crate::include_bpf_object).
    pub object: &'static [u8],
    /// Programs to load and attach, in order.
    pub programs: Vec<ProgramSpec>,
    /// Ring buffer size in bytes: a power of two, a multiple of the page size.
    pub ring_bytes: u32,
    /// Pending bytes that force a wakeup of the reader (0 = wake on every record).
    pub wakeup_bytes: u64,
    /// The reader's timer: the longest a record waits in the ring below the threshold.
    pub poll_interval: Duration,
    /// `const volatile` globals of the object to set before load: (name, native bytes).
    pub globals: Vec<(&'static str, Vec<u8>)>,
    /// `max_entries` overrides of other maps: (map name, entries).
    pub map_sizes: Vec<(&'static str, u32)>,
    /// Names of the program-specific `tapio_stats` slots 2 and 3, exported as counters
    /// (`None` = unused).
    pub extra_stats: [Option<(&'static str, &'static str)>; 2],
}

impl ObjectSpec {
    /// A spec with default ring settings (1 MiB ring, 64 KiB wakeup batches, 10 ms timer).
    pub fn new(name: &'static str, object: &'static [u8]) -> Self {
        ObjectSpec {
            name,
            object,
            programs: Vec::new(),
            ring_bytes: 1 << 20,
            wakeup_bytes: 64 << 10,
            poll_interval: Duration::from_millis(10),
            globals: Vec::new(),
            map_sizes: Vec::new(),
            extra_stats: [None, None],
        }
    }

    /// Adds a program.
    pub fn program(mut self, program: ProgramSpec) -> Self {
        self.programs.push(program);
        self
    }

    /// Sets a `const volatile` global to a plain value (`u32`, `u64`, arrays of them...).
    pub fn global<T: aya::Pod>(mut self, name: &'static str, value: T) -> Self {
        // SAFETY: `T: Pod` is plain old data without padding requirements aya does not
        // already impose; we copy its bytes as aya's `GlobalData::from(&T)` does.
        let bytes = unsafe {
            std::slice::from_raw_parts((&value as *const T).cast::<u8>(), size_of::<T>())
        }
        .to_vec();
        self.globals.push((name, bytes));
        self
    }

    /// Overrides a map's `max_entries`.
    pub fn map_size(mut self, map: &'static str, entries: u32) -> Self {
        self.map_sizes.push((map, entries));
        self
    }

    /// Applies the common ring settings of a plugin config.
    pub fn ring(mut self, ring: &crate::config::RingSettings) -> Self {
        self.ring_bytes = ring.ring_buffer_bytes;
        self.wakeup_bytes = ring.wakeup_bytes;
        self.poll_interval = ring.poll_interval;
        self
    }

    /// Names the program-specific stat slot `index` (0 or 1 = `tapio_stats` 2 or 3).
    pub fn extra_stat(mut self, index: usize, name: &'static str, help: &'static str) -> Self {
        self.extra_stats[index] = Some((name, help));
        self
    }
}
