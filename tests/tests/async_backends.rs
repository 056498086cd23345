//! `asynchronous::GetOrCreate` on each backend's diesel-async connection (`AsyncPgConnection`,
//! `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`) and pools, with the
//! guarantees of the sync suite: every case runs on SQLite, PostgreSQL and MariaDB, each
//! time in a database of its own, on a multi-threaded tokio runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use diesel::dsl::{select, AsExprOf};
use diesel::query_builder::{QueryFragment, SqlQuery};
use diesel::sql_types::Integer;
use diesel_async::methods::LoadQuery;
use diesel_async::pooled_connection::{
    bb8, deadpool, AsyncDieselConnectionManager, PoolableConnection,
};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use get_or_create_core::asynchronous::{retry_transaction, Connection, GetOrCreate};
use get_or_create_core::Error;
use get_or_create_tests::asynchronous::*;
use get_or_create_tests::*;
use rand::seq::SliceRandom;
use tokio::sync::Barrier;

get_or_create_tests::for_each_backend_async!(
    miss_then_hit,
    lazy_defaults_run_only_on_a_miss,
    statements_per_path,
    inside_a_transaction,
    another_unique_constraint,
    lookup_without_unique_index,
    many,
    update_or_create,
    lost_race,
    deadpool_pool,
    bb8_pool,
    race,
    race_in_retried_transactions,
);

fn ann() -> UserLookup {
    UserLookup {
        email: "ann@example.com".into(),
    }
}

fn ann_defaults() -> UserDefaults {
    UserDefaults {
        name: "Ann".into(),
        karma: 7,
    }
}

fn lookup(email: &str) -> UserLookup {
    UserLookup {
        email: email.into(),
    }
}

async fn miss_then_hit<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;

    let (created, was_created) = User::get_or_create(&mut conn, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(was_created, "{}", D::NAME);
    assert_eq!(created.email, "ann@example.com");
    assert_eq!((created.name.as_str(), created.karma), ("Ann", 7));
    // Read back through the sync driver: the row returned is the row stored.
    assert_eq!(D::users(&mut db.connect()), std::slice::from_ref(&created));

    let other_defaults = UserDefaults {
        name: "Someone else".into(),
        karma: -1,
    };
    let (found, was_created) = User::get_or_create(&mut conn, ann(), other_defaults)
        .await
        .unwrap();
    assert!(!was_created);
    assert_eq!(
        found, created,
        "a hit returns the row and writes no defaults"
    );
    assert_eq!(D::users(&mut db.connect()), [created]);
}

/// `update_or_create` creates, then `update_or_create_with` changes one field of the
/// stored row without calling its create defaults.
async fn update_or_create<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    let (created, was_created) = User::update_or_create(&mut conn, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(was_created, "{}", D::NAME);
    let changes = UserChanges {
        karma: Some(9),
        ..Default::default()
    };
    let (updated, was_created) = User::update_or_create_with(&mut conn, ann(), changes, || {
        panic!("create defaults are not needed for a stored row")
    })
    .await
    .unwrap();
    assert!(!was_created, "{}", D::NAME);
    assert_eq!(updated.id, created.id);
    assert_eq!((updated.name.as_str(), updated.karma), ("Ann", 9));
    assert_eq!(D::users(&mut db.connect()), [updated]);
}

