//! journald collector (in progress).
