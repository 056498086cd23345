//! `update_or_create_many` on each backend: results in input order, the last item of a
//! repeated key wins, statements per chunk, `NULL` keys, errors, transactions, a lost
//! race, and racing bulk writers whose every update is counted.

use std::collections::HashMap;
use std::sync::Barrier;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use get_or_create_core::{Connection as GocConnection, Error, GetOrCreate};
use get_or_create_tests::*;
use rand::seq::SliceRandom;

for_each_backend!(
    results_follow_the_input,
    empty_input_sends_nothing,
    statements_per_chunk,
    null_lookup,
    another_unique_constraint,
    inside_a_transaction,
    lost_race,
    race_counts_every_update,
);

/// SQLite's index check of `update_or_create_many` sees a unique index dropped after an
/// earlier call, before the call writes anything. (Kept prepared, the check's `EXPLAIN`
/// still ran, and the update wrote before the insert failed.)
#[test]
fn sqlite_index_dropped_after_a_call() {
    let db = SqliteDb::create();
    let mut conn = db.connect();
    conn.batch_execute(
        "CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
             value INTEGER NOT NULL, revision INTEGER NOT NULL DEFAULT 0);
         CREATE UNIQUE INDEX counters_name ON counters (name);",
    )
    .unwrap();
    let counter = |name: &str, value: i32| {
        (
            CounterLookup { name: name.into() },
            CounterDefaults { value },
        )
    };
    Counter::update_or_create_many(&mut conn, [counter("a", 1)]).unwrap();
    conn.batch_execute("DROP INDEX counters_name").unwrap();
    let error = Counter::update_or_create_many(&mut conn, [counter("a", 2), counter("b", 3)])
        .expect_err("no unique index backs the key any more");
    assert!(matches!(error, Error::NoUniqueIndex { .. }), "{error:?}");
    let stored = SqliteDb::count(&mut conn, "counters");
    assert_eq!(stored, 1, "nothing written");
    let value: i32 = counters::table
        .select(counters::value)
        .first(&mut conn)
        .unwrap();
    assert_eq!(value, 1, "the stored row is unchanged");
}

mod deadlock {
    use super::*;
    for_backends!([postgres mysql] deadlock_then_key_by_key);
}

diesel::table! {
    /// A counter per name: `revision` counts the updates a row received, written by the
    /// database (`on_update = "revision + 1"`), so that a lost update shows.
    counters (id) {
        id -> BigInt,
        name -> Text,
        value -> Integer,
        revision -> Integer,
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = counters)]
struct Counter {
    id: i64,
    #[lookup]
    name: String,
    #[default]
    value: i32,
    #[get_or_create(on_update = "revision + 1")]
    revision: i32,
}

/// Creates `counters` in the test's database.
fn create_counters<D: TestDb>(conn: &mut D::Conn) {
    let ddl = match D::NAME {
        PgDb::NAME => {
            "CREATE TABLE counters (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                value INTEGER NOT NULL, revision INTEGER NOT NULL DEFAULT 0)"
        }
        MYSQL_NAME => {
            "CREATE TABLE counters (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                name VARCHAR(64) NOT NULL UNIQUE, value INTEGER NOT NULL,
                revision INTEGER NOT NULL DEFAULT 0)"
        }
        _ => {
            "CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL UNIQUE, value INTEGER NOT NULL,
                revision INTEGER NOT NULL DEFAULT 0)"
        }
    };
    conn.batch_execute(ddl).expect("CREATE TABLE counters");
}

/// The stored rows of `names`, read with `get_or_create_many`, which must find them all.
fn stored_counters<D: TestDb>(conn: &mut D::Conn, names: &[String]) -> Vec<Counter>
where
    D::Conn: GocConnection<Counter>,
{
    assert_eq!(
        D::count(conn, "counters"),
        i64::try_from(names.len()).unwrap()
    );
    let items = names.iter().map(|name| {
        (
            CounterLookup { name: name.clone() },
            CounterDefaults { value: -1 },
        )
    });
    let rows = Counter::get_or_create_many(conn, items).expect("read the counters");
    assert!(
        rows.iter().all(|(_, created)| !created),
        "every counter is stored"
    );
    rows.into_iter().map(|(row, _)| row).collect()
}

