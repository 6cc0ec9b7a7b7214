//! The plugin's config: schema (validated by the host) and the parsed form.

use std::time::Duration;

use serde::Deserialize;
use tapio_plugin_api::{config::duration, ConfigField, PluginError, RStr};

/// The parsed config.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Kubeconfig path; empty = in-cluster config, then `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: String,
    /// Kubeconfig context; empty = the current one.
    pub context: String,
    /// Resources watched.
    pub resources: Vec<String>,
    /// Namespaces watched; empty = all.
    pub namespaces: Vec<String>,
    /// Namespaces skipped.
    pub exclude_namespaces: Vec<String>,
    /// Only pods bound to this node; empty = every pod.
    pub node_name: String,
    /// Report the objects that exist at start as `added` (`k8s.watch.initial` = true).
    pub initial_state: bool,
    /// Longest delay between retries.
    #[serde(with = "duration")]
    pub retry_max: Duration,
    /// Server-side timeout of each watch request.
    #[serde(with = "duration")]
    pub watch_timeout: Duration,
}

/// Every resource the collector knows.
pub const RESOURCES: [&str; 8] = [
    "pods",
    "events",
    "deployments",
    "replicasets",
    "statefulsets",
    "daemonsets",
    "services",
    "nodes",
];

static RESOURCE_CHOICES: [RStr<'static>; 8] = [
    RStr::from_str("pods"),
    RStr::from_str("events"),
    RStr::from_str("deployments"),
    RStr::from_str("replicasets"),
    RStr::from_str("statefulsets"),
    RStr::from_str("daemonsets"),
    RStr::from_str("services"),
    RStr::from_str("nodes"),
];

static SYSTEM_NAMESPACES: [RStr<'static>; 3] = [
    RStr::from_str("kube-system"),
    RStr::from_str("kube-public"),
    RStr::from_str("kube-node-lease"),
];

/// The schema the host validates.
pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::string(
        "kubeconfig",
        "",
        "Kubeconfig file. Empty: $KUBECONFIG or ~/.kube/config when present, else the in-cluster service account.",
    ),
    ConfigField::string("context", "", "Kubeconfig context to use; empty: the current context."),
    ConfigField::string_list("resources", &RESOURCE_CHOICES, "Resources to watch.")
        .choices(&RESOURCE_CHOICES),
    ConfigField::string_list("namespaces", &[], "Namespaces to watch; empty: all namespaces."),
    ConfigField::string_list(
        "exclude_namespaces",
        &SYSTEM_NAMESPACES,
        "Namespaces never reported (system namespaces by default).",
    ),
    ConfigField::string(
        "node_name",
        "",
        "Only watch pods bound to this node (e.g. `${NODE_NAME}` in a DaemonSet); empty: all pods.",
    ),
    ConfigField::bool(
        "initial_state",
        true,
        "Report the objects that exist at start as `added` with `k8s.watch.initial` = true (Kubernetes events excepted: they are history).",
    ),
    ConfigField::duration(
        "retry_max",
        "30s",
        "Longest delay between retries when the API server is unreachable (backoff starts at 500ms and doubles).",
    ),
    ConfigField::duration(
        "watch_timeout",
        "290s",
        "Server-side timeout of each watch request; the watch then resumes from the last resourceVersion.",
    ),
];

impl Settings {
    /// Checks what the schema cannot; reports every problem at once.
    pub fn validate(&self) -> Result<(), PluginError> {
        let mut problems = Vec::new();
        if self.resources.is_empty() {
            problems.push("resources must name at least one resource".to_owned());
        }
        if let Some(r) = self
            .resources
            .iter()
            .find(|r| !RESOURCES.contains(&r.as_str()))
        {
            problems.push(format!("unknown resource {r:?}"));
        }
        if let Some(n) = self
            .namespaces
            .iter()
            .find(|n| self.exclude_namespaces.contains(n))
        {
            problems.push(format!("namespace {n:?} is both watched and excluded"));
        }
        if self.retry_max.is_zero() {
            problems.push("retry_max must be greater than zero".to_owned());
        }
        if self.watch_timeout < Duration::from_secs(1)
            || self.watch_timeout > Duration::from_secs(3600)
        {
            problems.push("watch_timeout must be between 1s and 1h".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }

    /// Whether objects of `namespace` are reported.
    pub fn namespace_wanted(&self, namespace: Option<&str>) -> bool {
        match namespace {
            None => true,
            Some(ns) => {
                !self.exclude_namespaces.iter().any(|x| x == ns)
                    && (self.namespaces.is_empty() || self.namespaces.iter().any(|x| x == ns))
            }
        }
    }

    /// The server-side field selector for `resource` when watching all namespaces.
    pub fn field_selector(&self, resource: &str, namespaced: bool) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if namespaced && self.namespaces.is_empty() {
            parts.extend(
                self.exclude_namespaces
                    .iter()
                    .map(|n| format!("metadata.namespace!={n}")),
            );
        }
        if resource == "pods" && !self.node_name.is_empty() {
            parts.push(format!("spec.nodeName={}", self.node_name));
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            kubeconfig: String::new(),
            context: String::new(),
            resources: vec!["pods".into()],
            namespaces: vec![],
            exclude_namespaces: vec!["kube-system".into(), "kube-public".into()],
            node_name: "node-1".into(),
            initial_state: true,
            retry_max: Duration::from_secs(1),
            watch_timeout: Duration::from_secs(290),
        }
    }

    #[test]
    fn selectors_exclude_namespaces_and_pick_the_node() {
        let s = settings();
        assert_eq!(
            s.field_selector("pods", true).unwrap(),
            "metadata.namespace!=kube-system,metadata.namespace!=kube-public,spec.nodeName=node-1"
        );
        assert_eq!(s.field_selector("nodes", false), None);
        assert!(!s.namespace_wanted(Some("kube-system")));
        assert!(s.namespace_wanted(Some("shop")));
        assert!(s.namespace_wanted(None));
    }

    #[test]
    fn validate_reports_every_problem() {
        let mut s = settings();
        s.resources = vec!["pods".into(), "secrets".into()];
        s.namespaces = vec!["kube-system".into()];
        let e = s.validate().unwrap_err();
        assert!(
            e.message.contains("secrets") && e.message.contains("both watched"),
            "{e}"
        );
    }
}
