//! What the benches share: the model, one isolated database per bench and backend (a
//! PostgreSQL schema, a MariaDB database, a SQLite file in WAL mode), the bare-Diesel floors
//! and the hand-written shapes that the library is compared with, and the timers:
//!
//! - [`paired`]: a floor and its rivals in alternating short batches on one connection, so
//!   that the ratios hold on a machine whose load changes under the run;
//! - [`Workers`]: clients on threads, one connection each, for the throughput and
//!   contention benches.
//!
//! PostgreSQL and MariaDB are reached through `PG_DATABASE_URL` and `MYSQL_DATABASE_URL`
//! (defaults: the local servers of `.ci/run`). An unreachable server stops the run with a
//! message; a variable set to the empty string skips that backend.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent, LoadConnection, SimpleConnection};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use get_or_create_core::GetOrCreate;

pub mod bulk;
pub mod update_many;

pub mod schema {
    diesel::table! {
        users (id) {
            id -> BigInt,
            email -> Text,
            name -> Text,
            karma -> Integer,
        }
    }
}

use schema::users;

/// The model: one lookup column, two defaults, an id from the database.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, GetOrCreate)]
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

/// The key of the `i`th row a bench puts in its table before it starts.
pub fn existing_key(i: usize) -> String {
    format!("user{i}@example.com")
}

/// A key no table holds yet: every call returns a new one.
pub fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("new{}@example.com", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The name every bench creates rows with.
pub const NAME: &str = "Bench User";

/// The defaults every bench creates rows with.
pub fn defaults() -> UserDefaults {
    UserDefaults {
        name: NAME.to_owned(),
        karma: 0,
    }
}

/// One item of an `update_or_create` bench: a key and the values its row is to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncItem {
    /// The lookup (`email`).
    pub key: String,
    /// The value `name` is set to.
    pub name: String,
    /// The value `karma` is set to.
    pub karma: i32,
}

impl SyncItem {
    /// The library's `(lookup, defaults)` pair (moves the strings: no copy).
    pub fn into_parts(self) -> (UserLookup, UserDefaults) {
        (
            UserLookup { email: self.key },
            UserDefaults {
                name: self.name,
                karma: self.karma,
            },
        )
    }
}

/// One call of a bench on a connection, with the key it is for.
pub type Call<C> = fn(&mut C, &str);

/// What a bench needs of a backend: its own table, the library's calls, and the
/// hand-written ways of doing the same that the library is compared with.
pub trait Backend: Sized + Sync {
    /// The connection type.
    type Conn: LoadConnection + SimpleConnection + Send + 'static;
    /// The backend's name in reports.
    const NAME: &'static str;
    /// The backend's short name in benchmark ids (`pg`, `mariadb`, `sqlite`).
    const ID: &'static str;

    /// A new isolated database holding an empty `users` table, or `None` when the
    /// backend is skipped (its URL variable is set empty). Panics when the server does
    /// not answer.
    fn create() -> Option<Self>;
    /// A new connection to the isolated database.
    fn connect(&self) -> Self::Conn;

    /// Empties `users`, restarts its id counter, fills it with the rows of
    /// `existing_key(0..rows)` and refreshes the planner's statistics (`ANALYZE`).
    fn reset(conn: &mut Self::Conn, rows: usize);
    /// The number of rows in `users`.
    fn count(conn: &mut Self::Conn) -> i64;
    /// How many id values the table's sequence or `AUTO_INCREMENT` counter has handed
    /// out since the last [`reset`](Backend::reset) emptied it.
    fn ids_used(conn: &mut Self::Conn) -> i64;

    /// The id of the server's process or thread that runs this connection's statements
    /// (PostgreSQL: the backend's pid; MariaDB: the connection thread's `TID`), to read its
    /// CPU time; `None` for SQLite, which runs in the client's thread.
    fn server_task(conn: &mut Self::Conn) -> Option<i64>;

    /// The floor of a hit: Diesel's `filter(email.eq(..)).first()` (`LIMIT 1`, bound).
    fn bare_first(conn: &mut Self::Conn, key: &str) -> User;
    /// The same select with `.limit(2).load()`, which sees several matches as the
    /// library's `LIMIT 2` does.
    fn bare_limit2(conn: &mut Self::Conn, key: &str) -> User;
    /// The floor of a miss: Diesel's own insert that reads the row back (`INSERT ..
    /// RETURNING`; MariaDB, where Diesel has no `RETURNING`: `INSERT`, then `SELECT` by
    /// the key).
    fn try_insert(conn: &mut Self::Conn, key: &str) -> QueryResult<User>;
    /// [`try_insert`](Backend::try_insert), which must succeed.
    fn bare_insert(conn: &mut Self::Conn, key: &str) -> User {
        Self::try_insert(conn, key).expect("bare insert")
    }

