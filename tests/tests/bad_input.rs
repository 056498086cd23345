//! Bad and strange input on each backend: constraint violations in the defaults, values
//! too long for their column, quotes, SQL in values, NUL bytes, emoji, empty strings,
//! 1 MB values, lookups without a unique index of their own, and `NULL` keys.
//!
//! Every call either stores the value exactly (read back and compared) or fails with a
//! typed error naming the problem, and in both cases nothing else in the table changes.

use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use get_or_create_core::{Error, GetOrCreate};
use get_or_create_tests::*;

for_each_backend!(
    not_null_in_the_defaults,
    check_in_the_defaults,
    foreign_key_in_the_defaults,
    value_too_long_for_its_column,
    strange_values_as_defaults,
    strange_values_as_lookups,
    lookup_unique_only_with_an_unmarked_column,
    null_key_under_a_plain_unique_index,
    the_column_collation_decides_equality,
);
/// Cases about one backend's declarations or settings.
mod specific {
    use super::*;
    for_backends!([postgres] null_key_under_nulls_not_distinct);
    for_backends!([mysql] mysql_without_strict_mode_truncates);
}

fn is<D: TestDb, E: TestDb>() -> bool {
    D::NAME == E::NAME
}

/// [`is`] for MySQL/MariaDB, whose `MysqlDb` a build without the `mysql` feature lacks.
fn is_mysql<D: TestDb>() -> bool {
    D::NAME == MYSQL_NAME
}

/// The database's error inside `Error::Database`, as kind and message.
fn database_error(error: &Error) -> (DatabaseErrorKind, String) {
    match error {
        Error::Database(DieselError::DatabaseError(kind, info)) => {
            (*kind, info.message().to_owned())
        }
        other => panic!("expected Error::Database, got {other:?}"),
    }
}

fn item(code: &str) -> ItemLookup {
    ItemLookup { code: code.into() }
}

fn good_defaults() -> ItemDefaults {
    ItemDefaults {
        label: Some("fine".into()),
        qty: 1,
        owner_id: None,
    }
}

/// A table with a few rows, so that "nothing else changed" means something.
fn seeded_items<D: TestDb>() -> (D, D::Conn) {
    let db = D::create();
    let mut conn = db.connect();
    conn.batch_execute("INSERT INTO users (email, name, karma) VALUES ('owner@x', 'Owner', 0)")
        .unwrap();
    for code in ["a", "b"] {
        Item::get_or_create(&mut conn, item(code), good_defaults()).unwrap();
    }
    (db, conn)
}

/// Calls `Item::get_or_create` with defaults that break a constraint; returns the error
/// after checking that `items` is unchanged.
fn refused_item<D: TestDb>(conn: &mut D::Conn, code: &str, defaults: ItemDefaults) -> Error {
    let before = D::items(conn);
    let error = match Item::get_or_create(conn, item(code), defaults) {
        Ok(row) => panic!("{}: stored {row:?}", D::NAME),
        Err(error) => error,
    };
    assert_eq!(D::items(conn), before, "{}: the table changed", D::NAME);
    // The same key with good defaults still works afterwards.
    let (row, created) = Item::get_or_create(conn, item(code), good_defaults()).unwrap();
    assert!(created && row.code == code, "{}: {row:?}", D::NAME);
    error
}

fn not_null_in_the_defaults<D: TestDb>() {
    let (_db, mut conn) = seeded_items::<D>();
    let defaults = ItemDefaults {
        label: None,
        ..good_defaults()
    };
    let error = refused_item::<D>(&mut conn, "c", defaults);
    let (kind, message) = database_error(&error);
    assert_eq!(kind, DatabaseErrorKind::NotNullViolation, "{message}");
    assert!(message.contains("label"), "{}: {message}", D::NAME);
}

fn check_in_the_defaults<D: TestDb>() {
    let (_db, mut conn) = seeded_items::<D>();
    let defaults = ItemDefaults {
        qty: -1,
        ..good_defaults()
    };
    let error = refused_item::<D>(&mut conn, "c", defaults);
    let (kind, message) = database_error(&error);
    if is_mysql::<D>() {
        // MariaDB's 4025 ER_CONSTRAINT_FAILED; Diesel knows only MySQL's 3819.
        assert_eq!(kind, DatabaseErrorKind::Unknown, "{message}");
        assert!(
            message.contains("CONSTRAINT `items_qty_check` failed"),
            "{message}"
        );
    } else {
        assert_eq!(kind, DatabaseErrorKind::CheckViolation, "{message}");
    }
}

