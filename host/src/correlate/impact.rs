//! Impact of a group: severity, blast radius (entities affected and their downstream
//! dependents in the observed network graph), cascade risk, business impact from
//! configurable namespace and label weights, and system-critical entities.

use std::collections::BTreeMap;

use crate::event::Severity;

/// Business weights: namespace or label based, production above dev/test.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessWeights {
    /// Weight per namespace (exact name).
    pub namespaces: BTreeMap<String, f64>,
    /// Weight per pod label `key=value`.
    pub labels: BTreeMap<String, f64>,
    /// Weight of anything else (and of entities outside Kubernetes).
    pub default: f64,
}

impl Default for BusinessWeights {
    fn default() -> Self {
        let ns = [
            ("production", 1.0),
            ("prod", 1.0),
            ("kube-system", 1.0),
            ("staging", 0.6),
            ("dev", 0.2),
            ("development", 0.2),
            ("test", 0.2),
        ];
        let labels = [
            ("env=production", 1.0),
            ("env=prod", 1.0),
            ("env=staging", 0.6),
            ("env=dev", 0.2),
            ("env=test", 0.2),
        ];
        BusinessWeights {
            namespaces: ns.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            default: 0.5,
        }
    }
}

impl BusinessWeights {
    /// The weight of an entity in `namespace` with pod `labels` (`k=v,k=v`), and why.
    pub fn weight(&self, namespace: Option<&str>, labels: Option<&str>) -> (f64, String) {
        let mut best: Option<(f64, String)> = None;
        if let Some(ns) = namespace {
            if let Some(w) = self.namespaces.get(ns) {
                best = Some((*w, format!("namespace {ns}")));
            }
        }
        for kv in labels.unwrap_or("").split(',').map(str::trim) {
            if let Some(w) = self.labels.get(kv) {
                if best.as_ref().is_none_or(|(b, _)| w > b) {
                    best = Some((*w, format!("label {kv}")));
                }
            }
        }
        best.unwrap_or((self.default, "default".to_owned()))
    }
}

/// Names that mark an entity as system-critical.
const CRITICAL_NAMES: &[&str] = &[
    "kube-apiserver",
    "etcd",
    "kubelet",
    "containerd",
    "coredns",
    "kube-dns",
    "systemd-resolved",
    "kube-proxy",
];

/// Why an entity is system-critical, if it is: `namespace kube-system`, `etcd`, `dns`, ...
pub fn system_critical(
    namespace: Option<&str>,
    names: &[&str],
    event_type: &str,
    peer_port: Option<i64>,
) -> Option<String> {
    if namespace == Some("kube-system") {
        return Some("namespace kube-system".to_owned());
    }
    for name in names {
        let base = name.trim_end_matches(".service");
        if let Some(c) = CRITICAL_NAMES.iter().find(|c| {
            base.strip_prefix(**c)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        }) {
            return Some((*c).to_owned());
        }
    }
    if event_type.starts_with("etcd.") {
        return Some("etcd".to_owned());
    }
    if event_type.starts_with("kernel.dns.") || peer_port == Some(53) {
        return Some("dns".to_owned());
    }
    None
}

/// Cascade risk one level up (`low` -> `medium` -> `high`).
pub fn raise_risk(risk: &str) -> &'static str {
    match risk {
        "low" => "medium",
        _ => "high",
    }
}

/// A group's impact assessment.
#[derive(Debug, Clone, PartialEq)]
pub struct Impact {
    /// Severity.
    pub severity: Severity,
    /// Entities the group's members are about.
    pub entities: Vec<String>,
    /// Downstream dependents (observed clients of the affected entities).
    pub dependents: Vec<String>,
    /// `low` / `medium` / `high`.
    pub cascade_risk: String,
    /// Business impact 0..1.
    pub business: f64,
    /// How `business` was computed.
    pub business_formula: String,
    /// System-critical entities involved, with the reason.
    pub system_critical: Vec<String>,
}

impl Impact {
    /// Entities plus dependents.
    pub fn blast_radius(&self) -> usize {
        self.entities.len() + self.dependents.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_outweighs_dev_and_labels_count() {
        let w = BusinessWeights::default();
        assert_eq!(w.weight(Some("production"), None).0, 1.0);
        assert_eq!(w.weight(Some("dev"), None).0, 0.2);
        assert_eq!(w.weight(Some("shop"), Some("app=x,env=production")).0, 1.0);
        let (d, why) = w.weight(None, None);
        assert_eq!((d, why.as_str()), (0.5, "default"));
    }

    #[test]
    fn critical_entities_are_named() {
        assert_eq!(
            system_critical(Some("kube-system"), &[], "x", None).as_deref(),
            Some("namespace kube-system")
        );
        assert_eq!(
            system_critical(None, &["etcd.service"], "x", None).as_deref(),
            Some("etcd")
        );
        assert_eq!(
            system_critical(None, &["kube-apiserver-node1"], "x", None).as_deref(),
            Some("kube-apiserver")
        );
        assert_eq!(
            system_critical(None, &[], "kernel.network.reset", Some(53)).as_deref(),
            Some("dns")
        );
        assert_eq!(system_critical(Some("shop"), &["web"], "x", Some(80)), None);
        assert_eq!(raise_risk("low"), "medium");
    }
}