    /// The row of `key`, if any: the select without `LIMIT` (`.load()`; the key is
    /// unique), the fastest way to ask on SQLite, where Diesel's bound `LIMIT ?` costs
    /// several times the lookup (see BENCHMARKS.md).
    fn find(conn: &mut Self::Conn, key: &str) -> Option<User>;
    /// [`find`](Backend::find) of a key that exists.
    fn bare_load(conn: &mut Self::Conn, key: &str) -> User;

    /// The library.
    fn get_or_create(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// The library, with lazy defaults.
    fn get_or_create_with(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// The library's bulk call.
    fn get_or_create_many(conn: &mut Self::Conn, keys: &[String]) -> Vec<(User, bool)>;
    /// The library's `update_or_create` of one item.
    fn update_or_create(conn: &mut Self::Conn, item: SyncItem) -> (User, bool);
    /// The library's `update_or_create_many`.
    fn update_or_create_many(conn: &mut Self::Conn, items: Vec<SyncItem>) -> Vec<(User, bool)>;

    /// Hand-written, select first and never failing on a race: `SELECT`; when nothing
    /// is found, an insert that does nothing on a clash (PostgreSQL, SQLite: `INSERT ..
    /// ON CONFLICT (email) DO NOTHING RETURNING`; MariaDB: a plain `INSERT`, its
    /// duplicate-key error caught); when that inserted nothing, `SELECT` again.
    fn select_first(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// Hand-written, insert first: the insert of [`select_first`](Backend::select_first),
    /// then `SELECT` when it inserted nothing. Consumes an id on every call where the
    /// database allows it.
    fn insert_first(conn: &mut Self::Conn, key: &str) -> (User, bool);
}

/// The rows `reset` inserts per statement (3 binds per row stays under every backend's
/// limit).
const FILL_CHUNK: usize = 1000;

/// The values of a new row: its key and the defaults.
pub type NewRow<'a> = (
    diesel::dsl::Eq<users::email, &'a str>,
    diesel::dsl::Eq<users::name, &'static str>,
    diesel::dsl::Eq<users::karma, i32>,
);

/// The values of the new row of `key`.
pub fn insert_values(key: &str) -> NewRow<'_> {
    (
        users::email.eq(key),
        users::name.eq(NAME),
        users::karma.eq(0),
    )
}

/// The parts of [`Backend`] that are the same Diesel code for every backend but have to be
/// compiled per connection type.
macro_rules! common_impl {
    () => {
        fn bare_first(conn: &mut Self::Conn, key: &str) -> User {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .first(conn)
                .expect("bare select")
        }

        fn bare_limit2(conn: &mut Self::Conn, key: &str) -> User {
            let mut found = users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .limit(2)
                .load(conn)
                .expect("bare select, limit 2");
            assert_eq!(found.len(), 1, "one row per key");
            found.pop().expect("the key exists")
        }

        fn find(conn: &mut Self::Conn, key: &str) -> Option<User> {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .load(conn)
                .expect("select")
                .pop()
        }

        fn bare_load(conn: &mut Self::Conn, key: &str) -> User {
            Self::find(conn, key).expect("the key exists")
        }

        fn count(conn: &mut Self::Conn) -> i64 {
            users::table.count().get_result(conn).expect("count")
        }

        fn get_or_create(conn: &mut Self::Conn, key: &str) -> (User, bool) {
            User::get_or_create(
                conn,
                UserLookup {
                    email: key.to_owned(),
                },
                defaults(),
            )
            .expect("get_or_create")
        }

        fn get_or_create_with(conn: &mut Self::Conn, key: &str) -> (User, bool) {
            User::get_or_create_with(
                conn,
                UserLookup {
                    email: key.to_owned(),
                },
                defaults,
            )
            .expect("get_or_create_with")
        }

        fn get_or_create_many(conn: &mut Self::Conn, keys: &[String]) -> Vec<(User, bool)> {
            User::get_or_create_many(
                conn,
                keys.iter()
                    .map(|key| (UserLookup { email: key.clone() }, defaults())),
            )
            .expect("get_or_create_many")
        }

        fn update_or_create(conn: &mut Self::Conn, item: SyncItem) -> (User, bool) {
            let (lookup, defaults) = item.into_parts();
            User::update_or_create(conn, lookup, defaults).expect("update_or_create")
        }

        fn update_or_create_many(conn: &mut Self::Conn, items: Vec<SyncItem>) -> Vec<(User, bool)> {
            User::update_or_create_many(conn, items.into_iter().map(SyncItem::into_parts))
                .expect("update_or_create_many")
        }

        fn select_first(conn: &mut Self::Conn, key: &str) -> (User, bool) {
            match Self::find(conn, key) {
                Some(found) => (found, false),
                None => Self::insert_first(conn, key),
            }
        }

        fn reset(conn: &mut Self::Conn, rows: usize) {
            Self::empty(conn);
            let all: Vec<_> = (0..rows)
                .map(|i| {
                    (
                        users::email.eq(existing_key(i)),
                        users::name.eq(NAME),
                        users::karma.eq(0),
                    )
                })
                .collect();
            for chunk in all.chunks(FILL_CHUNK) {
                diesel::insert_into(users::table)
                    .values(chunk)
                    .execute(conn)
                    .expect("fill the table");
            }
            Self::settle(conn);
        }
    };
}

/// A name no other bench (or run) uses.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL in `var`, its default when unset, `None` (with a notice) when set empty.
fn server_url(var: &str, default: &str, name: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if url.is_empty() => {
            eprintln!("NOTICE: {var} is set empty: skipping the {name} benches");
            None
        }
        Ok(url) => Some(url),
        Err(_) => Some(default.to_owned()),
    }
}

