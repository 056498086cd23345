//! `get_or_create_many` on each backend: results in input order, duplicate keys, chunking,
//! statements per chunk, errors, and concurrent bulk callers with overlapping keys.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use get_or_create_core::{Error, GetOrCreate};
use get_or_create_tests::*;
use rand::seq::SliceRandom;

for_each_backend!(
    results_follow_the_input,
    empty_input_sends_nothing,
    statements_per_chunk,
    chunks_stay_under_the_bind_limit,
    null_lookup,
    inside_a_transaction,
    lost_race,
    another_unique_constraint,
    lookup_without_unique_index,
    race,
);

mod ids {
    use super::*;
    // MariaDB's InnoDB may reserve auto-increment values in blocks for a multi-row insert
    // (`innodb_autoinc_lock_mode` 2), so its ids need not be contiguous.
    for_backends!([sqlite postgres] ids_only_for_rows_created);
}

fn user(email: &str, name: &str) -> (UserLookup, UserDefaults) {
    (
        UserLookup {
            email: email.into(),
        },
        UserDefaults {
            name: name.into(),
            karma: 1,
        },
    )
}

/// The `created` flags of a bulk result.
fn created<M>(rows: &[(M, bool)]) -> Vec<bool> {
    rows.iter().map(|(_, created)| *created).collect()
}

/// Existing, new and repeated keys in one call: one result per item in input order, the
/// same row for a repeated key, created once, with the defaults of its first occurrence;
/// an existing row keeps its values.
fn results_follow_the_input<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let (lookup, defaults) = user("old@x", "Old");
    let (old, _) = User::get_or_create(&mut conn, lookup, defaults).unwrap();

    let rows = User::get_or_create_many(
        &mut conn,
        [
            user("new@x", "New"),
            user("old@x", "Ignored"),
            user("new@x", "Second"),
            user("two@x", "Two"),
        ],
    )
    .unwrap();

    assert_eq!(created(&rows), [true, false, false, true], "{}", D::NAME);
    let emails: Vec<&str> = rows.iter().map(|(u, _)| u.email.as_str()).collect();
    assert_eq!(emails, ["new@x", "old@x", "new@x", "two@x"]);
    assert_eq!(rows[1].0, old, "an existing row is returned as stored");
    assert_eq!(rows[0].0, rows[2].0, "a repeated key gets the same row");
    assert_eq!(rows[0].0.name, "New", "the first occurrence's defaults win");
    assert_eq!(D::users(&mut conn).len(), 3);

    let again =
        User::get_or_create_many(&mut conn, [user("two@x", "X"), user("new@x", "X")]).unwrap();
    assert_eq!(created(&again), [false, false]);
    assert_eq!(again[0].0, rows[3].0);
    assert_eq!(again[1].0, rows[0].0);
}

fn empty_input_sends_nothing<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let log = StatementLog::install(&mut conn);
    let rows = User::get_or_create_many(&mut conn, Vec::new()).unwrap();
    assert!(rows.is_empty());
    assert_eq!(log.take(), Vec::<String>::new());
}

