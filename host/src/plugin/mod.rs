//! Plugins: checking and loading `.so` files, running instances on their own threads, the
//! sink and host services they receive, and the manager that keeps `plugins.d` and the
//! running set in step.

pub mod actor;
pub mod host_services;
pub mod library;
pub mod manager;
pub mod security;
pub mod sink;
pub mod stats;
pub mod supervisor;
