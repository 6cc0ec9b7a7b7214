//! Rule loading: built-ins, file, line and field of every problem, malformed files.

use super::*;
use crate::correlate::rules::compiled::RuleSet;

const GOOD: &str = r#"
rules:
  - id: demo
    intent: demo_intent
    window: 1m
    steps:
      - id: a
        types: [x.a, "k8s.pod.*"]
        where:
          - { attr: n, gte: 3 }
      - id: b
        types: [x.b]
    causes: ["a -> b"]
    confirm: [b]
"#;

#[test]
fn every_builtin_rule_loads() {
    let rules = load_builtin().unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    for want in [
        "memory-pressure-cascade",
        "crash-loop",
        "service-failure",
        "network-failure",
        "disk-pressure",
        "cpu-starvation",
        "systemd-unit-failure",
        "etcd-trouble",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
}

#[test]
fn the_sample_steps_of_a_cgroup_limit_prediction_read_the_limit() {
    let text = format!(
        "{GOOD}    prediction:
      kind: time_to_limit
      sample_steps: [a]
      value_attr: v
      limit_from_cgroup: true
      horizon: 10m
      text: \"full in {{eta}}\"
"
    );
    let set = RuleSet::new(load_text("limit.yaml", &text).unwrap_or_else(|e| panic!("{e}")));
    let mut candidates = Vec::new();
    // Step a, by its exact type and by its prefix pattern.
    for t in ["x.a", "k8s.pod.oom"] {
        set.candidates(t, &mut candidates);
        assert_eq!(candidates, vec![(0, 0)], "{t}");
        assert!(set.reads_cgroup_limit(&candidates), "{t}");
    }
    // Step b is no sample step; an unknown type has no candidates.
    for t in ["x.b", "y.z"] {
        set.candidates(t, &mut candidates);
        assert!(!set.reads_cgroup_limit(&candidates), "{t}");
    }
    // Without `limit_from_cgroup` the limit comes from the events: nothing to read.
    let own_limit = text.replace("limit_from_cgroup: true", "limit_attr: l");
    let set = RuleSet::new(load_text("own.yaml", &own_limit).unwrap_or_else(|e| panic!("{e}")));
    set.candidates("x.a", &mut candidates);
    assert_eq!(candidates, vec![(0, 0)]);
    assert!(!set.reads_cgroup_limit(&candidates));
}

#[test]
fn a_good_file_compiles() {
    let rules = load_text("good.yaml", GOOD).unwrap();
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r.causes, vec![(0, 1)]);
    assert_eq!(r.confirm, vec![1]);
    assert_eq!(r.steps[0].prefixes, vec!["k8s.pod.".to_owned()]);
    assert_eq!(r.window_ns, 60_000_000_000);
}

fn problems(text: &str) -> Vec<String> {
    match load_text("r.yaml", text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_field_points_at_file_line_and_field() {
    let text = GOOD.replace("    window: 1m\n", "    window: 1m\n    colour: red\n");
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("r.yaml:6:5: rules[0].colour: unknown field"),
        "{p:?}"
    );
    assert!(p[0].contains("rules[0]"), "{p:?}");
    assert!(p[0].contains("colour"), "{p:?}");
}

#[test]
fn semantic_errors_are_all_reported_with_lines() {
    let text = GOOD
        .replace("\"a -> b\"", "\"a -> c\"")
        .replace("{ attr: n, gte: 3 }", "{ attr: n, gte: 3, lt: 9 }")
        .replace("confirm: [b]", "confirm: [b]\n    severity: dire");
    let p = problems(&text);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p.iter()
            .any(|m| m == "r.yaml:13: rules[0].causes[0]: unknown step \"c\""),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("r.yaml:10: rules[0].steps[0].where[0]: n: exactly one of")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m == "r.yaml:15: rules[0].severity: unknown severity \"dire\""),
        "{p:#?}"
    );
}

#[test]
fn cycles_and_bad_types_are_refused() {
    let text = GOOD
        .replace("causes: [\"a -> b\"]", "causes: [\"a -> b\", \"b -> a\"]")
        .replace("[x.b]", "[\"x*b\"]");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.contains("rules[0].causes: causal relationships form a cycle")),
        "{p:#?}"
    );
    assert!(
        p.iter()
            .any(|m| m.contains("rules[0].steps[1].types[0]") && m.contains("only at the end")),
        "{p:#?}"
    );
}

#[test]
fn directory_load_and_merge_replace_builtins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.yaml"),
        "rules:\n  - id: crash-loop\n    intent: mine\n    enabled: false\n    steps: [{id: a, types: [x]}]\n    min_steps: 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not yaml").unwrap();
    let user = load_dir(dir.path()).unwrap();
    let merged = merge(load_builtin().unwrap(), user);
    assert!(
        merged.iter().all(|r| r.id != "crash-loop"),
        "a disabled user rule switches the built-in off"
    );
    std::fs::write(
        dir.path().join("mine.yaml"),
        "rules:\n  - id: crash-loop\n    intent: mine\n    steps: [{id: a, types: [x]}]\n    min_steps: 1\n",
    )
    .unwrap();
    let user = load_dir(dir.path()).unwrap();
    let merged = merge(load_builtin().unwrap(), user);
    let crash: Vec<_> = merged.iter().filter(|r| r.id == "crash-loop").collect();
    assert_eq!(crash.len(), 1);
    assert_eq!(crash[0].intent, "mine");
    std::fs::write(dir.path().join("bad.yml"), "rules: [{id: x}]\n").unwrap();
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("bad.yml:1"), "{err}");
    assert!(matches!(
        load_dir(&dir.path().join("missing")),
        Err(RuleError::Io { .. })
    ));
}

#[test]
fn malformed_rule_files_are_refused_with_file_line_and_field_never_a_panic() {
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..300 {
        for (name, text) in BUILTIN {
            let text = crate::yaml_edits::edited(&mut rng, text);
            match load_text(name, &text) {
                Ok(_) => accepted += 1,
                Err(RuleError::Invalid(errors)) => {
                    refused += 1;
                    assert!(!errors.is_empty());
                    for e in &errors {
                        assert_eq!(e.file, *name);
                        // The YAML parser gives no location for a second document
                        // (the only such error in 160 000 edited files); every
                        // other problem names its line.
                        assert!(
                            e.line.is_some() || e.message.contains("more than one document"),
                            "round {round}: {e} has no line, in:\n{text}"
                        );
                    }
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
    // Most edits break a file; some (a repeated comment, a swapped pair of list
    // items) leave it valid.
    assert!(refused > accepted, "{refused} refused, {accepted} accepted");
}
