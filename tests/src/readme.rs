//! The README's code, compiled by `cargo test`: each of its `rust` code blocks is a doctest
//! of this module (the SQLite ones run; those that need a server are `no_run`), so the
//! README cannot drift from the API. Its other blocks are marked `sh`, `toml` or `sql`.
#![doc = include_str!("../../README.md")]
