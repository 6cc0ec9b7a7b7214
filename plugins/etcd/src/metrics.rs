//! The etcd metrics this collector reads, parsed from the Prometheus text exposition format
//! that etcd serves on `/metrics`.
//!
//! Only the few families below are kept; every other line is skipped. The parser follows
//! the text format (comments, `name{label="value",...} value [timestamp]`, escaped label
//! values, `+Inf` / `NaN`); a line it cannot read is counted, never guessed.

use crate::histogram::Histogram;

const HAS_LEADER: &str = "etcd_server_has_leader";
const IS_LEADER: &str = "etcd_server_is_leader";
const LEADER_CHANGES: &str = "etcd_server_leader_changes_seen_total";
const DB_SIZE: &str = "etcd_mvcc_db_total_size_in_bytes";
/// Name of the DB size gauge in etcd releases before 3.4.
const DB_SIZE_LEGACY: &str = "etcd_debugging_mvcc_db_total_size_in_bytes";
const DB_SIZE_IN_USE: &str = "etcd_mvcc_db_total_size_in_use_in_bytes";
const QUOTA: &str = "etcd_server_quota_backend_bytes";
const WAL_FSYNC: &str = "etcd_disk_wal_fsync_duration_seconds";
const START_TIME: &str = "process_start_time_seconds";
const SERVER_ID: &str = "etcd_server_id";
const SERVER_VERSION: &str = "etcd_server_version";

/// What one scrape of an etcd member's `/metrics` says. `None` = not exposed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Whether the member currently sees a leader.
    pub has_leader: Option<bool>,
    /// Whether the member is the leader.
    pub is_leader: Option<bool>,
    /// Leader changes the member has seen since it started.
    pub leader_changes: Option<u64>,
    /// Physical size of the backend database, bytes.
    pub db_size_bytes: Option<u64>,
    /// Logically used size of the backend database, bytes.
    pub db_size_in_use_bytes: Option<u64>,
    /// Backend quota (the size at which etcd raises a NOSPACE alarm), bytes.
    pub quota_bytes: Option<u64>,
    /// WAL fsync latency histogram (seconds), cumulative since start.
    pub wal_fsync: Option<Histogram>,
    /// Process start time, seconds since the epoch (changes when the member restarts).
    pub process_start_time: Option<f64>,
    /// Member id (hex), from the `server_id` label of `etcd_server_id`.
    pub member_id: Option<String>,
    /// Server version, from the `server_version` label of `etcd_server_version`.
    pub version: Option<String>,
    /// Lines of the families above that could not be parsed.
    pub bad_lines: u32,
}

/// Parses a `/metrics` body.
pub fn parse(text: &str) -> Snapshot {
    let mut s = Snapshot::default();
    let mut fsync = Histogram::default();
    let mut fsync_seen = false;
    let mut legacy_db_size = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(|c: char| c == '{' || c.is_whitespace())
            .next()
            .unwrap_or("");
        if !is_wanted(name) {
            continue;
        }
        let Some(sample) = parse_sample(line) else {
            s.bad_lines += 1;
            continue;
        };
        let v = sample.value;
        match sample.name {
            HAS_LEADER => s.has_leader = Some(v != 0.0),
            IS_LEADER => s.is_leader = Some(v != 0.0),
            LEADER_CHANGES => s.leader_changes = as_u64(v),
            DB_SIZE => s.db_size_bytes = as_u64(v),
            DB_SIZE_LEGACY => legacy_db_size = as_u64(v),
            DB_SIZE_IN_USE => s.db_size_in_use_bytes = as_u64(v),
            QUOTA => s.quota_bytes = as_u64(v),
            START_TIME => s.process_start_time = Some(v),
            SERVER_ID => s.member_id = sample.label("server_id").map(str::to_owned),
            SERVER_VERSION => s.version = sample.label("server_version").map(str::to_owned),
            n if n == bucket_name() => match sample.label("le").and_then(parse_float) {
                Some(le) => {
                    fsync.set_bucket(le, v);
                    fsync_seen = true;
                }
                None => s.bad_lines += 1,
            },
            n if n == sum_name() => {
                fsync.sum = v;
                fsync_seen = true;
            }
            n if n == count_name() => {
                fsync.count = v;
                fsync_seen = true;
            }
            _ => {}
        }
    }
    s.db_size_bytes = s.db_size_bytes.or(legacy_db_size);
    if fsync_seen {
        s.wal_fsync = Some(fsync);
    }
    s
}

