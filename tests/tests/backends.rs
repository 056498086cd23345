//! `get_or_create` on each backend: every case runs on SQLite, PostgreSQL and MariaDB, each
//! time in a database of its own.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use get_or_create_core::{retry_transaction, Error, GetOrCreate};
use get_or_create_tests::*;
use rand::seq::SliceRandom;

for_each_backend!(
    miss_then_hit,
    defaults_are_not_written_on_a_hit,
    lazy_defaults_run_only_on_a_miss,
    composite_lookup,
    null_lookup,
    statements_per_path,
    statements_are_prepared_once,
    lost_race,
    inside_a_transaction,
    lost_race_in_a_snapshot_transaction,
    another_unique_constraint,
    lookup_without_unique_index,
    several_rows_match,
    pooled_connection,
    race,
    race_in_retried_transactions,
);

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

/// Whether the backend is MySQL/MariaDB, whose statement counts differ.
fn is_mysql<D: TestDb>() -> bool {
    D::NAME == MYSQL_NAME
}

fn miss_then_hit<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();

    let (created, was_created) = User::get_or_create(&mut conn, ann(), ann_defaults()).unwrap();
    assert!(was_created);
    assert_eq!(created.email, "ann@example.com");
    assert_eq!((created.name.as_str(), created.karma), ("Ann", 7));
    assert_eq!(
        D::users(&mut conn),
        std::slice::from_ref(&created),
        "the row returned is the row stored"
    );

    for _ in 0..3 {
        let (found, was_created) = User::get_or_create(&mut conn, ann(), ann_defaults()).unwrap();
        assert!(!was_created);
        assert_eq!(found, created);
    }
    assert_eq!(D::count(&mut conn, "users"), 1);
}

fn defaults_are_not_written_on_a_hit<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let (first, _) = User::get_or_create(&mut conn, ann(), ann_defaults()).unwrap();

    let other = UserDefaults {
        name: "Someone else".into(),
        karma: -1,
    };
    let (found, was_created) = User::get_or_create(&mut conn, ann(), other).unwrap();
    assert!(!was_created);
    assert_eq!(found, first);
    assert_eq!(D::users(&mut conn), [first]);
}

fn lazy_defaults_run_only_on_a_miss<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let mut calls = 0;
    let (created, was_created) = User::get_or_create_with(&mut conn, ann(), || {
        calls += 1;
        ann_defaults()
    })
    .unwrap();
    assert!(was_created);
    assert_eq!(calls, 1);

    let (found, was_created) = User::get_or_create_with(&mut conn, ann(), || {
        calls += 1;
        ann_defaults()
    })
    .unwrap();
    assert!(!was_created);
    assert_eq!(found, created);
    assert_eq!(calls, 1, "the defaults closure ran on a hit");
}

fn composite_lookup<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let key = |org: &str, member: &str| MembershipLookup {
        org: org.into(),
        member: member.into(),
    };
    let role = || MembershipDefaults {
        role: "member".into(),
    };

    let mut ids = Vec::new();
    for (org, member) in [("a", "x"), ("a", "y"), ("b", "x")] {
        let (row, was_created) =
            Membership::get_or_create(&mut conn, key(org, member), role()).unwrap();
        assert!(
            was_created,
            "({org}, {member}) shares only one column with an existing row"
        );
        assert_eq!((row.org.as_str(), row.member.as_str()), (org, member));
        ids.push(row.id);
    }
    for ((org, member), id) in [("a", "x"), ("a", "y"), ("b", "x")].into_iter().zip(ids) {
        let (row, was_created) =
            Membership::get_or_create(&mut conn, key(org, member), role()).unwrap();
        assert!(!was_created);
        assert_eq!(row.id, id);
    }
    assert_eq!(D::count(&mut conn, "memberships"), 3);
}

