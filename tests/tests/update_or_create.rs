//! `update_or_create` on each backend: update or create, create-only defaults, statements
//! per path, errors, and racing writers.

use std::collections::HashMap;
use std::sync::Barrier;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use get_or_create_core::{Error, GetOrCreate};
use get_or_create_tests::*;
use rand::seq::SliceRandom;

for_each_backend!(
    updates_or_creates,
    create_defaults_only_on_create,
    no_change_is_get_or_create,
    statements_per_path,
    null_lookup,
    another_unique_constraint,
    lookup_without_unique_index,
    inside_a_transaction,
    race,
);

fn ann() -> UserLookup {
    UserLookup {
        email: "ann@x".into(),
    }
}

fn defaults(name: &str, karma: i32) -> UserDefaults {
    UserDefaults {
        name: name.into(),
        karma,
    }
}

fn updates_or_creates<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let (created, was_created) =
        User::update_or_create(&mut conn, ann(), defaults("Ann", 1)).unwrap();
    assert!(was_created, "{}", D::NAME);
    assert_eq!((created.name.as_str(), created.karma), ("Ann", 1));

    let (updated, was_created) =
        User::update_or_create(&mut conn, ann(), defaults("Anne", 2)).unwrap();
    assert!(!was_created, "{}", D::NAME);
    assert_eq!(updated.id, created.id);
    assert_eq!((updated.name.as_str(), updated.karma), ("Anne", 2));
    assert_eq!(D::users(&mut conn), [updated], "stored as returned");

    // The same values again: still found, not created (MySQL reports found rows).
    let (same, was_created) =
        User::update_or_create(&mut conn, ann(), defaults("Anne", 2)).unwrap();
    assert!(!was_created);
    assert_eq!(same.id, created.id);
}

/// `create_defaults` fill the fields not changed, only when a row is created.
fn create_defaults_only_on_create<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let name = |name: &str| UserChanges {
        name: Some(name.into()),
        ..Default::default()
    };
    let (created, was_created) =
        User::update_or_create_with(&mut conn, ann(), name("Ann"), || defaults("unused", 5))
            .unwrap();
    assert!(was_created);
    assert_eq!((created.name.as_str(), created.karma), ("Ann", 5));

    let karma = UserChanges {
        karma: Some(9),
        ..Default::default()
    };
    let (updated, was_created) = User::update_or_create_with(&mut conn, ann(), karma, || {
        panic!("create_defaults must not be called for a stored row")
    })
    .unwrap();
    assert!(!was_created);
    assert_eq!(
        (updated.name.as_str(), updated.karma),
        ("Ann", 9),
        "name kept"
    );
}

/// No field changed: the stored row as it is, or a new one from the defaults.
fn no_change_is_get_or_create<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let none = UserChanges::default;
    let (created, was_created) =
        User::update_or_create_with(&mut conn, ann(), none(), || defaults("Ann", 1)).unwrap();
    assert!(was_created);
    let (found, was_created) =
        User::update_or_create_with(&mut conn, ann(), none(), || defaults("X", 0)).unwrap();
    assert!(!was_created);
    assert_eq!(found, created);
}

/// PostgreSQL and SQLite: `UPDATE .. RETURNING` and, on a miss, an insert. MariaDB:
/// `UPDATE`, then a read, with an `INSERT` in between on a miss.
fn statements_per_path<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    // PostgreSQL and MariaDB check the key's unique index once per model and table.
    let warm = UserLookup {
        email: "warm@up".into(),
    };
    User::update_or_create(&mut conn, warm, defaults("W", 0)).unwrap();
    let log = StatementLog::install(&mut conn);

    User::update_or_create(&mut conn, ann(), defaults("Ann", 1)).unwrap();
    let full_miss = log.take().len();
    User::update_or_create(&mut conn, ann(), defaults("Ann", 2)).unwrap();
    let full_hit = log.take().len();
    let bob = || UserLookup {
        email: "bob@x".into(),
    };
    let karma = || UserChanges {
        karma: Some(3),
        ..Default::default()
    };
    User::update_or_create_with(&mut conn, bob(), karma(), || defaults("Bob", 0)).unwrap();
    let partial_miss = log.take().len();
    User::update_or_create_with(&mut conn, bob(), karma(), || defaults("Bob", 0)).unwrap();
    let partial_hit = log.take().len();

    let expected = match D::NAME {
        PgDb::NAME | SqliteDb::NAME => [2, 1, 2, 1],
        _ => [3, 2, 3, 2],
    };
    assert_eq!(
        [full_miss, full_hit, partial_miss, partial_hit],
        expected,
        "{}: statements (miss, hit) with every field changed, then with some",
        D::NAME
    );
}

fn null_lookup<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let tag = |color: &str| TagDefaults {
        color: color.into(),
    };
    let none = || TagLookup { name: None };
    let (first, was_created) = Tag::update_or_create(&mut conn, none(), tag("red")).unwrap();
    assert!(was_created);
    let (second, was_created) = Tag::update_or_create(&mut conn, none(), tag("blue")).unwrap();
    assert!(!was_created, "{}: a NULL key matches its row", D::NAME);
    assert_eq!(second.id, first.id);
    assert_eq!(second.color, "blue");
    assert_eq!(D::count(&mut conn, "tags"), 1);
}

