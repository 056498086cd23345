//! One strategy per backend behind the [`Strategy`] trait, and what they share: the bounded
//! retry loop, lazy defaults, row loading and the transaction check.
//!
//! Each backend module says which statements it sends on each path and why.

use std::cell::LazyCell;
use std::num::NonZeroU32;

use diesel::backend::Backend;
use diesel::connection::{LoadConnection, TransactionManager};
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, QueryResult};

use crate::model::Model;
use crate::retry::is_lost_conflict;
use crate::Error;

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
mod bulk;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod returning;
#[cfg(feature = "sqlite")]
mod sqlite;

/// How many times a call outside a transaction is attempted before it gives up with
/// [`Error::RetriesExhausted`]. Each extra attempt needs a concurrent writer to delete the
/// row or deadlock us again, so three is plenty and bounds the worst case.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// A backend's way of getting or creating a row of `M`.
///
/// Implemented for [`diesel::pg::Pg`], [`diesel::sqlite::Sqlite`] and
/// [`diesel::mysql::Mysql`] (each behind the cargo feature of the same name). Name it in
/// the bounds of code that is generic over the connection:
///
/// ```
/// use diesel::connection::LoadConnection;
/// use get_or_create_core::{GetOrCreate, Strategy};
///
/// fn ensure<M, C>(conn: &mut C, lookup: M::Lookup, defaults: M::Defaults)
///     -> Result<M, get_or_create_core::Error>
/// where
///     M: GetOrCreate,
///     C: LoadConnection,
///     C::Backend: Strategy<M>,
/// {
///     M::get_or_create(conn, lookup, defaults).map(|(row, _created)| row)
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`get_or_create` of `{M}` is not available on the backend `{Self}`",
    label = "no get-or-create strategy for this backend and model",
    note = "enable the feature of get-or-create-core for this backend: `postgres`, `sqlite` or `mysql`",
    note = "derive `Queryable` and `Selectable` on `{M}`, with the same `#[diesel(table_name = ..)]` as `GetOrCreate`"
)]
pub trait Strategy<M: Model>: Backend {
    /// Returns the row of `M` that `lookup` identifies, creating it from `defaults` when
    /// there is none; `true` when this call created it.
    ///
    /// Having the defaults up front lets a backend look up and insert in one statement;
    /// by default it is [`get_or_create_with`](Strategy::get_or_create_with).
    fn get_or_create<C>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: M::Defaults,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
    {
        Self::get_or_create_with(conn, lookup, move || defaults)
    }

    /// Like [`get_or_create`](Strategy::get_or_create), but `defaults` is called only
    /// when a row is really inserted.
    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
        F: FnOnce() -> M::Defaults;

    /// Gets or creates the row of each `(lookup, defaults)` pair, with a fixed number of
    /// statements per chunk of items; the results are in the order of `items`.
    fn get_or_create_many<C>(
        conn: &mut C,
        items: &[(M::Lookup, M::Defaults)],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        C: LoadConnection<Backend = Self>;
}

/// The defaults of a call: computed the first time an insert needs them
/// (`LazyCell::force`), then kept for any retry.
pub(crate) type LazyDefaults<F, D> = LazyCell<D, F>;

/// Why an attempt did not return a row.
pub(crate) enum Failure {
    /// Lost to a concurrent transaction (serialization failure, deadlock, stale snapshot):
    /// retried outside a transaction, reported as [`Error::TransactionMustBeRetried`]
    /// inside one.
    LostConflict(DieselError),
    /// The row that beat our insert was gone when we read it: try again.
    Vanished,
    /// Reported to the caller as is.
    Fatal(Error),
}

/// Runs `attempt` until it returns a row, at most [`MAX_ATTEMPTS`] times.
///
/// Inside the caller's transaction a lost conflict is not retried: the database has rolled
/// the transaction back (MariaDB, on a deadlock) or will only let it roll back
/// (PostgreSQL), so repeating one statement would run it outside the transaction the
/// caller believes it is in.
pub(crate) fn with_retries<M, C, F>(
    conn: &mut C,
    defaults: F,
    mut attempt: impl FnMut(&mut C, &LazyDefaults<F, M::Defaults>) -> Result<(M, bool), Failure>,
) -> Result<(M, bool), Error>
where
    M: Model,
    C: Connection,
    F: FnOnce() -> M::Defaults,
{
    let in_transaction = transaction_depth(conn)?.is_some();
    let defaults = LazyDefaults::new(defaults);
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        match attempt(conn, &defaults) {
            Ok(found) => return Ok(found),
            Err(Failure::Fatal(error)) => return Err(error),
            Err(Failure::LostConflict(source)) if in_transaction => {
                return Err(Error::TransactionMustBeRetried { source })
            }
            Err(Failure::LostConflict(source)) => last_error = Some(source),
            Err(Failure::Vanished) => last_error = None,
        }
    }
    Err(Error::RetriesExhausted {
        attempts: MAX_ATTEMPTS,
        source: last_error,
    })
}