fn unreachable(name: &str, var: &str, url: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "\n\n{name} at {url} is unreachable: {error}\n\
         Start it, point {var} at a server that answers, or set {var}= (empty) to skip \
         the {name} benches.\n"
    )
}

fn run_all(conn: &mut impl SimpleConnection, statements: &[&str]) {
    for statement in statements {
        conn.batch_execute(statement)
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// The default PostgreSQL server, the one `.ci/run` uses.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The default MariaDB server, the one `.ci/run` uses.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// PostgreSQL: a schema of its own, first on the `search_path` of every connection, and
/// `synchronous_commit = off` (commits do not wait for the disk).
pub struct Pg {
    server: String,
    schema: String,
}

impl Pg {
    fn empty(conn: &mut PgConnection) {
        run_all(conn, &["TRUNCATE users RESTART IDENTITY"]);
    }

    fn settle(conn: &mut PgConnection) {
        run_all(conn, &["VACUUM ANALYZE users"]);
    }
}

impl Backend for Pg {
    type Conn = PgConnection;
    const NAME: &'static str = "PostgreSQL";
    const ID: &'static str = "pg";

    fn create() -> Option<Self> {
        let server = server_url("PG_DATABASE_URL", DEFAULT_PG_URL, Self::NAME)?;
        let mut admin = PgConnection::establish(&server)
            .unwrap_or_else(|e| unreachable(Self::NAME, "PG_DATABASE_URL", &server, e));
        let db = Pg {
            server,
            schema: unique_name("goc_bench"),
        };
        run_all(&mut admin, &[&format!("CREATE SCHEMA {}", db.schema)]);
        run_all(
            &mut db.connect(),
            &[
                "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL, karma INTEGER NOT NULL)",
            ],
        );
        Some(db)
    }

    fn connect(&self) -> PgConnection {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.server, self.schema
        );
        let mut conn = PgConnection::establish(&url)
            .unwrap_or_else(|e| unreachable(Self::NAME, "PG_DATABASE_URL", &self.server, e));
        // Without it every commit waits for an fsync of the WAL (about 4 ms on the
        // machine of BENCHMARKS.md), which would hide every other cost of a miss.
        run_all(&mut conn, &["SET synchronous_commit = off"]);
        conn
    }

    fn server_task(conn: &mut PgConnection) -> Option<i64> {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(pg_backend_pid() AS bigint)",
        ))
        .get_result(conn)
        .ok()
    }

    fn ids_used(conn: &mut PgConnection) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END \
             FROM users_id_seq)",
        ))
        .get_result(conn)
        .expect("the sequence's value")
    }

    fn try_insert(conn: &mut PgConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(insert_values(key))
            .returning(User::as_returning())
            .get_result(conn)
    }

    fn insert_first(conn: &mut PgConnection, key: &str) -> (User, bool) {
        let inserted = diesel::insert_into(users::table)
            .values(insert_values(key))
            .on_conflict(users::email)
            .do_nothing()
            .returning(User::as_returning())
            .get_result(conn)
            .optional()
            .expect("insert .. on conflict do nothing");
        match inserted {
            Some(created) => (created, true),
            None => (Self::find(conn, key).expect("the row of a clash"), false),
        }
    }

    common_impl!();
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.server) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
        }
    }
}

/// MariaDB (or MySQL): a database of its own.
pub struct Mysql {
    server: String,
    database: String,
}

