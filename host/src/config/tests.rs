//! Config loading: defaults, errors with file, line and field, plugin schema checks.

use super::*;
use abi_stable::std_types::RStr;
use tapio_plugin_api::ConfigField;

fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    LoadedConfig::parse("test.yaml", text, |name| {
        (name == "NODE").then(|| "node-7".to_owned())
    })
}

static MODES: [RStr<'static>; 2] = [RStr::from_str("fast"), RStr::from_str("slow")];
static SCHEMA: [ConfigField; 4] = [
    ConfigField::duration("interval", "1s", "between polls"),
    ConfigField::uint("burst", 4, "events per poll"),
    ConfigField::string("mode", "fast", "how").choices(&MODES),
    ConfigField::string("endpoint", "", "where").required(),
];

#[test]
fn empty_text_gives_the_defaults() {
    let c = parse("").unwrap().config;
    assert_eq!(c.orchestrator.buffer_size, 65_536);
    assert_eq!(c.plugins.stop_timeout, Duration::from_secs(5));
    assert_eq!(c.pipeline.correlation, CorrelationMode::Semantic);
    assert_eq!(c.orchestrator.nats.subject, "tapio.events");
}

#[test]
fn the_product_document_example_parses() {
    let text = "orchestrator:\n  workers: 4\n  buffer_size: 10000\n  log_level: \"info\"\n  nats:\n    url: \"nats://localhost:4222\"\n    subject: \"tapio.events\"\ncollectors:\n  dns:\n    enabled: true\n    config:\n      buffer_size: 500\n      enable_ebpf: true\n";
    let c = parse(text).unwrap();
    assert_eq!(c.config.orchestrator.workers, 4);
    assert_eq!(c.enabled("dns"), Some(true));
    assert_eq!(c.enabled("kernel"), None);
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let err = parse("plugins:\n  dir: /x\n   bad: [\n").unwrap_err();
    assert_eq!(err.file, "test.yaml");
    assert!(err.line.is_some(), "{err}");
    assert!(err.to_string().starts_with("test.yaml:"), "{err}");
}

#[test]
fn unknown_fields_name_file_line_and_field() {
    let err = parse("plugins:\n  dir: /x\n  stop_timout: 5s\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(err.field.as_deref(), Some("plugins.stop_timout"), "{err}");
    assert!(err.message.contains("unknown field `stop_timout`"), "{err}");
}

#[test]
fn bad_durations_name_the_field() {
    let err = parse("pipeline:\n  trace_window: soon\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert_eq!(err.field.as_deref(), Some("pipeline.trace_window"), "{err}");
    assert!(err.message.contains("invalid duration"), "{err}");
}

#[test]
fn environment_variables_expand_and_unset_ones_fail() {
    let c = parse("output:\n  jsonl: /tmp/${NODE}.jsonl\n").unwrap();
    assert_eq!(c.config.output.jsonl.as_deref(), Some("/tmp/node-7.jsonl"));
    let err = parse("output:\n  jsonl: ${UNSET_VAR}\n").unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("UNSET_VAR is not set"), "{err}");
}

#[test]
fn value_ranges_are_checked() {
    let err = parse("orchestrator:\n  buffer_size: 1\n").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("orchestrator.buffer_size"));
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn range_errors_name_the_line_of_their_field() {
    // The field under its own section, after a same-named key of another section.
    let err = parse(
        "# comment\nexport:\n  batch_size: 10\npipeline:\n\n  trace_window: 5s\n  batch_size: 0\n",
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("pipeline.batch_size"));
    assert_eq!(err.line, Some(7), "{err}");
    assert!(err.to_string().starts_with("test.yaml:7"), "{err}");
    // A label key with dots, quoted.
    let err = parse(
        "correlation:\n  business:\n    labels:\n      \"app.kubernetes.io/tier=prod\": 2.0\n",
    )
    .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("correlation.business.labels.app.kubernetes.io/tier=prod")
    );
    assert_eq!(err.line, Some(4), "{err}");
    // Flow style: the field is named, the line is not guessed.
    let err = parse("pipeline: { batch_size: 0 }\n").unwrap_err();
    assert_eq!(err.field.as_deref(), Some("pipeline.batch_size"));
    assert_eq!(err.line, None, "{err}");
}

#[test]
fn plugin_config_gets_defaults_and_keeps_given_values() {
    let c =
        parse("collectors:\n  poller:\n    config:\n      endpoint: http://x\n      burst: 9\n")
            .unwrap();
    let cfg = c.plugin_config("poller", &SCHEMA).unwrap();
    assert_eq!(cfg["endpoint"], "http://x");
    assert_eq!(cfg["burst"], 9);
    assert_eq!(cfg["interval"], "1s");
    assert_eq!(cfg["mode"], "fast");
}

#[test]
fn plugin_config_unknown_field_has_line_and_path() {
    let c = parse("collectors:\n  poller:\n    config:\n      endpoint: x\n      intervall: 3s\n")
        .unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    assert!(err.message.contains("unknown field `intervall`"), "{err}");
    assert!(
        err.message.contains("interval, burst, mode, endpoint"),
        "{err}"
    );
    assert_eq!(
        err.field.as_deref(),
        Some("collectors.poller.config.intervall"),
        "{err}"
    );
}

#[test]
fn plugin_config_type_errors_have_line_and_field() {
    let c =
        parse("collectors:\n  poller:\n    config:\n      endpoint: x\n      burst: -3\n").unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
    assert_eq!(
        err.field.as_deref(),
        Some("collectors.poller.config.burst"),
        "{err}"
    );
    assert!(
        err.message
            .contains("must be a uint, found the negative number -3"),
        "{err}"
    );
    let c =
        parse("collectors:\n  poller:\n    config:\n      endpoint: x\n      interval: often\n")
            .unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert!(err.message.contains("invalid duration \"often\""), "{err}");
    let c = parse("collectors:\n  poller:\n    config:\n      endpoint: x\n      mode: medium\n")
        .unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert!(
        err.message.contains("`medium` is not one of: fast, slow"),
        "{err}"
    );
}

#[test]
fn plugin_config_missing_required_field_is_reported() {
    let c = parse("collectors:\n  poller:\n    enabled: true\n").unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("collectors.poller.config.endpoint")
    );
    assert!(
        err.message.contains("missing required field `endpoint`"),
        "{err}"
    );
    // No `config:` section: the plugin's own line.
    assert_eq!(err.line, Some(2), "{err}");
    let c =
        parse("collectors:\n  poller:\n    enabled: true\n    config:\n      burst: 2\n").unwrap();
    let err = c.plugin_config("poller", &SCHEMA).unwrap_err();
    assert_eq!(err.line, Some(4), "the `config:` line: {err}");
    // Not in the file at all: no line to give.
    let err = parse("")
        .unwrap()
        .plugin_config("poller", &SCHEMA)
        .unwrap_err();
    assert_eq!(err.line, None, "{err}");
}

