//! CPU time of named threads of this process, for the per-thread figures of the benches.

/// CPU seconds (user + system, 10 ms ticks) used so far by this process's threads named
/// `name` (`/proc/self/task/*/comm`); 0 when none is.
pub fn thread_cpu_seconds(name: &str) -> f64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .map(|stat| {
            // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (num(11) + num(12)) / ticks
        })
        .sum()
}
