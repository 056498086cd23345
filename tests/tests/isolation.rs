//! Racing callers, each call in a transaction of its own, at every isolation level each
//! backend offers: PostgreSQL `READ COMMITTED`, `REPEATABLE READ`, `SERIALIZABLE`;
//! MariaDB `READ COMMITTED`, `REPEATABLE READ`, `SERIALIZABLE`; SQLite deferred,
//! immediate and exclusive transactions.
//!
//! Each level is raced twice:
//! - as is: every `get_or_create` returns the right row or
//!   `Error::TransactionMustBeRetried`, nothing else (no unique violation, no "not found",
//!   no row of another key), and the table agrees with the calls that committed;
//! - wrapped in `retry_transaction`: every call succeeds and the table is exact.
//!
//! `update_or_create` is raced the same way (shuffled keys), allowed to ask for retries at
//! every level.
//!
//! Each race runs once with shuffled keys (8 threads x 100 keys) and once in lockstep
//! (12 threads x 50 keys: every key has 11 losers at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use diesel::prelude::*;
use get_or_create_core::{retry_transaction, Error, GetOrCreate};
use get_or_create_tests::race::{self, Load, Order};
use get_or_create_tests::*;

const SHUFFLED: Load = Load {
    threads: 8,
    keys: 100,
    passes: 1,
    order: Order::Shuffled,
};

const LOCKSTEP: Load = Load {
    threads: 12,
    keys: 50,
    passes: 1,
    order: Order::Lockstep,
};

/// Runs the body of a call in a transaction of the level under test.
type Transaction<C> = fn(
    &mut C,
    &mut dyn FnMut(&mut C) -> Result<(User, bool), Error>,
) -> Result<(User, bool), Error>;

/// What the races of one level may see besides success.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// No error at all, even without retries.
    NoError,
    /// Some transactions must be retried.
    SomeRetries,
}

/// The call a race makes for a key.
type Op<C> = fn(&mut C, &str) -> Result<(User, bool), Error>;

fn get_or_create<C: get_or_create_core::Connection<User>>(
    conn: &mut C,
    email: &str,
) -> Result<(User, bool), Error> {
    let (lookup, defaults) = racer(email);
    User::get_or_create(conn, lookup, defaults)
}

fn update_or_create<C: get_or_create_core::Connection<User>>(
    conn: &mut C,
    email: &str,
) -> Result<(User, bool), Error> {
    let (lookup, defaults) = racer(email);
    User::update_or_create(conn, lookup, defaults)
}

fn racer(email: &str) -> (UserLookup, UserDefaults) {
    let lookup = UserLookup {
        email: email.to_owned(),
    };
    let defaults = UserDefaults {
        name: "Racer".into(),
        karma: 1,
    };
    (lookup, defaults)
}

/// Races `load` with every call in its own `transaction`, first as is, then under
/// `retry_transaction`, each on fresh tables.
fn race_level<D: TestDb>(
    level: &str,
    load: Load,
    expect: Expect,
    prepare: fn(&mut D::Conn),
    transaction: Transaction<D::Conn>,
    call: Op<D::Conn>,
) {
    // As is. The library's own error inside the transaction must be
    // TransactionMustBeRetried; the transaction as a whole may also fail at COMMIT with a
    // serialization failure (PostgreSQL SERIALIZABLE), which Diesel reports itself.
    let db = D::create();
    let other_errors = Mutex::new(Vec::new());
    let report = race::run(&db, load, prepare, |conn, email| {
        transaction(conn, &mut |conn| {
            let result = call(conn, email);
            match &result {
                Ok(_) | Err(Error::TransactionMustBeRetried { .. }) => {}
                Err(error) => other_errors.lock().unwrap().push(error.to_string()),
            }
            result
        })
    });
    eprintln!("{}", report.summary(D::NAME, &format!("{level} {load:?}")));
    let other_errors = other_errors.into_inner().unwrap();
    assert!(
        other_errors.is_empty(),
        "{} {level}: the call failed with something else than \
         TransactionMustBeRetried: {other_errors:#?}",
        D::NAME
    );
    report.assert_consistent(&db, |kind| {
        kind == "TransactionMustBeRetried" || kind.starts_with("Database(SerializationFailure")
    });
    if expect == Expect::NoError {
        assert_eq!(
            report.errors(),
            Default::default(),
            "{} {level}: no call may fail",
            D::NAME
        );
    }
    drop(db);

    // Retried: everything succeeds.
    let db = D::create();
    let attempts = AtomicUsize::new(0);
    let report = race::run(&db, load, prepare, |conn, email| {
        retry_transaction(50, || {
            attempts.fetch_add(1, Ordering::Relaxed);
            transaction(conn, &mut |conn| call(conn, email))
        })
    });
    eprintln!(
        "{} retried: {} transaction attempts",
        report.summary(D::NAME, &format!("{level} {load:?}")),
        attempts.load(Ordering::Relaxed)
    );
    report.assert_exact(&db, load);
}