fn user(email: &str, name: &str, karma: i32) -> (UserLookup, UserDefaults) {
    (
        UserLookup {
            email: email.into(),
        },
        UserDefaults {
            name: name.into(),
            karma,
        },
    )
}

fn created<M>(rows: &[(M, bool)]) -> Vec<bool> {
    rows.iter().map(|(_, created)| *created).collect()
}

/// Stored, new and repeated keys in one call: one result per item in input order; a
/// stored row set to its item's values; a repeated key ends with its last item's values,
/// created once, by its first item; every item of a key returns the final row.
fn results_follow_the_input<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let (old, _) = User::get_or_create_many(&mut conn, [user("old@x", "Old", 1)])
        .unwrap()
        .remove(0);

    let rows = User::update_or_create_many(
        &mut conn,
        [
            user("new@x", "New", 2),
            user("old@x", "Updated", 3),
            user("new@x", "Last", 4),
            user("two@x", "Two", 5),
        ],
    )
    .unwrap();

    assert_eq!(created(&rows), [true, false, false, true], "{}", D::NAME);
    let emails: Vec<&str> = rows.iter().map(|(u, _)| u.email.as_str()).collect();
    assert_eq!(emails, ["new@x", "old@x", "new@x", "two@x"]);
    assert_eq!(rows[1].0.id, old.id, "{}: the stored row, updated", D::NAME);
    assert_eq!((rows[1].0.name.as_str(), rows[1].0.karma), ("Updated", 3));
    assert_eq!(
        rows[0].0,
        rows[2].0,
        "{}: one row for a repeated key",
        D::NAME
    );
    assert_eq!((rows[0].0.name.as_str(), rows[0].0.karma), ("Last", 4));
    let stored = D::users(&mut conn);
    assert_eq!(stored.len(), 3);
    let by_email: HashMap<&str, &User> = stored.iter().map(|u| (u.email.as_str(), u)).collect();
    assert_eq!(by_email["new@x"], &rows[0].0, "{}: as stored", D::NAME);
    assert_eq!(by_email["old@x"], &rows[1].0);
    assert_eq!(by_email["two@x"], &rows[3].0);

    // Again, every key stored: only updates, in the order of the items.
    let again = User::update_or_create_many(
        &mut conn,
        [
            user("two@x", "2", 6),
            user("new@x", "N", 7),
            user("two@x", "22", 8),
        ],
    )
    .unwrap();
    assert_eq!(created(&again), [false, false, false], "{}", D::NAME);
    assert_eq!(again[0].0, again[2].0);
    assert_eq!((again[0].0.name.as_str(), again[0].0.karma), ("22", 8));
    assert_eq!((again[1].0.name.as_str(), again[1].0.karma), ("N", 7));
    assert_eq!(again[1].0.id, rows[0].0.id);
    assert_eq!(D::users(&mut conn).len(), 3);
}

fn empty_input_sends_nothing<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let log = StatementLog::install(&mut conn);
    let rows = User::update_or_create_many(&mut conn, Vec::new()).unwrap();
    assert!(rows.is_empty());
    assert_eq!(log.take(), Vec::<String>::new());
}

/// A fixed number of statements per chunk, however many items it holds, and no
/// transaction: PostgreSQL one when every key is stored, three otherwise; SQLite four
/// (the check of the key's unique index, which its update needs first); MariaDB three
/// when every key is stored (read, update, read) and four otherwise.
fn statements_per_chunk<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    // The key's unique index is checked once per model and table.
    User::update_or_create_many(&mut conn, [user("warm@up", "W", 0)]).unwrap();
    let items = |karma: i32| -> Vec<_> {
        (0..500)
            .map(|i| user(&format!("{i}@x"), "U", karma))
            .collect()
    };
    User::update_or_create_many(&mut conn, items(1).into_iter().take(250)).unwrap();
    let log = StatementLog::install(&mut conn);
    let rows = User::update_or_create_many(&mut conn, items(2)).unwrap();
    let half_new = log.take();
    assert_eq!(created(&rows).iter().filter(|c| **c).count(), 250);
    let rows = User::update_or_create_many(&mut conn, items(3)).unwrap();
    let all_stored = log.take();
    assert!(rows.iter().all(|(u, created)| !created && u.karma == 3));

    let expected = match D::NAME {
        PgDb::NAME => (3, 1),
        MYSQL_NAME => (4, 3),
        _ => (4, 4),
    };
    assert_eq!(
        (half_new.len(), all_stored.len()),
        expected,
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
    let stored = D::users(&mut conn);
    assert_eq!(stored.len(), 501);
    assert!(stored.iter().skip(1).all(|u| u.karma == 3));
}