fn null_lookup<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let color = |c: &str| TagDefaults { color: c.into() };

    let (untitled, was_created) =
        Tag::get_or_create(&mut conn, TagLookup { name: None }, color("red")).unwrap();
    assert!(was_created);
    assert_eq!(untitled.name, None);

    let (again, was_created) =
        Tag::get_or_create(&mut conn, TagLookup { name: None }, color("blue")).unwrap();
    assert!(
        !was_created,
        "a NULL lookup must match the NULL row (IS NULL, not = NULL)"
    );
    assert_eq!(again, untitled);

    let named = TagLookup {
        name: Some("rust".into()),
    };
    let (rust, was_created) = Tag::get_or_create(&mut conn, named, color("orange")).unwrap();
    assert!(was_created);
    assert_ne!(rust.id, untitled.id);
    let named = TagLookup {
        name: Some("rust".into()),
    };
    let (again, was_created) = Tag::get_or_create(&mut conn, named, color("green")).unwrap();
    assert!(!was_created);
    assert_eq!(again, rust);
    assert_eq!(D::count(&mut conn, "tags"), 2);
}

/// Round trips per path, counted with Diesel's instrumentation, for defaults given up
/// front and for lazy ones. None of them may be a transaction or savepoint statement.
fn statements_per_path<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    warm_up(&mut conn);
    let log = StatementLog::install(&mut conn);

    User::get_or_create(&mut conn, ann(), ann_defaults()).unwrap();
    let eager_miss = log.take();
    User::get_or_create(&mut conn, ann(), ann_defaults()).unwrap();
    let eager_hit = log.take();
    let bob = || UserLookup {
        email: "bob@example.com".into(),
    };
    User::get_or_create_with(&mut conn, bob(), ann_defaults).unwrap();
    let lazy_miss = log.take();
    User::get_or_create_with(&mut conn, bob(), ann_defaults).unwrap();
    let lazy_hit = log.take();

    // A hit is one SELECT everywhere; a miss adds the insert (and on MySQL/MariaDB a read
    // back, which has no RETURNING).
    let (eager, lazy_miss_count) = match D::NAME {
        MYSQL_NAME => ((1, 3), 3),
        _ => ((1, 2), 2),
    };
    let count = |statements: &[String]| statements.len();
    assert_eq!(
        (count(&eager_hit), count(&eager_miss)),
        eager,
        "{}: statements of get_or_create (hit, miss): {eager_hit:#?} {eager_miss:#?}",
        D::NAME
    );
    assert_eq!(
        (count(&lazy_hit), count(&lazy_miss)),
        (1, lazy_miss_count),
        "{}: statements of get_or_create_with (hit, miss): {lazy_hit:#?} {lazy_miss:#?}",
        D::NAME
    );
    assert!(lazy_hit[0].starts_with("SELECT"), "{lazy_hit:#?}");
    assert!(
        lazy_miss[0].starts_with("SELECT") && lazy_miss[1].starts_with("INSERT"),
        "{lazy_miss:#?}"
    );
    for statement in [eager_hit, eager_miss, lazy_hit, lazy_miss].concat() {
        let upper = statement.to_uppercase();
        assert!(
            ![
                "BEGIN",
                "SAVEPOINT",
                "COMMIT",
                "ROLLBACK",
                "START TRANSACTION"
            ]
            .iter()
            .any(|word| upper.starts_with(word)),
            "the library must not open transactions: {statement}"
        );
    }
}

/// A first miss on another key. PostgreSQL and MySQL check the key's unique index before
/// the first insert of a model in each table; tests that count statements do that
/// outside the count.
fn warm_up<C: get_or_create_core::Connection<User>>(conn: &mut C) {
    let lookup = UserLookup {
        email: "warm@up".into(),
    };
    User::get_or_create(conn, lookup, ann_defaults()).unwrap();
}