/// A change that violates another unique index, on the update path and on the insert
/// path: reported, nothing changed.
fn another_unique_constraint<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let account = |email: &str| AccountLookup {
        email: email.into(),
    };
    let handle = |handle: &str| AccountDefaults {
        handle: handle.into(),
    };
    Account::update_or_create(&mut conn, account("a@x"), handle("taken")).unwrap();
    Account::update_or_create(&mut conn, account("b@x"), handle("free")).unwrap();
    for email in ["b@x", "c@x"] {
        let error =
            Account::update_or_create(&mut conn, account(email), handle("taken")).unwrap_err();
        assert!(
            matches!(error, Error::UniqueViolation { .. }),
            "{}: {email}: {error:?}",
            D::NAME
        );
    }
    assert_eq!(D::count(&mut conn, "accounts"), 2);
}

/// Without a unique index an `UPDATE` could change several rows: refused before any
/// change.
fn lookup_without_unique_index<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    conn.batch_execute("INSERT INTO notes (title, body) VALUES ('t', 'one'), ('t', 'two')")
        .unwrap();
    let error = Note::update_or_create(
        &mut conn,
        NoteLookup { title: "t".into() },
        NoteDefaults { body: "new".into() },
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NoUniqueIndex { .. } | Error::MultipleRowsMatch { .. }
        ),
        "{}: {error:?}",
        D::NAME
    );
    // `count` takes what follows `FROM`.
    let changed = D::count(&mut conn, "notes WHERE body = 'new'");
    assert_eq!(changed, 0, "{}: no row was changed", D::NAME);
}

/// Inside the caller's transaction: no savepoint, and the transaction goes on.
fn inside_a_transaction<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    // The key's unique index is checked once per table, before the first insert.
    let warm = UserLookup {
        email: "warm@up".into(),
    };
    User::update_or_create(&mut conn, warm, defaults("W", 0)).unwrap();
    let log = StatementLog::install(&mut conn);
    conn.transaction::<_, Error, _>(|conn| {
        User::update_or_create(conn, ann(), defaults("Ann", 1))?;
        let (row, was_created) = User::update_or_create(conn, ann(), defaults("Ann", 2))?;
        assert!(!was_created);
        assert_eq!(row.karma, 2);
        assert_eq!(D::count(conn, "users"), 2);
        Ok(())
    })
    .unwrap();
    let statements = log.take();
    assert!(!statements
        .iter()
        .any(|s| s.to_uppercase().contains("SAVEPOINT")));
    assert_eq!(D::users(&mut conn)[1].karma, 2, "committed");
}

/// 8 threads on their own connections set `karma` of the same 100 keys to their own
/// number, in shuffled orders, all at once; two rounds. Afterwards: one row per key,
/// created exactly once per key, no errors, every stored value one that some caller set,
/// and each caller's returned row carries its own value where the backend returns the
/// row from the same statement (PostgreSQL, SQLite).
fn race<D: TestDb>() {
    const THREADS: i32 = 8;
    const KEYS: usize = 100;
    for _round in 0..2 {
        let db = D::create();
        let start = Barrier::new(THREADS as usize);
        let results: Vec<(String, i64, bool)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|me| {
                    let (db, start) = (&db, &start);
                    scope.spawn(move || {
                        let mut conn = db.connect();
                        let mut keys: Vec<usize> = (0..KEYS).collect();
                        keys.shuffle(&mut rand::rng());
                        start.wait();
                        keys.into_iter()
                            .map(|k| {
                                let email = format!("{k}@race");
                                let lookup = UserLookup {
                                    email: email.clone(),
                                };
                                let (row, created) =
                                    User::update_or_create(&mut conn, lookup, defaults("R", me))
                                        .unwrap_or_else(|e| panic!("{}: {email}: {e}", D::NAME));
                                assert_eq!(row.email, email);
                                if D::NAME != MYSQL_NAME {
                                    assert_eq!(row.karma, me, "{}: our own update", D::NAME);
                                }
                                (email, row.id, created)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a racing thread failed"))
                .collect()
        });
        let mut per_key: HashMap<String, (i64, usize)> = HashMap::new();
        for (email, id, created) in results {
            let entry = per_key.entry(email.clone()).or_insert((id, 0));
            assert_eq!(entry.0, id, "{}: {email} got two rows", D::NAME);
            entry.1 += usize::from(created);
        }
        assert_eq!(per_key.len(), KEYS);
        assert!(
            per_key.values().all(|(_, creators)| *creators == 1),
            "{}",
            D::NAME
        );
        let mut conn = db.connect();
        let stored = D::users(&mut conn);
        assert_eq!(stored.len(), KEYS);
        assert!(stored.iter().all(|u| (0..THREADS).contains(&u.karma)));
    }
}