impl Mysql {
    /// The server URL with its database replaced.
    fn url_for(&self, database: &str) -> String {
        let (base, query) = self
            .server
            .split_once('?')
            .map_or((self.server.as_str(), None), |(b, q)| (b, Some(q)));
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

    fn empty(conn: &mut MysqlConnection) {
        run_all(conn, &["TRUNCATE TABLE users"]);
    }

    fn settle(conn: &mut MysqlConnection) {
        run_all(conn, &["ANALYZE TABLE users"]);
    }
}

/// Whether an error is a duplicate key.
pub fn is_duplicate(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

impl Backend for Mysql {
    type Conn = MysqlConnection;
    const NAME: &'static str = "MariaDB";
    const ID: &'static str = "mariadb";

    fn create() -> Option<Self> {
        let server = server_url("MYSQL_DATABASE_URL", DEFAULT_MYSQL_URL, Self::NAME)?;
        let mut admin = MysqlConnection::establish(&server)
            .unwrap_or_else(|e| unreachable(Self::NAME, "MYSQL_DATABASE_URL", &server, e));
        let db = Mysql {
            server,
            database: unique_name("goc_bench"),
        };
        run_all(&mut admin, &[&format!("CREATE DATABASE {}", db.database)]);
        run_all(
            &mut db.connect(),
            &["CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                email VARCHAR(191) NOT NULL UNIQUE, name TEXT NOT NULL, karma INT NOT NULL)"],
        );
        Some(db)
    }

    fn connect(&self) -> MysqlConnection {
        MysqlConnection::establish(&self.url_for(&self.database))
            .unwrap_or_else(|e| unreachable(Self::NAME, "MYSQL_DATABASE_URL", &self.server, e))
    }

    fn server_task(conn: &mut MysqlConnection) -> Option<i64> {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT CAST(TID AS SIGNED) FROM information_schema.PROCESSLIST \
             WHERE ID = CONNECTION_ID())",
        ))
        .get_result(conn)
        .ok()
    }

    fn ids_used(conn: &mut MysqlConnection) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT CAST(AUTO_INCREMENT AS SIGNED) - 1 FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users')",
        ))
        .get_result(conn)
        .expect("the AUTO_INCREMENT counter")
    }

    /// Diesel has no `RETURNING` on MySQL: insert, then read the row back by its key.
    fn try_insert(conn: &mut MysqlConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(insert_values(key))
            .execute(conn)?;
        users::table
            .filter(users::email.eq(key))
            .select(User::as_select())
            .first(conn)
    }

    fn insert_first(conn: &mut MysqlConnection, key: &str) -> (User, bool) {
        match Self::try_insert(conn, key) {
            Ok(created) => (created, true),
            Err(error) if is_duplicate(&error) => {
                (Self::find(conn, key).expect("the row of a clash"), false)
            }
            Err(error) => panic!("insert: {error}"),
        }
    }

    common_impl!();
}

impl Drop for Mysql {
    fn drop(&mut self) {
        if let Ok(mut admin) = MysqlConnection::establish(&self.server) {
            let _ = admin.batch_execute(&format!("DROP DATABASE {}", self.database));
        }
    }
}

/// SQLite: a file in the temp directory in WAL mode with a busy timeout, as in the tests,
/// and `synchronous = NORMAL`, the setting SQLite recommends with WAL (with `FULL`, the
/// default, an fsync per commit would hide every other cost; see BENCHMARKS.md).
pub struct Sqlite {
    path: std::path::PathBuf,
}

impl Sqlite {
    fn empty(conn: &mut SqliteConnection) {
        run_all(conn, &["DELETE FROM users", "DELETE FROM sqlite_sequence"]);
    }

    fn settle(conn: &mut SqliteConnection) {
        run_all(conn, &["ANALYZE users", "PRAGMA wal_checkpoint(TRUNCATE)"]);
    }
}

impl Backend for Sqlite {
    type Conn = SqliteConnection;
    const NAME: &'static str = "SQLite";
    const ID: &'static str = "sqlite";

