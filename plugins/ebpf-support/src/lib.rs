//! Shared support of the tapio eBPF collector plugins.
//!
//! A plugin embeds its BPF object (built from `bpf-objects/src/<name>.bpf.c`, committed in
//! `bpf-objects/obj/`), describes it with an [`ObjectSpec`] (programs and where to attach
//! them, ring size, globals), implements [`RecordHandler`] to turn raw records into events,
//! and runs it with a [`Runtime`]:
//!
//! - loading with the kernel's BTF (CO-RE relocations), attaching raw tracepoints, `tp_btf`
//!   programs, classic tracepoints (tracefs mounted on demand) and `cgroup_skb` programs on
//!   the cgroup v2 root (mounted on demand);
//! - one reader thread per plugin that drains the ring buffer in batches; BPF programs
//!   submit with `BPF_RB_NO_WAKEUP` and force a wakeup past a byte threshold, the reader
//!   also wakes on a timer (see `bpf-objects/src/tapio.h`);
//! - kernel-side counters (records produced, dropped because the ring was full) exported as
//!   plugin metrics, with the reader's delivered count: `produced == delivered + dropped`;
//! - a clear error naming the missing capability (`CAP_BPF`, `CAP_PERFMON`) reported as the
//!   plugin's failed health, retried with backoff; never synthetic events.
//!
//! Record layouts: each program's header in `bpf-objects/src/<name>.h` is mirrored by a
//! `#[repr(C)]` struct with `const _: () = assert!(...)` on its size and offsets, matching
//! the `_Static_assert`s of the C side (see [`record`]).

#![warn(missing_docs, unreachable_pub)]

pub mod bench;
pub mod cgroup2;
pub mod clock;
pub mod config;
pub mod death;
mod error;
mod load;
#[cfg(feature = "test-support")]
pub mod oracle;
pub mod privilege;
pub mod record;
mod ring;
mod runtime;
mod slot;
mod spec;
pub mod stats;
#[cfg(feature = "test-support")]
mod test_cgroup;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tracefs;

pub use aya;
pub use error::EbpfError;
pub use load::Loaded;
pub use ring::RecordHandler;
pub use runtime::{Runtime, RuntimeHealth};
pub use slot::{handler_metrics, RuntimeSlot};
pub use spec::{Attach, ObjectSpec, ProgramSpec};
pub use stats::KernelStats;

/// Embeds a BPF object file with the 8-byte alignment the ELF parser needs.
/// Re-export of [`aya::include_bytes_aligned`].
#[macro_export]
macro_rules! include_bpf_object {
    ($path:expr) => {
        $crate::aya::include_bytes_aligned!($path)
    };
}
