//! An in-test Kubernetes API server speaking the real wire format over HTTPS with bearer
//! token auth: typed lists with `metadata.resourceVersion` (items without kind/apiVersion,
//! as the API server sends them), watch streams of newline-delimited
//! `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`, resume from a
//! resourceVersion by replaying later changes, and `410 Gone` (an ERROR event with an
//! `Expired` Status) for a watch from before the last compaction. Field selectors
//! `metadata.namespace!=X` and `spec.nodeName=Y` are applied like the real server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tapio_k8s_support::testing::{channel_body, json_response, Body, TestPki, TestServer};
use tokio::sync::mpsc::UnboundedSender;

/// Where each resource lives: (resource, group-version path, list kind, apiVersion, kind).
const RESOURCES: &[(&str, &str, &str, &str, &str)] = &[
    ("pods", "/api/v1", "PodList", "v1", "Pod"),
    ("events", "/api/v1", "EventList", "v1", "Event"),
    ("services", "/api/v1", "ServiceList", "v1", "Service"),
    ("nodes", "/api/v1", "NodeList", "v1", "Node"),
    (
        "deployments",
        "/apis/apps/v1",
        "DeploymentList",
        "apps/v1",
        "Deployment",
    ),
    (
        "replicasets",
        "/apis/apps/v1",
        "ReplicaSetList",
        "apps/v1",
        "ReplicaSet",
    ),
    (
        "statefulsets",
        "/apis/apps/v1",
        "StatefulSetList",
        "apps/v1",
        "StatefulSet",
    ),
    (
        "daemonsets",
        "/apis/apps/v1",
        "DaemonSetList",
        "apps/v1",
        "DaemonSet",
    ),
];

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Resource (`pods`).
    pub resource: String,
    /// A watch (else a list).
    pub watch: bool,
    /// The `resourceVersion` parameter.
    pub resource_version: Option<String>,
    /// The `fieldSelector` parameter.
    pub field_selector: Option<String>,
    /// The HTTP status sent.
    pub status: u16,
}

struct Change {
    rv: u64,
    resource: String,
    kind: &'static str,
    object: Value,
}

struct WatchSub {
    resource: String,
    namespace: Option<String>,
    selector: Selector,
    tx: UnboundedSender<Bytes>,
}

#[derive(Default)]
struct Store {
    rv: u64,
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Change>,
    compacted: u64,
    watches: Vec<WatchSub>,
    seen: Vec<Seen>,
    gone_as_http_status: bool,
}

/// Field selector terms the server understands.
#[derive(Debug, Clone, Default)]
struct Selector {
    not_namespaces: Vec<String>,
    node_name: Option<String>,
}

impl Selector {
    fn parse(text: Option<&str>) -> Selector {
        let mut s = Selector::default();
        for term in text
            .unwrap_or_default()
            .split(',')
            .filter(|t| !t.is_empty())
        {
            if let Some(ns) = term.strip_prefix("metadata.namespace!=") {
                s.not_namespaces.push(ns.to_owned());
            } else if let Some(node) = term.strip_prefix("spec.nodeName=") {
                s.node_name = Some(node.to_owned());
            } else {
                panic!("field selector term the test server does not implement: {term}");
            }
        }
        s
    }

    fn matches(&self, obj: &Value) -> bool {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        if self.not_namespaces.iter().any(|n| n == ns) {
            return false;
        }
        match &self.node_name {
            Some(node) => obj["spec"]["nodeName"].as_str() == Some(node.as_str()),
            None => true,
        }
    }
}