fn foreign_key_in_the_defaults<D: TestDb>() {
    let (_db, mut conn) = seeded_items::<D>();
    let defaults = ItemDefaults {
        owner_id: Some(999_999),
        ..good_defaults()
    };
    let error = refused_item::<D>(&mut conn, "c", defaults);
    let (kind, message) = database_error(&error);
    assert_eq!(kind, DatabaseErrorKind::ForeignKeyViolation, "{message}");
}

/// `code` is `VARCHAR(16)` and `label` `VARCHAR(32)`. PostgreSQL and MariaDB (in its
/// default strict mode) refuse a longer value; SQLite ignores the declared length and
/// stores the value whole.
fn value_too_long_for_its_column<D: TestDb>() {
    let (_db, mut conn) = seeded_items::<D>();
    let long_code = "c".repeat(17);
    let long_label = ItemDefaults {
        label: Some("l".repeat(33)),
        ..good_defaults()
    };
    let cases = [(long_code.as_str(), good_defaults()), ("short", long_label)];
    for (code, defaults) in cases {
        let before = D::items(&mut conn);
        let label = defaults.label.clone();
        match Item::get_or_create(&mut conn, item(code), defaults) {
            Ok((row, created)) => {
                assert!(is::<D, SqliteDb>(), "{}: stored {row:?}", D::NAME);
                assert!(created);
                assert_eq!((row.code.as_str(), &row.label), (code, &label));
                let mut after = before;
                after.push(row);
                assert_eq!(D::items(&mut conn), after, "stored exactly");
            }
            Err(error) => {
                assert!(!is::<D, SqliteDb>(), "{error}");
                let (_, message) = database_error(&error);
                let expected = if is::<D, PgDb>() {
                    "value too long for type character varying"
                } else {
                    "Data too long for column"
                };
                assert!(message.contains(expected), "{}: {message}", D::NAME);
                assert_eq!(D::items(&mut conn), before, "{}: unchanged", D::NAME);
            }
        }
    }
}

/// The values every text column is tried with; `None` for a NUL byte on PostgreSQL,
/// whose text type cannot hold one.
fn strange_values() -> Vec<(&'static str, String)> {
    // Random letters and digits: text that does not compress, so that PostgreSQL cannot
    // squeeze a 1 MB key into an index entry.
    let random: String = (0..1 << 20)
        .map(|_| {
            let chars = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            chars[rand::random_range(0..chars.len())] as char
        })
        .collect();
    vec![
        ("quotes", r#"O'Brien said "hi" `there` \' \\"#.to_owned()),
        ("sql", "'; DROP TABLE texts; --".to_owned()),
        ("sql2", "x' OR '1'='1".to_owned()),
        (
            "emoji",
            "🦀 crab, 👍🏽 thumbs, é, 漢字, \u{200b}zero-width".to_owned(),
        ),
        ("empty", String::new()),
        ("spaces", "  padded  ".to_owned()),
        ("newlines", "line\nbreak\r\n\ttab".to_owned()),
        ("nul", "before\0after".to_owned()),
        ("1 MB", random),
    ]
}

/// What a backend does with `value` in a column, if it refuses it: the start of the
/// error message.
fn refusal<D: TestDb>(name: &str, as_lookup: bool) -> Option<&'static str> {
    match (name, as_lookup) {
        ("nul", _) if is::<D, PgDb>() => Some("invalid byte sequence for encoding \"UTF8\": 0x00"),
        // A unique index entry must fit in a page (about 2.7 kB in a B-tree).
        ("1 MB", true) if is::<D, PgDb>() => Some("index row"),
        // `k` is VARCHAR(191).
        ("1 MB", true) if is_mysql::<D>() => Some("Data too long for column 'k'"),
        _ => None,
    }
}

