//! One strategy per backend behind the [`Strategy`] trait, and what they share: the bounded
//! retry of attempts, lazy defaults, row loading and the mapping of errors.
//!
//! Each backend module says which statements it sends on each path and why. The
//! strategies are `async` code over a [`Session`], so that sync and async connections run
//! the same statements in the same order (see `session.rs`).

use std::cell::LazyCell;
use std::future::Future;

use diesel::backend::Backend;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

use diesel::query_source::QuerySource;
use diesel::Selectable;

use crate::model::{Model, ModelSql};
use crate::retry::is_lost_conflict;
use crate::session::Session;
use crate::statement::Item;
use crate::statement::RowType;
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

/// A backend's way of getting or creating rows of `M`, on any [`Session`].
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
    fn get_or_create<S>(
        session: &mut S,
        lookup: &M::Lookup,
        defaults: M::Defaults,
    ) -> impl Future<Output = Result<(M, bool), Error>>
    where
        S: Session<Backend = Self>,
    {
        Self::get_or_create_with(session, lookup, move || defaults)
    }

    /// Like [`get_or_create`](Strategy::get_or_create), but `defaults` is called only
    /// when a row is really inserted.
    fn get_or_create_with<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        defaults: F,
    ) -> impl Future<Output = Result<(M, bool), Error>>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Defaults;

    /// Gets or creates the row of each `(lookup, defaults)` pair, with a fixed number of
    /// statements per chunk of items; the results are in the order of `items`.
    fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> impl Future<Output = Result<Vec<(M, bool)>, Error>>
    where
        S: Session<Backend = Self>;

    /// Sets `changes` on the row of `M` that `lookup` identifies, or creates it with
    /// `changes` and, for the fields not changed, `create_defaults()`; `true` when this
    /// call created it. `create_defaults` is called only when a row is created and some
    /// field is not changed; it may return `None` when every field is changed.
    fn update_or_create<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        changes: &M::Changes,
        create_defaults: F,
    ) -> impl Future<Output = Result<(M, bool), Error>>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Defaults>;
}

/// What the strategies' statements need of a model on backend `DB`: its SQL, its table and
/// columns written by `DB`, and its rows read back. (One name for bounds every attempt
/// function would otherwise repeat.)
pub(crate) trait Stored<DB: Backend>:
    ModelSql<DB>
    + Model<Table: QuerySource<FromClause: QueryFragment<DB>>>
    + Selectable<DB, SelectExpression: QueryFragment<DB>>
    + FromSqlRow<RowType<Self, DB>, DB>
{
}

impl<M, DB> Stored<DB> for M
where
    DB: Backend,
    M: ModelSql<DB>
        + Model<Table: QuerySource<FromClause: QueryFragment<DB>>>
        + Selectable<DB, SelectExpression: QueryFragment<DB>>
        + FromSqlRow<RowType<M, DB>, DB>,
{
}

/// The defaults of a call: computed the first time an insert needs them
/// (`LazyCell::force`), then kept for any retry.
pub(crate) type LazyDefaults<F, D> = LazyCell<D, F>;

/// The defaults an insert of `update_or_create` needs: none when every field is changed.
pub(crate) fn defaults_for_insert<'d, M: Model, F: FnOnce() -> Option<M::Defaults>>(
    changes: &M::Changes,
    defaults: &'d mut LazyDefaults<F, Option<M::Defaults>>,
) -> Option<&'d M::Defaults> {
    if M::changed_fields(changes) < M::default_fields() {
        LazyCell::force(defaults).as_ref()
    } else {
        None
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

/// The attempts of one call (or one chunk of a bulk call): at most [`MAX_ATTEMPTS`].
///
/// Inside the caller's transaction a lost conflict is not retried: the database has rolled
/// the transaction back (MariaDB, on a deadlock) or will only let it roll back
/// (PostgreSQL), so repeating one statement would run it outside the transaction the
/// caller believes it is in.
pub(crate) struct Attempts {
    in_transaction: bool,
    made: u32,
    last_error: Option<DieselError>,
}

impl Attempts {
    pub(crate) fn new(session: &mut impl Session) -> Result<Self, Error> {
        Ok(Attempts {
            in_transaction: session.in_transaction()?,
            made: 0,
            last_error: None,
        })
    }

    /// Which attempt comes next, from 1.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
    pub(crate) fn next_number(&self) -> u32 {
        self.made + 1
    }

    /// Records a failed attempt: `Ok` to try again, or the error the call ends with.
    pub(crate) fn failed(&mut self, failure: Failure) -> Result<(), Error> {
        self.made += 1;
        match failure {
            Failure::Fatal(error) => return Err(error),
            Failure::LostConflict(source) if self.in_transaction => {
                return Err(Error::TransactionMustBeRetried { source })
            }
            Failure::LostConflict(source) => self.last_error = Some(source),
            Failure::Vanished => self.last_error = None,
        }
        if self.made >= MAX_ATTEMPTS {
            return Err(Error::RetriesExhausted {
                attempts: MAX_ATTEMPTS,
                source: self.last_error.take(),
            });
        }
        Ok(())
    }
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
pub(crate) async fn fetch<M, S, Q>(session: &mut S, query: Q) -> Result<Option<M>, Failure>
where
    M: Model + FromSqlRow<Q::SqlType, S::Backend>,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId,
{
    fetch_as::<M, M, S, Q>(session, query).await
}

/// [`fetch`] of rows that are not just an `M` (a created flag and an `M`, say).
pub(crate) async fn fetch_as<M, T, S, Q>(session: &mut S, query: Q) -> Result<Option<T>, Failure>
where
    M: Model,
    T: FromSqlRow<Q::SqlType, S::Backend>,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId,
{
    let rows: FirstRow<T> = session
        .load(query)
        .await
        .map_err(classify::<M, S::Backend>)?;
    if rows.more {
        return Err(Failure::Fatal(Error::MultipleRowsMatch {
            table: M::TABLE_NAME,
            columns: M::LOOKUP_COLUMNS,
        }));
    }
    Ok(rows.first)
}

/// The rows of a statement that should return at most one: the first, and whether more
/// followed. Keeps no allocation, on the path of every call.
struct FirstRow<T> {
    first: Option<T>,
    more: bool,
}

impl<T> Default for FirstRow<T> {
    fn default() -> Self {
        FirstRow {
            first: None,
            more: false,
        }
    }
}

impl<T> Extend<T> for FirstRow<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, rows: I) {
        for row in rows {
            match self.first {
                None => self.first = Some(row),
                Some(_) => self.more = true,
            }
        }
    }
}

/// Runs `query` and returns all its rows, its errors mapped for model `M`.
pub(crate) async fn load_all<M, T, S, Q>(session: &mut S, query: Q) -> Result<Vec<T>, Failure>
where
    M: Model,
    T: FromSqlRow<Q::SqlType, S::Backend>,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId,
{
    session.load(query).await.map_err(classify::<M, S::Backend>)
}
