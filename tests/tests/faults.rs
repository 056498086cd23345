//! `get_or_create` when things go wrong around it: a race winner that rolls back, a row
//! deleted between a lost insert and the re-read, a connection killed while the call
//! waits on a lock, a statement or lock timeout. Each case checks the call's result or
//! error kind, that no partial row is left, and that the next call works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use get_or_create_core::{Error, GetOrCreate};
use get_or_create_tests::race::kind;
use get_or_create_tests::*;

for_each_backend!(
    winner_rolls_back_while_we_wait,
    winner_commits_while_we_wait,
    row_deleted_before_the_reread_once,
    row_deleted_before_every_reread,
);
/// The servers only: SQLite has no session to kill.
mod servers {
    use super::*;
    for_backends!([postgres mysql] killed_while_waiting_on_a_lock);
}

const RIVAL_INSERT: &str =
    "INSERT INTO users (email, name, karma) VALUES ('ann@example.com', 'Rival', 1)";
const RIVAL_DELETE: &str = "DELETE FROM users WHERE email = 'ann@example.com'";

fn ann() -> UserLookup {
    UserLookup {
        email: "ann@example.com".into(),
    }
}

fn ann_defaults() -> UserDefaults {
    UserDefaults {
        name: "Ann".into(),
        karma: 7,
    }
}

/// What a fault test needs to see and do to a server session.
trait Sessions: TestDb {
    /// The server's id of the connection's session (0 on SQLite, which has none).
    fn session_id(conn: &mut Self::Conn) -> i64;
    /// Whether session `id` is waiting for a row lock; `None` where the server cannot
    /// tell (SQLite).
    fn waits_for_lock(observer: &mut Self::Conn, id: i64) -> Option<bool>;
    /// Ends session `id` from another connection.
    fn kill(observer: &mut Self::Conn, id: i64);
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl Sessions for SqliteDb {
    fn session_id(_: &mut SqliteConnection) -> i64 {
        0
    }
    fn waits_for_lock(_: &mut SqliteConnection, _: i64) -> Option<bool> {
        None
    }
    fn kill(_: &mut SqliteConnection, _: i64) {
        unreachable!("SQLite has no sessions to kill")
    }
}

impl Sessions for PgDb {
    fn session_id(conn: &mut PgConnection) -> i64 {
        diesel::sql_query("SELECT pg_backend_pid()::bigint AS n")
            .get_result::<N>(conn)
            .unwrap()
            .n
    }
    fn waits_for_lock(observer: &mut PgConnection, id: i64) -> Option<bool> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE pid = {id} AND wait_event_type = 'Lock'"
        );
        Some(diesel::sql_query(sql).get_result::<N>(observer).unwrap().n == 1)
    }
    fn kill(observer: &mut PgConnection, id: i64) {
        observer
            .batch_execute(&format!("SELECT pg_terminate_backend({id})"))
            .unwrap();
    }
}

#[cfg(feature = "mysql")]
impl Sessions for MysqlDb {
    fn session_id(conn: &mut MysqlConnection) -> i64 {
        diesel::sql_query("SELECT CAST(CONNECTION_ID() AS SIGNED) AS n")
            .get_result::<N>(conn)
            .unwrap()
            .n
    }
    fn waits_for_lock(observer: &mut MysqlConnection, id: i64) -> Option<bool> {
        // Not INNODB_TRX: MariaDB refreshes that table only after 100 ms without a
        // reader, so two tests polling it at once both see a stale copy forever. An
        // INSERT of one row that has run for 300 ms is waiting for a lock.
        let sql = format!(
            "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
             WHERE ID = {id} AND INFO LIKE 'INSERT%' AND TIME_MS > 300"
        );
        Some(diesel::sql_query(sql).get_result::<N>(observer).unwrap().n == 1)
    }
    fn kill(observer: &mut MysqlConnection, id: i64) {
        observer.batch_execute(&format!("KILL {id}")).unwrap();
    }
}

/// A rival connection in an open transaction that has inserted ann@example.com and
/// neither committed nor rolled back: it holds the row's lock (SQLite: the write lock).
fn rival_holding_insert<D: TestDb>(db: &D) -> D::Conn {
    let mut rival = db.connect();
    rival.batch_execute("BEGIN").unwrap();
    rival.batch_execute(RIVAL_INSERT).unwrap();
    rival
}

/// Sets a flag when `conn` starts its first `INSERT`.
fn flag_first_insert(conn: &mut impl Connection) -> Arc<AtomicBool> {
    let inserting = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&inserting);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            if query.to_string().starts_with("INSERT") {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });
    inserting
}