/// A rival inserts the key in an open transaction just before our call, and commits while
/// our insert waits for it: the row is committed after our statement's snapshot (the case
/// PostgreSQL's one statement answers with nothing). We get the rival's row, not created.
async fn lost_race<D: AsyncTestDb>() {
    use diesel::connection::SimpleConnection;
    let db = D::create();
    let mut conn = db.connect_async().await;
    warm_up::<D>(&mut conn).await;
    let mut rival = db.connect();
    rival.batch_execute("BEGIN").unwrap();
    rival
        .batch_execute(
            "INSERT INTO users (email, name, karma) VALUES ('ann@example.com', 'Rival', 1)",
        )
        .unwrap();
    let log = StatementLog::install_async(&mut conn);
    let committer = std::thread::spawn(move || {
        // Long enough for our call to start and wait on the rival's row.
        std::thread::sleep(std::time::Duration::from_millis(300));
        rival.batch_execute("COMMIT").unwrap();
    });
    let (row, was_created) = User::get_or_create(&mut conn, ann(), ann_defaults())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", D::NAME));
    committer.join().unwrap();
    assert!(!was_created, "{}: the rival created the row", D::NAME);
    assert_eq!(row.name, "Rival", "{}", D::NAME);
    // Select, insert (no row, or a duplicate key on MariaDB), read again.
    let statements = log.take();
    assert_eq!(statements.len(), 3, "{}: {statements:#?}", D::NAME);
    assert_eq!(
        D::users(&mut db.connect()).len(),
        2,
        "{}: warm-up row and the rival's",
        D::NAME
    );
}

async fn lazy_defaults_run_only_on_a_miss<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    let mut calls = 0;
    let (created, was_created) = User::get_or_create_with(&mut conn, ann(), || {
        calls += 1;
        ann_defaults()
    })
    .await
    .unwrap();
    assert!(was_created);
    assert_eq!(calls, 1);

    let (found, was_created) = User::get_or_create_with(&mut conn, ann(), || {
        calls += 1;
        ann_defaults()
    })
    .await
    .unwrap();
    assert!(!was_created);
    assert_eq!(found, created);
    assert_eq!(calls, 1, "{}: the defaults closure ran on a hit", D::NAME);
    assert_eq!(D::count(&mut db.connect(), "users"), 1);
}

/// A first miss on another key: MySQL reads the lookup's unique indexes before the first
/// insert of a model in a process, outside the counted calls.
async fn warm_up<D: AsyncTestDb>(conn: &mut D::AsyncConn) {
    User::get_or_create(conn, lookup("warm@up"), ann_defaults())
        .await
        .unwrap();
}

/// Statements per path, counted with diesel-async's instrumentation: the same as the
/// sync suite's `statements_per_path`, and never a transaction statement.
async fn statements_per_path<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    warm_up::<D>(&mut conn).await;
    let log = StatementLog::install_async(&mut conn);

    let call = <User as GetOrCreate>::get_or_create;
    call(&mut conn, ann(), ann_defaults()).await.unwrap();
    let eager_miss = log.take();
    call(&mut conn, ann(), ann_defaults()).await.unwrap();
    let eager_hit = log.take();
    let lazy = <User as GetOrCreate>::get_or_create_with;
    lazy(&mut conn, lookup("bob@example.com"), ann_defaults)
        .await
        .unwrap();
    let lazy_miss = log.take();
    lazy(&mut conn, lookup("bob@example.com"), ann_defaults)
        .await
        .unwrap();
    let lazy_hit = log.take();

    // A hit is one SELECT everywhere; a miss adds the insert (and on MySQL/MariaDB a read
    // back, which has no RETURNING).
    let (eager, lazy_miss_count) = match D::NAME {
        MYSQL_NAME => ((1, 3), 3),
        _ => ((1, 2), 2),
    };
    assert_eq!(
        (eager_hit.len(), eager_miss.len()),
        eager,
        "{}: statements of get_or_create (hit, miss): {eager_hit:#?} {eager_miss:#?}",
        D::NAME
    );
    assert_eq!(
        (lazy_hit.len(), lazy_miss.len()),
        (1, lazy_miss_count),
        "{}: statements of get_or_create_with (hit, miss): {lazy_hit:#?} {lazy_miss:#?}",
        D::NAME
    );
    assert!(lazy_hit[0].starts_with("SELECT"), "{lazy_hit:#?}");
    assert!(
        lazy_miss[0].starts_with("SELECT") && lazy_miss[1].starts_with("INSERT"),
        "{lazy_miss:#?}"
    );
    for statement in [eager_hit, eager_miss, lazy_hit, lazy_miss].concat() {
        let upper = statement.to_uppercase();
        assert!(
            ![
                "BEGIN",
                "SAVEPOINT",
                "COMMIT",
                "ROLLBACK",
                "START TRANSACTION"
            ]
            .iter()
            .any(|word| upper.starts_with(word)),
            "the library must not open transactions: {statement}"
        );
    }
}