/// Checks one `get_or_create` of `texts` with `(k, v)`: stored exactly and found again
/// by the same key, or refused as `refusal` says; `texts` otherwise unchanged.
fn round_trip<D: TestDb>(conn: &mut D::Conn, what: &str, k: &str, v: &str, refused: Option<&str>) {
    let before = D::texts(conn);
    let lookup = || TextRowLookup { k: k.to_owned() };
    let defaults = || TextRowDefaults { v: v.to_owned() };
    match (TextRow::get_or_create(conn, lookup(), defaults()), refused) {
        (Ok((row, created)), None) => {
            assert!(created, "{}: {what}", D::NAME);
            assert!(
                row.k == k && row.v == v,
                "{}: {what}: returned altered",
                D::NAME
            );
            let mut after = before;
            after.push(row.clone());
            assert!(
                D::texts(conn) == after,
                "{}: {what}: stored altered",
                D::NAME
            );
            let other = TextRowDefaults { v: "other".into() };
            let (again, created) = TextRow::get_or_create(conn, lookup(), other).unwrap();
            assert!(
                !created && again == row,
                "{}: {what}: not found again",
                D::NAME
            );
        }
        (Err(error), Some(expected)) => {
            let (_, message) = database_error(&error);
            assert!(message.contains(expected), "{}: {what}: {message}", D::NAME);
            assert!(
                D::texts(conn) == before,
                "{}: {what}: table changed",
                D::NAME
            );
        }
        (Ok(_), Some(expected)) => panic!("{}: {what}: stored, expected {expected}", D::NAME),
        (Err(error), None) => panic!("{}: {what}: {error}", D::NAME),
    }
}

fn strange_values_as_defaults<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    for (i, (name, value)) in strange_values().into_iter().enumerate() {
        let refused = refusal::<D>(name, false);
        round_trip::<D>(&mut conn, name, &format!("key{i}"), &value, refused);
    }
}

fn strange_values_as_lookups<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    for (name, value) in strange_values() {
        let refused = refusal::<D>(name, true);
        round_trip::<D>(&mut conn, name, &value, "value", refused);
    }
    // None of them was taken for another: one row per stored key.
    let stored = D::texts(&mut conn);
    let mut keys: Vec<&str> = stored.iter().map(|t| t.k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), stored.len());
}

/// `slots` is unique on `(room, day)`; the model looks up by `room` alone. No unique
/// index backs that lookup, so creating a row is refused before anything is written;
/// finding rows is answered from what the table holds, never with a wrong row.
fn lookup_unique_only_with_an_unmarked_column<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let room = || SlotLookup { room: "r1".into() };
    let defaults = |day: &str| SlotDefaults {
        day: day.into(),
        note: "n".into(),
    };

    let error = Slot::get_or_create(&mut conn, room(), defaults("mon")).unwrap_err();
    assert!(
        matches!(&error, Error::NoUniqueIndex { table, .. } if table == "slots"),
        "{}: {error:?}",
        D::NAME
    );
    assert_eq!(D::count(&mut conn, "slots"), 0);

    // One row with that room: it is the only row the lookup matches.
    conn.batch_execute("INSERT INTO slots (room, day, note) VALUES ('r1', 'mon', 'seed')")
        .unwrap();
    let (row, created) = Slot::get_or_create_with(&mut conn, room(), || defaults("tue")).unwrap();
    assert!(!created);
    assert_eq!((row.room.as_str(), row.day.as_str()), ("r1", "mon"));
    // A row that exists is found whatever indexes the table has: only creating needs one.
    let (row, created) = Slot::get_or_create(&mut conn, room(), defaults("tue")).unwrap();
    assert!(!created);
    assert_eq!(row.day, "mon");

    // Two: no single row to return.
    conn.batch_execute("INSERT INTO slots (room, day, note) VALUES ('r1', 'tue', 'seed')")
        .unwrap();
    let error = Slot::get_or_create_with(&mut conn, room(), || defaults("wed")).unwrap_err();
    assert!(
        matches!(&error, Error::MultipleRowsMatch { table, .. } if table == "slots"),
        "{}: {error:?}",
        D::NAME
    );
    assert_eq!(D::count(&mut conn, "slots"), 2);
}

/// Makes `conn`'s next insert lose a race: a rival inserts `sql` first.
fn rival_inserts_first<D: TestDb>(db: &D, conn: &mut D::Conn, sql: &'static str) {
    let mut rival = db.connect();
    let mut sql = Some(sql);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            if query.to_string().starts_with("INSERT") {
                if let Some(sql) = sql.take() {
                    rival.batch_execute(sql).unwrap();
                }
            }
        }
    });
}

