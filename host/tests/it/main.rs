//! Integration tests of the host: a real `tapio-collector` process loading real plugin
//! libraries from a temporary plugins directory.

mod cli;
mod correlation;
mod correlation_fuzz;
mod correlation_live;
mod correlation_record;
mod correlation_recorded;
mod correlation_spans;
mod correlation_support;
mod correlation_unit;
mod export_grpc;
mod export_nats;
mod export_otlp;
mod export_support;
mod lifecycle;
mod load;
mod packaging;
mod refusals;
mod reload_churn;
mod support;
