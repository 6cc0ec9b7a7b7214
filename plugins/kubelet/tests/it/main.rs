//! Integration tests of the kubelet collector against an in-test kubelet serving the
//! kubelet's real JSON over HTTPS (no kubelet can run here). Nothing is skipped.

mod fixtures;
mod kubelet;
mod polls;