/// A plain `UNIQUE` treats `NULL`s as distinct (SQLite, MariaDB, PostgreSQL by default),
/// so it does not protect a `NULL` key: a caller that races a rival for the `NULL` key
/// creates a second row, and from then on the key matches two rows. On MySQL/MariaDB the
/// racing call itself already says so: it reads its new row back by the key (there is
/// no `RETURNING`) and finds two. (The race is staged between a select and an insert,
/// so the select-first `get_or_create_with` takes it on every backend.)
fn null_key_under_a_plain_unique_index<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let null = || LabelLookup { name: None };
    let red = || LabelDefaults {
        color: "red".into(),
    };
    rival_inserts_first(
        &db,
        &mut conn,
        "INSERT INTO labels (name, color) VALUES (NULL, 'rival')",
    );
    match Label::get_or_create_with(&mut conn, null(), red) {
        Ok((row, created)) => {
            assert!(!is_mysql::<D>());
            assert!(created, "{}: nothing stopped the second NULL row", D::NAME);
            assert_eq!(row.color, "red");
        }
        Err(error) => assert!(
            is_mysql::<D>() && matches!(error, Error::MultipleRowsMatch { .. }),
            "{}: {error:?}",
            D::NAME
        ),
    }
    assert_eq!(
        D::labels(&mut conn).len(),
        2,
        "{}: duplicate NULL keys",
        D::NAME
    );

    let error = Label::get_or_create(&mut conn, null(), red()).unwrap_err();
    assert!(
        matches!(&error, Error::MultipleRowsMatch { table, .. } if table == "labels"),
        "{}: {error:?}",
        D::NAME
    );
}

/// PostgreSQL 15+'s `UNIQUE NULLS NOT DISTINCT` (the `tags` table) protects the `NULL`
/// key like any other: the loser gets the rival's row. (Staged between a select and an
/// insert: `get_or_create_with`.)
fn null_key_under_nulls_not_distinct<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    rival_inserts_first(
        &db,
        &mut conn,
        "INSERT INTO tags (label, color) VALUES (NULL, 'rival')",
    );
    let red = TagDefaults {
        color: "red".into(),
    };
    let (row, created) =
        Tag::get_or_create_with(&mut conn, TagLookup { name: None }, || red).unwrap();
    assert!(!created);
    assert_eq!(row.color, "rival");
    assert_eq!(D::count(&mut conn, "tags"), 1);
}

/// A lookup matches what the column's collation calls equal. `users.email` has the
/// server's default collation: on MariaDB that is `utf8mb4_general_ci`, which ignores
/// case and trailing spaces and compares all emoji alike, so a lookup can return a row
/// whose key is not byte-equal to the one asked for (never a row the database would not
/// call equal). PostgreSQL and SQLite compare bytes here.
fn the_column_collation_decides_equality<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    let defaults = || UserDefaults {
        name: "n".into(),
        karma: 0,
    };
    for (first, second) in [("Ann@x", "ann@x"), ("bob@x", "bob@x "), ("🦀@x", "👍@x")] {
        let lookup = |email: &str| UserLookup {
            email: email.into(),
        };
        let (a, _) = User::get_or_create(&mut conn, lookup(first), defaults()).unwrap();
        let (b, created) = User::get_or_create(&mut conn, lookup(second), defaults()).unwrap();
        if is_mysql::<D>() {
            assert!(
                !created,
                "{first:?} and {second:?} are equal under general_ci"
            );
            assert_eq!(b, a);
        } else {
            assert!(created, "{}: {first:?} vs {second:?}", D::NAME);
            assert_eq!(b.email, second);
        }
    }
}

/// Without strict mode (`sql_mode` without `STRICT_TRANS_TABLES`) MariaDB truncates a
/// value too long for its column with a warning instead of an error. The library cannot
/// see that: the row is written truncated, and the read-back by the full key finds
/// nothing, so the call ends in `RetriesExhausted` after writing a row. Keep strict mode.
#[cfg(feature = "mysql")]
fn mysql_without_strict_mode_truncates<D: TestDb>() {
    let db = D::create();
    let mut conn = db.connect();
    conn.batch_execute("SET SESSION sql_mode = ''").unwrap();
    let long_code = "c".repeat(17);
    let error = Item::get_or_create(&mut conn, item(&long_code), good_defaults()).unwrap_err();
    assert!(matches!(error, Error::RetriesExhausted { .. }), "{error:?}");
    let stored = D::items(&mut conn);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].code, "c".repeat(16), "silently truncated");
}
