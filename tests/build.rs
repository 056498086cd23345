//! Turns the database URLs the tests are given into cfgs, so that the tests of a backend
//! without a URL are reported as ignored, with the reason, instead of silently passing.

fn main() {
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
