//! An in-test kubelet: `/pods` and `/stats/summary` over HTTPS (token or client
//! certificate) or plain HTTP, with answers the test changes between polls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use parking_lot::Mutex;
use serde_json::Value;
use tapio_k8s_support::testing::{json_response, TestPki, TestServer};

/// How clients must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// HTTPS, `Authorization: Bearer <token>`.
    Token,
    /// HTTPS, a client certificate signed by the test CA.
    ClientCert,
    /// Plain HTTP, no authentication (the read-only port).
    PlainHttp,
}

struct State {
    pods: Value,
    summary: Value,
    token: String,
    requests: Vec<String>,
}

/// The in-test kubelet. Stops on drop.
pub struct FakeKubelet {
    state: Arc<Mutex<State>>,
    /// Certificates (CA, server, client).
    pub pki: TestPki,
    auth: Auth,
    addr: SocketAddr,
    server: Option<TestServer>,
}

impl FakeKubelet {
    /// Serves `pods` and `summary`.
    pub fn start(auth: Auth, pods: Value, summary: Value) -> FakeKubelet {
        let state = Arc::new(Mutex::new(State {
            pods,
            summary,
            token: format!("kubelet-token-{}", std::process::id()),
            requests: Vec::new(),
        }));
        let pki = TestPki::generate().unwrap();
        let server = Self::serve(None, auth, &pki, &state);
        FakeKubelet {
            addr: server.addr(),
            state,
            pki,
            auth,
            server: Some(server),
        }
    }

    fn serve(
        addr: Option<SocketAddr>,
        auth: Auth,
        pki: &TestPki,
        state: &Arc<Mutex<State>>,
    ) -> TestServer {
        let state = Arc::clone(state);
        let handler = move |req: Request<Incoming>| {
            let mut s = state.lock();
            s.requests.push(req.uri().path().to_owned());
            let authorized = auth != Auth::Token
                || req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some(format!("Bearer {}", s.token).as_str());
            let response = if !authorized {
                json_response(401, "Unauthorized")
            } else {
                match req.uri().path() {
                    "/pods" => json_response(200, s.pods.to_string()),
                    "/stats/summary" => json_response(200, s.summary.to_string()),
                    _ => json_response(404, "404 page not found"),
                }
            };
            async move { response }
        };
        let tls = match auth {
            Auth::Token => Some(pki.server_config(false)),
            Auth::ClientCert => Some(pki.server_config(true)),
            Auth::PlainHttp => None,
        };
        match addr {
            Some(a) => TestServer::start_on(a, tls, handler).unwrap(),
            None => TestServer::start(tls, handler).unwrap(),
        }
    }

    /// The base URL.
    pub fn endpoint(&self) -> String {
        let scheme = if self.auth == Auth::PlainHttp {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Writes the CA, token and client certificate files into `dir`; returns
    /// (ca, token, client cert, client key).
    pub fn write_credentials(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let files = [
            ("ca.crt", self.pki.ca_pem.clone()),
            ("token", format!("{}\n", self.state.lock().token)),
            ("client.crt", self.pki.client_cert_pem.clone()),
            ("client.key", self.pki.client_key_pem.clone()),
        ];
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let p = dir.join(name);
                std::fs::write(&p, text).unwrap();
                p
            })
            .collect();
        (
            paths[0].clone(),
            paths[1].clone(),
            paths[2].clone(),
            paths[3].clone(),
        )
    }

    /// Replaces the `/pods` answer.
    pub fn set_pods(&self, pods: Value) {
        self.state.lock().pods = pods;
    }

    /// Replaces the `/stats/summary` answer.
    pub fn set_summary(&self, summary: Value) {
        self.state.lock().summary = summary;
    }

    /// Requests served so far (paths).
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().requests.clone()
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// Serves again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.server = Some(Self::serve(
            Some(self.addr),
            self.auth,
            &self.pki,
            &self.state,
        ));
    }
}
