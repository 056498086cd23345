//! Many threads, each on its own connection, get or create the same keys at once, and a
//! summary of what they got: calls, calls per second, errors by kind, duplicate rows,
//! rows created.
//!
//! ```sh
//! cargo run --release --example stress                       # SQLite, a temp file
//! cargo run --release --example stress --features postgres,mysql -- --backend postgres
//! cargo run --release --example stress --features mysql -- --backend mysql --threads 32
//! ```
//!
//! PostgreSQL and MySQL/MariaDB are reached through `PG_DATABASE_URL` and
//! `MYSQL_DATABASE_URL`; the run creates and finally drops the table `goc_stress_users`
//! there (do not run two at once against the same database). Options: `--threads N`
//! (16), `--keys N` (1000), `--passes N` (3, each over new keys), `--lockstep` (every
//! thread asks for the same key at the same moment, the worst case),
//! `--sqlite-synchronous NORMAL|FULL` (NORMAL, WAL's recommended setting). The exit
//! status is non-zero when any call failed or the table is not exactly one row per key.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::prelude::*;
use get_or_create_core::{Connection as GocConnection, Error, GetOrCreate};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;

diesel::table! {
    goc_stress_users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        karma -> Integer,
    }
}

#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = goc_stress_users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
    #[default]
    pub karma: i32,
}

const USAGE: &str = "usage: stress [--backend sqlite|postgres|mysql] [--threads N] [--keys N] \
                     [--passes N] [--lockstep] [--sqlite-synchronous NORMAL|FULL]";

struct Args {
    backend: String,
    threads: usize,
    keys: usize,
    passes: usize,
    lockstep: bool,
    sqlite_synchronous: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        backend: "sqlite".into(),
        threads: 16,
        keys: 1000,
        passes: 3,
        lockstep: false,
        sqlite_synchronous: "NORMAL".into(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{flag}: not a positive number: {v}"))
        };
        match flag.as_str() {
            "--backend" => args.backend = value()?,
            "--threads" => args.threads = number(value()?)?,
            "--keys" => args.keys = number(value()?)?,
            "--passes" => args.passes = number(value()?)?,
            "--lockstep" => args.lockstep = true,
            "--sqlite-synchronous" => args.sqlite_synchronous = value()?.to_uppercase(),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if !["NORMAL", "FULL"].contains(&args.sqlite_synchronous.as_str()) {
        return Err("--sqlite-synchronous: NORMAL or FULL".into());
    }
    Ok(args)
}

/// What a backend needs besides the connection type: where to connect, the table, and
/// per-connection settings.
trait Backend:
    LoadConnection + SimpleConnection + GocConnection<User> + Send + Sized + 'static
{
    const CREATE_TABLE: &'static str;
    fn url(args: &Args) -> Result<String, String>;
    fn prepare(_conn: &mut Self, _args: &Args) {}
    /// `(email, id)` of every row.
    fn rows(conn: &mut Self) -> QueryResult<Vec<(String, i64)>>;
}

macro_rules! rows {
    () => {
        fn rows(conn: &mut Self) -> QueryResult<Vec<(String, i64)>> {
            goc_stress_users::table
                .select((goc_stress_users::email, goc_stress_users::id))
                .load(conn)
        }
    };
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn env_url(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("set {var} to the server's URL"))
}

impl Backend for SqliteConnection {
    const CREATE_TABLE: &'static str = "CREATE TABLE goc_stress_users (
        id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, karma INTEGER NOT NULL)";
    fn url(_: &Args) -> Result<String, String> {
        let path = std::env::temp_dir().join(format!("goc-stress-{}.db", std::process::id()));
        Ok(path.display().to_string())
    }
    fn prepare(conn: &mut Self, args: &Args) {
        // WAL lets readers run beside the writer; the busy timeout makes writers queue
        // instead of failing; `synchronous` decides whether every commit waits for an
        // fsync (FULL) or only checkpoints do (NORMAL).
        let settings = format!(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 30000; PRAGMA synchronous = {};",
            args.sqlite_synchronous
        );
        conn.batch_execute(&settings).expect("SQLite settings");
    }
    rows!();
}

#[cfg(feature = "postgres")]
impl Backend for PgConnection {
    const CREATE_TABLE: &'static str = "CREATE TABLE goc_stress_users (
        id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL, karma INTEGER NOT NULL)";
    fn url(_: &Args) -> Result<String, String> {
        env_url("PG_DATABASE_URL")
    }
    rows!();
}

#[cfg(feature = "mysql")]
impl Backend for MysqlConnection {
    const CREATE_TABLE: &'static str = "CREATE TABLE goc_stress_users (
        id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(191) NOT NULL UNIQUE,
        name TEXT NOT NULL, karma INT NOT NULL)";
    fn url(_: &Args) -> Result<String, String> {
        env_url("MYSQL_DATABASE_URL")
    }
    rows!();
}