/// A fixed number of statements per chunk, however many items it holds: PostgreSQL two;
/// SQLite one when every key exists and three otherwise, MariaDB likewise. None opens a
/// transaction.
fn statements_per_chunk<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    // MariaDB reads the lookup's unique indexes once per model and process.
    User::get_or_create_many(&mut conn, [user("warm@up", "W")]).unwrap();
    let log = StatementLog::install(&mut conn);

    let mixed: Vec<_> = (0..500).map(|i| user(&format!("{i}@x"), "U")).collect();
    User::get_or_create_many(&mut conn, mixed[..250].to_vec_items()).unwrap();
    log.take();
    User::get_or_create_many(&mut conn, mixed.to_vec_items()).unwrap();
    let half_new = log.take();
    User::get_or_create_many(&mut conn, mixed.to_vec_items()).unwrap();
    let all_stored = log.take();

    // PostgreSQL: an insert of the missing keys, then a read of every key. SQLite and
    // MariaDB: a read of every key, then (when some are missing) an insert of the others
    // and a read of their rows.
    let (expected_half_new, expected_all_stored) = match D::NAME {
        MYSQL_NAME | SqliteDb::NAME => (3, 1),
        _ => (2, 2),
    };
    assert_eq!(
        (half_new.len(), all_stored.len()),
        (expected_half_new, expected_all_stored),
        "{}: {half_new:#?} {all_stored:#?}",
        D::NAME
    );
    for statement in half_new.iter().chain(&all_stored) {
        let upper = statement.to_uppercase();
        assert!(
            !["BEGIN", "SAVEPOINT", "COMMIT", "START TRANSACTION"]
                .iter()
                .any(|word| upper.starts_with(word)),
            "the library must not open transactions: {statement}"
        );
    }
    assert_eq!(D::users(&mut conn).len(), 501);

    // Bulk statements are planned for their own values each time, never kept in the
    // statement cache: PostgreSQL's generic plan for an unnest of unknown length turns
    // slow after five executions, and a cache keyed by text would keep one statement per
    // chunk size on SQLite and MariaDB.
    let cached = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&cached);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            sink.lock().unwrap().push(sql.to_owned());
        }
    });
    let fresh: Vec<_> = (0..3).map(|i| user(&format!("{i}@y"), "Y")).collect();
    User::get_or_create_many(&mut conn, fresh).unwrap();
    let cached = cached.lock().unwrap();
    assert!(
        cached.iter().all(|sql| !sql.contains("__goc_")),
        "{}: a bulk statement was cached: {cached:#?}",
        D::NAME
    );
}

/// The items as owned values again (the models' structs do not derive `Clone`).
trait ToVecItems {
    fn to_vec_items(&self) -> Vec<(UserLookup, UserDefaults)>;
}

impl ToVecItems for [(UserLookup, UserDefaults)] {
    fn to_vec_items(&self) -> Vec<(UserLookup, UserDefaults)> {
        self.iter().map(|(l, d)| user(&l.email, &d.name)).collect()
    }
}

/// More items than one statement may carry bind parameters for (SQLite: 32,766; MySQL:
/// 65,535; PostgreSQL chunks at 10,000 items): several chunks, still one result per item.
fn chunks_stay_under_the_bind_limit<D: TestDb>() {
    const ITEMS: usize = 25_000;
    let db = D::create();
    let mut conn = db.connect();
    let stored: Vec<_> = (0..ITEMS)
        .step_by(4)
        .map(|i| user(&format!("{i}@x"), "Old"))
        .collect();
    User::get_or_create_many(&mut conn, stored).unwrap();

    let log = StatementLog::install(&mut conn);
    let items: Vec<_> = (0..ITEMS).map(|i| user(&format!("{i}@x"), "New")).collect();
    let rows = User::get_or_create_many(&mut conn, items).unwrap();
    let statements = log.take().len();

    assert_eq!(rows.len(), ITEMS);
    for (i, (row, created)) in rows.iter().enumerate() {
        assert_eq!(row.email, format!("{i}@x"));
        assert_eq!(*created, i % 4 != 0, "{}: item {i}", D::NAME);
        assert_eq!(row.name, if i % 4 == 0 { "Old" } else { "New" });
    }
    assert_eq!(D::users(&mut conn).len(), ITEMS);
    // Three columns per item: SQLite fits 10,922 items in a statement, MySQL 21,845;
    // PostgreSQL takes 10,000. Two statements per chunk on PostgreSQL, three on SQLite and
    // MariaDB (some keys of every chunk are new).
    let expected = match D::NAME {
        MYSQL_NAME => 2 * 3,
        SqliteDb::NAME => 3 * 3,
        _ => 3 * 2,
    };
    assert_eq!(statements, expected, "{}", D::NAME);
}

