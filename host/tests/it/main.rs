//! Integration tests of the host: a real `tapio-collector` process loading real plugin
//! libraries from a temporary plugins directory.

mod cli;
mod correlation;
mod correlation_live;
mod lifecycle;
mod load;
mod packaging;
mod refusals;
mod reload_churn;
mod support;
