//! Keys as real schemas declare them, on tables of the shapes crates.io and Lemmy use
//! (`get_or_create_tests::keys` describes each): a key compared through a function
//! (`lower`, an application's own `canon_name`) or a collation, a key unique only among
//! the rows of a partial index (legacy rows, soft delete), a second unique index, no
//! unique index at all, a nullable key behind a type alias, and `check_schema`; and, on
//! PostgreSQL, a column of the case-insensitive type `citext` (`keys/citext.rs`).
//!
//! Every case runs on SQLite, PostgreSQL and MariaDB, each time in a database of its
//! own; MariaDB has no expression or partial indexes, so there a key declared with
//! `function`, `collate` or `where` finds rows and refuses to create one
//! (`Error::KeyNotSupported`). The races run real threads on separate connections, with
//! callers that spell the same key differently, and check the table afterwards (see
//! `keys::Report::assert_exact`); `--nocapture` prints their figures.

use std::any::type_name;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use get_or_create_core::{retry_transaction, Connection as GocConnection, Error, GetOrCreate};
use get_or_create_tests::keys::*;
#[cfg(feature = "mysql")]
use get_or_create_tests::MysqlDb;
use get_or_create_tests::{before_first, PgDb, SqliteDb, StatementLog, TestDb};

mod every {
    use super::*;
    get_or_create_tests::for_each_backend!(
        keys_compared_as_declared,
        keys_scoped_by_a_filter,
        second_index_same_row,
        second_index_other_row,
        second_index_in_a_transaction,
        update_collides_on_second_index,
        several_rows_match,
        lookup_needs_no_unique_index,
        no_unique_index_then_create_it,
        check_schema,
        nullable_key_behind_an_alias,
        race_function_key,
        race_second_index,
        race_column_collation,
        race_update_many_column_collation,
        race_in_transactions,
    );
}

#[path = "keys/citext.rs"]
mod citext;

#[path = "keys/soft_delete_marker.rs"]
mod soft_delete_marker;

mod sqlite_and_mysql {
    use super::*;
    get_or_create_tests::for_backends!(
        [sqlite mysql]
        update_collides_on_second_index_in_a_transaction,
    );
}

mod sqlite_and_postgres {
    use super::*;
    get_or_create_tests::for_backends!(
        [sqlite postgres]
        race_user_function,
        race_partial_index,
        race_soft_delete,
        race_collation,
    );
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The backend and the model, for messages.
fn name_of<D: TestDb, M>() -> String {
    let model = type_name::<M>().rsplit("::").next().unwrap_or_default();
    format!("{} {model}", D::NAME)
}

/// The error of a call that must fail.
fn failed<T: Debug>(what: &str, result: Result<T, Error>) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(error) => error,
    }
}

fn assert_key_not_supported(what: &str, error: &Error, table: &str) {
    match error {
        Error::KeyNotSupported {
            table: reported,
            reason,
            ..
        } => {
            assert_eq!(reported, table, "{what}: {error}");
            assert!(!reason.is_empty(), "{what}: {error}");
        }
        other => panic!("{what}: expected KeyNotSupported, got {other:?}"),
    }
}

fn assert_multiple_rows(what: &str, error: &Error, table: &str, columns: &[&str]) {
    match error {
        Error::MultipleRowsMatch {
            table: reported,
            columns: reported_columns,
            ..
        } => {
            assert_eq!(reported, table, "{what}: {error}");
            assert_eq!(*reported_columns, columns, "{what}: {error}");
        }
        other => panic!("{what}: expected MultipleRowsMatch, got {other:?}"),
    }
}

/// The `create_index` of a `NoUniqueIndex`, after checking the rest of it.
fn no_unique_index(what: &str, error: &Error, table: &str, columns: &[&str]) -> String {
    match error {
        Error::NoUniqueIndex {
            table: reported,
            columns: reported_columns,
            create_index,
            ..
        } => {
            assert_eq!(reported, table, "{what}: {error}");
            assert_eq!(*reported_columns, columns, "{what}: {error}");
            assert!(
                create_index.starts_with("CREATE UNIQUE INDEX "),
                "{what}: {create_index}"
            );
            assert!(
                error.to_string().contains(create_index.as_str()),
                "{what}: the message names the statement: {error}"
            );
            create_index.clone()
        }
        other => panic!("{what}: expected NoUniqueIndex, got {other:?}"),
    }
}

/// What the database names the unique constraint on `categories.category` by.
fn category_constraint<D: TestDb>() -> &'static str {
    if is_sqlite::<D>() {
        "categories.category"
    } else {
        "categories_category_key"
    }
}

fn assert_category_clash<D: TestDb>(what: &str, error: &Error) {
    match error {
        Error::UniqueViolation { constraint, .. } => assert_eq!(
            constraint.as_deref(),
            Some(category_constraint::<D>()),
            "{what}: {error}"
        ),
        other => panic!("{what}: expected UniqueViolation on `category`, got {other:?}"),
    }
}

/// A statement's SQL without its identifier quotes, to compare across backends.
fn unquoted(sql: &str) -> String {
    sql.chars().filter(|c| !matches!(c, '"' | '`')).collect()
}

/// `defaults` for a call that must not need them (its row exists).
fn unused<T>() -> T {
    panic!("the defaults were computed for a row that exists")
}

fn rows<M: Keyed>(rows: &[(M, bool)]) -> Vec<(Row, bool)> {
    rows.iter()
        .map(|(row, created)| (row.row(), *created))
        .collect()
}

// ---------------------------------------------------------------------------------------
// A key compared as declared: function, user function, collation, column collation

/// The calls on a key whose index ignores case (or, for `canon_name`, also `-` versus
/// `_`): `spellings` are four spellings of one key, `fresh` three new keys of which the
/// last two are two spellings of one. Every call finds the row of any spelling; a created
/// row keeps the spelling its creator gave; `compare` is how the hit's `SELECT` compares
/// (identifier quotes removed).
fn key_ignoring_spelling<D, M>(db: &D, spellings: [&str; 4], fresh: [&str; 3], compare: &str)
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let what = name_of::<D, M>();
    let mut conn = db.keys_connect();
    let log = StatementLog::install(&mut conn);

    let (first, created) = M::get_or_create(
        &mut conn,
        M::lookup(spellings[0]),
        M::defaults(spellings[0], "first"),
    )
    .unwrap();
    assert!(created, "{what}");
    assert_eq!(first.row().key, spellings[0], "{what}: stored as given");
    assert_eq!(first.row().tag, "first");
    log.take();

    for spelled in &spellings[1..] {
        let (found, created) =
            M::get_or_create(&mut conn, M::lookup(spelled), M::defaults(spelled, "x")).unwrap();
        assert!(!created, "{what}: {spelled} is the key of {first:?}");
        assert_eq!(found, first, "{what}: {spelled}");
        let (found, created) =
            M::get_or_create_with(&mut conn, M::lookup(spelled), unused).unwrap();
        assert!(!created);
        assert_eq!(found, first, "{what}: {spelled}");
    }
    let statements = log.take();
    assert_eq!(
        statements.len(),
        6,
        "{what}: one statement per hit: {statements:#?}"
    );
    assert!(
        statements.iter().all(|s| unquoted(s).contains(compare)),
        "{what}: the lookup compares as declared ({compare}): {statements:#?}"
    );

    // update_or_create in another spelling changes that row, and leaves its key as it was.
    let (updated, created) = M::update_or_create(
        &mut conn,
        M::lookup(spellings[1]),
        M::defaults(spellings[1], "upd"),
    )
    .unwrap();
    assert!(!created, "{what}");
    let expected = Row {
        tag: "upd".into(),
        ..first.row()
    };
    assert_eq!(updated.row(), expected, "{what}: update_or_create");
    let (updated, created) = M::update_or_create_with(
        &mut conn,
        M::lookup(spellings[2]),
        M::changes("changed"),
        unused,
    )
    .unwrap();
    assert!(!created);
    let first_row = Row {
        tag: "changed".into(),
        ..first.row()
    };
    assert_eq!(updated.row(), first_row, "{what}: update_or_create_with");

    // update_or_create of a new key creates it.
    let (made, created) = M::update_or_create(
        &mut conn,
        M::lookup(fresh[0]),
        M::defaults(fresh[0], "made"),
    )
    .unwrap();
    assert!(created, "{what}");
    assert_eq!(made.row().key, fresh[0]);

    // Bulk: the same new key in two spellings is created once, as its first occurrence
    // spells it; a known key in yet another spelling is found.
    let many = M::get_or_create_many(
        &mut conn,
        [
            (M::lookup(fresh[1]), M::defaults(fresh[1], "b0")),
            (M::lookup(spellings[3]), M::defaults(spellings[3], "b1")),
            (M::lookup(fresh[2]), M::defaults(fresh[2], "b2")),
            (M::lookup(fresh[0]), M::defaults(fresh[0], "b3")),
        ],
    )
    .unwrap();
    let many = rows(&many);
    let created: Vec<bool> = many.iter().map(|(_, created)| *created).collect();
    assert_eq!(created, [true, false, false, false], "{what}: {many:?}");
    assert_eq!(many[0].0, many[2].0, "{what}: one row for both spellings");
    assert_eq!(
        (many[0].0.key.as_str(), many[0].0.tag.as_str()),
        (fresh[1], "b0")
    );
    assert_eq!(many[1].0, first_row);
    assert_eq!(many[3].0, made.row());

    // update_or_create_many leaves each key with its last item's defaults: a new key in
    // two spellings is created once, reported by its first item, and stored as its last
    // item spells it (but for SQLite's column collation, see `new_key_spelled_by`); a
    // stored key in two spellings keeps its own spelling.
    let (new_first, new_last) = (format!("up-{}", fresh[1]), format!("up-{}", fresh[2]));
    let upserted = M::update_or_create_many(
        &mut conn,
        [
            (M::lookup(&new_first), M::defaults(&new_first, "u0")),
            (M::lookup(spellings[0]), M::defaults(spellings[0], "u1")),
            (M::lookup(&new_last), M::defaults(&new_last, "u2")),
            (M::lookup(spellings[3]), M::defaults(spellings[3], "u3")),
        ],
    )
    .unwrap();
    let updated = rows(&upserted);
    let created: Vec<bool> = updated.iter().map(|(_, created)| *created).collect();
    assert_eq!(created, [true, false, false, false], "{what}: {updated:?}");
    let new_row = updated[0].0.clone();
    assert_eq!(
        (new_row.key.as_str(), new_row.tag.as_str()),
        (new_key_spelled_by::<D, M>([&new_first, &new_last]), "u2"),
        "{what}: {updated:?}"
    );
    let first_row = Row {
        tag: "u3".into(),
        ..first_row
    };
    assert_eq!(
        updated,
        [
            (new_row.clone(), true),
            (first_row.clone(), false),
            (new_row.clone(), false),
            (first_row.clone(), false)
        ],
        "{what}: every item gets its key's final row"
    );

    assert_eq!(
        M::stored::<D>(&mut conn),
        [first_row, made.row(), many[0].0.clone(), new_row],
        "{what}: the table"
    );
    M::check_schema(&mut conn).unwrap_or_else(|e| panic!("{what}: check_schema: {e}"));
}

/// Which of the spellings (first, last) of one new key `update_or_create_many` stores. The
/// last, as its statements write each key from its last item; but on SQLite, for a
/// column whose own collation ignores case (undeclared on the lookup), its insert sees two
/// keys and stores the first, whose row the last item then updates.
fn new_key_spelled_by<D: TestDb, M>([first, last]: [&str; 2]) -> &str {
    let column_collation = type_name::<M>() == type_name::<Host>();
    if is_sqlite::<D>() && column_collation {
        first
    } else {
        last
    }
}