/// Waits until the call on session `id` blocks on the rival's lock: the server says so,
/// or (SQLite) the call has started its insert and still has not finished 300 ms later.
fn wait_until_blocked<D: Sessions>(
    db: &D,
    id: i64,
    inserting: &AtomicBool,
    finished: impl Fn() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut observer = db.connect();
    loop {
        assert!(
            !finished(),
            "{}: the call finished instead of waiting for the rival",
            D::NAME
        );
        assert!(
            Instant::now() < deadline,
            "{}: the call never blocked",
            D::NAME
        );
        let blocked = match D::waits_for_lock(&mut observer, id) {
            Some(waits) => waits,
            None if inserting.load(Ordering::SeqCst) => {
                std::thread::sleep(Duration::from_millis(300));
                true
            }
            None => false,
        };
        if blocked {
            assert!(!finished(), "{}: the call did not wait", D::NAME);
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs our call on `conn` in another thread, waits until it blocks on the rival's
/// uncommitted insert, runs `then` (on the rival, or a kill), and returns the call's
/// result.
fn call_blocked_on_rival<D: Sessions>(
    db: &D,
    conn: &mut D::Conn,
    then: impl FnOnce(i64),
) -> Result<(User, bool), Error> {
    let id = D::session_id(conn);
    let inserting = flag_first_insert(conn);
    std::thread::scope(|scope| {
        let call = scope.spawn(|| User::get_or_create(conn, ann(), ann_defaults()));
        wait_until_blocked(db, id, &inserting, || call.is_finished());
        then(id);
        call.join().expect("the call panicked")
    })
}

/// (a) The race winner's insert is still uncommitted when we try ours, so ours waits for
/// it; then the winner rolls back. Our call must create the row itself and say so.
fn winner_rolls_back_while_we_wait<D: Sessions>() {
    let db = D::create();
    let mut rival = rival_holding_insert(&db);
    let mut conn = db.connect();
    let (row, created) = call_blocked_on_rival(&db, &mut conn, |_| {
        rival.batch_execute("ROLLBACK").unwrap();
    })
    .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
    assert!(
        created,
        "{}: the winner rolled back: we created it",
        D::NAME
    );
    assert_eq!((row.name.as_str(), row.karma), ("Ann", 7), "our defaults");
    assert_eq!(
        D::users(&mut db.connect()),
        [row],
        "exactly our row is stored"
    );
}

/// The same wait, but the winner commits: we get its row and `created == false`.
fn winner_commits_while_we_wait<D: Sessions>() {
    let db = D::create();
    let mut rival = rival_holding_insert(&db);
    let mut conn = db.connect();
    let (row, created) = call_blocked_on_rival(&db, &mut conn, |_| {
        rival.batch_execute("COMMIT").unwrap();
    })
    .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
    assert!(!created, "{}: the winner created it", D::NAME);
    assert_eq!(row.name, "Rival");
    assert_eq!(D::users(&mut db.connect()), [row]);
}

/// Before each of our first `times` inserts a rival creates the row (so our insert loses
/// the race), and just before our re-read of the winner's row it deletes it again.
/// Returns the first word of each statement we sent (index reads left out).
fn rival_creates_then_deletes<D: TestDb>(
    db: &D,
    conn: &mut D::Conn,
    times: usize,
) -> Arc<Mutex<Vec<String>>> {
    let mut rival = db.connect();
    let statements = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&statements);
    let mut left = times;
    let mut won = false;
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            // The key's index checks (MySQL's `information_schema`, PostgreSQL's table oid
            // and `EXPLAIN`) are left out.
            if sql.contains("information_schema")
                || sql.starts_with("EXPLAIN")
                || sql.contains("regclass")
            {
                return;
            }
            if sql.starts_with("INSERT") && left > 0 {
                rival.batch_execute(RIVAL_INSERT).unwrap();
                won = true;
            } else if sql.starts_with("SELECT") && won {
                rival.batch_execute(RIVAL_DELETE).unwrap();
                won = false;
                left -= 1;
            }
            let shape = if sql.contains("LOCK IN SHARE MODE") {
                "SELECT LOCK IN SHARE MODE"
            } else {
                sql.split_whitespace().next().unwrap_or_default()
            };
            sink.lock().unwrap().push(shape.to_owned());
        }
    });
    statements
}

fn reread(is_mysql: bool) -> &'static str {
    if is_mysql {
        "SELECT LOCK IN SHARE MODE"
    } else {
        "SELECT"
    }
}

