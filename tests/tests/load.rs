//! `get_or_create` under load on each backend: many threads, each on its own connection,
//! race for the same keys, outside any transaction. Afterwards every key has exactly one
//! row, exactly one caller was told it created it, every caller got that row, and no call
//! failed.
//!
//! The light cases run with every `cargo test`. The heavy ones (16 threads x 1,000 keys)
//! are ignored by default; `.ci/run` runs them with
//! `cargo test -p get-or-create-tests --all-features --release --test load -- --ignored`.

use diesel::connection::SimpleConnection;
use get_or_create_core::GetOrCreate;
use get_or_create_tests::race::{self, Load, Order};
use get_or_create_tests::*;

for_each_backend!(shuffled, lockstep);

/// 8 threads x 200 keys, each thread in its own random order, three passes over new keys.
fn shuffled<D: TestDb>() {
    run::<D>(Load {
        threads: 8,
        keys: 200,
        passes: 3,
        order: Order::Shuffled,
    });
}

/// The worst case: 8 threads walk the same 200 keys in the same order, waiting for each
/// other before every key, so that each key is asked for by all of them at once.
fn lockstep<D: TestDb>() {
    run::<D>(Load {
        threads: 8,
        keys: 200,
        passes: 1,
        order: Order::Lockstep,
    });
}

fn run<D: TestDb>(load: Load) {
    let db = D::create();
    let report = race::run(
        &db,
        load,
        |conn| {
            // WAL's recommended setting: a commit no longer waits for an fsync. With the
            // default (FULL) each commit fsyncs while the other writers poll the lock,
            // and the lockstep case ran at ~100 calls/s instead of ~7,000: the same
            // races, but too slow to run at this size (the `stress` example measures
            // both).
            if D::NAME == SqliteDb::NAME {
                conn.batch_execute("PRAGMA synchronous = NORMAL")
                    .expect("synchronous");
            }
        },
        |conn, email| {
            let lookup = UserLookup {
                email: email.to_owned(),
            };
            let defaults = UserDefaults {
                name: "Racer".into(),
                karma: 1,
            };
            User::get_or_create(conn, lookup, defaults)
        },
    );
    eprintln!("{}", report.summary(D::NAME, &format!("{load:?}")));
    report.assert_exact(&db, load);
}

/// 16 threads x 1,000 keys: three shuffled passes, then one lockstep pass.
mod heavy {
    use super::*;

    const SHUFFLED: Load = Load {
        threads: 16,
        keys: 1000,
        passes: 3,
        order: Order::Shuffled,
    };
    const LOCKSTEP: Load = Load {
        threads: 16,
        keys: 1000,
        passes: 1,
        order: Order::Lockstep,
    };

    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn sqlite_shuffled() {
        run::<SqliteDb>(SHUFFLED);
    }

    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn sqlite_lockstep() {
        run::<SqliteDb>(LOCKSTEP);
    }

    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn postgres_shuffled() {
        run::<PgDb>(SHUFFLED);
    }

    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn postgres_lockstep() {
        run::<PgDb>(LOCKSTEP);
    }

    #[cfg(feature = "mysql")]
    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn mysql_shuffled() {
        run::<MysqlDb>(SHUFFLED);
    }

    #[cfg(feature = "mysql")]
    #[test]
    #[ignore = "heavy load: run with --ignored"]
    fn mysql_lockstep() {
        run::<MysqlDb>(LOCKSTEP);
    }
}