/// MariaDB and a key declared with `function`, `collate` or `where`: the row that
/// `seed` stores is found in each of `spellings` by every call that only reads; every
/// call that would create `fresh` is refused before anything is written.
fn found_but_not_created_on_mysql<D, M>(db: &D, seed: &str, spellings: &[&str], fresh: &str)
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    assert!(is_mysql::<D>());
    let what = name_of::<D, M>();
    let mut conn = db.keys_connect();
    D::exec(&mut conn, seed);
    let seeded = M::stored::<D>(&mut conn);
    assert_eq!(seeded.len(), 1, "{what}: the seed");
    let count = || D::count(&mut db.keys_connect(), M::TABLE);
    let before = count();

    for spelled in spellings {
        let (found, created) =
            M::get_or_create(&mut conn, M::lookup(spelled), M::defaults(spelled, "x")).unwrap();
        assert!(!created, "{what}: {spelled}");
        assert_eq!(found.row(), seeded[0], "{what}: {spelled}");
        let (found, _) = M::get_or_create_with(&mut conn, M::lookup(spelled), unused).unwrap();
        assert_eq!(found.row(), seeded[0], "{what}: {spelled}");
        let many =
            M::get_or_create_many(&mut conn, [(M::lookup(spelled), M::defaults(spelled, "x"))])
                .unwrap();
        assert_eq!(
            rows(&many),
            [(seeded[0].clone(), false)],
            "{what}: {spelled}"
        );
    }

    let log = StatementLog::install(&mut conn);
    let error = failed(
        &what,
        M::get_or_create(&mut conn, M::lookup(fresh), M::defaults(fresh, "x")),
    );
    assert_key_not_supported(&what, &error, M::TABLE);
    let statements = log.take();
    assert!(
        !statements
            .iter()
            .any(|s| s.to_uppercase().contains("INSERT")),
        "{what}: nothing may be inserted: {statements:#?}"
    );
    let error = failed(
        &what,
        M::get_or_create_with(&mut conn, M::lookup(fresh), || M::defaults(fresh, "x")),
    );
    assert_key_not_supported(&what, &error, M::TABLE);
    let items = [
        (M::lookup(spellings[0]), M::defaults(spellings[0], "x")),
        (M::lookup(fresh), M::defaults(fresh, "x")),
    ];
    let error = failed(&what, M::get_or_create_many(&mut conn, items));
    assert_key_not_supported(&what, &error, M::TABLE);
    let error = failed(
        &what,
        M::update_or_create(&mut conn, M::lookup(fresh), M::defaults(fresh, "x")),
    );
    assert_key_not_supported(&what, &error, M::TABLE);
    let error = failed(&what, M::check_schema(&mut conn));
    assert_key_not_supported(&what, &error, M::TABLE);
    let statements = log.take();
    assert!(
        !statements
            .iter()
            .any(|s| s.to_uppercase().contains("INSERT")),
        "{what}: nothing may be inserted: {statements:#?}"
    );
    assert_eq!(count(), before, "{what}: nothing was written");
    assert_eq!(M::stored::<D>(&mut conn), seeded, "{what}: nothing changed");
}

/// Keys compared as declared, on one database (their tables are disjoint): a function,
/// an application's own function, a collation, and a column's own collation.
fn keys_compared_as_declared<D: KeysDb>() {
    let db = D::create_keys();
    function_key(&db);
    user_function_key(&db);
    collation_key(&db);
    column_collation_key(&db);
}

/// `#[lookup(function = lower)]`, Lemmy's `instance`: `lower(domain) = lower($1)`, backed
/// by `UNIQUE INDEX ON instances (lower(domain))`.
fn function_key<D: KeysDb>(db: &D) {
    if is_mysql::<D>() {
        return found_but_not_created_on_mysql::<D, Instance>(
            db,
            "INSERT INTO instances (domain, software) VALUES ('Lemmy.ML', 'seed')",
            &["Lemmy.ML", "lemmy.ml", "LEMMY.ML"],
            "beehaw.org",
        );
    }
    key_ignoring_spelling::<D, Instance>(
        db,
        ["Lemmy.ML", "lemmy.ml", "LEMMY.ML", "lEmMy.Ml"],
        ["beehaw.org", "Mastodon.Social", "MASTODON.social"],
        "lower(domain) = lower(",
    );
}

/// `#[lookup(function = canon_name)]`, crates.io's `crates`: an application's own
/// function (PostgreSQL: SQL, in the test's schema; SQLite: registered on the
/// connection; MariaDB: a stored function, lookups only).
fn user_function_key<D: KeysDb>(db: &D) {
    if is_mysql::<D>() {
        return found_but_not_created_on_mysql::<D, Krate>(
            db,
            "INSERT INTO krates (name, description) VALUES ('serde-json', 'seed')",
            &["serde-json", "Serde_JSON", "SERDE_json"],
            "tokio",
        );
    }
    key_ignoring_spelling::<D, Krate>(
        db,
        ["serde-json", "Serde_JSON", "SERDE-JSON", "serde_json"],
        ["tokio", "Tokio-Util", "TOKIO_util"],
        "canon_name(name) = canon_name(",
    );
}

/// `#[lookup(collate = ..)]`: SQLite `NOCASE`, PostgreSQL a nondeterministic ICU
/// collation; on MariaDB a collation the server has (`utf8mb4_bin`, which sees `rust`
/// and `Rust` as two keys) finds rows and creates none.
fn collation_key<D: KeysDb>(db: &D) {
    if is_mysql::<D>() {
        return found_but_not_created_on_mysql::<D, TopicBin>(
            db,
            "INSERT INTO topics (name, color) VALUES ('Rust', 'seed')",
            &["Rust"],
            "rust",
        );
    }
    let spellings = ["Rust", "rust", "RUST", "rUsT"];
    let fresh = ["Go", "Zig-Lang", "ZIG-LANG"];
    if is_sqlite::<D>() {
        key_ignoring_spelling::<D, TopicNocase>(db, spellings, fresh, "name COLLATE NOCASE = ");
    } else {
        key_ignoring_spelling::<D, TopicCi>(db, spellings, fresh, "name COLLATE goc_ci = ");
    }
}

/// A plain `#[lookup]` on a column whose own collation ignores case: SQLite
/// `COLLATE NOCASE`, PostgreSQL `COLLATE goc_ci`, MariaDB's default `_ci`, which finds
/// `Ann` for `ann`. Nothing to declare on the model.
fn column_collation_key<D: KeysDb>(db: &D) {
    key_ignoring_spelling::<D, Host>(
        db,
        ["Ann", "ann", "ANN", "aNn"],
        ["Bob", "Cy", "CY"],
        "hostname = ",
    );
}

// ---------------------------------------------------------------------------------------
// A key unique among the rows of a partial index

/// Keys scoped by `#[get_or_create(where = ..)]`, on one database: legacy rows, soft
/// delete.
fn keys_scoped_by_a_filter<D: KeysDb>() {
    let db = D::create_keys();
    partial_index_key(&db);
    soft_delete_key(&db);
}

