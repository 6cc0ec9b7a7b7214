//! Correlation: the entity graph and semantic groups, as one pipeline stage.
pub mod cgroup_path;
pub mod entity;
pub mod lru;
pub mod rules;
pub mod vocab;
