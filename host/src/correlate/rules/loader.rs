//! Loading rule files: parse (serde, unknown fields refused), then validate what serde cannot
//! (references between steps, operators, ranges, cycles), reporting every problem of a file
//! at once as `FILE:LINE:COLUMN: FIELD: message`, like the host config.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::correlate::rules::compiled::{CompiledRule, CompiledStep, Cond, GroupBy, Lit, Op};
use crate::correlate::rules::model::{Condition, PredictionKind, Rule, RuleFile};
use crate::event::Severity;

/// A rule loading error.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// One or more invalid rules in a file (each with file, line and field).
    #[error("{}", render(.0))]
    Invalid(Vec<ConfigError>),
    /// The rules directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl RuleError {
    /// The individual problems (empty for I/O errors).
    pub fn problems(&self) -> &[ConfigError] {
        match self {
            RuleError::Invalid(v) => v,
            RuleError::Io { .. } => &[],
        }
    }
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The built-in rule files, embedded so a dev run works without installed files.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "memory-pressure-cascade.yaml",
        include_str!("../../../../packaging/rules/memory-pressure-cascade.yaml"),
    ),
    (
        "crash-loop.yaml",
        include_str!("../../../../packaging/rules/crash-loop.yaml"),
    ),
    (
        "service-failure.yaml",
        include_str!("../../../../packaging/rules/service-failure.yaml"),
    ),
    (
        "network-failure.yaml",
        include_str!("../../../../packaging/rules/network-failure.yaml"),
    ),
    (
        "disk-pressure.yaml",
        include_str!("../../../../packaging/rules/disk-pressure.yaml"),
    ),
    (
        "cpu-starvation.yaml",
        include_str!("../../../../packaging/rules/cpu-starvation.yaml"),
    ),
    (
        "systemd-unit-failure.yaml",
        include_str!("../../../../packaging/rules/systemd-unit-failure.yaml"),
    ),
    (
        "etcd-trouble.yaml",
        include_str!("../../../../packaging/rules/etcd-trouble.yaml"),
    ),
];

/// The built-in rules.
pub fn load_builtin() -> Result<Vec<CompiledRule>, RuleError> {
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in BUILTIN {
        match load_text(&format!("builtin:{name}"), text) {
            Ok(rules) => all.extend(rules),
            Err(RuleError::Invalid(e)) => errors.extend(e),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(RuleError::Invalid(errors))
    }
}

/// Every `*.yaml` / `*.yml` file of `dir`, in name order. An unreadable directory or any
/// invalid file fails the whole load (the caller keeps the rules it had).
pub fn load_dir(dir: &Path) -> Result<Vec<CompiledRule>, RuleError> {
    let io = |source| RuleError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RuleError::Io {
            path: path.clone(),
            source,
        })?;
        match load_text(&path.display().to_string(), &text) {
            Ok(rules) => all.extend(rules),
            Err(RuleError::Invalid(e)) => errors.extend(e),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(all)
    } else {
        Err(RuleError::Invalid(errors))
    }
}

/// Merges user rules over built-ins: a user rule with a built-in's id replaces it (a
/// disabled one removes it); disabled rules are dropped.
pub fn merge(builtin: Vec<CompiledRule>, user: Vec<CompiledRule>) -> Vec<CompiledRule> {
    let mut out: Vec<CompiledRule> = builtin
        .into_iter()
        .filter(|b| !user.iter().any(|u| u.id == b.id))
        .collect();
    out.extend(user);
    out.retain(|r| r.enabled);
    out
}

/// Parses and validates one file's text (`file` names it in errors).
pub fn load_text(file: &str, text: &str) -> Result<Vec<CompiledRule>, RuleError> {
    let parsed: RuleFile = serde_yaml_ng::from_str(text)
        .map_err(|e| RuleError::Invalid(vec![ConfigError::from_yaml(file, text, &e)]))?;
    let mut v = Validator {
        file,
        text,
        errors: Vec::new(),
    };
    let mut out = Vec::new();
    for (i, rule) in parsed.rules.iter().enumerate() {
        if let Some(first) = parsed.rules[..i].iter().position(|r| r.id == rule.id) {
            v.err(
                i,
                "id",
                &rule.id,
                format!("duplicate rule id (also rules[{first}])"),
            );
        }
        if let Some(c) = v.compile(i, rule) {
            out.push(c);
        }
    }
    if v.errors.is_empty() {
        Ok(out)
    } else {
        Err(RuleError::Invalid(v.errors))
    }
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ConfigError>,
}

