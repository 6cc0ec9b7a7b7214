//! What the impact assessment asks the graph about a workload: its downstream dependents
//! (who was seen connecting to its address), the services selecting a pod, a pod's labels.
//! Direct lookups and a kept selector index, so a closing group's cost does not grow with
//! the node's pods and services.

use std::cell::Ref;
use std::collections::HashMap;

use compact_str::CompactString;

use super::EntityGraph;

/// Services by namespace and the first `k=v` pair of their selector, with every pair of
/// the selector ([`EntityGraph::service_selectors`]).
#[derive(Debug, Default)]
pub struct SelectorIndex {
    by_pair: HashMap<(CompactString, CompactString), Vec<SelectedBy>, foldhash::fast::RandomState>,
}

/// A service key (`namespace/name`) and the `k=v` pairs of its selector.
pub(super) type SelectedBy = (CompactString, Vec<CompactString>);

/// What the services table looked like when the selector index was built: service events
/// observed, entries, entries evicted. Any change makes the index stale.
pub(super) type ServicesVersion = (u64, usize, u64);

impl EntityGraph {
    /// The workloads seen connecting to the address owned by `workload_key` (its pod IP or
    /// service cluster IP) or to `peer` itself: its downstream dependents in the observed
    /// graph. Direct lookups only (no pass over the address table), so a group's impact
    /// costs the same on a node with 20 k pod IPs as on one with 20.
    pub fn dependents(&self, workload_key: Option<&str>, peer: Option<&str>) -> Vec<CompactString> {
        let mut out: Vec<CompactString> = Vec::new();
        let mut add = |address: &str| {
            if let Some(clients) = self.peers.get(address) {
                out.extend(
                    clients
                        .iter()
                        .filter(|c| Some(c.as_str()) != workload_key)
                        .cloned(),
                );
            }
        };
        if let Some(p) = peer {
            add(p);
        }
        if let Some(ip) = workload_key.and_then(|key| self.address_of(key)) {
            add(ip);
        }
        out.sort();
        out.dedup();
        out
    }

    /// The address a workload owns: a pod's IP or a service's cluster IP, while the address
    /// table still names it the owner (another pod may have taken the IP since).
    fn address_of(&self, workload_key: &str) -> Option<&str> {
        let ip = if let Some(uid) = workload_key.strip_prefix("pod/") {
            self.pods.get(uid)?.ip.as_deref()?
        } else if let Some(service) = workload_key.strip_prefix("service/") {
            self.services.get(service)?.cluster_ip.as_deref()?
        } else {
            return None;
        };
        (self.ip_owner.get(ip)? == workload_key).then_some(ip)
    }

    /// The services indexed by namespace and the first `k=v` pair of their selectors, to
    /// match pods against them with a lookup per label instead of a pass over every
    /// service per pod. Built on first use after the services table changed.
    pub fn service_selectors(&self) -> Ref<'_, SelectorIndex> {
        let version = (
            self.service_events,
            self.services.len(),
            self.services.evicted(),
        );
        let fresh = matches!(&*self.selectors.borrow(), Some((v, _)) if *v == version);
        if !fresh {
            *self.selectors.borrow_mut() = Some((version, self.build_selector_index()));
        }
        Ref::map(self.selectors.borrow(), |s| {
            &s.as_ref().expect("the index was just built").1
        })
    }

    fn build_selector_index(&self) -> SelectorIndex {
        let mut index = SelectorIndex::default();
        for (key, service) in self.services.iter() {
            let Some((ns, _)) = key.split_once('/') else {
                continue;
            };
            let Some(sel) = service.selector.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            let pairs: Vec<CompactString> = sel.split(',').map(|kv| kv.trim().into()).collect();
            let Some(first) = pairs.first().cloned() else {
                continue;
            };
            index
                .by_pair
                .entry((CompactString::new(ns), first))
                .or_default()
                .push((key.clone(), pairs));
        }
        index
    }

    /// The labels of a pod (`k=v,k=v`), when its object was seen.
    pub fn pod_labels(&self, pod_uid: &str) -> Option<CompactString> {
        self.pods.get(pod_uid)?.labels.clone()
    }

    /// The services whose selector matches the labels of `pod_uid`, through `index`
    /// ([`EntityGraph::service_selectors`], taken once for many pods).
    pub fn services_of_pod(&self, pod_uid: &str, index: &SelectorIndex) -> Vec<CompactString> {
        let Some(pod) = self.pods.get(pod_uid) else {
            return Vec::new();
        };
        let (Some(labels), Some(ns)) = (&pod.labels, &pod.namespace) else {
            return Vec::new();
        };
        let labels: Vec<&str> = labels.split(',').map(str::trim).collect();
        // A selector matches only if its first pair is one of the pod's labels.
        let mut out: Vec<CompactString> = labels
            .iter()
            .filter_map(|l| index.by_pair.get(&(ns.clone(), CompactString::new(l))))
            .flatten()
            .filter(|(_, pairs)| pairs.iter().all(|kv| labels.contains(&kv.as_str())))
            .map(|(key, _)| key.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