    fn create() -> Option<Self> {
        let db = Sqlite {
            path: std::env::temp_dir().join(format!("{}.db", unique_name("goc_bench"))),
        };
        run_all(
            &mut db.connect(),
            &[
                "PRAGMA journal_mode = WAL",
                "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT,
                    email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, karma INTEGER NOT NULL)",
            ],
        );
        Some(db)
    }

    fn connect(&self) -> SqliteConnection {
        let url = self.path.display().to_string();
        let mut conn = SqliteConnection::establish(&url)
            .unwrap_or_else(|e| panic!("SQLite: cannot open {url}: {e}"));
        run_all(
            &mut conn,
            &["PRAGMA busy_timeout = 30000", "PRAGMA synchronous = NORMAL"],
        );
        conn
    }

    fn server_task(_conn: &mut SqliteConnection) -> Option<i64> {
        None
    }

    fn ids_used(conn: &mut SqliteConnection) -> i64 {
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0))",
        ))
        .get_result(conn)
        .expect("the AUTOINCREMENT counter")
    }

    /// `get_results`, not `get_result`: Diesel's `get_result` never steps an `INSERT ..
    /// RETURNING` to its end, so SQLite never checkpoints the WAL (67 MB after 5,000
    /// inserts here, against 4 MB). Skipping the checkpoints makes each insert cheaper
    /// for a while, at the price of a WAL without bound; the library steps to the end, so
    /// the floor does too. See BENCHMARKS.md.
    fn try_insert(conn: &mut SqliteConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(insert_values(key))
            .returning(User::as_returning())
            .get_results(conn)?
            .pop()
            .ok_or(DieselError::NotFound)
    }

    fn insert_first(conn: &mut SqliteConnection, key: &str) -> (User, bool) {
        let inserted = diesel::insert_into(users::table)
            .values(insert_values(key))
            .on_conflict(users::email)
            .do_nothing()
            .returning(User::as_returning())
            .get_results(conn)
            .expect("insert .. on conflict do nothing")
            .pop();
        match inserted {
            Some(created) => (created, true),
            None => (Self::find(conn, key).expect("the row of a clash"), false),
        }
    }

    common_impl!();
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// How a bench binary was started: by `cargo bench` (measure), or by `cargo test
/// --benches` / `cargo bench -- --test` (run each case once, quickly), and with which
/// filter.
pub struct RunMode {
    /// Whether to measure (`--bench` was passed, as `cargo bench` does).
    pub measure: bool,
    filter: Option<String>,
}

impl RunMode {
    /// Reads the arguments criterion also reads.
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let measure = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
        let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
        RunMode { measure, filter }
    }

    /// Whether a case whose id is `id` (`pg/hit`, say) passes the command-line filter
    /// (a substring, unlike criterion's regex).
    pub fn wants(&self, id: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| id.contains(f))
    }

    /// Whether any of the cases of `ids` passes the filter.
    pub fn wants_any(&self, ids: &[&str]) -> bool {
        ids.iter().any(|id| self.wants(id))
    }
}

/// One side of a paired measurement: a name and the code of one call.
pub struct Side<'a, C> {
    /// The name in the report.
    pub name: &'static str,
    /// One call.
    pub call: Box<dyn FnMut(&mut C) + 'a>,
}

impl<'a, C> Side<'a, C> {
    /// A side named `name` that runs `call`.
    pub fn new(name: &'static str, call: impl FnMut(&mut C) + 'a) -> Self {
        Side {
            name,
            call: Box::new(call),
        }
    }
}

/// The CPU time a connection's calls cost: the calling thread's (`clock_gettime` of
/// `CLOCK_THREAD_CPUTIME_ID`), plus, for a server on this machine, the time on a CPU of the
/// server process or thread that runs the connection's statements (`/proc/<id>/schedstat`,
/// nanoseconds; Linux only). Unlike wall time, it
/// does not count the time spent waiting for a CPU that other processes hold, nor the
/// time spent waiting for the disk.
pub struct CpuProbe {
    server: Option<std::path::PathBuf>,
}

/// Nanoseconds on a CPU and waiting for one, from a `schedstat` file.
fn schedstat(path: &std::path::Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// Elsewhere: no probe.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_ns() -> u64 {
    0
}

/// Nanoseconds the calling thread has run, to the nanosecond (`schedstat` of the running
/// thread lags until it sleeps, which an in-process SQLite call may never do).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `struct timespec` (two 64-bit fields on 64-bit
    // Linux) to the pointer it is given, which points to one.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) } == 0;
    if ok {
        u64::try_from(time.tv_sec).unwrap_or_default() * 1_000_000_000
            + u64::try_from(time.tv_nsec).unwrap_or_default()
    } else {
        0
    }
}

impl CpuProbe {
    /// A probe of `conn`, or `None` when this machine has no `schedstat` (or, for a
    /// server, when the server's task is not a process of this machine).
    pub fn new<B: Backend>(conn: &mut B::Conn) -> Option<Self> {
        if thread_cpu_ns() == 0 {
            return None;
        }
        let server = match B::server_task(conn) {
            Some(id) => {
                let path = std::path::PathBuf::from(format!("/proc/{id}/schedstat"));
                let comm = std::fs::read_to_string(format!("/proc/{id}/comm")).ok()?;
                let known = ["postgres", "mariadbd", "mysqld"];
                if schedstat(&path).is_none() || !known.iter().any(|n| comm.starts_with(n)) {
                    return None;
                }
                Some(path)
            }
            None => None,
        };
        Some(CpuProbe { server })
    }