/// (b) Once: the row we lost to is gone when we re-read it. The call starts over and
/// creates the row itself. (Staged between statements of the select-first flow, which
/// `get_or_create_with` takes on every backend.)
fn row_deleted_before_the_reread_once<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let statements = rival_creates_then_deletes(&db, &mut conn, 1);
    let (row, created) = User::get_or_create_with(&mut conn, ann(), ann_defaults)
        .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
    assert!(created, "{}: the second attempt created the row", D::NAME);
    assert_eq!(row.name, "Ann");
    assert_eq!(D::users(&mut db.connect()), [row]);

    let is_mysql = D::NAME == MYSQL_NAME;
    let mut expected = vec!["SELECT", "INSERT", reread(is_mysql), "SELECT", "INSERT"];
    if is_mysql {
        expected.push("SELECT"); // MySQL reads back the row it inserted
    }
    if D::NAME == PgDb::NAME {
        // PostgreSQL's insert names no conflict target: when the read after it finds no
        // row, the insert is sent again without `ON CONFLICT`, and creates the row.
        expected = vec!["SELECT", "INSERT", "SELECT", "INSERT"];
    }
    assert_eq!(*statements.lock().unwrap(), expected, "{}", D::NAME);
}

/// (b) Every time: the retries are bounded. After three attempts the call gives up with
/// `RetriesExhausted`, which says it lost every time and has no database error to show;
/// no row is left, and the next call works.
fn row_deleted_before_every_reread<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let statements = rival_creates_then_deletes(&db, &mut conn, usize::MAX);
    let error = User::get_or_create_with(&mut conn, ann(), ann_defaults).unwrap_err();
    assert!(
        matches!(
            error,
            Error::RetriesExhausted {
                attempts: 3,
                source: None,
                ..
            }
        ),
        "{}: {error:?}",
        D::NAME
    );
    let reread = reread(D::NAME == MYSQL_NAME);
    // PostgreSQL repeats its insert without `ON CONFLICT` after the empty read: it meets
    // the rival's row on the key's own index, so the attempt ends as the others do.
    let attempt = if D::NAME == PgDb::NAME {
        vec!["SELECT", "INSERT", "SELECT", "INSERT"]
    } else {
        vec!["SELECT", "INSERT", reread]
    };
    assert_eq!(
        *statements.lock().unwrap(),
        attempt.repeat(3),
        "{}: three attempts",
        D::NAME
    );
    assert_eq!(D::count(&mut conn, "users"), 0, "{}: no row left", D::NAME);

    let mut fresh = db.connect();
    let (_, created) = User::get_or_create(&mut fresh, ann(), ann_defaults()).unwrap();
    assert!(created);
}

/// (c) Our session is killed while our insert waits on the rival's lock: the call
/// returns a database error (no panic, no hang), it left no row, the dead connection
/// keeps returning errors, and a call on a new connection works.
fn killed_while_waiting_on_a_lock<D: Sessions>() {
    let db = D::create();
    let mut rival = rival_holding_insert(&db);
    let mut conn = db.connect();
    let error = call_blocked_on_rival(&db, &mut conn, |id| {
        D::kill(&mut db.connect(), id);
    })
    .unwrap_err();
    let Error::Database(DieselError::DatabaseError(kind, info)) = &error else {
        panic!("{}: expected a database error, got {error:?}", D::NAME);
    };
    let message = info.message();
    eprintln!("{}: a killed call returns {kind:?}: {message}", D::NAME);
    if D::NAME == PgDb::NAME {
        assert_eq!(*kind, DatabaseErrorKind::ClosedConnection, "{message}");
        assert!(
            message.contains("terminating connection due to administrator command"),
            "{}: {kind:?} {message}",
            D::NAME
        );
    } else {
        assert!(
            message.contains("Connection was killed") || message.contains("Lost connection"),
            "{}: {kind:?} {message}",
            D::NAME
        );
    }
    rival.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        D::count(&mut rival, "users"),
        0,
        "{}: no partial row",
        D::NAME
    );

    let again = User::get_or_create(&mut conn, ann(), ann_defaults());
    assert!(
        again.is_err(),
        "{}: the killed connection answered: {again:?}",
        D::NAME
    );

    let mut fresh = db.connect();
    let (row, created) = User::get_or_create(&mut fresh, ann(), ann_defaults()).unwrap();
    assert!(created);
    assert_eq!(D::users(&mut fresh), [row]);
}

/// (d) A timeout fires while our insert waits on the rival's uncommitted row. Returns the
/// error and how long the call took, after checking that no row was left behind and
/// that the same connection works once the rival is gone.
fn timed_out_call<D: TestDb>(
    set_timeout: &str,
    within: impl FnOnce(&mut D::Conn) -> Result<(User, bool), Error>,
) -> (Error, Duration) {
    let db = D::create();
    let mut rival = rival_holding_insert(&db);
    let mut conn = db.connect();
    conn.batch_execute(set_timeout).unwrap();
    let start = Instant::now();
    let error = within(&mut conn).unwrap_err();
    let took = start.elapsed();

    rival.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        D::count(&mut conn, "users"),
        0,
        "{}: no partial row",
        D::NAME
    );
    let (row, created) = User::get_or_create(&mut conn, ann(), ann_defaults())
        .unwrap_or_else(|e| panic!("{}: the next call failed: {e}", D::NAME));
    assert!(created);
    assert_eq!(D::users(&mut conn), [row]);
    (error, took)
}

