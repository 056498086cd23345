//! The async side of the harness: each backend's diesel-async connection to the same
//! isolated databases as [`TestDb`], and [`for_each_backend_async!`](crate::for_each_backend_async)
//! to run a case on every backend on a multi-threaded tokio runtime.

use std::future::Future;
use std::pin::Pin;

use diesel::connection::InstrumentationEvent;
use diesel::{QueryableByName, SqliteConnection};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
#[cfg(feature = "mysql")]
use diesel_async::AsyncMysqlConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use get_or_create_core::asynchronous::Connection as GocConnection;

#[cfg(feature = "mysql")]
use crate::MysqlDb;
use crate::{Account, Note, PgDb, SqliteDb, StatementLog, TestDb, User};

/// Instantiates each named case (an `async fn` generic over [`AsyncTestDb`]) for every
/// backend, as a `#[tokio::test]` on a multi-threaded runtime. A backend whose URL is not
/// set is reported as ignored, with the variable to set.
#[macro_export]
macro_rules! for_each_backend_async {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() { super::$case::<$crate::SqliteDb>().await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
                async fn $case() { super::$case::<$crate::PgDb>().await }
            )*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(not(goc_mysql), ignore = "MYSQL_DATABASE_URL is not set")]
                async fn $case() { super::$case::<$crate::MysqlDb>().await }
            )*
        }
    };
}

/// A boxed `Send` future, as the harness hands out the library's calls.
pub type SendFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a backend offers the async cases, on top of [`TestDb`].
pub trait AsyncTestDb: TestDb + 'static {
    /// The diesel-async connection type.
    type AsyncConn: AsyncConnection<Backend = Self::Backend>
        + SimpleAsyncConnection
        + Send
        + 'static
        + GocConnection<User>
        + GocConnection<Account>
        + GocConnection<Note>;

    /// A new async connection to the isolated database, set up like [`TestDb::connect`]'s.
    fn connect_async(&self) -> impl Future<Output = Self::AsyncConn> + Send {
        let url = self.url();
        async move {
            let mut conn = Self::AsyncConn::establish(&url)
                .await
                .unwrap_or_else(|e| panic!("{}: cannot connect to {url}: {e}", Self::NAME));
            Self::prepare_async(&mut conn).await;
            conn
        }
    }

    /// Per-connection settings (the same as [`TestDb::prepare`]).
    fn prepare_async(_conn: &mut Self::AsyncConn) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The number of rows of `table`, read on `conn` (inside its transaction, if one is
    /// open).
    fn count_async<'c>(conn: &'c mut Self::AsyncConn, table: &'c str) -> SendFuture<'c, i64>;
}

/// `count_async`, written out on each backend's concrete connection type: diesel-async's
/// query bounds are simplest to prove there.
macro_rules! concrete_calls {
    () => {
        fn count_async<'c>(conn: &'c mut Self::AsyncConn, table: &'c str) -> SendFuture<'c, i64> {
            Box::pin(count_rows(conn, table))
        }
    };
}

impl AsyncTestDb for SqliteDb {
    type AsyncConn = SyncConnectionWrapper<SqliteConnection>;

    async fn prepare_async(conn: &mut Self::AsyncConn) {
        // Writers queue instead of failing, as in `TestDb::prepare`.
        conn.batch_execute("PRAGMA busy_timeout = 30000")
            .await
            .expect("busy_timeout");
    }

    concrete_calls!();
}

impl AsyncTestDb for PgDb {
    type AsyncConn = AsyncPgConnection;

    concrete_calls!();
}

#[cfg(feature = "mysql")]
impl AsyncTestDb for MysqlDb {
    type AsyncConn = AsyncMysqlConnection;

    concrete_calls!();
}

/// `SELECT COUNT(*)` as a row.
#[derive(QueryableByName)]
struct RowCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count_rows<C>(conn: &mut C, table: &str) -> i64
where
    C: AsyncConnection,
    for<'q> diesel::query_builder::SqlQuery: diesel_async::methods::LoadQuery<'q, C, RowCount>,
{
    use diesel_async::RunQueryDsl;
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<RowCount>(conn)
        .await
        .expect("count rows")
        .n
}

impl StatementLog {
    /// Installs a new log on an async connection, replacing its instrumentation.
    pub fn install_async(conn: &mut impl AsyncConnection) -> Self {
        let log = StatementLog::default();
        let sink = log.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                sink.0.lock().expect("log").push(query.to_string());
            }
        });
        log
    }
}
