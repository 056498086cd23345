//! One strategy per backend behind the [`Strategy`] trait, and what they share: the bounded
//! retry loop, lazy defaults, row loading and the transaction check.
//!
//! Each backend module says which statements it sends on each path and why.

use std::num::NonZeroU32;

use diesel::backend::Backend;
use diesel::connection::{LoadConnection, TransactionManager};
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::{Connection, QueryResult};

use crate::model::Model;
use crate::Error;

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
    /// Returns the row of `M` that `lookup` identifies, creating it from `defaults()`
    /// when there is none; `true` when this call created it. `defaults` is called only
    /// when a row is really inserted.
    fn get_or_create<C, F>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
        F: FnOnce() -> M::Defaults;
}

/// The defaults of a call: computed the first time an insert needs them, then kept for
/// any retry.
pub(crate) enum LazyDefaults<F, D> {
    Pending(F),
    Ready(D),
    /// Only seen if `defaults()` panicked; it is never read then.
    Poisoned,
}

impl<F: FnOnce() -> D, D> LazyDefaults<F, D> {
    pub(crate) fn new(defaults: F) -> Self {
        LazyDefaults::Pending(defaults)
    }

    pub(crate) fn get(&mut self) -> &D {
        if let LazyDefaults::Pending(_) = self {
            if let LazyDefaults::Pending(f) = std::mem::replace(self, LazyDefaults::Poisoned) {
                *self = LazyDefaults::Ready(f());
            }
        }
        match self {
            LazyDefaults::Ready(d) => d,
            // Unreachable: the branch above always leaves `Ready` behind unless `f`
            // panicked, in which case this call never returns.
            LazyDefaults::Pending(_) | LazyDefaults::Poisoned => {
                unreachable!("defaults are computed above")
            }
        }
    }
}

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

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Fatal(error)
    }
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
    mut attempt: impl FnMut(&mut C, &mut LazyDefaults<F, M::Defaults>) -> Result<(M, bool), Failure>,
) -> Result<(M, bool), Error>
where
    M: Model,
    C: Connection,
    F: FnOnce() -> M::Defaults,
{
    let in_transaction = transaction_depth(conn)?.is_some();
    let mut defaults = LazyDefaults::new(defaults);
    let mut last_error = None;
    for _ in 0..MAX_ATTEMPTS {
        match attempt(conn, &mut defaults) {
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

fn transaction_depth<C: Connection>(conn: &mut C) -> QueryResult<Option<NonZeroU32>> {
    C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth()
}

/// The rows a lookup found: Diesel rows of `M`, at most two of them (the queries say
/// `LIMIT 2`), turned into the one row a lookup may find.
pub(crate) fn at_most_one<M: Model>(mut rows: Vec<M>) -> Result<Option<M>, Error> {
    match rows.len() {
        0 | 1 => Ok(rows.pop()),
        _ => Err(Error::MultipleRowsMatch {
            table: M::TABLE_NAME,
            columns: M::LOOKUP_COLUMNS,
        }),
    }
}

/// Runs `query` and deserializes every row it returns as `M`.
///
/// Reading to the end matters on SQLite: a `RETURNING` statement that is not stepped to
/// completion keeps its write transaction open, and the WAL can then never be checkpointed.
pub(crate) fn load<M, C, Q>(conn: &mut C, query: Q) -> QueryResult<Vec<M>>
where
    C: LoadConnection,
    Q: Query + QueryFragment<C::Backend> + QueryId,
    C::Backend: QueryMetadata<Q::SqlType>,
    M: FromSqlRow<Q::SqlType, C::Backend>,
{
    let mut rows = Vec::with_capacity(1);
    for row in conn.load(query)? {
        let row = row?;
        let value = M::build_from_row(&row).map_err(DieselError::DeserializationError)?;
        rows.push(value);
    }
    Ok(rows)
}

/// The part of a database message that follows `prefix`, up to the closing quote.
#[cfg(any(feature = "mysql", test))]
pub(crate) fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    Some(&rest[..rest.rfind('\'')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_defaults_are_computed_once() {
        let calls = std::cell::Cell::new(0);
        let mut defaults = LazyDefaults::new(|| {
            calls.set(calls.get() + 1);
            7
        });
        assert_eq!(calls.get(), 0, "not computed before it is needed");
        assert_eq!(*defaults.get(), 7);
        assert_eq!(*defaults.get(), 7);
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn quoted_after_takes_the_last_quote() {
        let message = "Duplicate entry 'a'b' for key 'users.name_key'";
        assert_eq!(quoted_after(message, "for key '"), Some("users.name_key"));
        assert_eq!(quoted_after("no key here", "for key '"), None);
    }
}