/// Inside the caller's diesel-async transaction: no savepoint, the transaction stays
/// usable, and everything is committed with it.
async fn inside_a_transaction<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    warm_up::<D>(&mut conn).await;
    let log = StatementLog::install_async(&mut conn);
    let ids = conn
        .transaction::<_, Error, _>(async |conn| {
            let (created, was_created) = User::get_or_create(conn, ann(), ann_defaults()).await?;
            assert!(was_created);
            let (found, was_created) = User::get_or_create(conn, ann(), ann_defaults()).await?;
            assert!(!was_created);
            assert_eq!(found, created);
            // Another statement and another call still work in the transaction.
            assert_eq!(D::count_async(conn, "users").await, 2);
            let bob = lookup("bob@example.com");
            let (bob, was_created) = User::get_or_create(conn, bob, ann_defaults()).await?;
            assert!(was_created);
            Ok((created.id, bob.id))
        })
        .await
        .unwrap();
    let stored: Vec<i64> = D::users(&mut db.connect())
        .iter()
        .skip(1)
        .map(|u| u.id)
        .collect();
    assert_eq!(
        stored,
        [ids.0, ids.1],
        "{}: both rows are committed",
        D::NAME
    );

    let statements = log.take();
    // The log sees the transaction's own BEGIN, so it would see a SAVEPOINT.
    assert!(
        statements
            .iter()
            .any(|s| s.to_uppercase().starts_with("BEGIN")),
        "the log missed the transaction: {statements:#?}"
    );
    assert!(
        !statements
            .iter()
            .any(|s| s.to_uppercase().contains("SAVEPOINT")),
        "{}: the library must not open savepoints: {statements:#?}",
        D::NAME
    );
}

async fn another_unique_constraint<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    let account = |email: &str| AccountLookup {
        email: email.into(),
    };
    let taken = || AccountDefaults {
        handle: "taken".into(),
    };
    Account::get_or_create(&mut conn, account("a@x"), taken())
        .await
        .unwrap();

    let error = Account::get_or_create(&mut conn, account("b@x"), taken())
        .await
        .unwrap_err();
    let Error::UniqueViolation { constraint, .. } = &error else {
        panic!("{}: expected UniqueViolation, got {error:?}", D::NAME);
    };
    let expected = if D::NAME == SqliteDb::NAME {
        "accounts.handle"
    } else {
        "accounts_handle_key"
    };
    assert_eq!(constraint.as_deref(), Some(expected), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(
        D::count(&mut db.connect(), "accounts"),
        1,
        "nothing was written"
    );
}

async fn lookup_without_unique_index<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    let error = Note::get_or_create(
        &mut conn,
        NoteLookup { title: "t".into() },
        NoteDefaults { body: "b".into() },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::NoUniqueIndex { table, columns: ["title"], .. } if table == "notes"
        ),
        "{}: {error:?}",
        D::NAME
    );
    assert_eq!(
        D::count(&mut db.connect(), "notes"),
        0,
        "nothing was written"
    );
}

fn user(email: &str, name: &str) -> (UserLookup, UserDefaults) {
    (
        lookup(email),
        UserDefaults {
            name: name.into(),
            karma: 1,
        },
    )
}

fn created<M>(rows: &[(M, bool)]) -> Vec<bool> {
    rows.iter().map(|(_, created)| *created).collect()
}