/// crates.io's `users.gh_id`: `UNIQUE (gh_id) WHERE gh_id > 0`, several legacy rows
/// holding `-1`, and the model's `#[get_or_create(where = "gh_id > 0")]`.
fn partial_index_key<D: KeysDb>(db: &D) {
    let what = name_of::<D, GhUser>();
    let mut conn = db.keys_connect();
    D::exec(
        &mut conn,
        "INSERT INTO gh_users (gh_id, gh_login) VALUES (-1, 'ghost1'), (-1, 'ghost2'),
            (-1, 'ghost3'), (5, 'octo')",
    );
    let legacy = |conn: &mut D::Conn| D::gh_users(conn).iter().filter(|u| u.gh_id == -1).count();
    let octo = GhUser::stored::<D>(&mut conn)[0].clone();
    let lookup = |gh_id: i32| GhUserLookup { gh_id };
    let login = |login: &str| GhUserDefaults {
        gh_login: login.into(),
    };

    // Every call finds a row the filter holds for; several legacy rows are no obstacle.
    let (found, created) = GhUser::get_or_create(&mut conn, lookup(5), login("x")).unwrap();
    assert_eq!((found.row(), created), (octo.clone(), false), "{what}");
    let (found, _) = GhUser::get_or_create_with(&mut conn, lookup(5), unused).unwrap();
    assert_eq!(found.row(), octo);
    // Without the filter, the lookup of -1 sees every legacy row.
    let error = failed(
        &what,
        GhUserAny::get_or_create(
            &mut conn,
            GhUserAnyLookup { gh_id: -1 },
            GhUserAnyDefaults {
                gh_login: "x".into(),
            },
        ),
    );
    assert_multiple_rows(&what, &error, "gh_users", &["gh_id"]);

    if is_mysql::<D>() {
        let error = failed(
            &what,
            GhUser::get_or_create(&mut conn, lookup(7), login("new")),
        );
        assert_key_not_supported(&what, &error, "gh_users");
        let error = failed(
            &what,
            GhUser::get_or_create(&mut conn, lookup(-1), login("new")),
        );
        assert_key_not_supported(&what, &error, "gh_users");
        let many = [(lookup(5), login("x")), (lookup(7), login("new"))];
        let error = failed(&what, GhUser::get_or_create_many(&mut conn, many));
        assert_key_not_supported(&what, &error, "gh_users");
        let error = failed(&what, GhUser::check_schema(&mut conn));
        assert_key_not_supported(&what, &error, "gh_users");
        assert_eq!(
            D::count(&mut conn, "gh_users"),
            4,
            "{what}: nothing was written"
        );
        return;
    }

    let (seven, created) = GhUser::get_or_create(&mut conn, lookup(7), login("seven")).unwrap();
    assert!(created, "{what}");
    let (again, created) = GhUser::get_or_create(&mut conn, lookup(7), login("x")).unwrap();
    assert_eq!((again, created), (seven.clone(), false));

    // A key outside the filter: the row is created (outside a transaction it stays) and
    // the call says that no lookup will find it.
    let error = failed(
        &what,
        GhUser::get_or_create(&mut conn, lookup(-1), login("ghost4")),
    );
    assert!(
        matches!(&error, Error::CreatedOutsideFilter { table, filter, .. } if table == "gh_users" && *filter == "gh_id > 0"),
        "{what}: {error:?}"
    );
    assert_eq!(legacy(&mut conn), 4, "{what}: the row is written");
    let error = failed(
        &what,
        GhUser::get_or_create_with(&mut conn, lookup(-1), || login("ghost5")),
    );
    assert!(
        matches!(error, Error::CreatedOutsideFilter { .. }),
        "{what}: {error:?}"
    );
    let error = failed(
        &what,
        GhUser::update_or_create(&mut conn, lookup(-1), login("ghost6")),
    );
    assert!(
        matches!(error, Error::CreatedOutsideFilter { .. }),
        "{what}: {error:?}"
    );
    assert_eq!(legacy(&mut conn), 6);
    // Inside a transaction the caller rolls it back.
    let outcome = diesel::Connection::transaction(&mut conn, |conn| {
        GhUser::get_or_create(conn, lookup(-1), login("ghost7"))
    });
    assert!(
        matches!(outcome, Err(Error::CreatedOutsideFilter { .. })),
        "{what}: {outcome:?}"
    );
    let outcome = diesel::Connection::transaction(&mut conn, |conn| {
        GhUser::get_or_create_many(
            conn,
            [(lookup(8), login("eight")), (lookup(-1), login("ghost8"))],
        )
    });
    assert!(
        matches!(outcome, Err(Error::CreatedOutsideFilter { .. })),
        "{what}: {outcome:?}"
    );
    assert_eq!(legacy(&mut conn), 6, "{what}: rolled back");

    // Bulk, inside the filter.
    let many = GhUser::get_or_create_many(
        &mut conn,
        [
            (lookup(9), login("nine")),
            (lookup(5), login("x")),
            (lookup(9), login("x")),
        ],
    )
    .unwrap();
    let flags: Vec<bool> = many.iter().map(|(_, created)| *created).collect();
    assert_eq!(flags, [true, false, false], "{what}");
    assert_eq!(many[1].0.row(), octo);
    assert_eq!(many[0].0, many[2].0);
    // update_or_create changes the row of the key, not a legacy row.
    let (updated, created) =
        GhUser::update_or_create(&mut conn, lookup(7), login("renamed")).unwrap();
    assert_eq!(
        (updated.id, updated.gh_login.as_str(), created),
        (seven.id, "renamed", false)
    );
    let logins: Vec<String> = D::gh_users(&mut conn)
        .into_iter()
        .filter(|u| u.gh_id == -1)
        .map(|u| u.gh_login)
        .collect();
    assert_eq!(
        logins,
        ["ghost1", "ghost2", "ghost3", "ghost4", "ghost5", "ghost6"]
    );
    GhUser::check_schema(&mut conn).unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// Soft delete: `UNIQUE (email) WHERE deleted_at IS NULL` and
/// `#[get_or_create(where = "deleted_at IS NULL")]`. A deleted row with the same email is
/// neither found nor in the way of creating the live one.
fn soft_delete_key<D: KeysDb>(db: &D) {
    let what = name_of::<D, Subscriber>();
    let mut conn = db.keys_connect();
    D::exec(
        &mut conn,
        "INSERT INTO subscribers (email, name, deleted_at) VALUES
            ('ann@x', 'Ann (deleted)', 100), ('ann@x', 'Ann (deleted before)', 50),
            ('bob@x', 'Bob', NULL)",
    );
    let lookup = |email: &str| SubscriberLookup {
        email: email.into(),
    };
    let name = |name: &str| SubscriberDefaults { name: name.into() };
    let deleted = |conn: &mut D::Conn| {
        D::subscribers(conn)
            .into_iter()
            .filter(|s| s.deleted_at.is_some())
            .map(|s| (s.email, s.name))
            .collect::<Vec<_>>()
    };
    let (bob, created) = Subscriber::get_or_create(&mut conn, lookup("bob@x"), name("x")).unwrap();
    assert_eq!((bob.name.as_str(), created), ("Bob", false), "{what}");

    if is_mysql::<D>() {
        let error = failed(
            &what,
            Subscriber::get_or_create(&mut conn, lookup("ann@x"), name("Ann")),
        );
        assert_key_not_supported(&what, &error, "subscribers");
        let error = failed(&what, Subscriber::check_schema(&mut conn));
        assert_key_not_supported(&what, &error, "subscribers");
        assert_eq!(D::count(&mut conn, "subscribers"), 3);
        return;
    }

    let (ann, created) =
        Subscriber::get_or_create(&mut conn, lookup("ann@x"), name("Ann")).unwrap();
    assert!(
        created,
        "{what}: the deleted rows are not found and do not block"
    );
    assert_eq!((ann.name.as_str(), ann.deleted_at), ("Ann", None));
    let (again, created) =
        Subscriber::get_or_create(&mut conn, lookup("ann@x"), name("x")).unwrap();
    assert_eq!((again, created), (ann.clone(), false));

    // Delete the live row: the next call creates another.
    D::exec(
        &mut conn,
        &format!(
            "UPDATE subscribers SET deleted_at = 200 WHERE id = {}",
            ann.id
        ),
    );
    let (ann2, created) =
        Subscriber::get_or_create_with(&mut conn, lookup("ann@x"), || name("Ann again")).unwrap();
    assert!(created, "{what}");
    assert_ne!(ann2.id, ann.id);

    // update_or_create changes the live row only.
    let (updated, created) =
        Subscriber::update_or_create(&mut conn, lookup("ann@x"), name("Ann B")).unwrap();
    assert_eq!(
        (updated.id, updated.name.as_str(), created),
        (ann2.id, "Ann B", false)
    );
    let (cy, created) =
        Subscriber::update_or_create(&mut conn, lookup("cy@x"), name("Cy")).unwrap();
    assert!(created && cy.deleted_at.is_none(), "{what}");

    // Bulk.
    let many = Subscriber::get_or_create_many(
        &mut conn,
        [
            (lookup("ann@x"), name("x")),
            (lookup("dee@x"), name("Dee")),
            (lookup("dee@x"), name("x")),
        ],
    )
    .unwrap();
    let flags: Vec<bool> = many.iter().map(|(_, created)| *created).collect();
    assert_eq!(flags, [false, true, false], "{what}");
    assert_eq!(many[0].0.id, ann2.id);

    assert_eq!(
        deleted(&mut conn),
        [
            ("ann@x".to_owned(), "Ann (deleted)".to_owned()),
            ("ann@x".to_owned(), "Ann (deleted before)".to_owned()),
            ("ann@x".to_owned(), "Ann".to_owned()),
        ],
        "{what}: deleted rows are left alone"
    );
    Subscriber::check_schema(&mut conn).unwrap_or_else(|e| panic!("{what}: {e}"));
}

// ---------------------------------------------------------------------------------------
// A second unique index: crates.io's categories, looked up by slug, unique on category too

fn category(slug: &str, category: &str, description: &str) -> (CategoryLookup, CategoryDefaults) {
    (
        CategoryLookup { slug: slug.into() },
        CategoryDefaults {
            category: category.into(),
            description: description.into(),
        },
    )
}

/// One of the calls, on a slug.
type CategoryCall<C> = fn(&mut C, &str) -> Result<(Category, bool), Error>;

/// A rival that inserts a row just before `conn` starts its first statement beginning
/// with `INSERT`, in a transaction it commits while our statement waits for it.
fn rival_before_our_insert<D: KeysDb>(
    db: &D,
    conn: &mut D::Conn,
    insert: String,
) -> (
    StatementLog,
    Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
) {
    let mut rival = db.keys_connect();
    let handle = Arc::new(Mutex::new(None));
    let rival_thread = Arc::clone(&handle);
    let log = before_first(conn, "INSERT", move || {
        let (inserted, wait) = std::sync::mpsc::channel();
        *rival_thread.lock().unwrap() = Some(std::thread::spawn(move || {
            rival.batch_execute("BEGIN").expect("the rival's BEGIN");
            rival.batch_execute(&insert).expect("the rival's insert");
            inserted.send(()).expect("the test waits");
            std::thread::sleep(std::time::Duration::from_millis(150));
            rival.batch_execute("COMMIT").expect("the rival's COMMIT");
        }));
        wait.recv().expect("the rival inserted");
    });
    (log, handle)
}

/// The insert collides, on the second unique index and the key's, with the very row the
/// key names (a rival stored it meanwhile): each call returns that row, not created, and
/// no error. On MariaDB the duplicate-key error names `category` (InnoDB checks it
/// first), not the key's index.
fn second_index_same_row<D: KeysDb>() {
    let what = name_of::<D, Category>();
    let db = D::create_keys();
    let calls: [(&str, CategoryCall<D::Conn>); 4] = [
        ("get_or_create", |conn, slug| {
            let (lookup, defaults) = category(slug, &category_of(slug), "ours");
            Category::get_or_create(conn, lookup, defaults)
        }),
        ("get_or_create_with", |conn, slug| {
            let (lookup, defaults) = category(slug, &category_of(slug), "ours");
            Category::get_or_create_with(conn, lookup, || defaults)
        }),
        ("update_or_create", |conn, slug| {
            let (lookup, defaults) = category(slug, &category_of(slug), "ours");
            Category::update_or_create(conn, lookup, defaults)
        }),
        ("get_or_create_many", |conn, slug| {
            let item = category(slug, &category_of(slug), "ours");
            let mut rows = Category::get_or_create_many(conn, [item])?;
            Ok(rows.remove(0))
        }),
    ];
    for (call, run) in calls {
        let slug = format!("slug-{call}");
        let mut conn = db.keys_connect();
        let insert = format!(
            "INSERT INTO categories (category, slug, description) VALUES ('{}', '{slug}', 'rival')",
            category_of(&slug)
        );
        let (log, rival) = rival_before_our_insert(&db, &mut conn, insert);
        let outcome = run(&mut conn, &slug);
        if let Some(rival) = rival.lock().unwrap().take() {
            rival.join().expect("the rival");
        }
        let statements = log.take();
        let (row, created) =
            outcome.unwrap_or_else(|e| panic!("{what} {call}: {e:?}\nstatements: {statements:#?}"));
        assert!(!created, "{what} {call}: the rival created it");
        assert_eq!(row.slug, slug);
        let expected_description = if call == "update_or_create" {
            "ours"
        } else {
            "rival"
        };
        assert_eq!(
            row.description, expected_description,
            "{what} {call}: {statements:#?}"
        );
        let stored: Vec<Category> = D::categories(&mut conn)
            .into_iter()
            .filter(|c| c.slug == slug)
            .collect();
        assert_eq!(stored, [row], "{what} {call}: one row");
        if is_mysql::<D>() && call != "get_or_create_many" {
            assert!(
                statements.iter().any(|s| s.contains("LOCK IN SHARE MODE")),
                "{what} {call}: the clash was read with a lock: {statements:#?}"
            );
        }
        eprintln!("{what} {call}, insert met the rival's row: {statements:#?}");
    }
}

/// The insert collides on `category` with a different row: `UniqueViolation` naming the
/// constraint, from every call, and nothing is written.
fn second_index_other_row<D: KeysDb>() {
    let what = name_of::<D, Category>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    let (lookup, defaults) = category("rust", "Rust", "the language");
    let (rust, _) = Category::get_or_create(&mut conn, lookup, defaults).unwrap();

    let clash = || category("rust-lang", "Rust", "a clash");
    let (lookup, defaults) = clash();
    let error = failed(&what, Category::get_or_create(&mut conn, lookup, defaults));
    assert_category_clash::<D>(&format!("{what} get_or_create"), &error);
    assert!(
        std::error::Error::source(&error).is_some(),
        "the database error is kept"
    );
    let (lookup, defaults) = clash();
    let error = failed(
        &what,
        Category::get_or_create_with(&mut conn, lookup, || defaults),
    );
    assert_category_clash::<D>(&format!("{what} get_or_create_with"), &error);
    let (lookup, defaults) = clash();
    let error = failed(
        &what,
        Category::update_or_create(&mut conn, lookup, defaults),
    );
    assert_category_clash::<D>(&format!("{what} update_or_create"), &error);
    let (lookup, defaults) = clash();
    let changes = CategoryChanges::from(defaults);
    let error = failed(
        &what,
        Category::update_or_create_with(&mut conn, lookup, changes, unused),
    );
    assert_category_clash::<D>(&format!("{what} update_or_create_with"), &error);
    let error = failed(&what, Category::get_or_create_many(&mut conn, [clash()]));
    assert_category_clash::<D>(&format!("{what} get_or_create_many"), &error);
    assert_eq!(
        D::categories(&mut conn),
        std::slice::from_ref(&rust),
        "{what}: nothing was written"
    );

    // In a bulk call whose other items are fine: those before the clash are stored.
    let error = failed(
        &what,
        Category::get_or_create_many(&mut conn, [category("go", "Go", "fine"), clash()]),
    );
    assert_category_clash::<D>(&format!("{what} get_or_create_many"), &error);
    let slugs: Vec<String> = D::categories(&mut conn)
        .into_iter()
        .map(|c| c.slug)
        .collect();
    assert_eq!(
        slugs,
        ["rust", "go"],
        "{what}: the items before the clash are stored"
    );
}

/// The same clashes inside the caller's transaction: each call fails with
/// `UniqueViolation`, and the transaction goes on (another statement, another call),
/// commits, and keeps what it wrote.
fn second_index_in_a_transaction<D: KeysDb>() {
    let what = name_of::<D, Category>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    let (lookup, defaults) = category("rust", "Rust", "the language");
    Category::get_or_create(&mut conn, lookup, defaults).unwrap();
    let log = StatementLog::install(&mut conn);

    let committed = diesel::Connection::transaction::<_, Error, _>(&mut conn, |conn| {
        let clash = || category("rust-lang", "Rust", "a clash");
        let mut n = 0;
        let mut next = |conn: &mut D::Conn, call: &str, error: Error| -> Result<(), Error> {
            assert_category_clash::<D>(&format!("{what} {call} in a transaction"), &error);
            // Another statement and another call.
            assert_eq!(D::count(conn, "categories"), 1 + n, "{what} {call}");
            n += 1;
            let (lookup, defaults) =
                category(&format!("after-{call}"), &format!("After {call}"), "ok");
            let (_, created) = Category::get_or_create(conn, lookup, defaults)?;
            assert!(created, "{what} {call}: a call after the clash");
            Ok(())
        };
        let (lookup, defaults) = clash();
        let error = failed(&what, Category::get_or_create(conn, lookup, defaults));
        next(conn, "get_or_create", error)?;
        let (lookup, defaults) = clash();
        let error = failed(
            &what,
            Category::get_or_create_with(conn, lookup, || defaults),
        );
        next(conn, "get_or_create_with", error)?;
        let (lookup, defaults) = clash();
        let error = failed(&what, Category::update_or_create(conn, lookup, defaults));
        next(conn, "update_or_create", error)?;
        let error = failed(&what, Category::get_or_create_many(conn, [clash()]));
        next(conn, "get_or_create_many", error)?;
        Ok(())
    });
    let statements = log.take();
    committed.unwrap_or_else(|e| panic!("{what}: {e:?}\nstatements: {statements:#?}"));
    let slugs: Vec<String> = D::categories(&mut conn)
        .into_iter()
        .map(|c| c.slug)
        .collect();
    assert_eq!(
        slugs,
        [
            "rust",
            "after-get_or_create",
            "after-get_or_create_with",
            "after-update_or_create",
            "after-get_or_create_many"
        ],
        "{what}: the transaction committed what it wrote"
    );
}

/// `update_or_create` that changes a row's `category` to another row's: the `UPDATE`
/// collides, `UniqueViolation`, and the caller's transaction is still usable (another
/// statement, another call, commit). (Not on PostgreSQL, where the failed `UPDATE`
/// aborts the transaction: see `library_bugs`.)
fn update_collides_on_second_index_in_a_transaction<D: KeysDb>() {
    let what = name_of::<D, Category>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    for (slug, name) in [("rust", "Rust"), ("web", "Web")] {
        let (lookup, defaults) = category(slug, name, "seed");
        Category::get_or_create(&mut conn, lookup, defaults).unwrap();
    }
    let log = StatementLog::install(&mut conn);
    let clash = |call: &str, error: &Error| {
        if !matches!(error, Error::UniqueViolation { .. }) {
            panic!("{what} {call}: {error:?}; statements: {:#?}", log.take());
        }
        assert_category_clash::<D>(&format!("{what} {call}"), error);
    };
    let committed = diesel::Connection::transaction::<_, Error, _>(&mut conn, |conn| {
        let (lookup, defaults) = category("web", "Rust", "renamed");
        let error = failed(&what, Category::update_or_create(conn, lookup, defaults));
        clash("update_or_create", &error);
        let changes = CategoryChanges {
            category: Some("Rust".into()),
            ..Default::default()
        };
        let error = failed(
            &what,
            Category::update_or_create_with(
                conn,
                CategoryLookup { slug: "web".into() },
                changes,
                unused,
            ),
        );
        clash("update_or_create_with", &error);
        assert_eq!(D::count(conn, "categories"), 2, "{what}: another statement");
        let (lookup, defaults) = category("go", "Go", "after");
        let (_, created) = Category::get_or_create(conn, lookup, defaults)?;
        assert!(created, "{what}: another call");
        Ok(())
    });
    let statements = log.take();
    committed.unwrap_or_else(|e| panic!("{what}: {e:?}\nstatements: {statements:#?}"));
    let stored: Vec<(String, String)> = D::categories(&mut conn)
        .into_iter()
        .map(|c| (c.slug, c.category))
        .collect();
    let expected =
        [("rust", "Rust"), ("web", "Web"), ("go", "Go")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(stored, expected, "{what}");
}

/// The same `update_or_create` outside a transaction: `UniqueViolation` naming the
/// constraint, and nothing changed.
fn update_collides_on_second_index<D: KeysDb>() {
    let what = name_of::<D, Category>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    for (slug, name) in [("rust", "Rust"), ("web", "Web")] {
        let (lookup, defaults) = category(slug, name, "seed");
        Category::get_or_create(&mut conn, lookup, defaults).unwrap();
    }
    let before = D::categories(&mut conn);
    let (lookup, defaults) = category("web", "Rust", "renamed");
    let error = failed(
        &what,
        Category::update_or_create(&mut conn, lookup, defaults),
    );
    assert_category_clash::<D>(&format!("{what} update_or_create"), &error);
    let changes = CategoryChanges {
        category: Some("Rust".into()),
        ..Default::default()
    };
    let lookup = CategoryLookup { slug: "web".into() };
    let error = failed(
        &what,
        Category::update_or_create_with(&mut conn, lookup, changes, unused),
    );
    assert_category_clash::<D>(&format!("{what} update_or_create_with"), &error);
    assert_eq!(D::categories(&mut conn), before, "{what}: nothing changed");
}

// ---------------------------------------------------------------------------------------
// Several matching rows, no unique index

/// Several rows match: every call says so, on every backend, and writes nothing. Lemmy's
/// `language` (no unique index on `code`), crates.io's legacy `gh_id = -1` rows under a
/// model without the filter, and Lemmy's `instance` as it is (unique on the exact domain,
/// two spellings stored, looked up by `lower(domain)`). (`update_or_create` and, on
/// SQLite and PostgreSQL, `get_or_create_many` say otherwise: see `library_bugs`.)
fn several_rows_match<D: KeysDb>() {
    let calls: &[&str] = if is_mysql::<D>() {
        &[
            "get_or_create",
            "get_or_create_with",
            "get_or_create_many",
            "in a transaction",
        ]
    } else {
        &["get_or_create", "get_or_create_with", "in a transaction"]
    };
    several_rows_match_in::<D>(calls);
}

fn several_rows_match_in<D: KeysDb>(calls: &[&str]) {
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    D::exec(
        &mut conn,
        "INSERT INTO languages (code, name) VALUES ('en', 'English'), ('en', 'English (dup)'),
            ('fr', 'French')",
    );
    D::exec(
        &mut conn,
        "INSERT INTO gh_users (gh_id, gh_login) VALUES (-1, 'ghost1'), (-1, 'ghost2')",
    );
    D::exec(
        &mut conn,
        "INSERT INTO domains_exact (domain, software) VALUES ('Example.ORG', 'a'),
            ('example.org', 'b')",
    );
    every_call_finds_several::<D, Language>(&mut conn, "en", &["code"], calls);
    every_call_finds_several::<D, GhUserAny>(&mut conn, "-1", &["gh_id"], calls);
    every_call_finds_several::<D, LemmyInstance>(&mut conn, "EXAMPLE.org", &["domain"], calls);
}

/// One of the calls, by name, for key `key`, its row dropped.
fn call_by_name<D, M>(conn: &mut D::Conn, call: &str, key: &str) -> Result<(), Error>
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let (lookup, defaults) = (M::lookup(key), M::defaults(key, "new"));
    match call {
        "get_or_create" => M::get_or_create(conn, lookup, defaults).map(drop),
        "get_or_create_with" => M::get_or_create_with(conn, lookup, || defaults).map(drop),
        "update_or_create" => M::update_or_create(conn, lookup, defaults).map(drop),
        "update_or_create_with" => {
            M::update_or_create_with(conn, lookup, M::changes("new"), || defaults).map(drop)
        }
        "get_or_create_many" => M::get_or_create_many(conn, [(lookup, defaults)]).map(drop),
        other => unreachable!("no call {other}"),
    }
}

fn every_call_finds_several<D, M>(conn: &mut D::Conn, key: &str, columns: &[&str], calls: &[&str])
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let what = name_of::<D, M>();
    let before = M::stored::<D>(conn);
    let log = StatementLog::install(conn);
    for &call in calls {
        let what = format!("{what} {call}");
        log.take();
        let outcome = if call == "in a transaction" {
            // The transaction goes on afterwards.
            diesel::Connection::transaction::<_, Error, _>(conn, |conn| {
                let outcome = call_by_name::<D, M>(conn, "get_or_create", key);
                Ok((outcome, D::count(conn, M::TABLE)))
            })
            .map(|(outcome, count)| {
                assert_eq!(count, before.len() as i64, "{what}");
                outcome
            })
            .unwrap_or_else(|e| panic!("{what}: the transaction failed: {e:?}"))
        } else {
            call_by_name::<D, M>(conn, call, key)
        };
        let statements = log.take();
        match outcome {
            Err(Error::MultipleRowsMatch {
                table,
                columns: reported,
                ..
            }) if table == M::TABLE && reported == columns => {}
            other => panic!(
                "{what}: expected MultipleRowsMatch, got {other:?}; statements: {statements:#?}"
            ),
        }
    }
    assert_eq!(M::stored::<D>(conn), before, "{what}: nothing was written");
}