/// A `NULL` in a key: answered by the single call, whose update changes one row; two
/// stored rows with a `NULL` key (a plain `UNIQUE`) are `MultipleRowsMatch`, and neither
/// is changed.
fn null_lookup<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let label = |name: Option<&str>, color: &str| {
        (
            LabelLookup {
                name: name.map(str::to_owned),
            },
            LabelDefaults {
                color: color.into(),
            },
        )
    };
    let rows = Label::update_or_create_many(
        &mut conn,
        [
            label(None, "red"),
            label(Some("a"), "blue"),
            label(None, "green"),
        ],
    )
    .unwrap();
    assert_eq!(created(&rows), [true, true, false], "{}", D::NAME);
    assert_eq!(rows[0].0.id, rows[2].0.id);
    assert_eq!(rows[2].0.color, "green");
    assert_eq!(D::labels(&mut conn).len(), 2);

    conn.batch_execute("INSERT INTO labels (name, color) VALUES (NULL, 'dup')")
        .unwrap();
    let error = Label::update_or_create_many(&mut conn, [label(None, "black")]).unwrap_err();
    assert!(
        matches!(error, Error::MultipleRowsMatch { .. }),
        "{}: {error:?}",
        D::NAME
    );
    let colors: Vec<String> = D::labels(&mut conn).into_iter().map(|l| l.color).collect();
    assert!(
        !colors.contains(&"black".to_owned()),
        "{}: {colors:?}",
        D::NAME
    );
}

/// An item that violates another unique index: reported, the item's row unchanged.
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
    Account::update_or_create_many(&mut conn, [account("a@x", "taken"), account("b@x", "free")])
        .unwrap();
    for email in ["b@x", "c@x"] {
        let error =
            Account::update_or_create_many(&mut conn, [account(email, "taken")]).unwrap_err();
        assert!(
            matches!(error, Error::UniqueViolation { .. }),
            "{}: {email}: {error:?}",
            D::NAME
        );
    }
    assert_eq!(D::count(&mut conn, "accounts"), 2);
    assert_eq!(D::count(&mut conn, "accounts WHERE handle = 'free'"), 1);
}

/// Inside the caller's transaction: no savepoint, and the transaction goes on.
fn inside_a_transaction<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    User::update_or_create_many(&mut conn, [user("warm@up", "W", 0)]).unwrap();
    let log = StatementLog::install(&mut conn);
    conn.transaction::<_, Error, _>(|conn| {
        User::update_or_create_many(conn, [user("a@x", "A", 1), user("b@x", "B", 1)])?;
        let rows = User::update_or_create_many(conn, [user("a@x", "A", 2), user("c@x", "C", 2)])?;
        assert_eq!(created(&rows), [false, true]);
        assert_eq!(D::count(conn, "users"), 4);
        Ok(())
    })
    .unwrap();
    assert!(!log
        .take()
        .iter()
        .any(|s| s.to_uppercase().contains("SAVEPOINT")));
    let stored = D::users(&mut conn);
    assert_eq!(stored.len(), 4, "{}: committed", D::NAME);
    let karma: HashMap<&str, i32> = stored.iter().map(|u| (u.email.as_str(), u.karma)).collect();
    assert_eq!(
        (karma["a@x"], karma["b@x"], karma["c@x"]),
        (2, 1, 2),
        "{}",
        D::NAME
    );
}