fn bucket_name() -> &'static str {
    "etcd_disk_wal_fsync_duration_seconds_bucket"
}
fn sum_name() -> &'static str {
    "etcd_disk_wal_fsync_duration_seconds_sum"
}
fn count_name() -> &'static str {
    "etcd_disk_wal_fsync_duration_seconds_count"
}

fn is_wanted(name: &str) -> bool {
    matches!(
        name,
        HAS_LEADER
            | IS_LEADER
            | LEADER_CHANGES
            | DB_SIZE
            | DB_SIZE_LEGACY
            | DB_SIZE_IN_USE
            | QUOTA
            | START_TIME
            | SERVER_ID
            | SERVER_VERSION
    ) || name
        .strip_prefix(WAL_FSYNC)
        .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count"))
}

fn as_u64(v: f64) -> Option<u64> {
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// One sample line.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

impl Sample<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `name{k="v",...} value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = parse_float(fields.next()?)?;
    // An optional integer timestamp may follow; anything after it is malformed.
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses labels after `{` up to and including `}`; returns the rest of the line.
fn parse_labels<'a>(mut s: &'a str, out: &mut Vec<(&'a str, String)>) -> Option<&'a str> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Some(rest);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key, value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines copied from etcd 3.4.23's `/metrics`.
    const ETCD_34: &str = r#"# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.
# TYPE etcd_server_has_leader gauge
etcd_server_has_leader 1
etcd_server_is_leader 1
etcd_server_leader_changes_seen_total 1
etcd_debugging_mvcc_db_total_size_in_bytes 20480
etcd_mvcc_db_total_size_in_bytes 20480
etcd_mvcc_db_total_size_in_use_in_bytes 16384
etcd_server_quota_backend_bytes 2.147483648e+09
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 5
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 7
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 7
etcd_disk_wal_fsync_duration_seconds_sum 0.005841761
etcd_disk_wal_fsync_duration_seconds_count 7
etcd_server_id{server_id="2e1259d415f2a040"} 1
etcd_server_version{server_version="3.4.23"} 1
process_start_time_seconds 1.79533789152e+09
etcd_network_peer_round_trip_time_seconds_bucket{To="x",le="0.0001"} 0
"#;

    #[test]
    fn parses_etcd_34_metrics() {
        let s = parse(ETCD_34);
        assert_eq!(s.has_leader, Some(true));
        assert_eq!(s.is_leader, Some(true));
        assert_eq!(s.leader_changes, Some(1));
        assert_eq!(s.db_size_bytes, Some(20480));
        assert_eq!(s.db_size_in_use_bytes, Some(16384));
        assert_eq!(s.quota_bytes, Some(2_147_483_648));
        assert_eq!(s.member_id.as_deref(), Some("2e1259d415f2a040"));
        assert_eq!(s.version.as_deref(), Some("3.4.23"));
        assert_eq!(s.process_start_time, Some(1.79533789152e9));
        let h = s.wal_fsync.unwrap();
        assert_eq!(
            h.buckets,
            vec![(0.001, 5.0), (0.002, 7.0), (f64::INFINITY, 7.0)]
        );
        assert_eq!(h.count, 7.0);
        assert_eq!(s.bad_lines, 0);
    }

    #[test]
    fn legacy_db_size_is_a_fallback() {
        let s = parse("etcd_debugging_mvcc_db_total_size_in_bytes 4096\n");
        assert_eq!(s.db_size_bytes, Some(4096));
    }

    #[test]
    fn missing_families_stay_none() {
        let s = parse("# nothing\nfoo 1\n");
        assert_eq!(s, Snapshot::default());
    }

    #[test]
    fn labels_with_escapes_and_timestamps() {
        let sample =
            parse_sample(r#"etcd_server_version{a="x\"y}",server_version="3.5.0"} 1 1700000000"#)
                .unwrap();
        assert_eq!(sample.label("a"), Some("x\"y}"));
        assert_eq!(sample.label("server_version"), Some("3.5.0"));
        assert_eq!(sample.value, 1.0);
    }

    #[test]
    fn malformed_wanted_lines_are_counted_not_guessed() {
        let s = parse("etcd_server_has_leader one\netcd_mvcc_db_total_size_in_bytes{ 5\n");
        assert_eq!(s.has_leader, None);
        assert_eq!(s.db_size_bytes, None);
        assert_eq!(s.bad_lines, 2);
    }
}
