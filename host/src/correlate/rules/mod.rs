//! Correlation rules: the YAML model ([`model`]), loading and validation with file, line and
//! field on every error ([`loader`]), and the compiled form the matcher runs ([`compiled`]).
//!
//! Built-in rules live in `packaging/rules/*.yaml` and are embedded in the binary; user rules
//! come from `correlation.rules_dir` (a user rule with a built-in's id replaces it).

pub mod compiled;
pub mod loader;
pub mod model;

pub use compiled::{CompiledRule, GroupBy, RuleSet};
pub use loader::{load_builtin, load_dir, load_text, RuleError};
