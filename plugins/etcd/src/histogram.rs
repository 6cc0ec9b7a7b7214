//! Prometheus histograms as etcd exposes them (cumulative `le` buckets, `_sum`, `_count`):
//! the difference between two scrapes and quantiles over it, computed the way PromQL's
//! `histogram_quantile` does (linear interpolation inside the bucket).

/// One scrape of a cumulative histogram.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// `(upper bound, cumulative count)`, ascending by bound; the last bound is `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: f64,
}

impl Histogram {
    /// Adds or replaces the cumulative count of the bucket with upper bound `le`.
    pub fn set_bucket(&mut self, le: f64, cumulative: f64) {
        match self.buckets.iter_mut().find(|(b, _)| *b == le) {
            Some(slot) => slot.1 = cumulative,
            None => {
                self.buckets.push((le, cumulative));
                self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    /// The observations made between `earlier` and `self`, or `None` when the counters went
    /// down (the process restarted) or the bucket layouts differ.
    pub fn since(&self, earlier: &Histogram) -> Option<Histogram> {
        if self.count < earlier.count || self.buckets.len() != earlier.buckets.len() {
            return None;
        }
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (now, before) in self.buckets.iter().zip(&earlier.buckets) {
            if now.0 != before.0 || now.1 < before.1 {
                return None;
            }
            buckets.push((now.0, now.1 - before.1));
        }
        Some(Histogram {
            buckets,
            sum: (self.sum - earlier.sum).max(0.0),
            count: self.count - earlier.count,
        })
    }

    /// Mean observation, or `None` without observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q` quantile (0..=1), or `None` without observations. Observations in the `+Inf`
    /// bucket are reported as the highest finite bound, as PromQL does.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|b| b.1).unwrap_or(0.0);
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(le, cumulative) in &self.buckets {
            if cumulative >= rank {
                if le.is_infinite() {
                    return Some(lower_bound);
                }
                let in_bucket = cumulative - lower_count;
                if in_bucket <= 0.0 {
                    return Some(le);
                }
                return Some(lower_bound + (le - lower_bound) * (rank - lower_count) / in_bucket);
            }
            lower_bound = le;
            lower_count = cumulative;
        }
        Some(lower_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(buckets: &[(f64, f64)], sum: f64) -> Histogram {
        let mut h = Histogram::default();
        for &(le, c) in buckets {
            h.set_bucket(le, c);
        }
        h.sum = sum;
        h.count = buckets.last().unwrap().1;
        h
    }

    #[test]
    fn quantile_interpolates_like_promql() {
        // 10 observations: 5 in (0, 1ms], 5 in (1ms, 2ms].
        let h = hist(&[(0.001, 5.0), (0.002, 10.0), (f64::INFINITY, 10.0)], 0.012);
        assert_eq!(h.quantile(0.5), Some(0.001));
        let p99 = h.quantile(0.99).unwrap();
        assert!((p99 - 0.00198).abs() < 1e-9, "{p99}");
        assert!((h.mean().unwrap() - 0.0012).abs() < 1e-12);
    }

    #[test]
    fn quantile_in_inf_bucket_is_highest_finite_bound() {
        let h = hist(&[(0.5, 0.0), (1.0, 0.0), (f64::INFINITY, 3.0)], 9.0);
        assert_eq!(h.quantile(0.99), Some(1.0));
    }

    #[test]
    fn since_subtracts_and_detects_resets() {
        let a = hist(&[(0.001, 5.0), (f64::INFINITY, 7.0)], 0.01);
        let b = hist(&[(0.001, 6.0), (f64::INFINITY, 10.0)], 0.04);
        let d = b.since(&a).unwrap();
        assert_eq!(d.buckets, vec![(0.001, 1.0), (f64::INFINITY, 3.0)]);
        assert_eq!(d.count, 3.0);
        assert!((d.sum - 0.03).abs() < 1e-12);
        assert_eq!(a.since(&b), None, "a restart resets the counters");
    }

    #[test]
    fn empty_histogram_has_no_quantile() {
        assert_eq!(Histogram::default().quantile(0.99), None);
        assert_eq!(Histogram::default().mean(), None);
    }
}