/// Makes `conn` lose the race for `email` in the statement that starts with `prefix`
/// (the one that inserts): just before it, a rival connection inserts the row (named
/// "Rival") in a transaction that it commits while our statement waits for it. So the
/// rival's row is committed after our statement's snapshot was taken, the hardest case.
fn rival_creates_during_our_insert<D: TestDb>(
    db: &D,
    conn: &mut D::Conn,
    email: &str,
    prefix: &'static str,
) -> (StatementLog, Rival) {
    let mut rival = db.connect();
    let insert = format!("INSERT INTO users (email, name, karma) VALUES ('{email}', 'Rival', 1)");
    let handle = Rival::default();
    let rival_thread = handle.clone();
    let log = before_first(conn, prefix, move || {
        let (inserted, wait_for_insert) = std::sync::mpsc::channel();
        *rival_thread.0.lock().unwrap() = Some(std::thread::spawn(move || {
            rival.batch_execute("BEGIN").expect("the rival's BEGIN");
            rival.batch_execute(&insert).expect("the rival's insert");
            inserted.send(()).expect("the test waits");
            // Long enough for our statement to start and block on the rival's row.
            std::thread::sleep(std::time::Duration::from_millis(300));
            rival.batch_execute("COMMIT").expect("the rival's COMMIT");
        }));
        wait_for_insert.recv().expect("the rival inserted");
    });
    (log, handle)
}

/// The rival of [`rival_creates_during_our_insert`], once it has started.
#[derive(Clone, Default)]
struct Rival(Arc<Mutex<Option<std::thread::JoinHandle<()>>>>);

impl Rival {
    /// Waits until the rival has committed.
    fn committed(&self) {
        let thread = self
            .0
            .lock()
            .unwrap()
            .take()
            .expect("the rival never started");
        thread.join().expect("the rival failed");
    }
}

/// The statement that inserts, on every backend and path.
const INSERTING_STATEMENT: &str = "INSERT";

/// Every statement is prepared once per connection and then reused from Diesel's cache
/// (Diesel itself never caches an `INSERT`), including statements whose SQL depends on a
/// `NULL` in the lookup.
fn statements_are_prepared_once<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let prepared = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&prepared);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            sink.lock().unwrap().push(sql.to_owned());
        }
    });
    let calls = |conn: &mut D::Conn, round: &str| {
        let lookup = UserLookup {
            email: format!("{round}@example.com"),
        };
        User::get_or_create(conn, lookup, ann_defaults()).unwrap(); // miss
        let lookup = UserLookup {
            email: format!("{round}@example.com"),
        };
        User::get_or_create(conn, lookup, ann_defaults()).unwrap(); // hit
        for name in [None, Some(round.to_owned())] {
            let color = || TagDefaults {
                color: "red".into(),
            };
            Tag::get_or_create(conn, TagLookup { name: name.clone() }, color()).unwrap();
            Tag::get_or_create(conn, TagLookup { name }, color()).unwrap();
        }
    };
    calls(&mut conn, "first");
    let first_round = std::mem::take(&mut *prepared.lock().unwrap());
    assert!(
        !first_round.is_empty(),
        "{}: the first calls prepare their statements",
        D::NAME
    );
    calls(&mut conn, "second");
    let second_round = prepared.lock().unwrap().clone();
    assert!(
        second_round.is_empty(),
        "{}: prepared again: {second_round:#?}",
        D::NAME
    );
}

/// Another connection creates the row while we insert it, with defaults given up front
/// and with lazy ones.
fn lost_race<D: TestDb>() {
    for eager in [true, false] {
        let db = D::create();
        let mut conn = db.connect();
        warm_up(&mut conn);

        let prefix = INSERTING_STATEMENT;
        let (log, _) = rival_creates_during_our_insert(&db, &mut conn, "ann@example.com", prefix);
        let (row, was_created) = if eager {
            User::get_or_create(&mut conn, ann(), ann_defaults())
        } else {
            User::get_or_create_with(&mut conn, ann(), ann_defaults)
        }
        .unwrap();
        let statements = log.take();

        assert!(
            !was_created,
            "{} (eager: {eager}): the rival created the row",
            D::NAME
        );
        assert_eq!(
            (row.name.as_str(), row.karma),
            ("Rival", 1),
            "we return the rival's row"
        );
        // The read, the insert that meets the rival's row, a read that sees it.
        let expected = 3;
        assert_eq!(
            statements.len(),
            expected,
            "{} (eager: {eager}): statements of a lost race: {statements:#?}",
            D::NAME
        );
        assert_eq!(D::count(&mut conn, "users"), 2);
    }
}

