//! Test harness: the models under test, and for each backend an isolated database
//! (a SQLite file, a PostgreSQL schema, a MariaDB database) that a test creates, connects
//! to from as many threads as it likes, and drops when it ends.
//!
//! PostgreSQL and MySQL/MariaDB are reached through `PG_DATABASE_URL` and
//! `MYSQL_DATABASE_URL`; their tests are ignored (and say so) when these are unset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use diesel::connection::{InstrumentationEvent, LoadConnection, SimpleConnection};
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use get_or_create_core::{Connection as GocConnection, GetOrCreate};

pub mod race;
mod readme;

/// Instantiates every generic case `fn case<D: TestDb>()` listed for the backends listed:
/// `for_backends!([sqlite postgres mysql] case_a, case_b)`, in modules named after the
/// backends. A server backend whose URL is not set is reported as ignored, with the
/// variable to set.
#[macro_export]
macro_rules! for_backends {
    ([$($backend:ident)*] $($case:ident),* $(,)?) => {
        $crate::__backend_modules!([$($backend)*] [$($case),*]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_modules {
    ([] $cases:tt) => {};
    ([$first:ident $($rest:ident)*] $cases:tt) => {
        $crate::__backend_module!($first $cases);
        $crate::__backend_modules!([$($rest)*] $cases);
    };
}

/// `for_backends!` on all three backends.
#[macro_export]
macro_rules! for_each_backend {
    ($($case:ident),* $(,)?) => {
        $crate::for_backends!([sqlite postgres mysql] $($case),*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_module {
    (sqlite [$($case:ident),*]) => {
        mod sqlite {
            $(#[test] fn $case() { super::$case::<$crate::SqliteDb>() })*
        }
    };
    (postgres [$($case:ident),*]) => {
        mod postgres {
            $(
                #[test]
                #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
                fn $case() { super::$case::<$crate::PgDb>() }
            )*
        }
    };
    (mysql [$($case:ident),*]) => {
        #[cfg(feature = "mysql")]
        mod mysql {
            $(
                #[test]
                #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
                fn $case() { super::$case::<$crate::MysqlDb>() }
            )*
        }
    };
}

pub mod asynchronous;
pub mod keys;
pub mod models;

pub mod schema {
    diesel::table! {
        users (id) {
            id -> BigInt,
            email -> Text,
            name -> Text,
            karma -> Integer,
        }
    }

    diesel::table! {
        accounts (id) {
            id -> BigInt,
            email -> Text,
            handle -> Text,
        }
    }

    diesel::table! {
        memberships (id) {
            id -> BigInt,
            org -> Text,
            member -> Text,
            role -> Text,
        }
    }

    diesel::table! {
        tags (id) {
            id -> BigInt,
            label -> Nullable<Text>,
            color -> Text,
        }
    }

    diesel::table! {
        notes (id) {
            id -> BigInt,
            title -> Text,
            body -> Text,
        }
    }

    // `label` is NOT NULL in the database but nullable here, so that a test can send a
    // NULL and see the database refuse it.
    diesel::table! {
        items (id) {
            id -> BigInt,
            code -> Text,
            label -> Nullable<Text>,
            qty -> Integer,
            owner_id -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        texts (id) {
            id -> BigInt,
            k -> Text,
            v -> Text,
        }
    }

    diesel::table! {
        labels (id) {
            id -> BigInt,
            name -> Nullable<Text>,
            color -> Text,
        }
    }

    diesel::table! {
        slots (id) {
            id -> BigInt,
            room -> Text,
            day -> Text,
            note -> Text,
        }
    }

    diesel::allow_tables_to_appear_in_same_query!(users, items);
}

use schema::*;

/// The model: one lookup column, two defaults, an id from the database.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
    #[default]
    pub karma: i32,
}

/// `handle` has a unique index of its own, which a default can violate.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = accounts)]
pub struct Account {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub handle: String,
}

/// A composite lookup, unique on `(org, member)` together.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = memberships)]
pub struct Membership {
    pub id: i64,
    #[lookup]
    pub org: String,
    #[lookup]
    pub member: String,
    #[default]
    pub role: String,
}

/// A nullable lookup column; its field also uses the namespaced attributes and a renamed
/// column.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = tags)]
pub struct Tag {
    pub id: i64,
    #[get_or_create(lookup)]
    #[diesel(column_name = label)]
    pub name: Option<String>,
    #[get_or_create(default)]
    pub color: String,
}

/// `title` has no unique index.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = notes)]
pub struct Note {
    pub id: i64,
    #[lookup]
    pub title: String,
    #[default]
    pub body: String,
}

/// Every kind of constraint on its defaults: `code` is `VARCHAR(16)` and unique, `label`
/// `VARCHAR(32) NOT NULL`, `qty` has `CHECK (qty >= 0)`, `owner_id` references `users`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = items)]
pub struct Item {
    pub id: i64,
    #[lookup]
    pub code: String,
    #[default]
    pub label: Option<String>,
    #[default]
    pub qty: i32,
    #[default]
    pub owner_id: Option<i64>,
}

/// Arbitrary text as key and value: `k` is unique (on MariaDB `VARCHAR(191)` with a
/// binary, no-pad collation, so that equal means byte-equal), `v` is unbounded.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = texts)]
pub struct TextRow {
    pub id: i64,
    #[lookup]
    pub k: String,
    #[default]
    pub v: String,
}

/// A nullable lookup under a plain `UNIQUE`, whose `NULL`s are distinct on every backend
/// (unlike `tags`, which is `NULLS NOT DISTINCT` on PostgreSQL).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = labels)]
pub struct Label {
    pub id: i64,
    #[lookup]
    pub name: Option<String>,
    #[default]
    pub color: String,
}

/// `room` is unique only together with `day`, which the model does not mark as a lookup.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = slots)]
pub struct Slot {
    pub id: i64,
    #[lookup]
    pub room: String,
    #[default]
    pub day: String,
    #[default]
    pub note: String,
}

/// Everything a backend must offer the generic test cases.
pub trait TestDb: Sized + Sync {
    /// The connection type; r2d2 pools of it are tested too.
    type Conn: LoadConnection<Backend = Self::Backend>
        + SimpleConnection
        + R2D2Connection
        + Send
        + 'static
        + GocConnection<User>
        + GocConnection<Account>
        + GocConnection<Membership>
        + GocConnection<Tag>
        + GocConnection<Note>
        + GocConnection<Item>
        + GocConnection<TextRow>
        + GocConnection<Label>
        + GocConnection<Slot>;
    /// The backend.
    type Backend: diesel::backend::Backend;

    /// The backend's name in messages.
    const NAME: &'static str;

    /// A new isolated database holding every table, empty.
    fn create() -> Self;
    /// A connection URL for the isolated database (for pools).
    fn url(&self) -> String;
    /// A new connection to the isolated database.
    fn connect(&self) -> Self::Conn {
        let mut conn = Self::Conn::establish(&self.url())
            .unwrap_or_else(|e| panic!("{}: cannot connect to {}: {e}", Self::NAME, self.url()));
        Self::prepare(&mut conn);
        conn
    }
    /// Per-connection settings.
    fn prepare(_conn: &mut Self::Conn) {}
    /// Every row of `users`, ordered by id.
    fn users(conn: &mut Self::Conn) -> Vec<User>;
    /// The number of rows of a table.
    fn count(conn: &mut Self::Conn, table: &str) -> i64;
    /// Every row of `items`, ordered by id.
    fn items(conn: &mut Self::Conn) -> Vec<Item>;
    /// Every row of `texts`, ordered by id.
    fn texts(conn: &mut Self::Conn) -> Vec<TextRow>;
    /// Every row of `labels`, ordered by id.
    fn labels(conn: &mut Self::Conn) -> Vec<Label>;
    /// Every row of `slots`, ordered by id.
    fn slots(conn: &mut Self::Conn) -> Vec<Slot>;
}

/// The loaders of the tables added for the load, fault and bad-input tests; the same
/// code for every backend, but Diesel's bounds make it simplest to expand it per backend.
macro_rules! load_all {
    () => {
        fn items(conn: &mut Self::Conn) -> Vec<Item> {
            items::table
                .order(items::id)
                .select(Item::as_select())
                .load(conn)
                .expect("items")
        }
        fn texts(conn: &mut Self::Conn) -> Vec<TextRow> {
            texts::table
                .order(texts::id)
                .select(TextRow::as_select())
                .load(conn)
                .expect("texts")
        }
        fn labels(conn: &mut Self::Conn) -> Vec<Label> {
            labels::table
                .order(labels::id)
                .select(Label::as_select())
                .load(conn)
                .expect("labels")
        }
        fn slots(conn: &mut Self::Conn) -> Vec<Slot> {
            slots::table
                .order(slots::id)
                .select(Slot::as_select())
                .load(conn)
                .expect("slots")
        }
    };
}

/// `SELECT COUNT(*)` as a row.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count_rows<C>(conn: &mut C, table: &str) -> i64
where
    C: LoadConnection,
    C::Backend: 'static,
    Count: diesel::QueryableByName<C::Backend>,
    C::Backend: diesel::expression::QueryMetadata<diesel::sql_types::Untyped>,
    diesel::query_builder::SqlQuery: diesel::query_builder::QueryFragment<C::Backend>,
{
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<Count>(conn)
        .expect("count rows")
        .n
}

/// A name no other test (or test run) uses.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

fn run_all(conn: &mut impl SimpleConnection, statements: &[&str]) {
    for statement in statements {
        conn.batch_execute(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// SQLite: a file in the temp directory, in WAL mode so that readers and the writer do
/// not block each other, with a busy timeout so that writers queue instead of failing.
pub struct SqliteDb {
    path: std::path::PathBuf,
}

impl TestDb for SqliteDb {
    type Conn = SqliteConnection;
    type Backend = diesel::sqlite::Sqlite;
    const NAME: &'static str = "SQLite";

    fn create() -> Self {
        let db = SqliteDb {
            path: std::env::temp_dir().join(format!("{}.db", unique_name("goc"))),
        };
        let mut conn = db.connect();
        conn.batch_execute("PRAGMA journal_mode = WAL")
            .expect("WAL");
        run_all(
            &mut conn,
            &[
                "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL, karma INTEGER NOT NULL)",
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    email TEXT NOT NULL UNIQUE, handle TEXT NOT NULL UNIQUE)",
                "CREATE TABLE memberships (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL,
                    member TEXT NOT NULL, role TEXT NOT NULL, UNIQUE (org, member))",
                "CREATE TABLE tags (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT UNIQUE,
                    color TEXT NOT NULL)",
                "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,
                    body TEXT NOT NULL)",
                // SQLite ignores the length of VARCHAR(n): the bad-input tests check that.
                "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    code VARCHAR(16) NOT NULL UNIQUE, label VARCHAR(32) NOT NULL,
                    qty INTEGER NOT NULL CHECK (qty >= 0), owner_id BIGINT REFERENCES users (id))",
                "CREATE TABLE texts (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL UNIQUE,
                    v TEXT NOT NULL)",
                "CREATE TABLE labels (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE,
                    color TEXT NOT NULL)",
                "CREATE TABLE slots (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL,
                    day TEXT NOT NULL, note TEXT NOT NULL, UNIQUE (room, day))",
            ],
        );
        db
    }

    fn url(&self) -> String {
        self.path.display().to_string()
    }

    fn prepare(conn: &mut SqliteConnection) {
        conn.batch_execute("PRAGMA busy_timeout = 30000")
            .expect("busy_timeout");
        // Off by default in SQLite, per connection: without it `items.owner_id` would
        // accept any value.
        conn.batch_execute("PRAGMA foreign_keys = ON")
            .expect("foreign_keys");
    }

    fn users(conn: &mut SqliteConnection) -> Vec<User> {
        users::table
            .order(users::id)
            .select(User::as_select())
            .load(conn)
            .expect("users")
    }

    fn count(conn: &mut SqliteConnection, table: &str) -> i64 {
        count_rows(conn, table)
    }

    load_all!();
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The URL of a server from the environment; a test of that backend only runs when it
/// is set (see `build.rs`), so its absence here is a harness bug.
fn server_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} must be set to run this test"))
}

/// PostgreSQL: a schema of its own, put first on the `search_path` of every connection.
pub struct PgDb {
    schema: String,
}

impl TestDb for PgDb {
    type Conn = PgConnection;
    type Backend = diesel::pg::Pg;
    const NAME: &'static str = "PostgreSQL";

    fn create() -> Self {
        let db = PgDb {
            schema: unique_name("goc"),
        };
        let mut admin = PgConnection::establish(&server_url("PG_DATABASE_URL"))
            .expect("PG_DATABASE_URL: cannot connect to PostgreSQL");
        run_all(&mut admin, &[&format!("CREATE SCHEMA {}", db.schema)]);
        let mut conn = db.connect();
        run_all(
            &mut conn,
            &[
                "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL, karma INTEGER NOT NULL)",
                "CREATE TABLE accounts (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
                    handle TEXT NOT NULL CONSTRAINT accounts_handle_key UNIQUE)",
                "CREATE TABLE memberships (id BIGSERIAL PRIMARY KEY, org TEXT NOT NULL,
                    member TEXT NOT NULL, role TEXT NOT NULL, UNIQUE (org, member))",
                "CREATE TABLE tags (id BIGSERIAL PRIMARY KEY, label TEXT UNIQUE NULLS NOT DISTINCT,
                    color TEXT NOT NULL)",
                "CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL,
                    body TEXT NOT NULL)",
                "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, code VARCHAR(16) NOT NULL UNIQUE,
                    label VARCHAR(32) NOT NULL,
                    qty INTEGER NOT NULL CONSTRAINT items_qty_check CHECK (qty >= 0),
                    owner_id BIGINT CONSTRAINT items_owner_fk REFERENCES users (id))",
                "CREATE TABLE texts (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL UNIQUE,
                    v TEXT NOT NULL)",
                // A plain UNIQUE: NULLs are distinct, as on the other backends.
                "CREATE TABLE labels (id BIGSERIAL PRIMARY KEY, name TEXT UNIQUE,
                    color TEXT NOT NULL)",
                "CREATE TABLE slots (id BIGSERIAL PRIMARY KEY, room TEXT NOT NULL,
                    day TEXT NOT NULL, note TEXT NOT NULL, UNIQUE (room, day))",
            ],
        );
        db
    }

    fn url(&self) -> String {
        let base = server_url("PG_DATABASE_URL");
        let separator = if base.contains('?') { '&' } else { '?' };
        format!(
            "{base}{separator}options=-c%20search_path%3D{}",
            self.schema
        )
    }

    fn users(conn: &mut PgConnection) -> Vec<User> {
        users::table
            .order(users::id)
            .select(User::as_select())
            .load(conn)
            .expect("users")
    }

    fn count(conn: &mut PgConnection, table: &str) -> i64 {
        count_rows(conn, table)
    }

    load_all!();
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&server_url("PG_DATABASE_URL")) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

