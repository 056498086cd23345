//! Compile-fail tests of `#[derive(GetOrCreate)]`: each program in `ui/` must be refused
//! with the error in its `.stderr`, and each in `ui/pass/` must compile.
//!
//! After changing a message, regenerate with
//! `TRYBUILD=overwrite cargo test -p get-or-create-tests --test compile_fail` and read
//! every changed `.stderr`: it should name the problem and point at the offending token.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
