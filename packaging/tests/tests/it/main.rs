//! Tests of what ships. Each starts real tools (dpkg, cargo-deb, systemd-analyze, hadolint,
//! kubernetes-validate, cargo) and fails with what it needs when one is missing and
//! `TAPIO_REQUIRE_ALL_TESTS` is set.

mod api;
mod container;
mod deb;
mod docs;
mod kubernetes;
mod support;
mod template;