    /// (nanoseconds on a CPU, client and server; nanoseconds the server waited for one)
    /// so far.
    pub fn read(&self) -> (u64, u64) {
        let client = thread_cpu_ns();
        let (server, waited) = self
            .server
            .as_deref()
            .and_then(schedstat)
            .unwrap_or_default();
        (client + server, waited)
    }
}

/// What a paired measurement found for one side.
#[derive(Debug, Clone)]
pub struct Paired {
    /// The side's name.
    pub name: &'static str,
    /// Lower quartile, median and upper quartile of the time of one call, over the
    /// side's batches.
    pub per_call: [Duration; 3],
    /// The median, over the rounds, of the side's batch time over the floor's (the first
    /// side's) in the same round.
    pub ratio: f64,
    /// Lower and upper quartile of those per-round ratios.
    pub ratio_quartiles: [f64; 2],
    /// With a [`CpuProbe`]: the median CPU time of one call (client and server), and the
    /// median over the rounds of its ratio to the floor's.
    pub cpu: Option<(Duration, f64)>,
}

/// Per round and side: wall time and, with a probe, CPU time of one call.
pub struct Rounds {
    names: Vec<&'static str>,
    wall: Vec<Vec<Duration>>,
    cpu: Vec<Vec<Duration>>,
    /// Nanoseconds the server waited for a CPU, and was on one, over the whole run.
    waited: (u64, u64),
}

impl Rounds {
    /// Empty rounds of the sides `names`.
    pub fn new(names: Vec<&'static str>) -> Self {
        let n = names.len();
        Rounds {
            names,
            wall: vec![Vec::new(); n],
            cpu: vec![Vec::new(); n],
            waited: (0, 0),
        }
    }

    /// Times `calls` calls of side `side` (`run` makes them), with `probe` if any.
    pub fn time<R>(
        &mut self,
        side: usize,
        calls: u32,
        probe: Option<&CpuProbe>,
        run: impl FnOnce() -> R,
    ) -> R {
        let before = probe.map(CpuProbe::read);
        let start = Instant::now();
        let out = run();
        let wall = start.elapsed();
        self.wall[side].push(wall / calls);
        if let (Some(probe), Some((cpu0, wait0))) = (probe, before) {
            let (cpu1, wait1) = probe.read();
            self.cpu[side].push(Duration::from_nanos(cpu1.saturating_sub(cpu0)) / calls);
            self.waited.0 += wait1.saturating_sub(wait0);
            self.waited.1 += cpu1.saturating_sub(cpu0);
        }
        out
    }

    /// The results, ratios to the first side.
    pub fn summarize(self) -> (Vec<Paired>, Option<f64>) {
        let cpu = self.cpu.iter().all(|c| !c.is_empty()).then_some(self.cpu);
        let mut out = summarize(self.names, self.wall);
        if let Some(cpu) = cpu {
            let floor = cpu[0].clone();
            for (paired, own) in out.iter_mut().zip(cpu) {
                let mut ratios: Vec<f64> = own
                    .iter()
                    .zip(&floor)
                    .map(|(t, f)| t.as_secs_f64() / f.as_secs_f64().max(1e-12))
                    .collect();
                let ratio = quartiles(&mut ratios)[1];
                let mut own = own;
                paired.cpu = Some((quartiles(&mut own)[1], ratio));
            }
        }
        let waited = (self.waited.1 > 0).then(|| self.waited.0 as f64 / self.waited.1 as f64);
        (out, waited)
    }
}

/// Lower quartile, median, upper quartile of `values` (sorted here).
pub fn quartiles<T: PartialOrd + Copy>(values: &mut [T]) -> [T; 3] {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    let n = values.len();
    [values[n / 4], values[n / 2], values[(3 * n) / 4]]
}

/// Runs `rounds` rounds; in each, every side runs one batch of calls in a row, in an order
/// that rotates from round to round. The batch is as many calls as the slowest side makes
/// in about `batch_time`. Short batches in turn spread the changing load of a shared
/// machine evenly over the sides; the ratio of each side to the floor is taken round by
/// round (a pair of batches a few milliseconds apart), and its median over the rounds
/// drops the rounds that another process interrupted.
pub fn paired<C>(
    conn: &mut C,
    rounds: usize,
    batch_time: Duration,
    sides: &mut [Side<'_, C>],
    probe: Option<&CpuProbe>,
) -> (Vec<Paired>, Option<f64>) {
    // Warm up (prepared statements, caches, the first-miss metadata read on MariaDB),
    // then size the batch on the slowest side.
    const PROBE: u32 = 20;
    let mut slowest = Duration::ZERO;
    for side in sides.iter_mut() {
        for _ in 0..PROBE {
            (side.call)(conn);
        }
        let start = Instant::now();
        for _ in 0..PROBE {
            (side.call)(conn);
        }
        slowest = slowest.max(start.elapsed() / PROBE);
    }
    let batch =
        (batch_time.as_secs_f64() / slowest.as_secs_f64().max(1e-9)).clamp(1.0, 10_000.0) as u32;
    let n = sides.len();
    let mut times = Rounds::new(sides.iter().map(|s| s.name).collect());
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let side = &mut sides[i];
            times.time(i, batch, probe, || {
                for _ in 0..batch {
                    (side.call)(conn);
                }
            });
        }
    }
    times.summarize()
}

