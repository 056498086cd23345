//! What the benches share: the model, one isolated database per bench and backend (a
//! PostgreSQL schema, a MariaDB database, a SQLite file in WAL mode), the bare-Diesel
//! floors that `get_or_create` is compared with, and a paired timer that measures a floor
//! and its rivals in alternating batches on one connection, so that the ratios hold on a
//! machine whose load changes under the run.
//!
//! PostgreSQL and MariaDB are reached through `PG_DATABASE_URL` and `MYSQL_DATABASE_URL`
//! (defaults: the local servers of `.ci/run`). An unreachable server stops the run with a
//! message; a variable set to the empty string skips that backend.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use get_or_create_core::GetOrCreate;

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

/// The key of the `i`th row a bench puts in its table before it starts.
pub fn existing_key(i: usize) -> String {
    format!("user{i}@example.com")
}

/// A key no table holds yet: every call returns a new one.
pub fn fresh_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("new{}@example.com", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The defaults every bench creates rows with.
pub fn defaults() -> UserDefaults {
    UserDefaults {
        name: "Bench User".to_owned(),
        karma: 0,
    }
}

/// What a bench needs of a backend: its own table, the library's call, and the hand-written
/// ways of doing the same that the library is compared with.
pub trait Backend: Sized {
    /// The connection type.
    type Conn: LoadConnection + SimpleConnection;
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

    /// Empties `users` and fills it with the rows of `existing_key(0..rows)`.
    fn reset(conn: &mut Self::Conn, rows: usize);

    /// The floor of a hit: Diesel's own select by the key.
    fn bare_select(conn: &mut Self::Conn, key: &str) -> User;
    /// The floor of a miss: Diesel's own insert that reads the row back (`INSERT ..
    /// RETURNING` where Diesel has it; MariaDB: `INSERT`, then `SELECT` by the key).
    fn try_insert(conn: &mut Self::Conn, key: &str) -> QueryResult<User>;
    /// [`try_insert`](Backend::try_insert), which must succeed.
    fn bare_insert(conn: &mut Self::Conn, key: &str) -> User {
        Self::try_insert(conn, key).expect("bare insert")
    }
    /// The same select without `LIMIT`: on SQLite, Diesel's `LIMIT ?` (a bound limit)
    /// makes SQLite prepare the statement again on every call (see BENCHMARKS.md).
    fn bare_load(conn: &mut Self::Conn, key: &str) -> User;
    /// The number of rows in `users`.
    fn count(conn: &mut Self::Conn) -> i64;
    /// The library.
    fn get_or_create(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// The library, with lazy defaults (on PostgreSQL a different path: select first).
    fn get_or_create_with(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// Django's `get_or_create`: `SELECT`; when it finds nothing, `BEGIN; INSERT; COMMIT`
    /// (and on a unique violation, `SELECT` again).
    fn django(conn: &mut Self::Conn, key: &str) -> (User, bool);
    /// The usual hand-written one: `conn.transaction(|c| select.optional()?, else insert)`.
    fn select_then_insert_in_transaction(conn: &mut Self::Conn, key: &str) -> (User, bool);
}

/// The rows `reset` inserts per statement (3 binds per row stays under every backend's
/// limit).
const FILL_CHUNK: usize = 1000;

/// The parts of [`Backend`] that are the same Diesel code for every backend but have to be
/// compiled per connection type.
macro_rules! common_impl {
    () => {
        fn bare_select(conn: &mut Self::Conn, key: &str) -> User {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .first(conn)
                .expect("bare select")
        }

        fn bare_load(conn: &mut Self::Conn, key: &str) -> User {
            users::table
                .filter(users::email.eq(key))
                .select(User::as_select())
                .load(conn)
                .expect("bare load")
                .pop()
                .expect("the key exists")
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

        fn django(conn: &mut Self::Conn, key: &str) -> (User, bool) {
            let select = |conn: &mut Self::Conn| {
                users::table
                    .filter(users::email.eq(key))
                    .select(User::as_select())
                    .first(conn)
            };
            if let Some(found) = select(conn).optional().expect("select") {
                return (found, false);
            }
            match conn.transaction(|conn| Self::try_insert(conn, key)) {
                Ok(created) => (created, true),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    (select(conn).expect("select after a lost race"), false)
                }
                Err(error) => panic!("django-style insert: {error}"),
            }
        }

        fn select_then_insert_in_transaction(conn: &mut Self::Conn, key: &str) -> (User, bool) {
            conn.transaction(|conn| {
                let found = users::table
                    .filter(users::email.eq(key))
                    .select(User::as_select())
                    .first(conn)
                    .optional()?;
                match found {
                    Some(found) => Ok((found, false)),
                    None => Self::try_insert(conn, key).map(|created| (created, true)),
                }
            })
            .expect("select then insert in a transaction")
        }

        fn reset(conn: &mut Self::Conn, rows: usize) {
            Self::empty(conn);
            let all: Vec<_> = (0..rows)
                .map(|i| {
                    (
                        users::email.eq(existing_key(i)),
                        users::name.eq("Bench User"),
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

    fn try_insert(conn: &mut PgConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::email.eq(key),
                users::name.eq("Bench User"),
                users::karma.eq(0),
            ))
            .returning(User::as_returning())
            .get_result(conn)
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

    /// Diesel has no `RETURNING` on MySQL: insert, then read the row back by its key.
    fn try_insert(conn: &mut MysqlConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::email.eq(key),
                users::name.eq("Bench User"),
                users::karma.eq(0),
            ))
            .execute(conn)?;
        users::table
            .filter(users::email.eq(key))
            .select(User::as_select())
            .first(conn)
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
        run_all(conn, &["PRAGMA wal_checkpoint(TRUNCATE)"]);
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

    /// `get_results`, not `get_result`: Diesel's `get_result` never steps an `INSERT ..
    /// RETURNING` to its end, so SQLite never checkpoints the WAL (67 MB after 5,000
    /// inserts here, against 4 MB). Skipping the checkpoints makes each insert cheaper
    /// for a while, at the price of a WAL without bound; the library steps to the end, so
    /// the floor does too. See BENCHMARKS.md.
    fn try_insert(conn: &mut SqliteConnection, key: &str) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values((
                users::email.eq(key),
                users::name.eq("Bench User"),
                users::karma.eq(0),
            ))
            .returning(User::as_returning())
            .get_results(conn)?
            .pop()
            .ok_or(DieselError::NotFound)
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
}

/// One side of a paired measurement: a name and the code of one call (given the index of
/// the call, from which it picks its key).
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

/// What a paired measurement found for one side.
#[derive(Debug, Clone)]
pub struct Paired {
    /// The side's name.
    pub name: &'static str,
    /// Lower quartile, median and upper quartile of the time of one call, over the
    /// side's batches.
    pub per_call: [Duration; 3],
    /// The side's median batch time over the floor's (the first side's): both sides ran
    /// interleaved, so under the same spread of machine load.
    pub ratio: f64,
}

/// Runs `rounds` rounds; in each, every side runs one batch of calls in a row, in an order
/// that rotates from round to round. The batch is as many calls as the slowest side makes
/// in about `batch_time`. Short batches in turn spread the changing load of a shared
/// machine evenly over the sides; the median batch of each side then drops the batches
/// that another process interrupted.
pub fn paired<C>(
    conn: &mut C,
    rounds: usize,
    batch_time: Duration,
    sides: &mut [Side<'_, C>],
) -> Vec<Paired> {
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
    let mut times = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let side = &mut sides[i];
            let start = Instant::now();
            for _ in 0..batch {
                (side.call)(conn);
            }
            times[i].push(start.elapsed() / batch);
        }
    }
    for own in &mut times {
        own.sort();
    }
    let quartiles = |own: &[Duration]| {
        [
            own[own.len() / 4],
            own[own.len() / 2],
            own[own.len() * 3 / 4],
        ]
    };
    let floor = quartiles(&times[0])[1];
    sides
        .iter()
        .zip(&times)
        .map(|(side, own)| {
            let per_call = quartiles(own);
            Paired {
                name: side.name,
                per_call,
                ratio: per_call[1].as_secs_f64() / floor.as_secs_f64(),
            }
        })
        .collect()
}

/// A Markdown table of a paired measurement.
pub fn paired_table(title: &str, results: &[Paired]) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut out = format!(
        "\n{title}\n\n| side | us per call (median) | quartiles | ratio to {} |\n\
         |---|---:|---|---:|\n",
        results[0].name
    );
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1}-{:.1} | {:.3}x |",
            r.name,
            us(r.per_call[1]),
            us(r.per_call[0]),
            us(r.per_call[2]),
            r.ratio
        );
    }
    out
}

/// Keeps the optimizer from dropping a result.
pub fn keep<T>(value: T) {
    black_box(value);
}