/// A concurrent caller stores one of the missing keys between our update and our insert:
/// our values still end in its row (no lost update), and it is not ours to call created;
/// every key is written once, from its last item, the stored one included (MariaDB once
/// tried the whole chunk again, and updated `kept` twice).
fn lost_race<D: TestDb>()
where
    D::Conn: GocConnection<Counter>,
{
    let db = D::create();
    let mut conn = db.connect();
    create_counters::<D>(&mut conn);
    let counter = |name: &str, value: i32| {
        (
            CounterLookup { name: name.into() },
            CounterDefaults { value },
        )
    };
    Counter::update_or_create_many(&mut conn, [counter("kept", 0)]).unwrap();
    let mut rival = Some(db.connect());
    // Just before our insert, after our update (on SQLite both start `WITH`).
    let _log = before_first_matching(
        &mut conn,
        |sql| sql.contains("INSERT INTO") && !sql.contains("UPDATE"),
        move || {
            let mut other = rival.take().expect("one rival");
            other
                .batch_execute("INSERT INTO counters (name, value) VALUES ('raced', 100)")
                .expect("the rival's insert");
        },
    );
    let rows = Counter::update_or_create_many(
        &mut conn,
        [
            counter("kept", 1),
            counter("raced", 7),
            counter("fresh", 3),
            counter("raced", 8),
            counter("fresh", 4),
        ],
    )
    .unwrap();
    let what = D::NAME;
    assert_eq!(created(&rows), [false, false, true, false, false], "{what}");
    let got = |i: usize| (rows[i].0.value, rows[i].0.revision);
    assert_eq!(
        got(1),
        (8, 1),
        "{what}: our update is not lost, and made once"
    );
    assert_eq!(got(3), got(1), "{what}");
    assert_eq!(got(2), (4, 0), "{what}: created once, from its last item");
    assert_eq!(got(4), got(2), "{what}");
    let mut conn = db.connect();
    let names = ["kept".into(), "raced".into(), "fresh".into()];
    let stored = stored_counters::<D>(&mut conn, &names);
    let stored: Vec<(i32, i32)> = stored.iter().map(|c| (c.value, c.revision)).collect();
    assert_eq!(
        stored,
        [(1, 1), (8, 1), (4, 0)],
        "{what}: each key written once"
    );
}

/// Our bulk `UPDATE` deadlocks with a rival transaction: it locks `a`, waits for `b`,
/// which the rival holds, and the rival then waits for `a`. The database aborts our
/// statement (PostgreSQL after its `deadlock_timeout`); the chunk then goes one key at a
/// time. Every item gets its key's final row, `a` and `b` are each written once by us (and
/// once by the rival), and the repeated key `a` ends with its last item's values.
fn deadlock_then_key_by_key<D: TestDb>()
where
    D::Conn: GocConnection<Counter>,
{
    let what = D::NAME;
    let db = D::create();
    let mut conn = db.connect();
    create_counters::<D>(&mut conn);
    let counter = |name: &str, value: i32| {
        (
            CounterLookup { name: name.into() },
            CounterDefaults { value },
        )
    };
    // Stored in this order, so that a scan of the table meets `a` before `b`.
    Counter::update_or_create_many(&mut conn, [counter("a", 0), counter("b", 0)]).unwrap();
    let mut rival = db.connect();
    let begin = if D::NAME == PgDb::NAME {
        "BEGIN"
    } else {
        "START TRANSACTION"
    };
    rival.batch_execute(begin).unwrap();
    rival
        .batch_execute("UPDATE counters SET value = 100, revision = revision + 1 WHERE name = 'b'")
        .unwrap();
    let log = StatementLog::install(&mut conn);
    let rows = std::thread::scope(|scope| {
        let ours = scope.spawn(|| {
            Counter::update_or_create_many(
                &mut conn,
                [
                    counter("a", 1),
                    counter("b", 2),
                    counter("a", 3),
                    counter("c", 4),
                ],
            )
        });
        // Once our update holds `a` and waits for `b`, the rival asks for `a`.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let rival_update =
            "UPDATE counters SET value = 200, revision = revision + 1 WHERE name = 'a'";
        rival.batch_execute(rival_update).unwrap();
        rival.batch_execute("COMMIT").unwrap();
        ours.join().expect("our call")
    })
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let statements = log.take();
    // One bulk `UPDATE`, the one that deadlocked; then each key's own.
    let updates = |bulk: bool| {
        statements
            .iter()
            .filter(|s| s.starts_with("UPDATE") && s.contains("__goc_i") == bulk)
            .count()
    };
    assert_eq!(
        (updates(true), updates(false)),
        (1, 3),
        "{what}: {statements:#?}"
    );
    let got: Vec<(&str, i32, bool)> = rows
        .iter()
        .map(|(c, created)| (c.name.as_str(), c.value, *created))
        .collect();
    assert_eq!(
        got,
        [
            ("a", 3, false),
            ("b", 2, false),
            ("a", 3, false),
            ("c", 4, true)
        ],
        "{what}: {statements:#?}"
    );
    let stored = stored_counters::<D>(&mut db.connect(), &["a".into(), "b".into(), "c".into()]);
    let revisions: Vec<(i32, i32)> = stored.iter().map(|c| (c.value, c.revision)).collect();
    assert_eq!(
        revisions,
        [(3, 2), (2, 2), (4, 0)],
        "{what}: each key written once by us, once by the rival: {statements:#?}"
    );
}