/// The library runs inside the caller's transaction without savepoints, and leaves it
/// usable: on PostgreSQL a failed statement would abort it.
fn inside_a_transaction<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    warm_up(&mut conn);
    let log = StatementLog::install(&mut conn);
    let ids = conn
        .transaction::<_, Error, _>(|conn| {
            let (created, was_created) = User::get_or_create(conn, ann(), ann_defaults())?;
            assert!(was_created);
            let (found, was_created) = User::get_or_create(conn, ann(), ann_defaults())?;
            assert!(!was_created);
            assert_eq!(found, created);
            // The transaction still works: another statement and another call succeed.
            assert_eq!(D::count(conn, "users"), 2);
            let bob = UserLookup {
                email: "bob@example.com".into(),
            };
            let (bob, was_created) = User::get_or_create(conn, bob, ann_defaults())?;
            assert!(was_created);
            Ok((created.id, bob.id))
        })
        .unwrap();
    let stored: Vec<i64> = D::users(&mut conn).iter().skip(1).map(|u| u.id).collect();
    assert_eq!(stored, [ids.0, ids.1], "both rows are committed");
    assert_no_savepoint(&log.take());

    // A lost race inside a transaction. Not on SQLite: there our transaction holds the
    // write lock after its first insert, so a rival cannot commit in between.
    if D::NAME == SqliteDb::NAME {
        return;
    }
    let prefix = INSERTING_STATEMENT;
    let (log, _) = rival_creates_during_our_insert(&db, &mut conn, "cy@example.com", prefix);
    conn.transaction::<_, Error, _>(|conn| {
        let cy = UserLookup {
            email: "cy@example.com".into(),
        };
        let (row, was_created) = User::get_or_create(conn, cy, ann_defaults())?;
        assert!(!was_created);
        assert_eq!(row.name, "Rival");
        // The transaction is still usable. MariaDB's REPEATABLE READ snapshot was taken
        // by the first SELECT, before the rival committed, so its plain reads do not see
        // the rival's row although the locking re-read returned it.
        let visible = if is_mysql::<D>() { 3 } else { 4 };
        assert_eq!(
            D::count(conn, "users"),
            visible,
            "the transaction is still usable"
        );
        Ok(())
    })
    .unwrap();
    assert_no_savepoint(&log.take());
}

/// Diesel opens a savepoint for a nested `transaction`; the library must never need one.
fn assert_no_savepoint(statements: &[String]) {
    // The log sees transaction statements (Diesel's own BEGIN), so it would see a SAVEPOINT.
    assert!(
        statements
            .iter()
            .any(|s| s.to_uppercase().starts_with("BEGIN")),
        "the log missed the transaction: {statements:#?}"
    );
    for statement in statements {
        assert!(
            !statement.to_uppercase().contains("SAVEPOINT"),
            "the library must not open savepoints: {statement}"
        );
    }
}