fn resource_info(
    resource: &str,
) -> &'static (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
) {
    RESOURCES
        .iter()
        .find(|r| r.0 == resource)
        .expect("known resource")
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// The server: state survives [`stop`](ApiServer::stop) / [`restart`](ApiServer::restart).
pub struct ApiServer {
    store: Arc<Mutex<Store>>,
    pki: TestPki,
    token: String,
    addr: SocketAddr,
    server: Option<TestServer>,
}

impl ApiServer {
    /// Starts a server on a free port.
    pub fn start() -> ApiServer {
        let pki = TestPki::generate().unwrap();
        let token = format!("tapio-test-token-{}", std::process::id());
        let store = Arc::new(Mutex::new(Store::default()));
        let server = Self::serve(None, &pki, &store, &token);
        ApiServer {
            store,
            addr: server.addr(),
            pki,
            token,
            server: Some(server),
        }
    }

    fn serve(
        addr: Option<SocketAddr>,
        pki: &TestPki,
        store: &Arc<Mutex<Store>>,
        token: &str,
    ) -> TestServer {
        let store = Arc::clone(store);
        let expected = format!("Bearer {token}");
        let handler = move |req: Request<Incoming>| {
            let response = handle(&store, &expected, &req);
            async move { response }
        };
        let tls = Some(pki.server_config(false));
        match addr {
            Some(a) => TestServer::start_on(a, tls, handler).unwrap(),
            None => TestServer::start(tls, handler).unwrap(),
        }
    }

    /// Stops serving (connections drop, the port refuses).
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        self.store.lock().watches.clear();
    }

    /// Serves again on the same port with the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.server = Some(Self::serve(
            Some(self.addr),
            &self.pki,
            &self.store,
            &self.token,
        ));
    }

    /// Writes a kubeconfig for this server into `dir`; `token` overrides the right token.
    pub fn write_kubeconfig(&self, dir: &Path, token: Option<&str>) -> PathBuf {
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, &self.pki.ca_pem).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://{}\n    certificate-authority: {}\nusers:\n- name: tester\n  user:\n    token: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: tester\ncurrent-context: test\n",
                self.addr,
                ca.display(),
                token.unwrap_or(&self.token)
            ),
        )
        .unwrap();
        path
    }

    fn key(resource: &str, obj: &Value) -> (String, String, String) {
        (
            resource.to_owned(),
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            obj["metadata"]["name"].as_str().unwrap().to_owned(),
        )
    }

    fn record(
        store: &mut Store,
        resource: &str,
        kind: &'static str,
        object: Value,
        broadcast: bool,
    ) {
        let rv = store.rv;
        if broadcast {
            store.watches.retain(|w| {
                let ns_ok = w
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| object["metadata"]["namespace"] == ns);
                if w.resource != resource || !ns_ok || !w.selector.matches(&object) {
                    return true;
                }
                w.tx.send(line(kind, &object)).is_ok()
            });
        }
        store.history.push(Change {
            rv,
            resource: resource.to_owned(),
            kind,
            object,
        });
    }

    fn put(&self, resource: &str, mut obj: Value, broadcast: bool) {
        let info = resource_info(resource);
        let mut store = self.store.lock();
        store.rv += 1;
        obj["apiVersion"] = json!(info.3);
        obj["kind"] = json!(info.4);
        obj["metadata"]["resourceVersion"] = json!(store.rv.to_string());
        let key = Self::key(resource, &obj);
        let kind = if store.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        store.objects.insert(key, obj.clone());
        Self::record(&mut store, resource, kind, obj, broadcast);
    }

    /// Creates or updates an object; open watches receive ADDED or MODIFIED.
    pub fn apply(&self, resource: &str, obj: Value) {
        self.put(resource, obj, true);
    }

    /// Changes an object without telling open watches (the change is in the history, as
    /// if the watch had been lost before it).
    pub fn apply_unseen(&self, resource: &str, obj: Value) {
        self.put(resource, obj, false);
    }

    fn remove(&self, resource: &str, namespace: &str, name: &str, broadcast: bool) {
        let mut store = self.store.lock();
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        let mut obj = store.objects.remove(&key).expect("object exists");
        store.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(store.rv.to_string());
        Self::record(&mut store, resource, "DELETED", obj, broadcast);
    }

    /// Deletes an object; open watches receive DELETED.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.remove(resource, namespace, name, true);
    }

    /// Deletes an object without telling open watches.
    pub fn delete_unseen(&self, resource: &str, namespace: &str, name: &str) {
        self.remove(resource, namespace, name, false);
    }

    /// Moves the resourceVersion forward (writes to other kinds) and sends every open watch
    /// a BOOKMARK at it; returns it.
    pub fn bookmark(&self, advance: u64) -> u64 {
        let mut store = self.store.lock();
        store.rv += advance;
        let rv = store.rv;
        store.watches.retain(|w| {
            let info = resource_info(&w.resource);
            let object = json!({"kind": info.4, "apiVersion": info.3, "metadata": {"resourceVersion": rv.to_string()}});
            w.tx.send(line("BOOKMARK", &object)).is_ok()
        });
        rv
    }

    /// Ends every open watch stream (as a server-side watch timeout does).
    pub fn close_watches(&self) {
        self.store.lock().watches.clear();
    }

    /// Compacts the history: a watch from an older resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        let mut store = self.store.lock();
        store.compacted = store.rv;
        let compacted = store.compacted;
        store.history.retain(|c| c.rv > compacted);
    }

    /// Answers a stale watch with HTTP status 410 instead of an ERROR event in a 200 stream
    /// (what some servers and proxies do).
    pub fn gone_as_http_status(&self) {
        self.store.lock().gone_as_http_status = true;
    }

    /// The requests answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.store.lock().seen.clone()
    }

    /// Open watch streams.
    pub fn open_watches(&self) -> usize {
        self.store.lock().watches.len()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Splits `/api/v1[/namespaces/NS]/RESOURCE` (or `/apis/apps/v1/...`).
fn route(path: &str) -> Option<(&'static str, Option<String>)> {
    for info in RESOURCES {
        let Some(rest) = path.strip_prefix(info.1) else {
            continue;
        };
        if rest == format!("/{}", info.0) {
            return Some((info.0, None));
        }
        if let Some(ns_rest) = rest.strip_prefix("/namespaces/") {
            if let Some((ns, res)) = ns_rest.split_once('/') {
                if res == info.0 {
                    return Some((info.0, Some(ns.to_owned())));
                }
            }
        }
    }
    None
}

fn handle(
    store: &Arc<Mutex<Store>>,
    expected_auth: &str,
    req: &Request<Incoming>,
) -> Response<Body> {
    let query: BTreeMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let Some((resource, namespace)) = route(req.uri().path()) else {
        let body = status_json(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        return json_response(404, body.to_string());
    };
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let rv_param = query.get("resourceVersion").cloned();
    let selector_text = query.get("fieldSelector").cloned();
    let mut store = store.lock();
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected_auth);
    let mut seen = Seen {
        resource: resource.to_owned(),
        watch,
        resource_version: rv_param.clone(),
        field_selector: selector_text.clone(),
        status: 200,
    };
    if !authorized {
        seen.status = 401;
        store.seen.push(seen);
        return json_response(
            401,
            status_json(401, "Unauthorized", "Unauthorized").to_string(),
        );
    }
    store.seen.push(seen);
    let selector = Selector::parse(selector_text.as_deref());
    let in_scope = |obj: &Value| {
        namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"] == ns)
            && selector.matches(obj)
    };
    let info = resource_info(resource);
    if !watch {
        let items: Vec<Value> = store
            .objects
            .iter()
            .filter(|((r, _, _), o)| r == resource && in_scope(o))
            .map(|(_, o)| {
                // List items carry no kind / apiVersion on the wire.
                let mut item = o.clone();
                let map = item.as_object_mut().unwrap();
                map.remove("kind");
                map.remove("apiVersion");
                item
            })
            .collect();
        let list = json!({"kind": info.2, "apiVersion": info.3,
                          "metadata": {"resourceVersion": store.rv.to_string()}, "items": items});
        return json_response(200, list.to_string());
    }
    let from: u64 = rv_param.as_deref().unwrap_or("0").parse().unwrap_or(0);
    if from != 0 && from < store.compacted && store.gone_as_http_status {
        let message = format!("too old resource version: {from} ({})", store.compacted);
        if let Some(last) = store.seen.last_mut() {
            last.status = 410;
        }
        return json_response(410, status_json(410, "Expired", &message).to_string());
    }
    let (tx, body) = channel_body();
    if from != 0 && from < store.compacted {
        let message = format!("too old resource version: {from} ({})", store.compacted);
        let _ = tx.send(line("ERROR", &status_json(410, "Expired", &message)));
        drop(tx);
    } else {
        for c in store
            .history
            .iter()
            .filter(|c| c.rv > from && c.resource == resource && in_scope(&c.object))
        {
            let _ = tx.send(line(c.kind, &c.object));
        }
        store.watches.push(WatchSub {
            resource: resource.to_owned(),
            namespace,
            selector,
            tx,
        });
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}