#[test]
fn other_plugins_sections_are_not_checked() {
    let c = parse("collectors:\n  other:\n    config:\n      anything: [1, 2]\n  poller:\n    config:\n      endpoint: e\n").unwrap();
    assert!(c.plugin_config("poller", &SCHEMA).is_ok());
}

#[test]
fn correlation_section_sets_mode_window_rules_and_weights() {
    let c = parse(
        "correlation:\n  mode: basic\n  window: 45s\n  rules_dir: /etc/tapio/rules.d\n  otel_attach_delay: 0s\n  limits:\n    max_open_groups: 50\n  business:\n    namespaces: { shop: 0.9 }\n    default: 0.1\n",
    )
    .unwrap()
    .config;
    assert_eq!(c.pipeline.correlation, CorrelationMode::Basic);
    assert_eq!(c.pipeline.trace_window, Duration::from_secs(45));
    assert_eq!(
        c.correlation.rules_dir.as_deref(),
        Some(Path::new("/etc/tapio/rules.d"))
    );
    assert_eq!(c.correlation.limits.max_open_groups, 50);
    assert_eq!(
        c.correlation.limits.max_members, 64,
        "defaults fill the rest"
    );
    let w = c.correlation.business.weights();
    assert_eq!(w.weight(Some("shop"), None).0, 0.9);
    assert_eq!(
        w.weight(Some("production"), None).0,
        0.1,
        "namespaces replace the defaults"
    );
    assert!(c.correlation.builtin_rules);
}

#[test]
fn correlation_errors_name_the_field() {
    let err = parse("correlation:\n  business:\n    namespaces: { shop: 2 }\n").unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("correlation.business.namespaces.shop"),
        "{err}"
    );
    let err = parse("correlation:\n  limits:\n    max_grups: 1\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.to_string().contains("max_grups"), "{err}");
}

#[test]
fn malformed_config_files_are_refused_with_file_and_line_never_a_panic() {
    let shipped = [
        include_str!("../../../packaging/config/config.yaml"),
        include_str!("../../../packaging/config/dev.yaml"),
    ];
    let mut rng = fastrand::Rng::with_seed(5);
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..1000 {
        for text in shipped {
            let text = crate::yaml_edits::edited(&mut rng, text);
            match parse(&text) {
                Ok(_) => accepted += 1,
                Err(e) => {
                    refused += 1;
                    assert_eq!(e.file, "test.yaml");
                    // The YAML parser gives no location for a second document; every
                    // other problem names its line.
                    assert!(
                        e.line.is_some() || e.message.contains("more than one document"),
                        "round {round}: {e} has no line, in:\n{text}"
                    );
                }
            }
        }
    }
    assert!(
        refused > 0 && accepted > 0,
        "{refused} refused, {accepted} accepted"
    );
}