/// `get_or_create_many`: one result per item in input order, a repeated key gets the
/// same row, created once with the defaults of its first occurrence; an existing row
/// keeps its values.
async fn many<D: AsyncTestDb>() {
    let db = D::create();
    let mut conn = db.connect_async().await;
    let (old, _) = User::get_or_create(&mut conn, lookup("old@x"), ann_defaults())
        .await
        .unwrap();

    let items = [
        user("new@x", "New"),
        user("old@x", "Ignored"),
        user("new@x", "Second"),
        user("two@x", "Two"),
    ];
    let rows = User::get_or_create_many(&mut conn, items).await.unwrap();
    assert_eq!(created(&rows), [true, false, false, true], "{}", D::NAME);
    let emails: Vec<&str> = rows.iter().map(|(u, _)| u.email.as_str()).collect();
    assert_eq!(emails, ["new@x", "old@x", "new@x", "two@x"]);
    assert_eq!(rows[1].0, old, "an existing row is returned as stored");
    assert_eq!(rows[0].0, rows[2].0, "a repeated key gets the same row");
    assert_eq!(rows[0].0.name, "New", "the first occurrence's defaults win");
    assert_eq!(D::users(&mut db.connect()).len(), 3);

    let again = [user("two@x", "X"), user("new@x", "X")];
    let again = User::get_or_create_many(&mut conn, again).await.unwrap();
    assert_eq!(created(&again), [false, false]);
    assert_eq!((&again[0].0, &again[1].0), (&rows[3].0, &rows[0].0));
}

/// What diesel-async's pools ask of a connection type.
trait Pooled: AsyncTestDb<AsyncConn: PoolableConnection> {}
impl<D> Pooled for D where D: AsyncTestDb<AsyncConn: PoolableConnection> {}

