//! The tapio-collector host as a library: the binary in `main.rs` is a thin shell over it,
//! and benchmarks and tests drive the same code.

pub mod allocator;
pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod correlate;
pub mod docs;
pub mod event;
pub mod export;
pub mod pipeline;
pub mod plugin;
mod prefetch;
pub mod sink;
pub mod telemetry;
#[cfg(test)]
mod yaml_edits;
