//! Kernel-side cost of BPF programs, for benchmarks: turns on the kernel's run-time
//! statistics (`BPF_ENABLE_STATS`, the same counters `kernel.bpf_stats_enabled` turns on,
//! off again when the guard drops), remembers which programs existed before the collector
//! under test loaded its own, and reads each new program's `run_time_ns` / `run_cnt`.

#![warn(missing_docs, unreachable_pub)]

use std::collections::HashSet;
use std::os::fd::OwnedFd;

use tapio_ebpf_support::aya::programs::loaded_programs;
use tapio_ebpf_support::aya::sys::{enable_stats, Stats};

/// The run-time statistics of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramCost {
    /// Kernel program id.
    pub id: u32,
    /// Program name (the kernel keeps 15 characters).
    pub name: String,
    /// Times it ran.
    pub run_count: u64,
    /// Total time it ran (ns).
    pub run_time_ns: u64,
}

impl ProgramCost {
    /// Mean nanoseconds per run (0 when it never ran).
    pub fn ns_per_run(&self) -> f64 {
        if self.run_count == 0 {
            0.0
        } else {
            self.run_time_ns as f64 / self.run_count as f64
        }
    }
}

/// Statistics on from creation until drop; knows the programs loaded before it.
pub struct CostMeter {
    _stats: OwnedFd,
    before: HashSet<u32>,
}

impl CostMeter {
    /// Turns statistics on and records the programs loaded now.
    pub fn start() -> Result<Self, String> {
        let stats = enable_stats(Stats::RunTime).map_err(|e| format!("BPF_ENABLE_STATS: {e}"))?;
        let before = loaded_programs()
            .filter_map(Result::ok)
            .map(|p| p.id())
            .collect();
        Ok(CostMeter {
            _stats: stats,
            before,
        })
    }

    /// The programs loaded since [`CostMeter::start`] whose names are in `names` (the
    /// kernel truncates names to 15 characters; compared on that prefix).
    pub fn read(&self, names: &[&str]) -> Vec<ProgramCost> {
        let mut costs: Vec<ProgramCost> = loaded_programs()
            .filter_map(Result::ok)
            .filter(|p| !self.before.contains(&p.id()))
            .filter_map(|p| {
                let name = p.name_as_str()?.to_owned();
                names
                    .iter()
                    .any(|n| n.get(..15).unwrap_or(n) == name)
                    .then(|| ProgramCost {
                        id: p.id(),
                        name,
                        run_count: p.run_count(),
                        run_time_ns: p.run_time().as_nanos() as u64,
                    })
            })
            .collect();
        costs.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        costs
    }
}

/// Prints a table of costs under `title`.
pub fn print_costs(title: &str, costs: &[ProgramCost]) {
    println!("{title}");
    println!(
        "  {:<18} {:>12} {:>16} {:>10}",
        "program", "runs", "run_time_ns", "ns/run"
    );
    for c in costs {
        println!(
            "  {:<18} {:>12} {:>16} {:>10.1}",
            c.name,
            c.run_count,
            c.run_time_ns,
            c.ns_per_run()
        );
    }
}

/// Whether this process may load BPF programs; prints why not.
pub fn can_run(bench: &str) -> bool {
    match tapio_ebpf_support::privilege::check() {
        Ok(()) => true,
        Err(e) => {
            println!("skipping {bench}: {e}, needs root or CAP_BPF + CAP_PERFMON");
            false
        }
    }
}
