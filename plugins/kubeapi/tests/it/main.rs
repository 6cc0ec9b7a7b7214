//! Integration tests of the Kubernetes API collector against an in-test API server that
//! speaks the real wire format (no kube-apiserver can run here). Nothing is skipped: the
//! server is part of the test.

mod apiserver;
mod fixtures;
mod watches;
