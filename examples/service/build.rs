//! The HTTP test needs PostgreSQL: without `PG_DATABASE_URL` it is reported as ignored,
//! with the reason, instead of failing or silently passing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(goc_postgres)");
    println!("cargo::rerun-if-env-changed=PG_DATABASE_URL");
    if std::env::var_os("PG_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=goc_postgres");
    }
}