/// One id (a sequence or `AUTOINCREMENT` value) per row created and none for a stored
/// key: after bulk calls over stored and new keys (`get_or_create_many`, then
/// `update_or_create_many`), the next row created gets the id after the last row's.
fn ids_only_for_rows_created<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let items = |n: usize| {
        (0..n)
            .map(|i| user(&format!("{i}@x"), "U"))
            .collect::<Vec<_>>()
    };
    User::get_or_create_many(&mut conn, items(50)).unwrap();
    let rows = User::get_or_create_many(&mut conn, items(100)).unwrap();
    assert_eq!(created(&rows).iter().filter(|c| **c).count(), 50);
    User::get_or_create_many(&mut conn, items(100)).unwrap();
    let rows = User::update_or_create_many(&mut conn, items(120)).unwrap();
    assert_eq!(created(&rows).iter().filter(|c| **c).count(), 20);
    User::update_or_create_many(&mut conn, items(120)).unwrap();
    let (next, created) =
        User::get_or_create(&mut conn, user("next@x", "N").0, user("next@x", "N").1).unwrap();
    assert!(created);
    assert_eq!(next.id, 121, "{}: ids used by stored keys", D::NAME);
}

/// `NULL` keys match each other: one row for `None`, however often it is asked for.
fn null_lookup<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let tag = |name: Option<&str>, color: &str| {
        (
            TagLookup {
                name: name.map(str::to_owned),
            },
            TagDefaults {
                color: color.into(),
            },
        )
    };
    let first = Tag::get_or_create_many(
        &mut conn,
        [tag(None, "grey"), tag(Some("a"), "red"), tag(None, "blue")],
    )
    .unwrap();
    assert_eq!(created(&first), [true, true, false], "{}", D::NAME);
    assert_eq!(first[0].0, first[2].0);
    assert_eq!(first[0].0.color, "grey");

    let second = Tag::get_or_create_many(&mut conn, [tag(Some("a"), "x"), tag(None, "x")]).unwrap();
    assert_eq!(created(&second), [false, false]);
    assert_eq!(second[0].0, first[1].0);
    assert_eq!(second[1].0, first[0].0);
    assert_eq!(D::count(&mut conn, "tags"), 2);
}

/// Inside the caller's transaction: no savepoint, and the transaction goes on.
fn inside_a_transaction<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    // The key's unique index is checked once per table, before the first insert.
    User::get_or_create_many(&mut conn, [user("warm@up", "W")]).unwrap();
    let log = StatementLog::install(&mut conn);
    conn.transaction::<_, Error, _>(|conn| {
        let rows = User::get_or_create_many(conn, [user("a@x", "A"), user("b@x", "B")])?;
        assert_eq!(created(&rows), [true, true]);
        let rows = User::get_or_create_many(conn, [user("b@x", "B"), user("c@x", "C")])?;
        assert_eq!(created(&rows), [false, true]);
        assert_eq!(D::count(conn, "users"), 4);
        Ok(())
    })
    .unwrap();
    let statements = log.take();
    assert!(statements
        .iter()
        .any(|s| s.to_uppercase().starts_with("BEGIN")));
    assert!(
        !statements
            .iter()
            .any(|s| s.to_uppercase().contains("SAVEPOINT")),
        "{statements:#?}"
    );
    assert_eq!(D::users(&mut conn).len(), 4, "committed");
}

/// A rival inserts one of our keys in a transaction that commits while our insert waits
/// for it: that item is asked for again and gets the rival's row, not created by us; the
/// others are ours.
fn lost_race<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    User::get_or_create_many(&mut conn, [user("warm@up", "W")]).unwrap();
    let mut rival = Some(db.connect());
    let rival_thread = Arc::new(Mutex::new(None));
    let started = Arc::clone(&rival_thread);
    // Every backend's bulk insert is a statement of its own.
    let (prefix, ours) = ("INSERT", "");
    let mut armed = true;
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        let InstrumentationEvent::StartQuery { query, .. } = event else {
            return;
        };
        let sql = query.to_string();
        let inserts = sql.starts_with(prefix) && sql.contains(ours) && sql.contains("INSERT");
        if armed && inserts {
            armed = false;
            let (inserted, wait) = std::sync::mpsc::channel();
            let mut rival = rival.take().expect("one rival");
            *started.lock().unwrap() = Some(std::thread::spawn(move || {
                rival.batch_execute("BEGIN").unwrap();
                rival
                    .batch_execute(
                        "INSERT INTO users (email, name, karma) VALUES ('b@x', 'Rival', 9)",
                    )
                    .unwrap();
                inserted.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                rival.batch_execute("COMMIT").unwrap();
            }));
            wait.recv().unwrap();
        }
    });
    let rows = User::get_or_create_many(
        &mut conn,
        [user("a@x", "A"), user("b@x", "B"), user("c@x", "C")],
    )
    .unwrap();
    if let Some(thread) = rival_thread.lock().unwrap().take() {
        thread.join().unwrap();
    }
    assert_eq!(created(&rows), [true, false, true], "{}: {rows:?}", D::NAME);
    assert_eq!(rows[1].0.name, "Rival");
    assert_eq!(D::users(&mut conn).len(), 4);
}