fn parse_severity(s: &str) -> Option<Severity> {
    Severity::ALL
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(s))
}

fn lit(v: &serde_yaml_ng::Value) -> Option<Lit> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(Lit::Str(s.clone())),
        serde_yaml_ng::Value::Number(n) => n.as_f64().map(Lit::Num),
        serde_yaml_ng::Value::Bool(b) => Some(Lit::Bool(*b)),
        _ => None,
    }
}

impl Validator<'_> {
    fn err(&mut self, index: usize, field: &str, needle: &str, message: String) {
        // Rule `index`'s block, found by position (an id an edit broke still has a line).
        let line = crate::config::locate::line_in_item(self.text, "rules", index, needle);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column: None,
            field: Some(format!("rules[{index}].{field}")),
            message,
        });
    }

    fn compile(&mut self, i: usize, r: &Rule) -> Option<CompiledRule> {
        let before = self.errors.len();
        if r.id.is_empty()
            || !r
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.err(
                i,
                "id",
                "id:",
                "must be non-empty letters, digits, '-', '_' or '.'".into(),
            );
        }
        if r.intent.trim().is_empty() {
            self.err(i, "intent", "intent:", "must not be empty".into());
        }
        let group_by = match r.group_by.as_str() {
            "workload" => Some(GroupBy::Workload),
            "unit" => Some(GroupBy::Unit),
            "peer" => Some(GroupBy::Peer),
            "node" => Some(GroupBy::Node),
            other => match other.strip_prefix("attr:") {
                Some(k) if !k.is_empty() => Some(GroupBy::Attr(k.to_owned())),
                _ => {
                    self.err(i, "group_by", "group_by:", format!("unknown grouping {other:?}: expected workload, unit, peer, node or attr:<key>"));
                    None
                }
            },
        };
        if r.window.is_zero() {
            self.err(i, "window", "window:", "must be longer than 0s".into());
        }
        if r.steps.is_empty() {
            self.err(i, "steps", "steps:", "at least one step is required".into());
        }
        let mut steps = Vec::new();
        for (s, step) in r.steps.iter().enumerate() {
            let field = format!("steps[{s}]");
            if r.steps[..s].iter().any(|o| o.id == step.id) {
                self.err(
                    i,
                    &format!("{field}.id"),
                    &format!("id: {}", step.id),
                    format!("duplicate step id {:?}", step.id),
                );
            }
            if step.types.is_empty() {
                self.err(
                    i,
                    &format!("{field}.types"),
                    &format!("id: {}", step.id),
                    "at least one event type is required".into(),
                );
            }
            let mut types = Vec::new();
            let mut prefixes = Vec::new();
            for (t, ty) in step.types.iter().enumerate() {
                match ty.strip_suffix('*') {
                    _ if ty.is_empty() => self.err(
                        i,
                        &format!("{field}.types[{t}]"),
                        "types:",
                        "empty event type".into(),
                    ),
                    Some(p) if !p.contains('*') => prefixes.push(p.to_owned()),
                    None if !ty.contains('*') => types.push(ty.clone()),
                    _ => self.err(
                        i,
                        &format!("{field}.types[{t}]"),
                        ty,
                        format!("{ty:?}: '*' is allowed only at the end"),
                    ),
                }
            }
            let mut conds = Vec::new();
            for (c, cond) in step.conditions.iter().enumerate() {
                match self.condition(cond) {
                    Ok(op) => conds.push(Cond {
                        attr: cond.attr.clone(),
                        op,
                    }),
                    Err(m) => {
                        let needle = if cond.attr.is_empty() {
                            "where:".to_owned()
                        } else {
                            format!("attr: {}", cond.attr)
                        };
                        self.err(i, &format!("{field}.where[{c}]"), &needle, m)
                    }
                }
            }
            let min_severity = match &step.min_severity {
                None => None,
                Some(s) => {
                    let parsed = parse_severity(s);
                    if parsed.is_none() {
                        self.err(
                            i,
                            &format!("{field}.min_severity"),
                            "min_severity:",
                            format!("unknown severity {s:?}"),
                        );
                    }
                    parsed
                }
            };
            if step.min_count == 0 {
                self.err(
                    i,
                    &format!("{field}.min_count"),
                    "min_count:",
                    "must be at least 1".into(),
                );
            }
            steps.push(CompiledStep {
                id: step.id.clone(),
                name: step.name.clone().unwrap_or_else(|| step.id.clone()),
                types,
                prefixes,
                conds,
                min_severity,
                min_count: step.min_count.max(1),
            });
        }
        let step_index = |id: &str| r.steps.iter().position(|s| s.id == id.trim());
        let mut causes = Vec::new();
        for (c, edge) in r.causes.iter().enumerate() {
            let Some((a, b)) = edge.split_once("->") else {
                self.err(
                    i,
                    &format!("causes[{c}]"),
                    edge,
                    format!("{edge:?}: expected \"earlier -> later\""),
                );
                continue;
            };
            match (step_index(a), step_index(b)) {
                (Some(x), Some(y)) if x != y => causes.push((x, y)),
                (Some(_), Some(_)) => self.err(
                    i,
                    &format!("causes[{c}]"),
                    edge,
                    "a step cannot cause itself".into(),
                ),
                (x, _) => {
                    let bad = if x.is_none() { a.trim() } else { b.trim() };
                    self.err(
                        i,
                        &format!("causes[{c}]"),
                        edge,
                        format!("unknown step {bad:?}"),
                    );
                }
            }
        }
        if has_cycle(r.steps.len(), &causes) {
            self.err(
                i,
                "causes",
                "causes:",
                "causal relationships form a cycle".into(),
            );
        }
        let mut confirm = Vec::new();
        for (c, id) in r.confirm.iter().enumerate() {
            match step_index(id) {
                Some(x) => confirm.push(x),
                None => self.err(
                    i,
                    &format!("confirm[{c}]"),
                    "confirm:",
                    format!("unknown step {id:?}"),
                ),
            }
        }
        if r.min_steps == 0 || r.min_steps > r.steps.len().max(1) {
            self.err(
                i,
                "min_steps",
                "min_steps:",
                format!(
                    "must be between 1 and the number of steps ({})",
                    r.steps.len()
                ),
            );
        }
        let severity = parse_severity(&r.severity);
        if severity.is_none() {
            self.err(
                i,
                "severity",
                "severity:",
                format!("unknown severity {:?}", r.severity),
            );
        }
        if !matches!(r.impact.cascade_risk.as_str(), "low" | "medium" | "high") {
            self.err(
                i,
                "impact.cascade_risk",
                "cascade_risk:",
                format!("{:?}: expected low, medium or high", r.impact.cascade_risk),
            );
        }
        if !(0.0..=1.0).contains(&r.impact.weight) {
            self.err(
                i,
                "impact.weight",
                "weight:",
                "must be between 0 and 1".into(),
            );
        }
        let w = &r.confidence;
        if [w.coverage, w.order, w.evidence].iter().any(|x| *x < 0.0)
            || (w.coverage + w.order + w.evidence - 1.0).abs() > 1e-6
        {
            self.err(
                i,
                "confidence",
                "confidence:",
                "weights must be non-negative and sum to 1".into(),
            );
        }
        let mut prediction = None;
        if let Some(p) = &r.prediction {
            let mut idx = Vec::new();
            for (s, id) in p.sample_steps.iter().enumerate() {
                match step_index(id) {
                    Some(x) => idx.push(x),
                    None => self.err(
                        i,
                        &format!("prediction.sample_steps[{s}]"),
                        "sample_steps:",
                        format!("unknown step {id:?}"),
                    ),
                }
            }
            if p.sample_steps.is_empty() {
                self.err(
                    i,
                    "prediction.sample_steps",
                    "prediction:",
                    "at least one step is required".into(),
                );
            }
            if p.kind == PredictionKind::TimeToLimit {
                if p.value_attr.is_none() {
                    self.err(
                        i,
                        "prediction.value_attr",
                        "prediction:",
                        "required for kind time_to_limit".into(),
                    );
                }
                if p.limit_attr.is_none() && !p.limit_from_cgroup {
                    self.err(
                        i,
                        "prediction.limit_attr",
                        "prediction:",
                        "time_to_limit needs limit_attr or limit_from_cgroup: true".into(),
                    );
                }
            }
            if p.min_samples < 2 {
                self.err(
                    i,
                    "prediction.min_samples",
                    "min_samples:",
                    "at least 2 samples are needed for a fit".into(),
                );
            }
            if p.horizon.is_zero() {
                self.err(
                    i,
                    "prediction.horizon",
                    "horizon:",
                    "must be longer than 0s".into(),
                );
            }
            prediction = Some((p.clone(), idx));
        }
        if self.errors.len() > before {
            return None;
        }
        Some(CompiledRule {
            id: r.id.clone(),
            intent: r.intent.clone(),
            description: r.description.clone(),
            origin: self.file.to_owned(),
            group_by: group_by?,
            window_ns: r.window.as_nanos() as u64,
            linger_ns: r.linger.as_nanos() as u64,
            steps,
            causes,
            confirm,
            enabled: r.enabled,
            min_steps: r.min_steps,
            severity: severity?,
            cascade_risk: r.impact.cascade_risk.clone(),
            weight: r.impact.weight,
            confidence: r.confidence.clone(),
            prediction,
            prevention: r.prevention.clone(),
        })
    }

    fn condition(&self, c: &Condition) -> Result<Op, String> {
        if c.attr.is_empty() {
            return Err("attr must name an attribute".into());
        }
        let mut ops = Vec::new();
        let scalar = |v: &serde_yaml_ng::Value| {
            lit(v).ok_or_else(|| format!("{}: value must be text, a number or a boolean", c.attr))
        };
        if let Some(v) = &c.eq {
            ops.push(Op::Eq(scalar(v)?));
        }
        if let Some(v) = &c.ne {
            ops.push(Op::Ne(scalar(v)?));
        }
        if let Some(v) = c.gt {
            ops.push(Op::Gt(v));
        }
        if let Some(v) = c.gte {
            ops.push(Op::Gte(v));
        }
        if let Some(v) = c.lt {
            ops.push(Op::Lt(v));
        }
        if let Some(v) = c.lte {
            ops.push(Op::Lte(v));
        }
        if let Some(vs) = &c.one_of {
            ops.push(Op::In(vs.iter().map(scalar).collect::<Result<_, _>>()?));
        }
        if let Some(v) = &c.contains {
            ops.push(Op::Contains(v.clone()));
        }
        if let Some(v) = &c.prefix {
            ops.push(Op::Prefix(v.clone()));
        }
        if let Some(v) = c.exists {
            ops.push(Op::Exists(v));
        }
        if ops.len() != 1 {
            return Err(format!(
                "{}: exactly one of eq, ne, gt, gte, lt, lte, in, contains, prefix, exists is required (found {})",
                c.attr,
                ops.len()
            ));
        }
        Ok(ops.remove(0))
    }
}

fn has_cycle(n: usize, edges: &[(usize, usize)]) -> bool {
    // Kahn's algorithm: a cycle leaves nodes with incoming edges.
    let mut indegree = vec![0usize; n];
    for &(_, b) in edges {
        if b < n {
            indegree[b] += 1;
        }
    }
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut seen = 0;
    while let Some(x) = queue.pop() {
        seen += 1;
        for &(a, b) in edges {
            if a == x && b < n {
                indegree[b] -= 1;
                if indegree[b] == 0 {
                    queue.push(b);
                }
            }
        }
    }
    seen < n
}

#[cfg(test)]
mod tests;