/// [`Paired`] results of sides whose times were taken in rounds (`times[side][round]`).
pub fn summarize(names: Vec<&'static str>, times: Vec<Vec<Duration>>) -> Vec<Paired> {
    let floor = times[0].clone();
    names
        .into_iter()
        .zip(times)
        .map(|(name, own)| {
            let mut ratios: Vec<f64> = own
                .iter()
                .zip(&floor)
                .map(|(t, f)| t.as_secs_f64() / f.as_secs_f64())
                .collect();
            let [rq1, ratio, rq3] = quartiles(&mut ratios);
            let mut own = own;
            Paired {
                name,
                per_call: quartiles(&mut own),
                ratio,
                ratio_quartiles: [rq1, rq3],
                cpu: None,
            }
        })
        .collect()
}

/// A Markdown table of a paired measurement, in `unit` (`us` or `ms`); `waited`: how long
/// the server waited for a CPU per unit of time on one, over the run.
pub fn paired_table(title: &str, unit: &str, results: &(Vec<Paired>, Option<f64>)) -> String {
    let (results, waited) = results;
    let scale = if unit == "ms" { 1e3 } else { 1e6 };
    let t = |d: Duration| d.as_secs_f64() * scale;
    let cpu = results.iter().all(|r| r.cpu.is_some());
    let mut out = format!(
        "\n{title}\n\n| side | wall {unit}/call (median) | quartiles | wall ratio to {} \
         (median of rounds) | ratio quartiles |{}\n|---|---:|---|---:|---|{}\n",
        results[0].name,
        if cpu {
            format!(" CPU {unit}/call, client + server | CPU ratio |")
        } else {
            String::new()
        },
        if cpu { "---:|---:|" } else { "" },
    );
    for r in results {
        let _ = write!(
            out,
            "| {} | {:.1} | {:.1}-{:.1} | {:.3}x | {:.3}-{:.3} |",
            r.name,
            t(r.per_call[1]),
            t(r.per_call[0]),
            t(r.per_call[2]),
            r.ratio,
            r.ratio_quartiles[0],
            r.ratio_quartiles[1],
        );
        if let Some((cpu, ratio)) = r.cpu {
            let _ = write!(out, " {:.1} | {ratio:.3}x |", t(cpu));
        }
        out.push('\n');
    }
    if let Some(waited) = waited {
        let _ = writeln!(
            out,
            "\nthe server's task waited {:.2} ms for a CPU per ms it ran (machine load)",
            waited
        );
    }
    out
}

/// Keeps the optimizer from dropping a result.
pub fn keep<T>(value: T) {
    black_box(value);
}

/// The SQL of every statement a connection starts, as Diesel's instrumentation sees it.
#[derive(Clone, Default)]
pub struct StatementLog(Arc<Mutex<Vec<String>>>);

impl StatementLog {
    /// Installs a new log on `conn`; `before` runs on every statement's SQL before the
    /// statement is sent.
    pub fn install<C: Connection>(
        conn: &mut C,
        mut before: impl FnMut(&str) + Send + 'static,
    ) -> Self {
        let log = StatementLog::default();
        let sink = log.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                let sql = query.to_string();
                before(&sql);
                sink.0.lock().expect("log").push(sql);
            }
        });
        log
    }

    /// Takes the statements logged so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log"))
    }
}

/// Removes any instrumentation from `conn`.
pub fn uninstrument<C: Connection>(conn: &mut C) {
    conn.set_instrumentation(None::<Box<dyn Instrumentation>>);
}

