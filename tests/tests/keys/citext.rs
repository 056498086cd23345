//! PostgreSQL's `citext` (the extension of that name): a column type that compares
//! case-insensitively by itself, so a plain `#[lookup]` needs nothing declared and its
//! unique index is a plain `UNIQUE`. Diesel's `sql_types::Citext` maps it to `String`, as
//! `diesel print-schema` writes it.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::*;

diesel::table! {
    use diesel::sql_types::{BigInt, Citext, Text};

    handles (id) {
        id -> BigInt,
        login -> Citext,
        name -> Text,
    }
}

/// A login kept in a `citext UNIQUE` column.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = handles, check_for_backend(diesel::pg::Pg))]
pub struct Handle {
    pub id: i64,
    #[lookup]
    pub login: String,
    #[default]
    pub name: String,
}

fn item(login: &str, name: &str) -> (HandleLookup, HandleDefaults) {
    (
        HandleLookup {
            login: login.into(),
        },
        HandleDefaults { name: name.into() },
    )
}

fn row(handle: &Handle) -> Row {
    Row {
        id: handle.id,
        key: handle.login.clone(),
        tag: handle.name.clone(),
    }
}

/// A database with `handles`. The extension is installed once per database (in `public`,
/// where applications have it), under a lock held until it is committed: tests run in
/// parallel.
fn create() -> PgDb {
    let db = PgDb::create_keys();
    let mut conn = connect(&db);
    PgDb::exec(
        &mut conn,
        "BEGIN;
         SELECT pg_advisory_xact_lock(7215001);
         CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
         COMMIT;
         CREATE TABLE handles (id BIGSERIAL PRIMARY KEY,
             login citext NOT NULL CONSTRAINT handles_login_key UNIQUE,
             name TEXT NOT NULL)",
    );
    db
}

/// A connection whose search path has `public` after the test's schema, as an
/// application's has: `citext`'s operators are found by the search path, and without
/// them `=` would compare as `text`, case-sensitively.
fn connect(db: &PgDb) -> PgConnection {
    let mut conn = db.keys_connect();
    prepare(&mut conn);
    conn
}

fn prepare(conn: &mut PgConnection) {
    PgDb::exec(
        conn,
        "SELECT set_config('search_path', current_setting('search_path') || ', public', false)",
    );
}

fn stored(conn: &mut PgConnection) -> Vec<Row> {
    handles::table
        .order(handles::id)
        .select(Handle::as_select())
        .load(conn)
        .expect("handles")
        .iter()
        .map(row)
        .collect()
}

/// Every call finds a stored login in any spelling; a created row keeps the spelling its
/// creator gave; the bulk calls take two spellings of one login as one key.
#[test]
#[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
fn postgres_citext_key() {
    let db = create();
    let mut conn = connect(&db);
    let (ann, created) =
        Handle::get_or_create(&mut conn, item("Ann", "first").0, item("Ann", "first").1).unwrap();
    assert!(created);
    for spelled in ["ann", "ANN", "aNn"] {
        let (lookup, defaults) = item(spelled, "x");
        let (found, created) = Handle::get_or_create(&mut conn, lookup, defaults).unwrap();
        assert_eq!((found.clone(), created), (ann.clone(), false), "{spelled}");
        let lookup = item(spelled, "x").0;
        let (found, created) =
            Handle::get_or_create_with(&mut conn, lookup, || unreachable!()).unwrap();
        assert_eq!((found, created), (ann.clone(), false), "{spelled}");
    }
    let (updated, created) =
        Handle::update_or_create(&mut conn, item("ANN", "upd").0, item("ANN", "upd").1).unwrap();
    assert_eq!(
        (row(&updated), created),
        (
            Row {
                tag: "upd".into(),
                ..row(&ann)
            },
            false
        )
    );

    let many = Handle::get_or_create_many(
        &mut conn,
        [
            item("Cy", "c0"),
            item("aNN", "c1"),
            item("CY", "c2"),
            item("cy", "c3"),
        ],
    )
    .unwrap();
    let many: Vec<(Row, bool)> = many.iter().map(|(h, c)| (row(h), *c)).collect();
    let cy = many[0].0.clone();
    assert_eq!((cy.key.as_str(), cy.tag.as_str()), ("Cy", "c0"), "{many:?}");
    assert_eq!(
        many,
        [
            (cy.clone(), true),
            (row(&updated), false),
            (cy.clone(), false),
            (cy.clone(), false)
        ]
    );

    let many = Handle::update_or_create_many(
        &mut conn,
        [
            item("Dee", "d0"),
            item("ann", "u1"),
            item("DEE", "d2"),
            item("ANN", "u3"),
        ],
    )
    .unwrap();
    let many: Vec<(Row, bool)> = many.iter().map(|(h, c)| (row(h), *c)).collect();
    let dee = many[0].0.clone();
    assert_eq!(
        (dee.key.as_str(), dee.tag.as_str()),
        ("DEE", "d2"),
        "{many:?}"
    );
    let ann = Row {
        tag: "u3".into(),
        ..row(&ann)
    };
    assert_eq!(
        many,
        [
            (dee.clone(), true),
            (ann.clone(), false),
            (dee.clone(), false),
            (ann.clone(), false)
        ]
    );
    assert_eq!(stored(&mut conn), [ann, cy, dee]);
    Handle::check_schema(&mut conn).unwrap();
}