/// A lost race inside a transaction whose snapshot predates the winner's commit: where the
/// database cannot let the transaction go on (PostgreSQL `REPEATABLE READ`, a SQLite
/// deferred transaction that has read), the caller gets `TransactionMustBeRetried`, never
/// a unique violation or a wrong row. MariaDB's `REPEATABLE READ` can go on: its locking
/// re-read returns the winner's row.
fn lost_race_in_a_snapshot_transaction<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    warm_up(&mut conn);
    if D::NAME == PgDb::NAME {
        conn.batch_execute(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        )
        .unwrap();
    }
    let prefix = INSERTING_STATEMENT;
    let (_, rival) = rival_creates_during_our_insert(&db, &mut conn, "ann@example.com", prefix);
    let outcome =
        conn.transaction::<_, Error, _>(|conn| User::get_or_create(conn, ann(), ann_defaults()));
    if is_mysql::<D>() {
        let (row, was_created) = outcome.unwrap();
        assert!(!was_created);
        assert_eq!(row.name, "Rival");
    } else {
        let error = outcome.unwrap_err();
        assert!(
            matches!(error, Error::TransactionMustBeRetried { .. }),
            "{}: expected TransactionMustBeRetried, got {error:?}",
            D::NAME
        );
        assert!(error.must_retry_transaction());
    }
    // The connection is fine afterwards, and so is a retry of the transaction (SQLite
    // reports the lost race before the rival has even committed).
    rival.committed();
    let (row, was_created) = conn
        .transaction::<_, Error, _>(|conn| User::get_or_create(conn, ann(), ann_defaults()))
        .unwrap();
    assert!(!was_created);
    assert_eq!(row.name, "Rival");
    assert_eq!(D::count(&mut conn, "users"), 2);
}

fn another_unique_constraint<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let handle = || AccountDefaults {
        handle: "taken".into(),
    };
    Account::get_or_create(
        &mut conn,
        AccountLookup {
            email: "a@x".into(),
        },
        handle(),
    )
    .unwrap();

    let error = Account::get_or_create(
        &mut conn,
        AccountLookup {
            email: "b@x".into(),
        },
        handle(),
    )
    .unwrap_err();
    let Error::UniqueViolation { constraint, .. } = &error else {
        panic!("{}: expected UniqueViolation, got {error:?}", D::NAME);
    };
    let expected = if D::NAME == SqliteDb::NAME {
        "accounts.handle"
    } else {
        "accounts_handle_key"
    };
    assert_eq!(constraint.as_deref(), Some(expected), "{error}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the database error is kept"
    );
    assert_eq!(D::count(&mut conn, "accounts"), 1, "nothing was written");
}

fn lookup_without_unique_index<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let error = Note::get_or_create(
        &mut conn,
        NoteLookup { title: "t".into() },
        NoteDefaults { body: "b".into() },
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::NoUniqueIndex { table, columns: ["title"], .. } if table == "notes"
        ),
        "{}: {error:?}",
        D::NAME
    );
    assert!(error.to_string().contains("CREATE UNIQUE INDEX"), "{error}");
    assert_eq!(D::count(&mut conn, "notes"), 0, "nothing was written");
}

/// Two stored rows match the lookup: every call on every backend reads both rows and says
/// so (a lookup never needs a unique index, only creating does).
fn several_rows_match<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    conn.batch_execute("INSERT INTO notes (title, body) VALUES ('t', 'one'), ('t', 'two')")
        .unwrap();
    let lookup = || NoteLookup { title: "t".into() };
    let body = || NoteDefaults { body: "b".into() };
    let lazy = Note::get_or_create_with(&mut conn, lookup(), body).unwrap_err();
    let eager = Note::get_or_create(&mut conn, lookup(), body()).unwrap_err();
    let several = |error: &Error| {
        matches!(
            error,
            Error::MultipleRowsMatch { table, columns: ["title"], .. } if table == "notes"
        )
    };
    assert!(several(&lazy), "{}: {lazy:?}", D::NAME);
    assert!(several(&eager), "{}: {eager:?}", D::NAME);
    assert_eq!(D::count(&mut conn, "notes"), 2, "nothing was written");
}