/// [`TestDb::NAME`] of MySQL/MariaDB, also without the `mysql` feature (which leaves
/// out `MysqlDb`): the cases compare `D::NAME` with it.
pub const MYSQL_NAME: &str = "MySQL/MariaDB";

/// MySQL/MariaDB: a database of its own.
#[cfg(feature = "mysql")]
pub struct MysqlDb {
    database: String,
}

#[cfg(feature = "mysql")]
impl MysqlDb {
    /// The server URL with its database replaced.
    fn url_for(database: &str) -> String {
        let base = server_url("MYSQL_DATABASE_URL");
        let (base, query) = base
            .split_once('?')
            .map_or((base.as_str(), None), |(b, q)| (b, Some(q)));
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        let root = match base[authority_end..].find('/') {
            Some(slash) => &base[..authority_end + slash],
            None => base,
        };
        match query {
            Some(query) => format!("{root}/{database}?{query}"),
            None => format!("{root}/{database}"),
        }
    }
}

#[cfg(feature = "mysql")]
impl TestDb for MysqlDb {
    type Conn = MysqlConnection;
    type Backend = diesel::mysql::Mysql;
    const NAME: &'static str = MYSQL_NAME;

    fn create() -> Self {
        let db = MysqlDb {
            database: unique_name("goc"),
        };
        let mut admin = MysqlConnection::establish(&server_url("MYSQL_DATABASE_URL"))
            .expect("MYSQL_DATABASE_URL: cannot connect to MySQL/MariaDB");
        run_all(&mut admin, &[&format!("CREATE DATABASE {}", db.database)]);
        let mut conn = db.connect();
        run_all(
            &mut conn,
            &[
                "CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    email VARCHAR(191) NOT NULL UNIQUE, name TEXT NOT NULL, karma INT NOT NULL)",
                "CREATE TABLE accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    email VARCHAR(191) NOT NULL UNIQUE, handle VARCHAR(191) NOT NULL,
                    UNIQUE KEY accounts_handle_key (handle))",
                "CREATE TABLE memberships (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    org VARCHAR(191) NOT NULL, member VARCHAR(191) NOT NULL,
                    role TEXT NOT NULL, UNIQUE KEY (org, member))",
                "CREATE TABLE tags (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    label VARCHAR(191) NULL UNIQUE, color TEXT NOT NULL)",
                "CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    title VARCHAR(191) NOT NULL, body TEXT NOT NULL)",
                "CREATE TABLE items (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    code VARCHAR(16) NOT NULL UNIQUE, label VARCHAR(32) NOT NULL,
                    qty INT NOT NULL, owner_id BIGINT NULL,
                    CONSTRAINT items_qty_check CHECK (qty >= 0),
                    CONSTRAINT items_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id))",
                // utf8mb4_nopad_bin: MariaDB's default collation (utf8mb4_general_ci)
                // ignores case and trailing spaces and sees all emoji as equal, and even
                // utf8mb4_bin ignores trailing spaces; this key compares bytes.
                "CREATE TABLE texts (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    k VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL UNIQUE,
                    v LONGTEXT NOT NULL)",
                "CREATE TABLE labels (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    name VARCHAR(191) NULL UNIQUE, color TEXT NOT NULL)",
                "CREATE TABLE slots (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                    room VARCHAR(191) NOT NULL, day VARCHAR(32) NOT NULL, note TEXT NOT NULL,
                    UNIQUE KEY (room, day))",
            ],
        );
        db
    }

    fn url(&self) -> String {
        Self::url_for(&self.database)
    }

    fn users(conn: &mut MysqlConnection) -> Vec<User> {
        users::table
            .order(users::id)
            .select(User::as_select())
            .load(conn)
            .expect("users")
    }

    fn count(conn: &mut MysqlConnection, table: &str) -> i64 {
        count_rows(conn, table)
    }

    load_all!();
}