/// A lookup never needs a unique index, only creating a row does: a key that matches
/// one row of a table without any unique index is found by every call. (Not by
/// `get_or_create_many` on SQLite and PostgreSQL, nor by `update_or_create` on MariaDB:
/// see `library_bugs`.)
fn lookup_needs_no_unique_index<D: KeysDb>() {
    let calls: &[&str] = if is_mysql::<D>() {
        &["get_or_create", "get_or_create_with", "get_or_create_many"]
    } else {
        &[
            "get_or_create",
            "get_or_create_with",
            "update_or_create",
            "update_or_create_with",
        ]
    };
    stored_key_found_without_unique_index::<D>(calls);
}

fn stored_key_found_without_unique_index<D: KeysDb>(calls: &[&str]) {
    let what = name_of::<D, Language>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    D::exec(
        &mut conn,
        "INSERT INTO languages (code, name) VALUES ('fr', 'French'), ('de', 'German')",
    );
    let stored = Language::stored::<D>(&mut conn);
    let log = StatementLog::install(&mut conn);
    for &call in calls {
        let what = format!("{what} {call}");
        log.take();
        let lookup = Language::lookup("fr");
        let got: Result<Vec<(Language, bool)>, Error> = match call {
            "get_or_create" => {
                Language::get_or_create(&mut conn, lookup, Language::defaults("fr", "x"))
                    .map(|row| vec![row])
            }
            "get_or_create_with" => {
                Language::get_or_create_with(&mut conn, lookup, unused).map(|row| vec![row])
            }
            "update_or_create" => {
                Language::update_or_create(&mut conn, lookup, Language::defaults("fr", "French"))
                    .map(|row| vec![row])
            }
            "update_or_create_with" => Language::update_or_create_with(
                &mut conn,
                lookup,
                Language::changes("French"),
                unused,
            )
            .map(|row| vec![row]),
            "get_or_create_many" => Language::get_or_create_many(
                &mut conn,
                [
                    (Language::lookup("de"), Language::defaults("de", "x")),
                    (lookup, Language::defaults("fr", "x")),
                ],
            ),
            other => unreachable!("no call {other}"),
        };
        let statements = log.take();
        let got = got.unwrap_or_else(|e| panic!("{what}: {e:?}; statements: {statements:#?}"));
        let expected = if call == "get_or_create_many" {
            vec![(stored[1].clone(), false), (stored[0].clone(), false)]
        } else {
            vec![(stored[0].clone(), false)]
        };
        assert_eq!(rows(&got), expected, "{what}");
    }
    assert_eq!(
        Language::stored::<D>(&mut conn),
        stored,
        "{what}: nothing was written"
    );
}

