//! Compile-fail tests of `#[derive(GetOrCreate)]`: each program in `ui/` must be refused
//! with the error in its `.stderr`, and each in `ui/pass/` must compile.
//!
//! After changing a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p get-or-create-tests --test compile_fail` and read
//! every changed `.stderr`: it should name the problem and point at the offending token.
//!
//! The `.stderr` files hold rustc's messages word for word, which change between compiler
//! versions: the test runs only on the minor version in `ui/RUSTC_VERSION` (see
//! `build.rs`) and is reported as ignored, with the reason, on any other. Moving to a new
//! compiler: regenerate, read the changes, and update that file.

#[test]
#[cfg_attr(
    not(goc_ui_toolchain),
    ignore = "not the rustc of ui/RUSTC_VERSION, whose messages the .stderr files hold"
)]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
