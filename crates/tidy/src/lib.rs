//! Tidy: the rules of this workspace that no compiler checks, kept as a test.
//!
//! This crate exists for its test, `tests/tidy.rs`, which `cargo test` (or
//! `cargo test -p groundwork-tidy`) runs over the whole workspace: every file says what it is
//! for, crates depend only downwards along the layering in ARCHITECTURE.md, error codes live in
//! one table, long files say why they are one unit, modules inside a crate do not import each
//! other in a circle, and ARCHITECTURE.md's code map and error table match the code. The
//! library itself is empty.