/// Two connections of a deadpool pool: the first through `&mut *pooled` (the
/// connection), the second through `&mut pooled` (the pool's object).
async fn deadpool_pool<D: Pooled>()
where
    for<'a> select<AsExprOf<i32, Integer>>: LoadQuery<'a, D::AsyncConn, i32>,
    SqlQuery: QueryFragment<D::Backend>,
    deadpool::Object<D::AsyncConn>: Connection<User>,
{
    let db = D::create();
    let manager = AsyncDieselConnectionManager::<D::AsyncConn>::new(db.url());
    let pool = deadpool::Pool::builder(manager)
        .max_size(2)
        .build()
        .expect("pool");
    let mut pooled = pool.get().await.expect("a pooled connection");
    let (created, was_created) = User::get_or_create(&mut *pooled, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(was_created);
    let mut other = pool.get().await.expect("a second pooled connection");
    let (found, was_created) = User::get_or_create(&mut other, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(!was_created, "{}", D::NAME);
    assert_eq!(found, created);
    assert_eq!(pool.status().size, 2, "two connections were in use");
}

/// The same with a bb8 pool.
async fn bb8_pool<D: Pooled>()
where
    for<'a> select<AsExprOf<i32, Integer>>: LoadQuery<'a, D::AsyncConn, i32>,
    SqlQuery: QueryFragment<D::Backend>,
    for<'p> bb8::PooledConnection<'p, D::AsyncConn>: Connection<User>,
{
    let db = D::create();
    let manager = AsyncDieselConnectionManager::<D::AsyncConn>::new(db.url());
    let pool = bb8::Pool::builder()
        .max_size(2)
        .build(manager)
        .await
        .expect("pool");
    let mut pooled = pool.get().await.expect("a pooled connection");
    let (created, was_created) = User::get_or_create(&mut *pooled, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(was_created);
    let mut other = pool.get().await.expect("a second pooled connection");
    let (found, was_created) = User::get_or_create(&mut other, ann(), ann_defaults())
        .await
        .unwrap();
    assert!(!was_created, "{}", D::NAME);
    assert_eq!(found, created);
    assert_eq!(pool.state().connections, 2, "two connections were in use");
}

/// 8 tasks, each on its own async connection, get-or-create the same 200 keys in shuffled
/// orders, all starting at once; three rounds, each on fresh tables. Afterwards: one row
/// per key, one creator per key, the same id for every caller of a key, no errors.
async fn race<D: AsyncTestDb>() {
    for round in 1..=3 {
        race_once::<D>(round, false).await;
    }
}

/// The same race with every call in its own transaction at the backend's snapshot level
/// (PostgreSQL and MariaDB `REPEATABLE READ`, a SQLite deferred transaction), rerun by
/// `retry_transaction` whenever the database asks for it: no caller may see an
/// error, a unique violation or a wrong row. On MariaDB this also covers diesel-async's
/// deadlock error, which it reports as `Unknown`.
async fn race_in_retried_transactions<D: AsyncTestDb>() {
    for round in 1..=2 {
        race_once::<D>(round, true).await;
    }
}

const TASKS: usize = 8;
const KEYS: usize = 200;

/// What one racing task saw: `(email, id, created)` per call, and its errors.
type Seen = (Vec<(String, i64, bool)>, Vec<String>);

async fn race_once<D: AsyncTestDb>(round: usize, in_transactions: bool) {
    let db = D::create();
    let start = Arc::new(Barrier::new(TASKS));
    let attempts = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut conn = db.connect_async().await;
        if in_transactions && D::NAME == PgDb::NAME {
            conn.batch_execute(
                "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            )
            .await
            .unwrap();
        }
        let mut emails: Vec<String> = (0..KEYS).map(|k| format!("user{k}@example.com")).collect();
        emails.shuffle(&mut rand::rng());
        let (start, attempts) = (Arc::clone(&start), Arc::clone(&attempts));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut seen: Seen = Default::default();
            for email in emails {
                let outcome = if in_transactions {
                    retry_transaction(&mut conn, 50, async |conn| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        conn.transaction::<_, Error, _>(async |conn| {
                            User::get_or_create(conn, lookup(&email), ann_defaults()).await
                        })
                        .await
                    })
                    .await
                } else {
                    User::get_or_create(&mut conn, lookup(&email), ann_defaults()).await
                };
                match outcome {
                    Ok((row, created)) => {
                        assert_eq!(row.email, email);
                        seen.0.push((email, row.id, created));
                    }
                    Err(error) => seen.1.push(format!("{email}: {error:?}")),
                }
            }
            seen
        }));
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (seen, failed) = task.await.expect("a racing task panicked");
        results.extend(seen);
        errors.extend(failed);
    }
    let elapsed = began.elapsed();
    assert!(
        errors.is_empty(),
        "{}: {} errors: {errors:#?}",
        D::NAME,
        errors.len()
    );

    let mut per_key: HashMap<String, (i64, usize, usize)> = HashMap::new();
    for (email, id, created) in results {
        let entry = per_key.entry(email.clone()).or_insert((id, 0, 0));
        assert_eq!(
            entry.0,
            id,
            "{}: callers of {email} got different rows",
            D::NAME
        );
        entry.1 += 1;
        entry.2 += usize::from(created);
    }
    assert_eq!(per_key.len(), KEYS);
    for (email, (_, calls, creators)) in &per_key {
        assert_eq!(*calls, TASKS);
        assert_eq!(
            *creators,
            1,
            "{}: {email} was created {creators} times",
            D::NAME
        );
    }
    let stored = D::users(&mut db.connect());
    assert_eq!(stored.len(), KEYS, "{}: one row per key", D::NAME);
    for user in stored {
        assert_eq!(per_key[&user.email].0, user.id);
    }
    let transactions = if in_transactions {
        format!(
            ", {} transaction attempts",
            attempts.load(Ordering::Relaxed)
        )
    } else {
        String::new()
    };
    let creators: usize = per_key.values().map(|(_, _, creators)| creators).sum();
    eprintln!(
        "{} race round {round}: {} calls, {creators} created, 0 errors{transactions}, \
         {elapsed:.2?}",
        D::NAME,
        TASKS * KEYS,
    );
}

/// A shared `&AsyncPgConnection`, on which diesel-async pipelines the statements of the
/// futures polled at once (crates.io's pattern): every call takes `&mut &conn`.
mod pipelined {
    use super::*;
    use diesel_async::AsyncPgConnection;
    use futures_util::future::{join_all, try_join};

    const KEYS: usize = 8;
    const CALLERS: usize = 4;