/// No unique index backs the key: creating a row is refused with `NoUniqueIndex`, whose
/// `create_index` is a statement for this backend; once it has run, the calls work.
/// A plain key (`regions`) everywhere; on SQLite and PostgreSQL also an expression key
/// (Lemmy's `instance` unique on the exact domain, looked up by `lower(domain)`) and a
/// filter the partial index does not back (`gh_id <> -1`, the index being `gh_id > 0`).
fn no_unique_index_then_create_it<D: KeysDb>() {
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    create_the_missing_index::<D, Region>(&mut conn, "eu", "code", |sql| {
        assert!(unquoted(sql).contains("ON regions (code)"), "{sql}");
    });
    if is_mysql::<D>() {
        return;
    }
    create_the_missing_index::<D, GhUserNotLegacy>(&mut conn, "7", "gh_id", |sql| {
        assert!(
            unquoted(sql).contains("(gh_id) WHERE (gh_id <> -1)"),
            "{sql}"
        );
    });
    if D::NAME == PgDb::NAME {
        // The advice is named `domains_exact_domain_key`, PostgreSQL's own name for the
        // table's unique constraint on `domain`: renamed here, see `library_bugs`.
        D::exec(
            &mut conn,
            "ALTER TABLE domains_exact RENAME CONSTRAINT domains_exact_domain_key
                TO domains_exact_exact_domain",
        );
    }
    create_the_missing_index::<D, LemmyInstanceFixed>(&mut conn, "Lemmy.ML", "domain", |sql| {
        assert!(
            unquoted(sql).contains("ON domains_exact ((lower(domain)))"),
            "{sql}"
        );
    });
}

fn create_the_missing_index<D, M>(
    conn: &mut D::Conn,
    key: &str,
    column: &'static str,
    check_sql: impl Fn(&str),
) where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let what = name_of::<D, M>();
    let before = M::stored::<D>(conn);
    let columns = [column];
    let create =
        |conn: &mut D::Conn| M::get_or_create(conn, M::lookup(key), M::defaults(key, "new"));
    let error = failed(&what, create(conn));
    let create_index = no_unique_index(&what, &error, M::TABLE, &columns);
    check_sql(&create_index);
    let error = failed(
        &what,
        M::get_or_create_with(conn, M::lookup(key), || M::defaults(key, "new")),
    );
    assert_eq!(
        no_unique_index(&what, &error, M::TABLE, &columns),
        create_index
    );
    let error = failed(
        &what,
        M::update_or_create(conn, M::lookup(key), M::defaults(key, "new")),
    );
    assert_eq!(
        no_unique_index(&what, &error, M::TABLE, &columns),
        create_index
    );
    let error = failed(
        &what,
        M::get_or_create_many(conn, [(M::lookup(key), M::defaults(key, "new"))]),
    );
    assert_eq!(
        no_unique_index(&what, &error, M::TABLE, &columns),
        create_index
    );
    let error = failed(&what, M::check_schema(conn));
    assert_eq!(
        no_unique_index(&what, &error, M::TABLE, &columns),
        create_index
    );
    assert_eq!(M::stored::<D>(conn), before, "{what}: nothing was written");

    eprintln!("{what}: running the advice: {create_index}");
    D::exec(conn, &create_index);
    M::check_schema(conn).unwrap_or_else(|e| panic!("{what}: after {create_index}: {e}"));
    let (row, created) =
        create(conn).unwrap_or_else(|e| panic!("{what}: after {create_index}: {e}"));
    assert!(created, "{what}");
    let (again, created) = create(conn).unwrap();
    assert_eq!((again, created), (row, false), "{what}");
}

/// `check_schema`: `Ok` when an index backs the key as declared (a column, an
/// expression, a partial index, a collation); `NoUniqueIndex` with the statement to run
/// when none does; on MariaDB `KeyNotSupported` for a key it cannot back.
fn check_schema<D: KeysDb>() {
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    macro_rules! ok {
        ($($model:ty),*) => {$(
            <$model>::check_schema(&mut conn)
                .unwrap_or_else(|e| panic!("{}: {e}", name_of::<D, $model>()));
        )*};
    }
    macro_rules! missing {
        ($model:ty, $table:literal, $column:literal, $contains:expr) => {{
            let what = name_of::<D, $model>();
            let error = failed(&what, <$model>::check_schema(&mut conn));
            let sql = no_unique_index(&what, &error, $table, &[$column]);
            assert!(unquoted(&sql).contains($contains), "{what}: {sql}");
        }};
    }
    macro_rules! not_supported {
        ($($model:ty: $table:literal),*) => {$(
            let what = name_of::<D, $model>();
            let error = failed(&what, <$model>::check_schema(&mut conn));
            assert_key_not_supported(&what, &error, $table);
        )*};
    }
    // Backed on every backend: plain keys (MariaDB: a `_ci` column), a second index, a
    // nullable key.
    ok!(InstanceExact, Category, Host, Coded);
    // No unique index on `name` itself (only on `canon_name(name)`), none on
    // `languages.code`, and `gh_id` is unique only where `gh_id > 0`.
    missing!(KrateExact, "krates", "name", "(name)");
    missing!(Language, "languages", "code", "ON languages (code)");
    if is_mysql::<D>() {
        missing!(GhUserAny, "gh_users", "gh_id", "ON gh_users (gh_id)");
        not_supported!(
            Instance: "instances",
            Krate: "krates",
            CategoryCi: "categories",
            TopicBin: "topics",
            GhUser: "gh_users",
            GhUserNotLegacy: "gh_users",
            Subscriber: "subscribers"
        );
        return;
    }
    ok!(Instance, Krate, CategoryCi, GhUser, Subscriber);
    if is_sqlite::<D>() {
        ok!(TopicNocase);
    } else {
        ok!(TopicCi);
    }
    // An index on the column, but the key declared with `function = lower`.
    missing!(
        LemmyInstance,
        "domains_exact",
        "domain",
        "((lower(domain)))"
    );
    // A partial index, but the key declared without `where`, or with another one.
    missing!(GhUserAny, "gh_users", "gh_id", "(gh_id)");
    missing!(GhUserNotLegacy, "gh_users", "gh_id", "WHERE (gh_id <> -1)");
    let what = name_of::<D, GhUserAny>();
    let error = failed(&what, GhUserAny::check_schema(&mut conn));
    let sql = no_unique_index(&what, &error, "gh_users", &["gh_id"]);
    assert!(!sql.contains("WHERE"), "{what}: {sql}");
}

// ---------------------------------------------------------------------------------------
// A nullable key behind a type alias

/// `#[lookup] code: Code` with `type Code = Option<String>` on a `Nullable<Text>` column:
/// `None` is matched with `IS NULL`, so calling twice with `None` gives one row
/// (PostgreSQL's index is `NULLS NOT DISTINCT`; elsewhere a plain `UNIQUE`, which
/// protects `NULL` from sequential calls only).
fn nullable_key_behind_an_alias<D: KeysDb>() {
    let what = name_of::<D, Coded>();
    let db = D::create_keys();
    let mut conn = db.keys_connect();
    let lookup = |code: Code| CodedLookup { code };
    let label = |label: &str| CodedDefaults {
        label: label.into(),
    };
    let (none, created) = Coded::get_or_create(&mut conn, lookup(None), label("none")).unwrap();
    assert!(created && none.code.is_none(), "{what}");
    let (again, created) = Coded::get_or_create(&mut conn, lookup(None), label("x")).unwrap();
    assert_eq!(
        (again, created),
        (none.clone(), false),
        "{what}: IS NULL, not = NULL"
    );
    let (again, _) = Coded::get_or_create_with(&mut conn, lookup(None), unused).unwrap();
    assert_eq!(again, none);
    let (a, created) =
        Coded::get_or_create(&mut conn, lookup(Some("a".into())), label("a")).unwrap();
    assert!(created);
    let (updated, created) =
        Coded::update_or_create(&mut conn, lookup(None), label("none2")).unwrap();
    assert_eq!(
        (updated.id, updated.label.as_str(), created),
        (none.id, "none2", false)
    );
    let many = Coded::get_or_create_many(
        &mut conn,
        [
            (lookup(None), label("x")),
            (lookup(Some("a".into())), label("x")),
            (lookup(None), label("x")),
            (lookup(Some("b".into())), label("b")),
        ],
    )
    .unwrap();
    let flags: Vec<bool> = many.iter().map(|(_, created)| *created).collect();
    assert_eq!(flags, [false, false, false, true], "{what}");
    assert_eq!(
        (many[0].0.id, many[2].0.id, many[1].0.id),
        (none.id, none.id, a.id)
    );
    assert_eq!(D::count(&mut conn, "codes"), 3, "{what}");
    Coded::check_schema(&mut conn).unwrap_or_else(|e| panic!("{what}: {e}"));
}

// ---------------------------------------------------------------------------------------
// Races: real threads on separate connections, then the table

/// Shuffled: each thread its own order.
const SHUFFLED: Race = Race {
    threads: 8,
    keys: 64,
    order: Order::Shuffled,
    batch: 1,
    offset: 0,
};

/// Lockstep: all threads at each key at once.
const LOCKSTEP: Race = Race {
    threads: 8,
    keys: 64,
    order: Order::Lockstep,
    batch: 1,
    offset: 0,
};

/// `get_or_create_many` of 16 keys per call, shuffled.
const BULK: Race = Race {
    threads: 8,
    keys: 64,
    order: Order::Shuffled,
    batch: 16,
    offset: 0,
};

/// A caller's spelling of key `key`: thread `t` uses spelling `t % 4`.
fn domain(key: usize, thread: usize) -> String {
    spelling(&format!("lemmy{key}.ml"), thread, false)
}

fn krate(key: usize, thread: usize) -> String {
    spelling(&format!("my-crate-{key}"), thread, true)
}

fn slug(key: usize, thread: usize) -> String {
    spelling(&format!("slug-{key}"), thread, false)
}

fn host(key: usize, thread: usize) -> String {
    spelling(&format!("host{key}.example"), thread, false)
}

fn topic(key: usize, thread: usize) -> String {
    spelling(&format!("topic-{key}"), thread, false)
}

fn gh_id(key: usize, _thread: usize) -> String {
    (key + 1).to_string()
}

fn email(key: usize, _thread: usize) -> String {
    format!("user{key}@example.com")
}

/// Races `M`'s key shuffled, in lockstep and in bulk (`shapes`), one after the other on
/// one database that `seed` fills first, each race on keys of its own: see
/// [`Report::assert_exact`] for what must hold. Afterwards the table holds the seed's rows
/// and one row per key, nothing else.
fn race_model<D, M>(spell: fn(usize, usize) -> String, seed: fn(&mut D::Conn))
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    race_shapes::<D, M>(
        spell,
        seed,
        &[
            ("shuffled", SHUFFLED),
            ("lockstep", LOCKSTEP),
            ("bulk", BULK),
        ],
    );
}

fn race_shapes<D, M>(
    spell: fn(usize, usize) -> String,
    seed: fn(&mut D::Conn),
    shapes: &[(&str, Race)],
) where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let what = name_of::<D, M>();
    let db = D::create_keys();
    seed(&mut db.keys_connect());
    let seeded = M::stored::<D>(&mut db.keys_connect()).len();
    let mut rows = 0;
    let mut previous: Option<Race> = None;
    for &(shape, load) in shapes {
        let load = match previous {
            Some(previous) => load.after(previous),
            None => load,
        };
        previous = Some(load);
        let call: BatchCall<D::Conn> = if load.batch == 1 {
            single_call::<D, M>
        } else {
            bulk_call::<D, M>
        };
        let report = race(&db, load, |_| {}, spell, call);
        let stored = M::stored::<D>(&mut db.keys_connect());
        let what = format!("{what} {shape}");
        let own = report.assert_exact(&what, load, &stored, M::canon);
        rows += own;
        eprintln!("{}", report.summary("", &what, own));
    }
    assert_eq!(
        M::stored::<D>(&mut db.keys_connect()).len(),
        seeded + rows,
        "{what}: the seed and one row per key, nothing else"
    );
}

fn no_seed<C>(_: &mut C) {}

/// `lower(domain)` (MariaDB: a plain key on the `_ci` column), keys spelled
/// `LEMMY1.ML`, `lemmy1.ml`, `Lemmy1.Ml`, ..: the race is decided by the expression index.
fn race_function_key<D: KeysDb>() {
    if is_mysql::<D>() {
        race_model::<D, InstanceExact>(domain, no_seed);
    } else {
        race_model::<D, Instance>(domain, no_seed);
    }
}

/// `canon_name(name)`: spellings differ in case and in `-` versus `_`.
fn race_user_function<D: KeysDb>() {
    race_model::<D, Krate>(krate, no_seed);
}

