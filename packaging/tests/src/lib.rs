//! Nothing to build: the tests in `tests/it/` check what ships (see the package description
//! and `packaging/README.md`).