/// Races on a `citext` key, every thread in its own spelling: shuffled, in lockstep and
/// in bulk; afterwards one row per login, spelled as its one creator gave it.
#[test]
#[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
fn postgres_citext_race() {
    let db = create();
    let mut rows = 0;
    for (shape, load) in [
        ("shuffled", SHUFFLED),
        ("lockstep", LOCKSTEP.after(SHUFFLED)),
        ("bulk", BULK.after(LOCKSTEP.after(SHUFFLED))),
    ] {
        let report = race(
            &db,
            load,
            prepare,
            |key, thread| spelling(&format!("user{key}"), thread, false),
            call,
        );
        let what = format!("PostgreSQL citext {shape}");
        rows += report.assert_exact(&what, load, &stored(&mut connect(&db)), str::to_lowercase);
        eprintln!("{}", report.summary("", &what, rows));
    }
    assert_eq!(stored(&mut connect(&db)).len(), rows);
}

fn call(conn: &mut PgConnection, thread: usize, asked: &[String]) -> Result<Vec<Got>, Error> {
    let got = |(handle, created): (Handle, bool)| {
        Got::new(handle.id, &handle.login, &handle.name, created)
    };
    if let [login] = asked {
        let (lookup, defaults) = item(login, &tag(thread));
        return Handle::get_or_create(conn, lookup, defaults).map(|r| vec![got(r)]);
    }
    let items = asked.iter().map(|login| item(login, &tag(thread)));
    Ok(Handle::get_or_create_many(conn, items)?
        .into_iter()
        .map(got)
        .collect())
}

/// The same key through diesel-async: found in any spelling, by the single and the bulk
/// calls.
mod asynchronous {
    use diesel_async::SimpleAsyncConnection;
    use get_or_create_core::asynchronous::GetOrCreate;
    use get_or_create_tests::asynchronous::AsyncTestDb;
    use get_or_create_tests::keys::Row;

    use super::{create, item, row, Handle};

    #[tokio::test]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    async fn postgres_citext_key_async() {
        let db = create();
        let mut conn = db.connect_async().await;
        conn.batch_execute(
            "SELECT set_config('search_path', current_setting('search_path') || ', public', \
             false)",
        )
        .await
        .expect("search_path");
        let (lookup, defaults) = item("Ann", "first");
        let (ann, created) = Handle::get_or_create(&mut conn, lookup, defaults)
            .await
            .unwrap();
        assert!(created);
        let (lookup, defaults) = item("aNN", "x");
        let found = Handle::get_or_create(&mut conn, lookup, defaults).await;
        assert_eq!(found.unwrap(), (ann.clone(), false));
        let items = [item("Cy", "c0"), item("ANN", "c1"), item("CY", "c2")];
        let many = Handle::get_or_create_many(&mut conn, items).await.unwrap();
        let many: Vec<(Row, bool)> = many.iter().map(|(h, c)| (row(h), *c)).collect();
        let cy = many[0].0.clone();
        assert_eq!((cy.key.as_str(), cy.tag.as_str()), ("Cy", "c0"), "{many:?}");
        assert_eq!(many, [(cy.clone(), true), (row(&ann), false), (cy, false)]);
    }
}