/// The key's index and `category` both collide for every loser (the category is the
/// key's canonical form): on MariaDB the error names `category`; on SQLite the insert's
/// conflict target is the key, so a clash on `category` is raised and explained by the
/// read that follows.
fn race_second_index<D: KeysDb>() {
    if is_mysql::<D>() {
        race_model::<D, Category>(slug, no_seed);
    } else {
        race_model::<D, CategoryCi>(slug, no_seed);
    }
}

/// A plain key on a column whose collation ignores case, on every backend.
fn race_column_collation<D: KeysDb>() {
    race_model::<D, Host>(host, no_seed);
}

/// `update_or_create_many` on a column whose own collation ignores case, 16 keys a call,
/// every thread in its own spelling: each key's row is created once, as its creator spelled
/// it, and settles with some caller's values, the row every caller got.
fn race_update_many_column_collation<D: KeysDb>() {
    let what = format!("{} update_or_create_many", name_of::<D, Host>());
    let db = D::create_keys();
    let call = |conn: &mut D::Conn, thread: usize, asked: &[String]| {
        let items = asked
            .iter()
            .map(|key| (Host::lookup(key), Host::defaults(key, &tag(thread))));
        let rows = Host::update_or_create_many(conn, items)?;
        Ok(rows
            .iter()
            .map(|(row, created)| {
                let row = row.row();
                Got::new(row.id, &row.key, &row.tag, *created)
            })
            .collect())
    };
    let report = race(&db, BULK, |_| {}, host, call);
    let stored = Host::stored::<D>(&mut db.keys_connect());
    let rows = report.assert_upserted(&what, BULK, &stored, Host::canon);
    eprintln!("{}", report.summary("", &what, rows));
    assert_eq!(stored.len(), rows, "{what}: the table");
}

/// `COLLATE NOCASE` (SQLite), `COLLATE goc_ci` (PostgreSQL).
fn race_collation<D: KeysDb>() {
    if is_sqlite::<D>() {
        race_model::<D, TopicNocase>(topic, no_seed);
    } else {
        race_model::<D, TopicCi>(topic, no_seed);
    }
}

/// The partial index `gh_id > 0`, with legacy `-1` rows stored.
fn race_partial_index<D: KeysDb>() {
    race_model::<D, GhUser>(gh_id, |conn| {
        D::exec(
            conn,
            "INSERT INTO gh_users (gh_id, gh_login) VALUES (-1, 'ghost'), (-1, 'ghost'), (-1, 'ghost')",
        );
    });
    // The legacy rows are untouched.
}

/// Soft delete, with deleted rows stored for every key (two for every third key).
fn race_soft_delete<D: KeysDb>() {
    race_model::<D, Subscriber>(email, |conn| {
        let mut values = Vec::new();
        for key in 0..SHUFFLED.keys {
            values.push(format!("('{}', 'deleted', 1)", email(key, 0)));
            if key % 3 == 0 {
                values.push(format!("('{}', 'deleted', 2)", email(key, 0)));
            }
        }
        D::exec(
            conn,
            &format!(
                "INSERT INTO subscribers (email, name, deleted_at) VALUES {}",
                values.join(", ")
            ),
        );
    });
}

/// Every call in a transaction of its own, at every isolation level (SQLite: every kind
/// of transaction): where the backend asks for a retry (PostgreSQL `REPEATABLE READ` and
/// `SERIALIZABLE`, MariaDB `SERIALIZABLE`, SQLite deferred) under `retry_transaction`,
/// elsewhere without any retry. Spelled keys on a case-insensitive column, and the
/// second unique index.
fn race_in_transactions<D: KeysDb>() {
    let db = D::create_keys();
    let (mut hosts, mut categories) = ((0, 0), (0, 0));
    for level in D::levels() {
        let (offset, rows) = race_level::<D, Host>(&db, &level, host, hosts.0);
        hosts = (offset, hosts.1 + rows);
        let (offset, rows) = if is_mysql::<D>() {
            race_level::<D, Category>(&db, &level, slug, categories.0)
        } else {
            race_level::<D, CategoryCi>(&db, &level, slug, categories.0)
        };
        categories = (offset, categories.1 + rows);
    }
    let mut conn = db.keys_connect();
    assert_eq!(
        D::count(&mut conn, "hosts") as usize,
        hosts.1,
        "{}: hosts",
        D::NAME
    );
    assert_eq!(
        D::count(&mut conn, "categories") as usize,
        categories.1,
        "{}",
        D::NAME
    );
}

/// The races of one level, on `db`, from key `offset` on; returns the next free key and
/// how many rows the races' keys have.
fn race_level<D, M>(
    db: &D,
    level: &Level<D::Conn>,
    spell: fn(usize, usize) -> String,
    mut offset: usize,
) -> (usize, usize)
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let what = format!("{} in {} transactions", name_of::<D, M>(), level.name);
    let mut rows = 0;
    for load in [SHUFFLED, LOCKSTEP] {
        let load = Race { offset, ..load };
        offset += load.keys;
        let attempts = AtomicUsize::new(0);
        let max_attempts = if level.retries { 50 } else { 1 };
        let report = race(db, load, level.prepare, spell, |conn, thread, asked| {
            retry_transaction(max_attempts, || {
                attempts.fetch_add(1, Ordering::Relaxed);
                (level.run)(conn, &mut |conn| single_call::<D, M>(conn, thread, asked))
            })
        });
        let stored = M::stored::<D>(&mut db.keys_connect());
        let what = format!("{what} {:?}", load.order);
        let own = report.assert_exact(&what, load, &stored, M::canon);
        rows += own;
        eprintln!(
            "{}, {} transaction attempts{}",
            report.summary("", &what, own),
            attempts.load(Ordering::Relaxed),
            if level.retries {
                " (retried)"
            } else {
                " (no retry)"
            }
        );
    }
    // Where retries are needed, the same race without them: a call returns the right row
    // or asks for its transaction to be rerun, nothing else.
    if level.retries {
        let load = Race { offset, ..SHUFFLED };
        offset += load.keys;
        let report = race(db, load, level.prepare, spell, |conn, thread, asked| {
            (level.run)(conn, &mut |conn| single_call::<D, M>(conn, thread, asked))
        });
        let stored = M::stored::<D>(&mut db.keys_connect());
        let what = format!("{what} not retried");
        let own = report.assert_consistent(&what, &stored, M::canon, |kind| {
            kind == "TransactionMustBeRetried" || kind.starts_with("Database(SerializationFailure")
        });
        rows += own;
        eprintln!("{}", report.summary("", &what, own));
    }
    (offset, rows)
}

/// PostgreSQL only: a `NULL` key under `UNIQUE NULLS NOT DISTINCT` is protected like any
/// other value (elsewhere `NULL`s are distinct and two racing callers can both create
/// one, as the README says).
#[test]
#[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
fn race_null_key_on_postgres() {
    // The first key is NULL; each shape on a database of its own.
    fn spell(key: usize, _thread: usize) -> String {
        if key == 0 {
            "NULL".to_owned()
        } else {
            format!("code{key}")
        }
    }
    for shape in [("lockstep", LOCKSTEP), ("bulk", BULK)] {
        race_shapes::<PgDb, Coded>(spell, no_seed, &[shape]);
    }
}

