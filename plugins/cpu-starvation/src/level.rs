//! Starvation levels of a run-queue wait, the buckets of the earlier implementation:
//! below 100 ms minor, below 500 ms moderate, below 2 s severe, else critical.

use tapio_plugin_api::Severity;

/// How bad a wait is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// < 100 ms.
    Minor,
    /// < 500 ms.
    Moderate,
    /// < 2 s.
    Severe,
    /// >= 2 s.
    Critical,
}

impl Level {
    /// Every level, mildest first.
    pub const ALL: [Level; 4] = [
        Level::Minor,
        Level::Moderate,
        Level::Severe,
        Level::Critical,
    ];

    /// The level of a wait of `delay_ns`.
    pub const fn of(delay_ns: u64) -> Level {
        const MS: u64 = 1_000_000;
        if delay_ns < 100 * MS {
            Level::Minor
        } else if delay_ns < 500 * MS {
            Level::Moderate
        } else if delay_ns < 2_000 * MS {
            Level::Severe
        } else {
            Level::Critical
        }
    }

    /// The `resource.starvation.level` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Minor => "minor",
            Level::Moderate => "moderate",
            Level::Severe => "severe",
            Level::Critical => "critical",
        }
    }

    /// The event severity of this level.
    pub const fn severity(self) -> Severity {
        match self {
            Level::Minor => Severity::Low,
            Level::Moderate => Severity::Medium,
            Level::Severe => Severity::High,
            Level::Critical => Severity::Critical,
        }
    }

    /// Index in [`Level::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges() {
        const MS: u64 = 1_000_000;
        assert_eq!(Level::of(0), Level::Minor);
        assert_eq!(Level::of(100 * MS - 1), Level::Minor);
        assert_eq!(Level::of(100 * MS), Level::Moderate);
        assert_eq!(Level::of(500 * MS), Level::Severe);
        assert_eq!(Level::of(2_000 * MS - 1), Level::Severe);
        assert_eq!(Level::of(2_000 * MS), Level::Critical);
        assert_eq!(Level::Severe.severity(), Severity::High);
        assert_eq!(Level::Critical.as_str(), "critical");
    }
}
