//! Nothing here: the examples are in `examples/*.rs` beside this file.