/// A default that collides with a different row on another unique index is reported as
/// such; the items before it are stored, the failing one is not.
fn another_unique_constraint<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let account = |email: &str, handle: &str| {
        (
            AccountLookup {
                email: email.into(),
            },
            AccountDefaults {
                handle: handle.into(),
            },
        )
    };
    Account::get_or_create_many(&mut conn, [account("a@x", "taken")]).unwrap();
    let error =
        Account::get_or_create_many(&mut conn, [account("b@x", "free"), account("c@x", "taken")])
            .unwrap_err();
    assert!(
        matches!(error, Error::UniqueViolation { .. }),
        "{}: {error:?}",
        D::NAME
    );
    assert_eq!(
        D::count(&mut conn, "accounts"),
        2,
        "{}: the item before the clash is stored",
        D::NAME
    );
}

fn lookup_without_unique_index<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let note = (
        NoteLookup { title: "t".into() },
        NoteDefaults { body: "b".into() },
    );
    let error = Note::get_or_create_many(&mut conn, [note]).unwrap_err();
    assert!(
        matches!(&error, Error::NoUniqueIndex { table, .. } if table == "notes"),
        "{}: {error:?}",
        D::NAME
    );
    assert_eq!(D::count(&mut conn, "notes"), 0);
}

/// 4 bulk callers on their own connections, each with the same 300 keys in its own
/// shuffled order plus keys of its own, all at once; three rounds. Afterwards: one row per
/// key, the same id for every caller of a key, created exactly once per key.
fn race<D: TestDb>() {
    const CALLERS: usize = 4;
    const SHARED: usize = 300;
    for _round in 0..3 {
        let db = D::create();
        let start = Barrier::new(CALLERS);
        let results: Vec<Vec<(User, bool)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CALLERS)
                .map(|caller| {
                    let (db, start) = (&db, &start);
                    scope.spawn(move || {
                        let mut conn = db.connect();
                        let mut emails: Vec<String> =
                            (0..SHARED).map(|k| format!("{k}@shared")).collect();
                        emails.extend((0..50).map(|k| format!("{k}@caller{caller}")));
                        emails.shuffle(&mut rand::rng());
                        let items: Vec<_> = emails.iter().map(|e| user(e, "R")).collect();
                        start.wait();
                        let rows = User::get_or_create_many(&mut conn, items)
                            .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
                        for (row, email) in rows.iter().zip(&emails) {
                            assert_eq!(&row.0.email, email);
                        }
                        rows
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        let mut per_key: HashMap<String, (i64, usize)> = HashMap::new();
        for (row, was_created) in results.into_iter().flatten() {
            let entry = per_key.entry(row.email.clone()).or_insert((row.id, 0));
            assert_eq!(entry.0, row.id, "{}: {} got two rows", D::NAME, row.email);
            entry.1 += usize::from(was_created);
        }
        for (email, (_, creators)) in &per_key {
            assert_eq!(
                *creators,
                1,
                "{}: {email} created {creators} times",
                D::NAME
            );
        }
        let mut conn = db.connect();
        assert_eq!(D::users(&mut conn).len(), SHARED + CALLERS * 50);
    }
}
