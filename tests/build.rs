//! Turns the database URLs the tests are given into cfgs, so that the tests of a backend
//! without a URL are reported as ignored, with the reason, instead of silently passing;
//! and says whether the compiler is the one the compile-fail tests' `.stderr` files were
//! written with (`ui/RUSTC_VERSION`), whose messages they hold word for word.

fn main() {
    ui_toolchain();
    println!("cargo::rustc-check-cfg=cfg(goc_postgres)");
    println!("cargo::rustc-check-cfg=cfg(goc_mysql)");
    for (var, cfg) in [
        ("PG_DATABASE_URL", "goc_postgres"),
        ("MYSQL_DATABASE_URL", "goc_mysql"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|url| !url.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        } else {
            println!("cargo::warning={var} is not set: its backend's tests are ignored");
        }
    }
}

/// `goc_ui_toolchain` when `rustc --version` is of the minor version in
/// `ui/RUSTC_VERSION` (such as `1.95`): another compiler words its messages differently,
/// and the compile-fail test is then reported as ignored, with the reason.
fn ui_toolchain() {
    println!("cargo::rustc-check-cfg=cfg(goc_ui_toolchain)");
    println!("cargo::rerun-if-changed=ui/RUSTC_VERSION");
    let expected = std::fs::read_to_string("ui/RUSTC_VERSION").unwrap_or_default();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95"
    let minor: String = version
        .split_whitespace()
        .nth(1)
        .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
        .unwrap_or_default();
    if !minor.is_empty() && minor == expected.trim() {
        println!("cargo::rustc-cfg=goc_ui_toolchain");
    } else {
        println!(
            "cargo::warning=rustc {minor} is not the {} the compile-fail tests were written \
             with: they are ignored",
            expected.trim()
        );
    }
}
