//! Predictions fitted on recent samples, never looked up: a least-squares line through usage
//! samples gives the time until a limit (memory -> OOM, disk -> full); the intervals between
//! failing exits give the next crash of a crash loop and whether back-off is growing.

/// A least-squares line `value = intercept + slope * seconds_since_first_sample`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Change per second.
    pub slope_per_s: f64,
    /// Value at the first sample's time.
    pub intercept: f64,
    /// Coefficient of determination (1 = every sample on the line).
    pub r2: f64,
    /// Samples used.
    pub n: usize,
    /// Time of the first sample (ns).
    pub t0_ns: u64,
}

impl Fit {
    /// The fitted value at `t_ns`.
    pub fn at(&self, t_ns: u64) -> f64 {
        self.intercept + self.slope_per_s * secs(t_ns.saturating_sub(self.t0_ns))
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Fits `(time_ns, value)` samples; `None` with fewer than 2 samples or one instant only.
pub fn linear_fit(samples: &[(u64, f64)]) -> Option<Fit> {
    if samples.len() < 2 {
        return None;
    }
    let t0 = samples.iter().map(|s| s.0).min()?;
    let n = samples.len() as f64;
    let xs = || samples.iter().map(|(t, _)| secs(t - t0));
    let mean_x = xs().sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let sxx: f64 = xs().map(|x| (x - mean_x).powi(2)).sum();
    if sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = samples
        .iter()
        .map(|(t, y)| (secs(t - t0) - mean_x) * (y - mean_y))
        .sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_tot: f64 = samples.iter().map(|s| (s.1 - mean_y).powi(2)).sum();
    let ss_res: f64 = samples
        .iter()
        .map(|(t, y)| (y - (intercept + slope * secs(t - t0))).powi(2))
        .sum();
    let r2 = if ss_tot <= f64::EPSILON {
        1.0
    } else {
        1.0 - ss_res / ss_tot
    };
    Some(Fit {
        slope_per_s: slope,
        intercept,
        r2,
        n: samples.len(),
        t0_ns: t0,
    })
}

/// When a growing usage reaches its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitPrediction {
    /// The fit.
    pub fit: Fit,
    /// Latest observed value.
    pub value: f64,
    /// The limit.
    pub limit: f64,
    /// When the prediction was made (ns).
    pub at_ns: u64,
    /// Seconds from `at_ns` until the limit (0 when already reached).
    pub eta_s: f64,
}

impl LimitPrediction {
    /// `eta_s = (limit - value) / slope` with its numbers.
    pub fn formula(&self) -> String {
        format!(
            "least squares over {} samples: slope {:.1}/s (r2 {:.3}); eta = (limit {:.0} - value {:.0}) / slope = {:.1}s",
            self.fit.n, self.fit.slope_per_s, self.fit.r2, self.limit, self.value, self.eta_s
        )
    }
}

/// Fits `samples` and predicts when the value reaches `limit`, from the latest sample. `None`
/// when the fit is impossible or the value does not grow.
pub fn time_to_limit(samples: &[(u64, f64)], limit: f64) -> Option<LimitPrediction> {
    let fit = linear_fit(samples)?;
    if fit.slope_per_s <= 0.0 || !limit.is_finite() || limit <= 0.0 {
        return None;
    }
    let (at_ns, value) = samples.iter().copied().max_by_key(|s| s.0)?;
    let eta_s = ((limit - value) / fit.slope_per_s).max(0.0);
    Some(LimitPrediction {
        fit,
        value,
        limit,
        at_ns,
        eta_s,
    })
}

/// Mean ratio between consecutive intervals above which back-off counts as growing.
const GROWING_BACKOFF: f64 = 1.2;

/// The next crash of a crash loop.
#[derive(Debug, Clone, PartialEq)]
pub struct CrashPrediction {
    /// Crashes seen.
    pub crashes: usize,
    /// Mean interval between them (s).
    pub mean_interval_s: f64,
    /// Predicted next interval (s).
    pub next_interval_s: f64,
    /// How `next_interval_s` was computed.
    pub method: &'static str,
    /// Mean ratio between consecutive intervals (> 1: back-off growing).
    pub backoff_ratio: f64,
    /// When the prediction was made: the last crash (ns).
    pub at_ns: u64,
}

impl CrashPrediction {
    /// The formula with its numbers.
    pub fn formula(&self) -> String {
        format!(
            "{} crashes; intervals mean {:.1}s; back-off ratio {:.2}; next interval = {} = {:.1}s",
            self.crashes,
            self.mean_interval_s,
            self.backoff_ratio,
            self.method,
            self.next_interval_s
        )
    }
}

/// Predicts the next crash from crash times (ns, any order); needs `min_samples` crashes.
pub fn crash_loop(times: &[u64], min_samples: usize) -> Option<CrashPrediction> {
    let mut t: Vec<u64> = times.to_vec();
    t.sort_unstable();
    if t.len() < min_samples.max(2) {
        return None;
    }
    let intervals: Vec<f64> = t.windows(2).map(|w| secs(w[1] - w[0])).collect();
    let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
    // Intervals against their index (1 s per index so the fit's "seconds" are indices).
    let points: Vec<(u64, f64)> = intervals
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64 * 1_000_000_000, *v))
        .collect();
    let linear = match linear_fit(&points) {
        Some(fit) => fit.at(intervals.len() as u64 * 1_000_000_000).max(0.0),
        None => mean,
    };
    let ratios: Vec<f64> = intervals
        .windows(2)
        .filter(|w| w[0] > 0.0)
        .map(|w| w[1] / w[0])
        .collect();
    let backoff_ratio: f64 = if ratios.is_empty() {
        1.0
    } else {
        ratios.iter().sum::<f64>() / ratios.len() as f64
    };
    // Growing back-off (the kubelet doubles it): the next interval is the last one times the
    // mean ratio; otherwise the line through the intervals.
    let last = *intervals.last()?;
    let (next, method) = if backoff_ratio > GROWING_BACKOFF {
        (last * backoff_ratio, "last interval * back-off ratio")
    } else {
        (linear, "line through the intervals")
    };
    Some(CrashPrediction {
        method,
        crashes: t.len(),
        mean_interval_s: mean,
        next_interval_s: next,
        backoff_ratio,
        at_ns: *t.last()?,
    })
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`, `80 B`.
pub fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v;
    let mut u = 0;
    while x.abs() >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{x:.0} {}", UNITS[0])
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

/// `2m05s`, `41s`, `1h02m`.
pub fn human_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn exact_line_is_recovered() {
        let samples: Vec<(u64, f64)> = (0..5)
            .map(|i| (100 * S + i * S, 10.0 + 2.0 * i as f64))
            .collect();
        let f = linear_fit(&samples).unwrap();
        assert!((f.slope_per_s - 2.0).abs() < 1e-9);
        assert!((f.intercept - 10.0).abs() < 1e-9);
        assert!((f.r2 - 1.0).abs() < 1e-9);
        assert!(linear_fit(&samples[..1]).is_none());
        assert!(linear_fit(&[(S, 1.0), (S, 2.0)]).is_none(), "one instant");
    }

    #[test]
    fn memory_growth_reaches_limit() {
        // 100 MiB at t=0, +10 MiB/s, limit 256 MiB: from the last sample (140 MiB at 4 s),
        // (256 - 140) / 10 = 11.6 s.
        const MIB: f64 = 1024.0 * 1024.0;
        let samples: Vec<(u64, f64)> = (0..5)
            .map(|i| (i * S, (100.0 + 10.0 * i as f64) * MIB))
            .collect();
        let p = time_to_limit(&samples, 256.0 * MIB).unwrap();
        assert!((p.eta_s - 11.6).abs() < 1e-6, "{p:?}");
        assert_eq!(p.at_ns, 4 * S);
        assert!(p.formula().contains("eta = (limit"), "{}", p.formula());
        let shrinking: Vec<(u64, f64)> = samples.iter().map(|(t, v)| (*t, -v)).collect();
        assert!(time_to_limit(&shrinking, 256.0 * MIB).is_none());
    }

    #[test]
    fn crash_loop_with_doubling_backoff() {
        // Crashes at 0, 10, 30, 70, 150 s: intervals 10, 20, 40, 80.
        let times = [0, 10 * S, 30 * S, 70 * S, 150 * S];
        let p = crash_loop(&times, 3).unwrap();
        assert_eq!(p.crashes, 5);
        assert!((p.mean_interval_s - 37.5).abs() < 1e-9);
        assert!((p.backoff_ratio - 2.0).abs() < 1e-9);
        // Doubling back-off: 80 s * 2.
        assert!((p.next_interval_s - 160.0).abs() < 1e-9, "{p:?}");
        // Steady intervals (10, 12, 14): the line gives 16.
        let steady = crash_loop(&[0, 10 * S, 22 * S, 36 * S], 3).unwrap();
        assert!((steady.next_interval_s - 16.0).abs() < 1e-9, "{steady:?}");
        assert_eq!(steady.method, "line through the intervals");
        assert!(crash_loop(&times[..2], 3).is_none());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(300.0 * 1024.0 * 1024.0), "300.0 MiB");
        assert_eq!(human_bytes(80.0), "80 B");
        assert_eq!(human_secs(125.0), "2m05s");
        assert_eq!(human_secs(3720.0), "1h02m");
    }
}