fn plain_call<C: get_or_create_core::Connection<User>>(
    conn: &mut C,
) -> Result<(User, bool), Error> {
    User::get_or_create(conn, ann(), ann_defaults())
}

/// The database error inside `Error::Database`, as kind and message.
fn database_error(error: &Error) -> (DatabaseErrorKind, String) {
    match error {
        Error::Database(DieselError::DatabaseError(kind, info)) => {
            (*kind, info.message().to_owned())
        }
        other => panic!("expected Error::Database, got {other:?}"),
    }
}

mod timeouts {
    use super::*;

    /// PostgreSQL `statement_timeout`: the statement is cancelled (57014), reported as
    /// `Error::Database`; it is not a lost race, so it is not retried.
    #[test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    fn postgres_statement_timeout() {
        let (error, took) = timed_out_call::<PgDb>("SET statement_timeout = '200ms'", plain_call);
        let (_, message) = database_error(&error);
        assert!(
            message.contains("canceling statement due to statement timeout"),
            "{message}"
        );
        assert!(took < Duration::from_secs(2), "not retried: {took:?}");
    }

    #[test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    fn postgres_lock_timeout() {
        let (error, _) = timed_out_call::<PgDb>("SET lock_timeout = '200ms'", plain_call);
        let (_, message) = database_error(&error);
        assert!(
            message.contains("canceling statement due to lock timeout"),
            "{message}"
        );
    }

    /// MariaDB `innodb_lock_wait_timeout` (1205): only the statement is rolled back, the
    /// error is `Error::Database`, not retried.
    #[cfg(feature = "mysql")]
    #[test]
    #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
    fn mysql_lock_wait_timeout() {
        let (error, took) =
            timed_out_call::<MysqlDb>("SET SESSION innodb_lock_wait_timeout = 1", plain_call);
        let (_, message) = database_error(&error);
        assert!(message.contains("Lock wait timeout exceeded"), "{message}");
        assert!(took < Duration::from_secs(3), "not retried: {took:?}");
    }

    /// MariaDB `max_statement_time` (seconds) interrupts the waiting insert.
    #[cfg(feature = "mysql")]
    #[test]
    #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
    fn mysql_max_statement_time() {
        let (error, _) =
            timed_out_call::<MysqlDb>("SET SESSION max_statement_time = 0.2", plain_call);
        let (_, message) = database_error(&error);
        assert!(message.contains("max_statement_time exceeded"), "{message}");
    }

    /// SQLite with a short busy timeout while a rival holds the write lock. Outside a
    /// transaction "database is locked" counts as a lost conflict, so the library tries
    /// three times (three busy timeouts) and reports `RetriesExhausted` with SQLite's
    /// error as its source.
    #[test]
    fn sqlite_busy_timeout() {
        let (error, took) = timed_out_call::<SqliteDb>("PRAGMA busy_timeout = 100", plain_call);
        let Error::RetriesExhausted {
            attempts: 3,
            source: Some(source),
            ..
        } = &error
        else {
            panic!("expected RetriesExhausted with a source, got {error:?}");
        };
        assert_eq!(source.to_string(), "database is locked");
        assert!(
            took >= Duration::from_millis(300),
            "three busy timeouts: {took:?}"
        );
    }

    /// Inside a deferred transaction the same wait is `TransactionMustBeRetried`.
    #[test]
    fn sqlite_busy_timeout_in_a_transaction() {
        let (error, _) = timed_out_call::<SqliteDb>("PRAGMA busy_timeout = 100", |conn| {
            conn.transaction(plain_call)
        });
        assert!(
            matches!(error, Error::TransactionMustBeRetried { .. }),
            "{error:?}"
        );
    }

    /// In an immediate transaction it is `BEGIN IMMEDIATE` that times out, before the
    /// library runs: Diesel's own error, which `retry_transaction` also retries.
    #[test]
    fn sqlite_busy_timeout_in_an_immediate_transaction() {
        let (error, _) = timed_out_call::<SqliteDb>("PRAGMA busy_timeout = 100", |conn| {
            conn.immediate_transaction(plain_call)
        });
        let (_, message) = database_error(&error);
        assert_eq!(message, "database is locked", "{}", kind(&error));
        assert!(error.must_retry_transaction());
    }
}