#[cfg(feature = "mysql")]
impl Drop for MysqlDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = MysqlConnection::establish(&server_url("MYSQL_DATABASE_URL")) {
            let _ = admin.batch_execute(&format!("DROP DATABASE {}", self.database));
        }
    }
}

/// The SQL of every statement a connection starts, as Diesel's instrumentation sees it.
#[derive(Clone, Default)]
pub struct StatementLog(Arc<Mutex<Vec<String>>>);

impl StatementLog {
    /// Installs a new log on `conn`, replacing its instrumentation.
    pub fn install(conn: &mut impl Connection) -> Self {
        let log = StatementLog::default();
        let sink = log.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                sink.0.lock().expect("log").push(query.to_string());
            }
        });
        log
    }

    /// Takes the statements logged so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log"))
    }
}

/// Runs `action` on another connection just before `conn` starts its first statement
/// whose SQL begins with `prefix`: the way to make a call lose a race on purpose.
pub fn before_first<C, F>(conn: &mut C, prefix: &'static str, action: F) -> StatementLog
where
    C: Connection,
    F: FnOnce() + Send + 'static,
{
    let log = StatementLog::default();
    let sink = log.clone();
    let mut action = Some(action);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            if sql.starts_with(prefix) {
                if let Some(action) = action.take() {
                    action();
                }
            }
            sink.0.lock().expect("log").push(sql);
        }
    });
    log
}
