//! Building the correlation stage from the config, and reloading its rules on SIGHUP (read
//! and validated on the caller's thread, handed to the pipeline thread through a channel).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use crate::config::correlation::Correlation;
use crate::config::{CorrelationMode, HostConfig};
use crate::correlate::engine::EngineLimits;
use crate::correlate::entity::EntityLimits;
use crate::correlate::resolver::{FsSource, Resolver};
use crate::correlate::rules::{self, loader, RuleError, RuleSet};
use crate::correlate::{CorrelationStage, Settings, Stats};

/// Loads the built-in rules (unless switched off) and the user rules of `c.rules_dir`.
pub fn load_rules(c: &Correlation) -> Result<RuleSet, RuleError> {
    let builtin = if c.builtin_rules {
        rules::load_builtin()?
    } else {
        Vec::new()
    };
    let user = match &c.rules_dir {
        Some(dir) => rules::load_dir(dir)?,
        None => Vec::new(),
    };
    Ok(RuleSet::new(loader::merge(builtin, user)))
}

/// The stage's settings from the config.
pub fn settings(c: &HostConfig) -> Settings {
    let l = &c.correlation.limits;
    Settings {
        mode: c.pipeline.correlation,
        trace_window: c.pipeline.trace_window,
        max_trace_entities: 100_000,
        entities: EntityLimits {
            max_processes: l.max_processes,
            max_workloads: l.max_workloads,
            max_peers: l.max_peers,
            ttl_ns: l.entity_ttl.as_nanos() as u64,
        },
        engine: EngineLimits {
            max_open_groups: l.max_open_groups,
            max_members: l.max_members,
            ..EngineLimits::default()
        },
        weights: c.correlation.business.weights(),
        attach_delay: c.correlation.otel_attach_delay,
        max_delayed: l.max_delayed,
    }
}

/// Sends reloaded rules to the running stage.
pub struct RuleReloader {
    tx: Sender<RuleSet>,
    stats: Arc<Stats>,
}

impl RuleReloader {
    /// Loads the rules `c` names; on success hands them to the stage, on error keeps the
    /// running rules and logs every problem.
    pub fn reload(&self, c: &Correlation) {
        match load_rules(c) {
            Ok(set) => {
                tracing::info!(rules = set.len(), rules_dir = ?c.rules_dir, "correlation rules reloaded");
                let _ = self.tx.send(set);
            }
            Err(e) => {
                self.stats
                    .rule_reload_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "correlation rules not reloaded; keeping the running rules");
            }
        }
    }
}

/// Builds the stage; the reloader is `None` in basic mode.
pub fn build(c: &HostConfig) -> Result<(CorrelationStage, Option<RuleReloader>), RuleError> {
    let semantic = c.pipeline.correlation == CorrelationMode::Semantic;
    let rules = if semantic {
        load_rules(&c.correlation)?
    } else {
        RuleSet::default()
    };
    let resolver = if c.correlation.proc_fallback {
        Resolver::spawn(FsSource::default(), 4096, 100_000).map_err(|source| RuleError::Io {
            path: "tapio-resolver thread".into(),
            source,
        })?
    } else {
        Resolver::disabled()
    };
    let stage = CorrelationStage::new(settings(c), rules, resolver, fastrand::Rng::new());
    if !semantic {
        return Ok((stage, None));
    }
    let (tx, rx) = mpsc::channel();
    let stats = stage.stats();
    Ok((
        stage.with_rule_updates(rx),
        Some(RuleReloader { tx, stats }),
    ))
}
