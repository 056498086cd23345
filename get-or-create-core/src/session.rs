//! The connection as the strategies see it, sync or async.
//!
//! The strategies are written once, as `async` code over a [`Session`]. A sync Diesel
//! connection is a session whose futures are ready as soon as they are polled: the sync
//! API polls the strategy's future once ([`run_now`]) and never needs an executor. An
//! async connection (diesel-async) is a session whose futures really wait.
//!
//! Every future here is `Send`, declared so in the signatures: code generic over the
//! connection can then prove its own futures `Send` (for `tokio::spawn`, web handlers).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use diesel::backend::Backend;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::QueryResult;

use crate::Error;

/// A connection the strategies run on. Implemented by the library only (the type is not
/// reachable from outside the crate).
pub trait Session: Send {
    /// The connection's backend.
    type Backend: Backend;

    /// Whether the caller has opened a transaction on the connection.
    fn in_transaction(&mut self) -> QueryResult<bool>;

    /// Runs `query` and gathers its rows into `R` (a `Vec`, or a collection that keeps
    /// only what the caller needs, with no allocation).
    fn load<T, Q, R>(&mut self, query: Q) -> impl Future<Output = QueryResult<R>> + Send
    where
        Q: Query + QueryFragment<Self::Backend> + QueryId + Send,
        T: FromSqlRow<Q::SqlType, Self::Backend>,
        R: Default + Extend<T> + Send,
        Self::Backend: QueryMetadata<Q::SqlType>;

    /// Runs `statement` and returns the number of rows it affected.
    fn execute<Q>(&mut self, statement: Q) -> impl Future<Output = QueryResult<usize>> + Send
    where
        Q: QueryFragment<Self::Backend> + QueryId + Send;
}

/// Runs a future of the sync API: its session never waits, so one poll finishes it.
pub(crate) fn run_now<T>(future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        // Unreachable with a `Blocking` session; reported rather than hung or panicked.
        Poll::Pending => Err(Error::Database(DieselError::QueryBuilderError(
            "get-or-create: a sync call waited on an async operation".into(),
        ))),
    }
}
