//! The connection as the strategies see it, sync or async.
//!
//! The strategies are written once, as `async` code over a [`Session`]. A sync Diesel
//! connection is a session whose futures are ready as soon as they are polled: the sync
//! API polls the strategy's future once ([`run_now`]) and never needs an executor. An
//! async connection (diesel-async) is a session whose futures really wait.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use diesel::backend::Backend;
use diesel::connection::{LoadConnection, TransactionManager};
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::QueryResult;

use crate::Error;

mod sealed {
    pub trait Sealed {}
}

/// A connection the strategies can run on: a Diesel connection, or (with the feature
/// `async`) a diesel-async one. Implemented by the library only.
#[allow(async_fn_in_trait)] // Whether a session's futures are `Send` depends on its connection.
pub trait Session: sealed::Sealed {
    /// The connection's backend.
    type Backend: Backend;

    /// Whether the caller has opened a transaction on the connection.
    fn in_transaction(&mut self) -> QueryResult<bool>;

    /// Runs `query` and gathers its rows into `R` (a `Vec`, or a collection that keeps
    /// only what the caller needs, with no allocation).
    async fn load<T, Q, R>(&mut self, query: Q) -> QueryResult<R>
    where
        Q: Query + QueryFragment<Self::Backend> + QueryId,
        T: FromSqlRow<Q::SqlType, Self::Backend>,
        R: Default + Extend<T>,
        Self::Backend: QueryMetadata<Q::SqlType>;

    /// Runs `statement` and returns the number of rows it affected.
    async fn execute<Q>(&mut self, statement: Q) -> QueryResult<usize>
    where
        Q: QueryFragment<Self::Backend> + QueryId;
}

/// A sync Diesel connection as a [`Session`].
pub(crate) struct Blocking<'c, C>(pub(crate) &'c mut C);

impl<C> sealed::Sealed for Blocking<'_, C> {}

impl<C: LoadConnection> Session for Blocking<'_, C> {
    type Backend = C::Backend;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = C::TransactionManager::transaction_manager_status_mut(self.0);
        Ok(status.transaction_depth()?.is_some())
    }

    async fn load<T, Q, R>(&mut self, query: Q) -> QueryResult<R>
    where
        Q: Query + QueryFragment<Self::Backend> + QueryId,
        T: FromSqlRow<Q::SqlType, Self::Backend>,
        R: Default + Extend<T>,
        Self::Backend: QueryMetadata<Q::SqlType>,
    {
        // Reading every row steps the statement to its end: on SQLite a `RETURNING`
        // statement left unfinished would keep its write open and block WAL checkpoints.
        let mut rows = R::default();
        for row in self.0.load(query)? {
            let row = T::build_from_row(&row?).map_err(DieselError::DeserializationError)?;
            rows.extend(Some(row));
        }
        Ok(rows)
    }

    async fn execute<Q>(&mut self, statement: Q) -> QueryResult<usize>
    where
        Q: QueryFragment<Self::Backend> + QueryId,
    {
        self.0.execute_returning_count(&statement)
    }
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

#[cfg(feature = "async")]
pub(crate) use self::nonblocking::Nonblocking;

#[cfg(feature = "async")]
mod nonblocking {
    use diesel_async::{AsyncConnection, TransactionManager};
    use futures_util::TryStreamExt;

    use super::*;

    /// A diesel-async connection as a [`Session`].
    pub(crate) struct Nonblocking<'c, C>(pub(crate) &'c mut C);

    impl<C> sealed::Sealed for Nonblocking<'_, C> {}

    impl<C: AsyncConnection> Session for Nonblocking<'_, C> {
        type Backend = C::Backend;

        fn in_transaction(&mut self) -> QueryResult<bool> {
            let status = C::TransactionManager::transaction_manager_status_mut(self.0);
            Ok(status.transaction_depth()?.is_some())
        }

        async fn load<T, Q, R>(&mut self, query: Q) -> QueryResult<R>
        where
            Q: Query + QueryFragment<Self::Backend> + QueryId,
            T: FromSqlRow<Q::SqlType, Self::Backend>,
            R: Default + Extend<T>,
            Self::Backend: QueryMetadata<Q::SqlType>,
        {
            self.0
                .load(query)
                .await?
                .try_fold(R::default(), |mut rows, row| {
                    let row = T::build_from_row(&row).map_err(DieselError::DeserializationError);
                    std::future::ready(row.map(|row| {
                        rows.extend(Some(row));
                        rows
                    }))
                })
                .await
        }

        async fn execute<Q>(&mut self, statement: Q) -> QueryResult<usize>
        where
            Q: QueryFragment<Self::Backend> + QueryId,
        {
            self.0.execute_returning_count(statement).await
        }
    }
}