fn pooled_connection<D: TestDb>()
where
    diesel::r2d2::PooledConnection<ConnectionManager<D::Conn>>:
        get_or_create_core::Connection<User>,
{
    let db = D::create();
    let pool = Pool::builder()
        .max_size(2)
        .build(ConnectionManager::<D::Conn>::new(db.url()))
        .expect("pool");
    let mut pooled = pool.get().expect("a pooled connection");
    let (created, was_created) = User::get_or_create(&mut pooled, ann(), ann_defaults()).unwrap();
    assert!(was_created);
    let mut other = pool.get().expect("a second pooled connection");
    let (found, was_created) = User::get_or_create(&mut other, ann(), ann_defaults()).unwrap();
    assert!(!was_created);
    assert_eq!(found, created);
}

/// 8 threads, each on its own connection, get-or-create the same 200 keys in shuffled
/// orders, all starting at once; three rounds, each on fresh tables. Afterwards: one row
/// per key, one creator per key, the same id for every caller of a key, no errors.
fn race<D: TestDb>() {
    for _round in 0..3 {
        race_once::<D>(
            |_| {},
            |conn, lookup| User::get_or_create(conn, lookup, ann_defaults()),
        );
    }
}

/// The same race with every call in its own transaction at the backend's snapshot level
/// (PostgreSQL and MariaDB `REPEATABLE READ`, a SQLite deferred transaction), rerun by
/// `retry_transaction` whenever the database asks for it: no caller may see an error, a
/// unique violation or a wrong row.
fn race_in_retried_transactions<D: TestDb>() {
    race_once::<D>(
        |conn| {
            if D::NAME == PgDb::NAME {
                conn.batch_execute(
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                )
                .unwrap();
            }
        },
        |conn, lookup| {
            retry_transaction(50, || {
                conn.transaction(|conn| {
                    let lookup = UserLookup {
                        email: lookup.email.clone(),
                    };
                    User::get_or_create(conn, lookup, ann_defaults())
                })
            })
        },
    );
}

type Call<C> = fn(&mut C, UserLookup) -> Result<(User, bool), Error>;

fn race_once<D: TestDb>(prepare: fn(&mut D::Conn), call: Call<D::Conn>) {
    const THREADS: usize = 8;
    const KEYS: usize = 200;
    let db = D::create();
    let start = Barrier::new(THREADS);

    let results: Vec<Vec<(String, i64, bool)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (db, start) = (&db, &start);
                scope.spawn(move || {
                    let mut conn = db.connect();
                    prepare(&mut conn);
                    let mut keys: Vec<usize> = (0..KEYS).collect();
                    keys.shuffle(&mut rand::rng());
                    start.wait();
                    keys.into_iter()
                        .map(|k| {
                            let email = format!("user{k}@example.com");
                            let lookup = UserLookup {
                                email: email.clone(),
                            };
                            let (row, created) = call(&mut conn, lookup)
                                .unwrap_or_else(|e| panic!("{}: {email}: {e}", D::NAME));
                            assert_eq!(row.email, email);
                            (email, row.id, created)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a racing thread failed"))
            .collect()
    });

    let mut per_key: HashMap<String, (i64, usize, usize)> = HashMap::new();
    for (email, id, created) in results.into_iter().flatten() {
        let entry = per_key.entry(email.clone()).or_insert((id, 0, 0));
        assert_eq!(
            entry.0,
            id,
            "{}: callers of {email} got different rows",
            D::NAME
        );
        entry.1 += 1;
        entry.2 += usize::from(created);
    }
    assert_eq!(per_key.len(), KEYS);
    for (email, (_, calls, creators)) in &per_key {
        assert_eq!(*calls, THREADS);
        assert_eq!(
            *creators,
            1,
            "{}: {email} was created {creators} times",
            D::NAME
        );
    }
    let mut conn = db.connect();
    let stored = D::users(&mut conn);
    assert_eq!(stored.len(), KEYS, "{}: one row per key", D::NAME);
    for user in stored {
        assert_eq!(per_key[&user.email].0, user.id);
    }
}