    /// 8 keys asked for by 4 futures each, all polled at once on one connection: each
    /// key is created once, its callers get the one row, the table holds one row a key;
    /// then every other call on the same shared connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    async fn postgres_calls_on_a_shared_connection() {
        let db = PgDb::create();
        let conn: AsyncPgConnection = db.connect_async().await;
        let conn = &conn;

        let calls = (0..KEYS * CALLERS).map(|i| async move {
            let email = format!("k{}@example.com", i % KEYS);
            let defaults = UserDefaults {
                name: format!("caller {i}"),
                karma: i as i32,
            };
            User::get_or_create(&mut &*conn, lookup(&email), defaults).await
        });
        let results = join_all(calls).await;
        let stored = PgDb::users(&mut db.connect());
        assert_eq!(stored.len(), KEYS, "one row per key: {stored:?}");
        for user in &stored {
            let per_key: Vec<_> = results
                .iter()
                .map(|result| result.as_ref().expect("no call fails"))
                .filter(|(row, _)| row.email == user.email)
                .collect();
            assert_eq!(per_key.len(), CALLERS, "{}", user.email);
            assert!(per_key.iter().all(|(row, _)| row == user), "{per_key:?}");
            let creators = per_key.iter().filter(|(_, created)| *created).count();
            assert_eq!(creators, 1, "{} created {creators} times", user.email);
        }

        // The other calls, two at a time, on the same shared connection.
        let ann = stored.iter().find(|u| u.email == "k0@example.com").unwrap();
        let changes = UserChanges {
            karma: Some(99),
            ..UserChanges::default()
        };
        let (updated, lazy) = try_join(
            User::update_or_create_with(&mut &*conn, lookup(&ann.email), changes, || {
                unreachable!("the row is stored")
            }),
            User::get_or_create_with(&mut &*conn, lookup("new@example.com"), || UserDefaults {
                name: "New".into(),
                karma: 5,
            }),
        )
        .await
        .unwrap();
        assert_eq!(
            (updated.0.id, updated.0.karma, updated.1),
            (ann.id, 99, false)
        );
        assert_eq!((lazy.0.name.as_str(), lazy.1), ("New", true));

        let (upserted, many) = try_join(
            User::update_or_create(&mut &*conn, lookup("k1@example.com"), ann_defaults()),
            User::get_or_create_many(
                &mut &*conn,
                [
                    user("k2@example.com", "x"),
                    user("many@example.com", "Many"),
                ],
            ),
        )
        .await
        .unwrap();
        assert_eq!((upserted.0.name.as_str(), upserted.1), ("Ann", false));
        assert_eq!(created(&many), [false, true]);
        let updated_many = User::update_or_create_many(
            &mut &*conn,
            [
                user("k3@example.com", "Three"),
                user("more@example.com", "More"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(created(&updated_many), [false, true]);
        assert_eq!(updated_many[0].0.name, "Three");
        User::check_schema(&mut &*conn).await.unwrap();

        let stored = PgDb::users(&mut db.connect());
        assert_eq!(stored.len(), KEYS + 3, "{stored:?}");
        let k3 = stored.iter().find(|u| u.email == "k3@example.com").unwrap();
        assert_eq!(k3.name, "Three");
    }

    /// A call's future on a shared connection is `Send`: it runs in `tokio::spawn`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
    async fn postgres_shared_connection_futures_are_send() {
        let db = PgDb::create();
        let conn = Arc::new(db.connect_async().await);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let conn = Arc::clone(&conn);
                tokio::spawn(async move {
                    User::get_or_create(&mut &*conn, ann(), ann_defaults()).await
                })
            })
            .collect();
        let mut creators = 0;
        for task in tasks {
            let (row, created) = task.await.unwrap().unwrap();
            assert_eq!(row.email, "ann@example.com");
            creators += usize::from(created);
        }
        assert_eq!(creators, 1);
        assert_eq!(PgDb::users(&mut db.connect()).len(), 1);
    }
}