/// Runs `action` once, on the first statement `conn` starts whose SQL `matches`.
fn before_first_matching<C, P, F>(conn: &mut C, mut matches: P, action: F) -> StatementLog
where
    C: Connection,
    P: FnMut(&str) -> bool + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    let log = StatementLog::default();
    let mut action = Some(action);
    conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            if matches(&query.to_string()) {
                if let Some(action) = action.take() {
                    action();
                }
            }
        }
    });
    log
}

/// 6 threads on their own connections each call `update_or_create_many` 4 times on the
/// same 60 keys (shuffled, some repeated within a call), all at once. Afterwards: one row
/// per key, created by exactly one call; and no update lost: each key's `revision` (which
/// every update adds one to) equals the number of calls that updated rather than created
/// it, and its value is one some call wrote.
fn race_counts_every_update<D: TestDb>()
where
    D::Conn: GocConnection<Counter>,
{
    const THREADS: usize = 6;
    const CALLS: usize = 4;
    const KEYS: usize = 60;
    let db = D::create();
    create_counters::<D>(&mut db.connect());
    let start = Barrier::new(THREADS);
    let results: Vec<(String, i64, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|me| {
                let (db, start) = (&db, &start);
                scope.spawn(move || {
                    let mut conn = db.connect();
                    start.wait();
                    let mut seen = Vec::new();
                    for call in 0..CALLS {
                        let mut keys: Vec<usize> = (0..KEYS).collect();
                        keys.extend(0..KEYS / 10);
                        keys.shuffle(&mut rand::rng());
                        let value = i32::try_from(me * CALLS + call).unwrap();
                        let items = keys.iter().map(|k| {
                            (
                                CounterLookup {
                                    name: format!("k{k}"),
                                },
                                CounterDefaults { value },
                            )
                        });
                        let rows = Counter::update_or_create_many(&mut conn, items)
                            .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
                        // One result per key of the call: its first item's.
                        let mut firsts: HashMap<String, (i64, bool)> = HashMap::new();
                        // A row is read after this call's writes, so a concurrent call may
                        // have written it since: its value is some call's.
                        for (row, created) in rows {
                            assert!(
                                (0..24).contains(&row.value) && 24 == THREADS * CALLS,
                                "{}: {row:?}",
                                D::NAME
                            );
                            let entry = firsts.entry(row.name.clone()).or_insert((row.id, false));
                            assert_eq!(entry.0, row.id, "{}: one row per key", D::NAME);
                            entry.1 |= created;
                        }
                        seen.extend(firsts.into_iter().map(|(name, (id, c))| (name, id, c)));
                    }
                    seen
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a racing thread failed"))
            .collect()
    });
    let mut per_key: HashMap<String, (i64, usize, usize)> = HashMap::new();
    for (name, id, created) in results {
        let entry = per_key.entry(name.clone()).or_insert((id, 0, 0));
        assert_eq!(entry.0, id, "{}: {name} got two rows", D::NAME);
        if created {
            entry.1 += 1;
        } else {
            entry.2 += 1;
        }
    }
    assert_eq!(per_key.len(), KEYS);
    let mut conn = db.connect();
    let names: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
    let stored = stored_counters::<D>(&mut conn, &names);
    for counter in stored {
        let (id, creators, updates) = per_key[&counter.name];
        assert_eq!(counter.id, id);
        assert_eq!(creators, 1, "{}: {} created once", D::NAME, counter.name);
        assert_eq!(updates, THREADS * CALLS - 1);
        assert_eq!(
            usize::try_from(counter.revision).unwrap(),
            updates,
            "{}: {}: every update counted, none lost",
            D::NAME,
            counter.name
        );
        assert!((0..i32::try_from(THREADS * CALLS).unwrap()).contains(&counter.value));
    }
}