/// MariaDB: one bulk call of three new keys, and before each of its inserts a rival
/// stores the next of them. The insert of a chunk fails as a whole on the first key
/// stored meanwhile; the second attempt reads the rival's row and answers the other two
/// items one by one, each losing to the rival again and reading its row, so the call
/// ends with the rival's three rows. (PostgreSQL's and SQLite's bulk inserts skip a
/// clash, so they need no second attempt.)
#[cfg(feature = "mysql")]
#[test]
#[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
fn mysql_bulk_call_losing_on_a_different_key_each_attempt() {
    use diesel::connection::{Connection, InstrumentationEvent};
    let db = MysqlDb::create_keys();
    let mut conn = db.keys_connect();
    Host::get_or_create(&mut conn, Host::lookup("warm"), Host::defaults("warm", "t")).unwrap();
    let rival = Mutex::new((db.keys_connect(), 0));
    let statements = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&statements);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            if sql.starts_with("INSERT") {
                let (rival, inserted) = &mut *rival.lock().unwrap();
                if *inserted < 3 {
                    let key = ["a", "b", "c"][*inserted];
                    rival
                        .batch_execute(&format!(
                            "INSERT INTO hosts (hostname, software) VALUES ('{key}', 'rival')"
                        ))
                        .expect("the rival's insert");
                    *inserted += 1;
                    sink.lock().unwrap().push(format!("(rival stores {key})"));
                }
            }
            sink.lock().unwrap().push(sql);
        }
    });
    let outcome = Host::get_or_create_many(
        &mut conn,
        ["a", "b", "c"].map(|key| (Host::lookup(key), Host::defaults(key, "ours"))),
    );
    let statements = statements.lock().unwrap().clone();
    let rows = outcome.unwrap_or_else(|e| panic!("{e:?}; statements: {statements:#?}"));
    let got: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|(row, created)| (row.hostname.as_str(), row.software.as_str(), *created))
        .collect();
    assert_eq!(
        got,
        [
            ("a", "rival", false),
            ("b", "rival", false),
            ("c", "rival", false)
        ],
        "{statements:#?}"
    );
    let inserts: Vec<&String> = statements
        .iter()
        .filter(|s| s.starts_with("INSERT"))
        .collect();
    assert_eq!(
        inserts.len(),
        3,
        "one insert per lost race: {statements:#?}"
    );
    // After the lost race, one row per insert: a multi-row insert that fails takes back
    // its earlier rows, and the callers waiting on them deadlock.
    assert!(
        inserts[1..].iter().all(|sql| !sql.contains("), (")),
        "the missing items one by one: {inserts:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Library bugs: what the library does against its documented behaviour. Each test states
// the expected behaviour and is ignored with the reason; run them with `-- --ignored`.
// Those no longer ignored were fixed, and stay as regression tests.

mod library_bugs {
    use super::*;

    /// Several rows match a key no unique index backs: `update_or_create` and
    /// `update_or_create_with` must say `MultipleRowsMatch`, as the other calls do.
    fn update_or_create_when_several_rows_match<D: KeysDb>() {
        several_rows_match_in::<D>(&["update_or_create", "update_or_create_with"]);
    }

    #[test]
    fn sqlite_update_or_create_when_several_rows_match() {
        update_or_create_when_several_rows_match::<SqliteDb>();
    }

    #[test]
    fn postgres_update_or_create_when_several_rows_match() {
        update_or_create_when_several_rows_match::<PgDb>();
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_update_or_create_when_several_rows_match() {
        update_or_create_when_several_rows_match::<MysqlDb>();
    }

    #[test]
    fn sqlite_get_or_create_many_when_several_rows_match() {
        several_rows_match_in::<SqliteDb>(&["get_or_create_many"]);
    }

    #[test]
    fn postgres_get_or_create_many_when_several_rows_match() {
        several_rows_match_in::<PgDb>(&["get_or_create_many"]);
    }

    /// A lookup never needs a unique index: the bulk call of stored keys must find them.
    #[test]
    fn sqlite_get_or_create_many_of_stored_keys_without_unique_index() {
        stored_key_found_without_unique_index::<SqliteDb>(&["get_or_create_many"]);
    }

    #[test]
    fn postgres_get_or_create_many_of_stored_keys_without_unique_index() {
        stored_key_found_without_unique_index::<PgDb>(&["get_or_create_many"]);
    }

    /// A lookup never needs a unique index: `update_or_create` of a stored key changes it.
    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_update_or_create_of_a_stored_key_without_unique_index() {
        stored_key_found_without_unique_index::<MysqlDb>(&[
            "update_or_create",
            "update_or_create_with",
        ]);
    }

    /// PostgreSQL: an `update_or_create` whose `UPDATE` collides on another unique index
    /// must leave the caller's transaction usable, as `Error::UniqueViolation` documents
    /// ("on every backend"). (It once ran without a savepoint, so the next statement failed
    /// with "current transaction is aborted".)
    #[test]
    fn postgres_update_collides_on_second_index_in_a_transaction() {
        update_collides_on_second_index_in_a_transaction::<PgDb>();
    }

    /// MariaDB: `update_or_create` of a stored row creates nothing, so a key declared with
    /// `function` or `where` must find and change it, as `get_or_create` finds it.
    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_update_or_create_of_a_stored_row_with_a_function_or_filter_key() {
        let db = MysqlDb::create_keys();
        let mut conn = db.keys_connect();
        MysqlDb::exec(
            &mut conn,
            "INSERT INTO instances (domain, software) VALUES ('Lemmy.ML', 'seed');
             INSERT INTO gh_users (gh_id, gh_login) VALUES (5, 'octo')",
        );
        let log = StatementLog::install(&mut conn);
        let outcome = Instance::update_or_create(
            &mut conn,
            Instance::lookup("lemmy.ml"),
            Instance::defaults("lemmy.ml", "updated"),
        );
        let statements = log.take();
        let (row, created) =
            outcome.unwrap_or_else(|e| panic!("{e:?}; statements: {statements:#?}"));
        assert_eq!(
            (row.domain.as_str(), row.software.as_str(), created),
            ("Lemmy.ML", "updated", false)
        );
        let (row, created) = GhUser::update_or_create(
            &mut conn,
            GhUser::lookup("5"),
            GhUser::defaults("5", "octocat"),
        )
        .unwrap();
        assert_eq!((row.gh_login.as_str(), created), ("octocat", false));
    }

    /// The advice of `NoUniqueIndex` must run on the database that raised it. For a key
    /// on `lower(domain)` next to a column declared `UNIQUE` (Lemmy's `instance`), it names
    /// the index `<table>_<column>_key`, which is PostgreSQL's own name for that column's
    /// unique constraint: `relation "domains_exact_domain_key" already exists`.
    #[test]
    fn postgres_create_index_next_to_a_unique_column() {
        let db = PgDb::create_keys();
        let mut conn = db.keys_connect();
        create_the_missing_index::<PgDb, LemmyInstanceAdvised>(
            &mut conn,
            "Lemmy.ML",
            "domain",
            |sql| {
                assert!(
                    unquoted(sql).contains("ON domains_exact ((lower(domain)))"),
                    "{sql}"
                );
            },
        );
    }

    /// A lookup never needs a unique index, only creating does: `update_or_create_many`
    /// of stored keys on a table without one updates their rows; a call with a key not
    /// stored is `NoUniqueIndex`, and one with a key of several rows `MultipleRowsMatch`,
    /// both before anything is written.
    fn update_or_create_many_without_unique_index<D: KeysDb>() {
        let what = D::NAME;
        let db = D::create_keys();
        let mut conn = db.keys_connect();
        D::exec(
            &mut conn,
            "INSERT INTO languages (code, name) VALUES ('fr', 'French'), ('de', 'German'),
                ('en', 'English'), ('en', 'English (dup)')",
        );
        let item =
            |code: &str, name: &str| (Language::lookup(code), Language::defaults(code, name));
        let log = StatementLog::install(&mut conn);
        let outcome = Language::update_or_create_many(
            &mut conn,
            [item("de", "Deutsch"), item("fr", "Francais")],
        );
        let statements = log.take();
        let got = rows(&outcome.unwrap_or_else(|e| panic!("{what}: {e:?}; {statements:#?}")));
        let stored = Language::stored::<D>(&mut conn);
        assert_eq!(
            got,
            [(stored[1].clone(), false), (stored[0].clone(), false)],
            "{what}"
        );
        assert_eq!(
            [stored[0].tag.as_str(), stored[1].tag.as_str()],
            ["Francais", "Deutsch"],
            "{what}"
        );

        let error = failed(
            what,
            Language::update_or_create_many(&mut conn, [item("fr", "X"), item("es", "Spanish")]),
        );
        no_unique_index(what, &error, "languages", &["code"]);
        assert_eq!(
            Language::stored::<D>(&mut conn),
            stored,
            "{what}: nothing written"
        );

        let error = failed(
            what,
            Language::update_or_create_many(&mut conn, [item("fr", "Y"), item("en", "Z")]),
        );
        assert_multiple_rows(what, &error, "languages", &["code"]);
        assert_eq!(
            Language::stored::<D>(&mut conn),
            stored,
            "{what}: nothing written"
        );
    }

    #[test]
    fn sqlite_update_or_create_many_without_unique_index() {
        update_or_create_many_without_unique_index::<SqliteDb>();
    }

    #[test]
    fn postgres_update_or_create_many_without_unique_index() {
        update_or_create_many_without_unique_index::<PgDb>();
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_update_or_create_many_without_unique_index() {
        update_or_create_many_without_unique_index::<MysqlDb>();
    }

    /// A plain key on a column whose own collation ignores case, on every backend:
    /// `update_or_create_many` must leave a key given in several spellings with the
    /// values of its last item, whichever spellings come first, stored key or new. (The
    /// bulk statements, which compare the items' keys as the lookup declares, once took
    /// the spellings for two keys: PostgreSQL's `UPDATE .. FROM` then wrote the row from
    /// either, SQLite's insert from the first.)
    fn update_many_spellings_on_a_case_insensitive_column<D: KeysDb>() {
        let db = D::create_keys();
        let mut conn = db.keys_connect();
        let what = D::NAME;
        Host::get_or_create(
            &mut conn,
            Host::lookup("Ann"),
            Host::defaults("Ann", "seed"),
        )
        .unwrap();
        for (round, spellings) in [["ann", "ANN", "aNn"], ["ANN", "aNn", "ann"]]
            .iter()
            .enumerate()
        {
            for fresh in [false, true] {
                let spelled = |s: &str| {
                    if fresh {
                        format!("{s}-{round}")
                    } else {
                        s.to_owned()
                    }
                };
                let items: Vec<_> = spellings
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let key = spelled(s);
                        (Host::lookup(&key), Host::defaults(&key, &format!("v{i}")))
                    })
                    .collect();
                let log = StatementLog::install(&mut conn);
                let outcome = Host::update_or_create_many(&mut conn, items);
                let statements = log.take();
                let got = rows(&outcome.unwrap());
                let last = &got[0].0;
                assert_eq!(
                    last.tag, "v2",
                    "{what}: {spellings:?}, new key: {fresh}: {got:?}; {statements:#?}"
                );
                let created: Vec<bool> = got.iter().map(|(_, created)| *created).collect();
                assert_eq!(created, [fresh, false, false], "{what}: {got:?}");
                assert!(got.iter().all(|(row, _)| row == last), "{what}: {got:?}");
                if fresh {
                    let stored = new_key_spelled_by::<D, Host>([
                        &spelled(spellings[0]),
                        &spelled(spellings[2]),
                    ])
                    .to_owned();
                    assert_eq!(last.key, stored, "{what}: {got:?}");
                }
            }
        }
        let stored = Host::stored::<D>(&mut conn);
        assert_eq!(stored.len(), 3, "{what}: {stored:?}");
    }

    #[test]
    fn sqlite_update_many_spellings_on_a_case_insensitive_column() {
        update_many_spellings_on_a_case_insensitive_column::<SqliteDb>();
    }

    #[test]
    fn postgres_update_many_spellings_on_a_case_insensitive_column() {
        update_many_spellings_on_a_case_insensitive_column::<PgDb>();
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_update_many_spellings_on_a_case_insensitive_column() {
        update_many_spellings_on_a_case_insensitive_column::<MysqlDb>();
    }

    /// PostgreSQL, a plain key on a column with a case-insensitive (nondeterministic)
    /// collation, two spellings of one new key in one bulk call: the row must be created
    /// from the values of the item reported as its creator, the first (as
    /// `get_or_create_many` documents). (The insert once ordered the items by the key in
    /// the input's collation, `CY` before `Cy`, not the column's: the row got the later
    /// item's spelling and defaults, yet the first item was reported created.)
    #[test]
    fn postgres_bulk_spellings_on_a_case_insensitive_column() {
        let db = PgDb::create_keys();
        let mut conn = db.keys_connect();
        let log = StatementLog::install(&mut conn);
        let outcome = Host::get_or_create_many(
            &mut conn,
            [
                (Host::lookup("Cy"), Host::defaults("Cy", "first")),
                (Host::lookup("CY"), Host::defaults("CY", "second")),
            ],
        );
        let statements = log.take();
        let many = rows(&outcome.unwrap());
        assert_eq!(
            many,
            [
                (
                    Row {
                        id: many[0].0.id,
                        key: "Cy".into(),
                        tag: "first".into()
                    },
                    true
                ),
                (many[0].0.clone(), false)
            ],
            "statements: {statements:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Async: the same keys through `asynchronous::GetOrCreate` on diesel-async connections

mod asynchronous {
    use std::future::Future;
    use std::sync::Arc;
    use std::time::Instant;

    use diesel_async::{AsyncConnection, SimpleAsyncConnection};
    use get_or_create_core::asynchronous::{
        retry_transaction, Connection as AsyncGocConnection, GetOrCreate,
    };
    use get_or_create_core::Error;
    use get_or_create_tests::keys::{
        category_of, is_mysql, record, spelling, tag, thread_plan, Category, CategoryDefaults,
        CategoryLookup, GhUser, GhUserAny, GhUserAnyDefaults, GhUserAnyLookup, GhUserDefaults,
        GhUserLookup, Got, Host, HostDefaults, HostLookup, Instance, InstanceDefaults,
        InstanceLookup, KeysAsyncDb, KeysDb, Language, LanguageDefaults, LanguageLookup, Order,
        Race, Report, Row,
    };
    use get_or_create_tests::{PgDb, SqliteDb, TestDb};
    use tokio::sync::Barrier;

    get_or_create_tests::for_each_backend_async!(
        async_keys,
        async_second_index_in_a_transaction,
        async_race,
        async_race_in_retried_transactions,
    );

    fn host(hostname: &str) -> HostLookup {
        HostLookup {
            hostname: hostname.into(),
        }
    }

    fn software(software: &str) -> HostDefaults {
        HostDefaults {
            software: software.into(),
        }
    }

    fn instance(domain: &str) -> InstanceLookup {
        InstanceLookup {
            domain: domain.into(),
        }
    }

    fn instance_software(software: &str) -> InstanceDefaults {
        InstanceDefaults {
            software: software.into(),
        }
    }

    fn unused<T>() -> T {
        panic!("the defaults were computed for a row that exists")
    }

    fn flags<M>(rows: &[(M, bool)]) -> Vec<bool> {
        rows.iter().map(|(_, created)| *created).collect()
    }

    /// Keys compared as declared (a column's collation, `lower`), a partial index, several
    /// matching rows and `check_schema`, through the async calls.
    async fn async_keys<D: KeysAsyncDb>() {
        let db = D::create_keys();
        let mut conn = db.connect_async().await;
        let name = D::NAME;

        // A plain key on a case-insensitive column, on every backend.
        let (ann, created) = Host::get_or_create(&mut conn, host("Ann"), software("a"))
            .await
            .unwrap();
        assert!(created, "{name}");
        for spelled in ["ann", "ANN"] {
            let (found, created) = Host::get_or_create(&mut conn, host(spelled), software("x"))
                .await
                .unwrap();
            assert_eq!((found, created), (ann.clone(), false), "{name}: {spelled}");
            let (found, _) = Host::get_or_create_with(&mut conn, host(spelled), unused)
                .await
                .unwrap();
            assert_eq!(found, ann, "{name}: {spelled}");
        }
        let (updated, created) = Host::update_or_create(&mut conn, host("aNN"), software("upd"))
            .await
            .unwrap();
        assert_eq!(
            (
                updated.id,
                updated.hostname.as_str(),
                updated.software.as_str(),
                created
            ),
            (ann.id, "Ann", "upd", false),
            "{name}"
        );
        let many = Host::get_or_create_many(
            &mut conn,
            [
                (host("Bob"), software("b0")),
                (host("ANN"), software("x")),
                (host("Bob"), software("x")),
            ],
        )
        .await
        .unwrap();
        assert_eq!(flags(&many), [true, false, false], "{name}");
        assert_eq!(many[1].0.id, ann.id);
        Host::check_schema(&mut conn).await.unwrap();

        // `lower(domain)`: refused on MariaDB when a row must be created.
        if is_mysql::<D>() {
            conn.batch_execute(
                "INSERT INTO instances (domain, software) VALUES ('Lemmy.ML', 'seed')",
            )
            .await
            .unwrap();
            let (found, created) =
                Instance::get_or_create(&mut conn, instance("lemmy.ml"), instance_software("x"))
                    .await
                    .unwrap();
            assert_eq!((found.domain.as_str(), created), ("Lemmy.ML", false));
            let error =
                Instance::get_or_create(&mut conn, instance("beehaw.org"), instance_software("x"))
                    .await
                    .unwrap_err();
            assert!(
                matches!(error, Error::KeyNotSupported { .. }),
                "{name}: {error:?}"
            );
            let error = Instance::check_schema(&mut conn).await.unwrap_err();
            assert!(
                matches!(error, Error::KeyNotSupported { .. }),
                "{name}: {error:?}"
            );
        } else {
            let (lemmy, created) = Instance::get_or_create(
                &mut conn,
                instance("Lemmy.ML"),
                instance_software("lemmy"),
            )
            .await
            .unwrap();
            assert!(created);
            let (found, created) =
                Instance::get_or_create_with(&mut conn, instance("LEMMY.ml"), unused)
                    .await
                    .unwrap();
            assert_eq!((found, created), (lemmy.clone(), false), "{name}");
            let many = Instance::get_or_create_many(
                &mut conn,
                [
                    (instance("Beehaw.org"), instance_software("b0")),
                    (instance("lemmy.ml"), instance_software("x")),
                    (instance("BEEHAW.ORG"), instance_software("x")),
                ],
            )
            .await
            .unwrap();
            assert_eq!(flags(&many), [true, false, false], "{name}");
            assert_eq!(
                (many[0].0.domain.as_str(), many[0].0.software.as_str()),
                ("Beehaw.org", "b0")
            );
            assert_eq!(many[1].0, lemmy);
            assert_eq!(many[2].0, many[0].0);
            Instance::check_schema(&mut conn).await.unwrap();
        }

        // The partial index `gh_id > 0`, with legacy rows.
        conn.batch_execute(
            "INSERT INTO gh_users (gh_id, gh_login) VALUES (-1, 'ghost1'), (-1, 'ghost2'), (5, 'octo')",
        )
        .await
        .unwrap();
        let gh = |gh_id: i32| GhUserLookup { gh_id };
        let login = |login: &str| GhUserDefaults {
            gh_login: login.into(),
        };
        let (octo, created) = GhUser::get_or_create(&mut conn, gh(5), login("x"))
            .await
            .unwrap();
        assert_eq!((octo.gh_login.as_str(), created), ("octo", false), "{name}");
        let error = GhUserAny::get_or_create(
            &mut conn,
            GhUserAnyLookup { gh_id: -1 },
            GhUserAnyDefaults {
                gh_login: "x".into(),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, Error::MultipleRowsMatch { .. }),
            "{name}: {error:?}"
        );
        if is_mysql::<D>() {
            let error = GhUser::get_or_create(&mut conn, gh(7), login("seven"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::KeyNotSupported { .. }),
                "{name}: {error:?}"
            );
        } else {
            let (seven, created) = GhUser::get_or_create(&mut conn, gh(7), login("seven"))
                .await
                .unwrap();
            assert!(created && seven.gh_id == 7, "{name}");
            let error = GhUser::get_or_create(&mut conn, gh(-1), login("ghost3"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::CreatedOutsideFilter { .. }),
                "{name}: {error:?}"
            );
            let error = GhUser::get_or_create_many(
                &mut conn,
                [(gh(8), login("eight")), (gh(-1), login("ghost4"))],
            )
            .await
            .unwrap_err();
            assert!(
                matches!(error, Error::CreatedOutsideFilter { .. }),
                "{name}: {error:?}"
            );
        }

        // Several rows match a key no unique index backs.
        conn.batch_execute(
            "INSERT INTO languages (code, name) VALUES ('en', 'English'), ('en', 'English')",
        )
        .await
        .unwrap();
        let en = || LanguageLookup { code: "en".into() };
        let english = || LanguageDefaults {
            name: "English".into(),
        };
        let error = Language::get_or_create(&mut conn, en(), english())
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::MultipleRowsMatch { .. }),
            "{name}: {error:?}"
        );
        let error = Language::get_or_create_with(&mut conn, en(), english)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::MultipleRowsMatch { .. }),
            "{name}: {error:?}"
        );
        if is_mysql::<D>() {
            // (SQLite and PostgreSQL say NoUniqueIndex: see `library_bugs`.)
            let error = Language::get_or_create_many(&mut conn, [(en(), english())])
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::MultipleRowsMatch { .. }),
                "{name}: {error:?}"
            );
        }
        assert_eq!(D::count_async(&mut conn, "languages").await, 2, "{name}");
    }

    /// A clash on `category` with a different row inside an async transaction:
    /// `UniqueViolation` naming the constraint, then another statement and another call in
    /// the same transaction, which commits.
    async fn async_second_index_in_a_transaction<D: KeysAsyncDb>() {
        let db = D::create_keys();
        let mut conn = db.connect_async().await;
        let name = D::NAME;
        let category = |slug: &str, category: &str| {
            (
                CategoryLookup { slug: slug.into() },
                CategoryDefaults {
                    category: category.into(),
                    description: "d".into(),
                },
            )
        };
        let (lookup, defaults) = category("rust", "Rust");
        Category::get_or_create(&mut conn, lookup, defaults)
            .await
            .unwrap();
        let expected = if D::NAME == SqliteDb::NAME {
            "categories.category"
        } else {
            "categories_category_key"
        };
        conn.transaction::<_, Error, _>(async |conn| {
            let (lookup, defaults) = category("rust-lang", "Rust");
            let error = Category::get_or_create(conn, lookup, defaults).await.unwrap_err();
            assert!(
                matches!(&error, Error::UniqueViolation { constraint: Some(c), .. } if c == expected),
                "{name}: {error:?}"
            );
            assert_eq!(D::count_async(conn, "categories").await, 1, "{name}");
            let (lookup, defaults) = category("go", "Go");
            let (_, created) = Category::get_or_create(conn, lookup, defaults).await?;
            assert!(created, "{name}");
            let error = Category::get_or_create_many(conn, [category("rust-lang", "Rust")])
                .await
                .unwrap_err();
            assert!(matches!(&error, Error::UniqueViolation { .. }), "{name}: {error:?}");
            assert_eq!(D::count_async(conn, "categories").await, 2, "{name}");
            Ok(())
        })
        .await
        .unwrap();
        let slugs: Vec<String> = D::categories(&mut db.keys_connect())
            .into_iter()
            .map(|c| c.slug)
            .collect();
        assert_eq!(slugs, ["rust", "go"], "{name}: committed");
    }

    /// A model's async call, for the races.
    trait AsyncKeyed: GetOrCreate + Send + 'static {
        fn call<C: AsyncGocConnection<Self>>(
            conn: &mut C,
            key: String,
            tag: String,
        ) -> impl Future<Output = Result<Got, Error>> + Send;
        fn rows<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row>;
    }

    impl AsyncKeyed for Host {
        async fn call<C: AsyncGocConnection<Self>>(
            conn: &mut C,
            key: String,
            tag: String,
        ) -> Result<Got, Error> {
            let (row, created) = Host::get_or_create(conn, host(&key), software(&tag)).await?;
            Ok(Got::new(row.id, &row.hostname, &row.software, created))
        }
        fn rows<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
            D::hosts(conn)
                .into_iter()
                .map(|h| Row {
                    id: h.id,
                    key: h.hostname,
                    tag: h.software,
                })
                .collect()
        }
    }

    impl AsyncKeyed for Category {
        async fn call<C: AsyncGocConnection<Self>>(
            conn: &mut C,
            key: String,
            tag: String,
        ) -> Result<Got, Error> {
            let lookup = CategoryLookup { slug: key.clone() };
            let defaults = CategoryDefaults {
                category: category_of(&key),
                description: tag,
            };
            let (row, created) = Category::get_or_create(conn, lookup, defaults).await?;
            Ok(Got::new(row.id, &row.slug, &row.description, created))
        }
        fn rows<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
            D::categories(conn)
                .into_iter()
                .map(|c| Row {
                    id: c.id,
                    key: c.slug,
                    tag: c.description,
                })
                .collect()
        }
    }

    const TASKS: usize = 8;
    const KEYS: usize = 64;

    /// `TASKS` tokio tasks, each with a connection of its own, ask for `KEYS` keys of `M`
    /// spelled `spell(key, task)` (in a retried transaction each, if `in_transactions`),
    /// then the table is checked as in the sync races.
    async fn race_model<D, M>(db: &D, spell: fn(usize, usize) -> String, in_transactions: bool)
    where
        D: KeysAsyncDb,
        M: AsyncKeyed,
        D::AsyncConn: AsyncGocConnection<M>,
    {
        let load = Race {
            threads: TASKS,
            keys: KEYS,
            order: Order::Shuffled,
            batch: 1,
            offset: 0,
        };
        let start = Arc::new(Barrier::new(TASKS));
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for thread in 0..TASKS {
            let mut conn = db.connect_async().await;
            if in_transactions && D::NAME == PgDb::NAME {
                conn.batch_execute(
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                )
                .await
                .unwrap();
            }
            let (start, attempts) = (Arc::clone(&start), Arc::clone(&attempts));
            let plan = thread_plan(load);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let mut calls = Vec::new();
                for keys in plan {
                    let asked = spell(keys[0], thread);
                    let outcome = if in_transactions {
                        retry_transaction(&mut conn, 50, async |conn| {
                            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            conn.transaction::<_, Error, _>(async |conn| {
                                M::call(conn, asked.clone(), tag(thread)).await
                            })
                            .await
                        })
                        .await
                    } else {
                        M::call(&mut conn, asked.clone(), tag(thread)).await
                    };
                    calls.extend(record(
                        thread,
                        &keys,
                        &[asked],
                        outcome.map(|got| vec![got]),
                    ));
                }
                calls
            }));
        }
        let started = Instant::now();
        let mut report = Report::default();
        for task in tasks {
            report
                .calls
                .extend(task.await.expect("a racing task panicked"));
        }
        report.elapsed = started.elapsed();
        let stored = M::rows::<D>(&mut db.keys_connect());
        let model = std::any::type_name::<M>()
            .rsplit("::")
            .next()
            .unwrap_or_default();
        let what = if in_transactions {
            format!("{} async {model} in retried transactions", D::NAME)
        } else {
            format!("{} async {model}", D::NAME)
        };
        let rows = report.assert_exact(&what, load, &stored, |key| key.to_lowercase());
        assert_eq!(rows, stored.len(), "{what}: one row per key, nothing else");
        let attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{}, {attempts} transaction attempts",
            report.summary("", &what, rows)
        );
    }

    fn host_spelling(key: usize, task: usize) -> String {
        spelling(&format!("host{key}.example"), task, false)
    }

    fn slug(key: usize, _task: usize) -> String {
        format!("slug-{key}")
    }

    /// Spelled keys on a case-insensitive column, and the second unique index.
    async fn async_race<D: KeysAsyncDb>() {
        let db = D::create_keys();
        race_model::<D, Host>(&db, host_spelling, false).await;
        race_model::<D, Category>(&db, slug, false).await;
    }

    /// The same, every call in its own transaction (PostgreSQL `REPEATABLE READ`, MariaDB
    /// `REPEATABLE READ`, SQLite deferred), rerun by `retry_transaction` when asked.
    async fn async_race_in_retried_transactions<D: KeysAsyncDb>() {
        let db = D::create_keys();
        race_model::<D, Host>(&db, host_spelling, true).await;
        race_model::<D, Category>(&db, slug, true).await;
    }
}