pub(crate) fn transaction_depth<C: Connection>(conn: &mut C) -> QueryResult<Option<NonZeroU32>> {
    C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth()
}

/// How a backend names what went wrong; the rest of the mapping onto [`Error`] is
/// shared ([`classify`]).
pub(crate) trait BackendErrors: Backend {
    /// What the database names a violated unique constraint by.
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String>;

    /// Whether the error says that no unique index matches the lookup columns.
    fn is_missing_unique_index(_info: &dyn DatabaseErrorInformation) -> bool {
        false
    }
}

/// Maps a Diesel error of backend `DB`, raised while getting or creating an `M`.
pub(crate) fn classify<M: Model, DB: BackendErrors>(error: DieselError) -> Failure {
    if is_lost_conflict(&error) {
        return Failure::LostConflict(error);
    }
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Failure::Fatal(Error::UniqueViolation {
                constraint: DB::unique_constraint(info.as_ref()),
                source: error,
            })
        }
        DieselError::DatabaseError(_, info) if DB::is_missing_unique_index(info.as_ref()) => {
            Failure::Fatal(Error::NoUniqueIndex {
                table: M::TABLE_NAME,
                columns: M::LOOKUP_COLUMNS,
                source: Some(error),
            })
        }
        _ => Failure::Fatal(Error::Database(error)),
    }
}

/// Runs `query` and returns the one row of `M` it found, if any. Our queries return at
/// most two rows (`LIMIT 2`); two mean the lookup is not unique.
///
/// It reads to the end of the result: on SQLite a `RETURNING` statement that is not
/// stepped to completion keeps its write transaction open, and the WAL can then never be
/// checkpointed.
pub(crate) fn fetch<M, C, Q>(conn: &mut C, query: Q) -> Result<Option<M>, Failure>
where
    M: Model + FromSqlRow<Q::SqlType, C::Backend>,
    C: LoadConnection,
    C::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<C::Backend> + QueryId,
{
    fetch_as::<M, M, C, Q>(conn, query)
}

/// [`fetch`] of rows that are not just an `M` (a created flag and an `M`, say).
pub(crate) fn fetch_as<M, T, C, Q>(conn: &mut C, query: Q) -> Result<Option<T>, Failure>
where
    M: Model,
    T: FromSqlRow<Q::SqlType, C::Backend>,
    C: LoadConnection,
    C::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<C::Backend> + QueryId,
{
    let classify = classify::<M, C::Backend>;
    let mut rows = conn.load(query).map_err(classify)?;
    let first = match rows.next() {
        None => return Ok(None),
        Some(row) => T::build_from_row(&row.map_err(classify)?)
            .map_err(|e| classify(DieselError::DeserializationError(e)))?,
    };
    match rows.next() {
        None => Ok(Some(first)),
        Some(Err(error)) => Err(classify(error)),
        Some(Ok(_)) => Err(Failure::Fatal(Error::MultipleRowsMatch {
            table: M::TABLE_NAME,
            columns: M::LOOKUP_COLUMNS,
        })),
    }
}

/// Runs `query` and returns all its rows.
pub(crate) fn load_all<M, T, C, Q>(conn: &mut C, query: Q) -> Result<Vec<T>, Failure>
where
    M: Model,
    T: FromSqlRow<Q::SqlType, C::Backend>,
    C: LoadConnection,
    C::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<C::Backend> + QueryId,
{
    let classify = classify::<M, C::Backend>;
    let rows = conn.load(query).map_err(classify)?;
    rows.map(|row| {
        T::build_from_row(&row.map_err(classify)?)
            .map_err(|e| classify(DieselError::DeserializationError(e)))
    })
    .collect()
}