/// Statements and id values of each path of `get_or_create`, counted on a connection of
/// `db`: a hit, a miss, and a lost race (a rival connection inserts the key just before
/// our first `INSERT` is sent).
pub struct PathCosts {
    /// (path, statements, id values consumed, the statements' first words)
    pub rows: Vec<(&'static str, usize, i64, String)>,
}

/// Measures [`PathCosts`] of `call` on `db`, whose table holds `existing_key(0)`.
pub fn path_costs<B: Backend>(db: &B, call: CallCreated<B::Conn>) -> PathCosts {
    let mut conn = db.connect();
    // First-call costs (the unique-index checks done once per process) out of the way.
    call(&mut conn, &fresh_key());
    call(&mut conn, &existing_key(0));
    let head = |log: &[String]| {
        log.iter()
            .map(|sql| sql.split_whitespace().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = Vec::new();
    for (path, key) in [("hit", existing_key(0)), ("miss", fresh_key())] {
        let before = B::ids_used(&mut conn);
        let log = StatementLog::install(&mut conn, |_| {});
        call(&mut conn, &key);
        let log = log.take();
        uninstrument(&mut conn);
        let used = B::ids_used(&mut conn) - before;
        rows.push((path, log.len(), used, head(&log)));
    }
    // The lost race: a rival stores the key just before our first INSERT.
    let key = fresh_key();
    let mut rival = Some((db.connect(), key.clone()));
    let before = B::ids_used(&mut conn);
    let log = StatementLog::install(&mut conn, move |sql| {
        if sql.trim_start().starts_with("INSERT") {
            if let Some((mut rival, key)) = rival.take() {
                B::bare_insert(&mut rival, &key);
            }
        }
    });
    let (_, created) = call(&mut conn, &key);
    assert!(!created, "the rival created the row");
    let log = log.take();
    uninstrument(&mut conn);
    // The rival's own insert used one id.
    let used = B::ids_used(&mut conn) - before - 1;
    rows.push(("lost race", log.len(), used, head(&log)));
    PathCosts { rows }
}

/// `get_or_create` as a [`Call`] of `(User, bool)`.
pub type CallCreated<C> = fn(&mut C, &str) -> (User, bool);

impl PathCosts {
    /// A Markdown table.
    pub fn table(&self, title: &str) -> String {
        let mut out = format!(
            "\n{title}\n\n| path | statements | id values consumed | statements sent |\n\
             |---|---:|---:|---|\n"
        );
        for (path, statements, used, heads) in &self.rows {
            let _ = writeln!(out, "| {path} | {statements} | {used} | {heads} |");
        }
        out
    }
}

/// A job for [`Workers`]: given the worker's index and its connection, returns a count.
pub type Job<C> = Arc<dyn Fn(usize, &mut C) -> u64 + Send + Sync>;

/// Clients on threads, one connection each, kept for the whole bench, that run the same
/// job together.
pub struct Workers<C> {
    jobs: Vec<mpsc::Sender<Job<C>>>,
    results: mpsc::Receiver<u64>,
}

impl<C: 'static> Workers<C> {
    /// Runs `body` with `clients` workers whose connections `connect` opens.
    pub fn with<R>(
        clients: usize,
        connect: impl Fn() -> C + Sync,
        body: impl FnOnce(&Workers<C>) -> R,
    ) -> R {
        std::thread::scope(|scope| {
            let (result_tx, results) = mpsc::channel();
            let mut jobs = Vec::new();
            for index in 0..clients {
                let (job_tx, job_rx) = mpsc::channel::<Job<C>>();
                jobs.push(job_tx);
                let result_tx = result_tx.clone();
                let connect = &connect;
                scope.spawn(move || {
                    let mut conn = connect();
                    for job in job_rx {
                        let _ = result_tx.send(job(index, &mut conn));
                    }
                });
            }
            let workers = Workers { jobs, results };
            let out = body(&workers);
            drop(workers);
            out
        })
    }

    /// The number of workers.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Starts `job` on every worker; [`collect`](Workers::collect) waits for them.
    pub fn start(&self, job: Job<C>) {
        for tx in &self.jobs {
            tx.send(job.clone()).expect("a worker is gone");
        }
    }

    /// Waits for the job [`start`](Workers::start)ed last; returns the workers' counts,
    /// in no particular order.
    pub fn collect(&self) -> Vec<u64> {
        (0..self.jobs.len())
            .map(|_| self.results.recv().expect("a worker panicked"))
            .collect()
    }

    /// Runs `job` on every worker; returns the counts, in no particular order.
    pub fn run(&self, job: Job<C>) -> Vec<u64> {
        self.start(job);
        self.collect()
    }
}

/// Maps rows read back by key onto the items: the row of each key, created when `created`
/// holds its id and the item is the first with that key.
pub fn in_input_order(
    keys: &[String],
    rows: impl IntoIterator<Item = User>,
    created: &HashSet<i64>,
) -> Vec<(User, bool)> {
    let by_key: HashMap<String, User> = rows.into_iter().map(|u| (u.email.clone(), u)).collect();
    let mut seen = HashSet::new();
    keys.iter()
        .map(|key| {
            let row = by_key.get(key).expect("every key has a row").clone();
            let first = seen.insert(key.as_str());
            let was_created = first && created.contains(&row.id);
            (row, was_created)
        })
        .collect()
}