/// A short name for the kind of an error.
fn kind(error: &Error) -> String {
    match error {
        Error::Database(diesel::result::Error::DatabaseError(kind, info)) => {
            format!("Database({kind:?}: {})", info.message())
        }
        Error::Database(other) => format!("Database({other})"),
        other => format!("{other:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Everything the threads saw.
#[derive(Default)]
struct Tally {
    calls: usize,
    created: usize,
    errors: BTreeMap<String, usize>,
    /// The ids each key was answered with.
    ids: HashMap<String, Vec<i64>>,
}

fn run<C>(args: &Args) -> Result<bool, String>
where
    C: Backend,
{
    let url = C::url(args)?;
    let connect = || -> Result<C, String> {
        let mut conn = C::establish(&url).map_err(|e| format!("cannot connect to {url}: {e}"))?;
        C::prepare(&mut conn, args);
        Ok(conn)
    };
    let mut admin = connect()?;
    admin
        .batch_execute("DROP TABLE IF EXISTS goc_stress_users")
        .and_then(|()| admin.batch_execute(C::CREATE_TABLE))
        .map_err(|e| format!("cannot create the table: {e}"))?;

    let total = (args.threads * args.keys * args.passes) as u64;
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls, {per_sec}, eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let barrier = Barrier::new(args.threads);
    let tally = Mutex::new(Tally::default());
    let started = std::sync::OnceLock::new();
    std::thread::scope(|scope| -> Result<(), String> {
        let threads: Vec<_> = (0..args.threads)
            .map(|_| {
                let mut conn = connect()?;
                let (barrier, tally, progress, started) = (&barrier, &tally, &progress, &started);
                Ok(scope.spawn(move || {
                    let mut mine = Tally::default();
                    for pass in 0..args.passes {
                        let mut keys: Vec<usize> = (0..args.keys).collect();
                        if !args.lockstep {
                            keys.shuffle(&mut rand::rng());
                        }
                        barrier.wait();
                        started.get_or_init(Instant::now);
                        for key in keys {
                            if args.lockstep {
                                barrier.wait();
                            }
                            let email = format!("p{pass}-user{key}@example.com");
                            let lookup = UserLookup {
                                email: email.clone(),
                            };
                            let defaults = UserDefaults {
                                name: "Stress".into(),
                                karma: 0,
                            };
                            mine.calls += 1;
                            match User::get_or_create(&mut conn, lookup, defaults) {
                                Ok((row, created)) if row.email == email => {
                                    mine.created += usize::from(created);
                                    mine.ids.entry(email).or_default().push(row.id);
                                }
                                Ok((row, _)) => {
                                    let wrong = format!("wrong row: {}", row.email);
                                    *mine.errors.entry(wrong).or_default() += 1;
                                }
                                Err(error) => *mine.errors.entry(kind(&error)).or_default() += 1,
                            }
                            progress.inc(1);
                        }
                    }
                    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                    tally.calls += mine.calls;
                    tally.created += mine.created;
                    for (kind, n) in mine.errors {
                        *tally.errors.entry(kind).or_default() += n;
                    }
                    for (email, ids) in mine.ids {
                        tally.ids.entry(email).or_default().extend(ids);
                    }
                }))
            })
            .collect::<Result<_, String>>()?;
        for thread in threads {
            thread.join().map_err(|_| "a thread panicked".to_owned())?;
        }
        Ok(())
    })?;
    let elapsed = started.get().map_or(Duration::ZERO, Instant::elapsed);
    progress.finish_and_clear();
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());

    let rows = C::rows(&mut admin).map_err(|e| format!("cannot read the table: {e}"))?;
    let mut stored: HashMap<&str, Vec<i64>> = HashMap::new();
    for (email, id) in &rows {
        stored.entry(email).or_default().push(*id);
    }
    let keys = args.keys * args.passes;
    let duplicates = rows.len() - stored.len();
    let disagreeing = tally
        .ids
        .iter()
        .filter(|(email, ids)| {
            stored.get(email.as_str()).map(Vec::as_slice) != Some(&ids[..1])
                || ids.iter().any(|id| *id != ids[0])
        })
        .count();
    let _ = admin.batch_execute("DROP TABLE IF EXISTS goc_stress_users");

    let secs = elapsed.as_secs_f64();
    let order = if args.lockstep {
        "lockstep"
    } else {
        "shuffled"
    };
    println!(
        "backend {}: {} threads x {} keys x {} passes ({order})",
        args.backend, args.threads, args.keys, args.passes
    );
    println!(
        "calls {}  in {secs:.2} s  = {:.0} calls/s",
        tally.calls,
        tally.calls as f64 / secs.max(1e-9)
    );
    println!(
        "created {} (expected {keys})  rows {}  duplicates {duplicates}  \
         keys answered with another id {disagreeing}",
        tally.created,
        rows.len()
    );
    if tally.errors.is_empty() {
        println!("errors 0");
    } else {
        println!("errors by kind:");
        for (kind, n) in &tally.errors {
            println!("  {n:>8}  {kind}");
        }
    }
    Ok(tally.errors.is_empty()
        && duplicates == 0
        && disagreeing == 0
        && tally.created == keys
        && rows.len() == keys)
}

#[cfg(not(all(feature = "postgres", feature = "mysql")))]
fn not_built(backend: &str) -> String {
    format!("this build has no {backend} support: add `--features {backend}`")
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let outcome = match args.backend.as_str() {
        "sqlite" => {
            let outcome = run::<SqliteConnection>(&args);
            if let Ok(path) = SqliteConnection::url(&args) {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            outcome
        }
        #[cfg(feature = "postgres")]
        "postgres" => run::<PgConnection>(&args),
        #[cfg(feature = "mysql")]
        "mysql" => run::<MysqlConnection>(&args),
        #[cfg(not(feature = "postgres"))]
        "postgres" => Err(not_built("postgres")),
        #[cfg(not(feature = "mysql"))]
        "mysql" => Err(not_built("mysql")),
        other => Err(format!("unknown backend {other}\n{USAGE}")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAILED: see the summary above");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