fn race_both<D: TestDb>(
    level: &str,
    expect: Expect,
    prepare: fn(&mut D::Conn),
    transaction: Transaction<D::Conn>,
) {
    race_level::<D>(level, SHUFFLED, expect, prepare, transaction, get_or_create);
    race_level::<D>(level, LOCKSTEP, expect, prepare, transaction, get_or_create);
    // update_or_create: right row or TransactionMustBeRetried, and exact under retries.
    // Its UPDATE of a missing key takes a gap lock at MariaDB's REPEATABLE READ, so two
    // transactions that then insert can deadlock: retries are allowed at every level.
    race_level::<D>(
        level,
        SHUFFLED,
        Expect::SomeRetries,
        prepare,
        transaction,
        update_or_create,
    );
}

mod postgres {
    use super::*;

    /// At `READ COMMITTED` a loser's insert waits for the winner and does nothing, and
    /// its re-read sees the winner's row: no transaction has to be retried.
    #[test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    fn read_committed() {
        race_both::<PgDb>(
            "READ COMMITTED",
            Expect::NoError,
            |_| {},
            |conn, body| conn.build_transaction().read_committed().run(body),
        );
    }

    #[test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    fn repeatable_read() {
        race_both::<PgDb>(
            "REPEATABLE READ",
            Expect::SomeRetries,
            |_| {},
            |conn, body| conn.build_transaction().repeatable_read().run(body),
        );
    }

    #[test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    fn serializable() {
        race_both::<PgDb>(
            "SERIALIZABLE",
            Expect::SomeRetries,
            |_| {},
            |conn, body| conn.build_transaction().serializable().run(body),
        );
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use diesel::connection::SimpleConnection;

    fn level(conn: &mut MysqlConnection, level: &str) {
        conn.batch_execute(&format!("SET SESSION TRANSACTION ISOLATION LEVEL {level}"))
            .unwrap();
    }

    /// InnoDB's default. A loser's insert fails on the duplicate key (after waiting for
    /// the winner), and its shared-lock re-read sees the winner's row although its
    /// snapshot does not: no deadlock and no retry, even with 11 losers per key.
    #[test]
    #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
    fn repeatable_read() {
        race_both::<MysqlDb>(
            "REPEATABLE READ",
            Expect::NoError,
            |conn| level(conn, "REPEATABLE READ"),
            |conn, body| conn.transaction(body),
        );
    }

    #[test]
    #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
    fn read_committed() {
        race_both::<MysqlDb>(
            "READ COMMITTED",
            Expect::NoError,
            |conn| level(conn, "READ COMMITTED"),
            |conn, body| conn.transaction(body),
        );
    }

    /// `SERIALIZABLE` turns the first plain read into a shared next-key lock on the
    /// missing key's gap; two such transactions that then insert deadlock, and InnoDB
    /// rolls one back (1213). That must reach the caller as TransactionMustBeRetried.
    #[test]
    #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
    fn serializable() {
        race_both::<MysqlDb>(
            "SERIALIZABLE",
            Expect::SomeRetries,
            |conn| level(conn, "SERIALIZABLE"),
            |conn, body| conn.transaction(body),
        );
    }
}

mod sqlite {
    use super::*;

    /// A deferred transaction reads first; its upgrade to a writer fails at once when
    /// another connection has written since (a stale snapshot): must be retried.
    #[test]
    fn deferred() {
        race_both::<SqliteDb>(
            "deferred",
            Expect::SomeRetries,
            |_| {},
            |conn, body| conn.transaction(body),
        );
    }

    /// `BEGIN IMMEDIATE` takes the write lock first (waiting up to the busy timeout), so
    /// transactions simply queue: no error.
    #[test]
    fn immediate() {
        race_both::<SqliteDb>(
            "immediate",
            Expect::NoError,
            |_| {},
            |conn, body| conn.immediate_transaction(body),
        );
    }

    #[test]
    fn exclusive() {
        race_both::<SqliteDb>(
            "exclusive",
            Expect::NoError,
            |_| {},
            |conn, body| conn.exclusive_transaction(body),
        );
    }
}
