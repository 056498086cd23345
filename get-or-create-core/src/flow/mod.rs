//! What the backends' strategies share: the bounded retry of attempts, lazy defaults,
//! reading rows, and mapping errors onto [`Error`]; the flow PostgreSQL and SQLite share
//! ([`select_then_insert`]) and the bulk driver all three share ([`bulk`]).

use std::cell::LazyCell;
use std::future::Future;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryBuilder, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel::Selectable;

use crate::model::{Columns, Model};
use crate::retry::is_lost_conflict;
use crate::session::Session;
use crate::sql::{CreateUniqueIndex, RowType};
use crate::Error;

pub(crate) mod bulk;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) mod select_then_insert;

/// How many times a call outside a transaction is attempted before it gives up with
/// [`Error::RetriesExhausted`]. Each extra attempt needs a concurrent writer to delete the
/// row or deadlock us again, so three is plenty and bounds the worst case.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// What the strategies' statements need of a model on backend `DB`: its columns bound by
/// `DB`, its table and rows written and read by `DB`, and all of it `Send` so that the
/// futures holding the statements are. (One name for bounds every flow would repeat.)
pub(crate) trait Stored<DB: Backend>:
    Columns<DB>
    + Model<Table: QuerySource<FromClause: QueryFragment<DB> + Send>>
    + Selectable<DB, SelectExpression: QueryFragment<DB> + Send>
    + FromSqlRow<RowType<Self, DB>, DB>
{
}

impl<M, DB> Stored<DB> for M
where
    DB: Backend,
    M: Columns<DB>
        + Model<Table: QuerySource<FromClause: QueryFragment<DB> + Send>>
        + Selectable<DB, SelectExpression: QueryFragment<DB> + Send>
        + FromSqlRow<RowType<M, DB>, DB>,
{
}

/// What every flow needs of a backend, for model `M`: its errors named, its statements
/// written, the model's rows read.
pub(crate) trait Dialect<M: Selectable<Self>>:
    Backend<QueryBuilder: Default>
    + BackendErrors
    + DieselReserveSpecialization
    + QueryMetadata<RowType<M, Self>>
    + Default
    + 'static
{
}

impl<M, DB> Dialect<M> for DB
where
    M: Selectable<DB>,
    DB: Backend<QueryBuilder: Default>
        + BackendErrors
        + DieselReserveSpecialization
        + QueryMetadata<RowType<M, DB>>
        + Default
        + 'static,
{
}

/// The values of a call: computed the first time an insert needs them
/// (`LazyCell::force`), then kept for any retry.
pub(crate) type LazyValues<F, D> = LazyCell<D, F>;

/// Where an attempt gets the values of the row it inserts: computed the first time they
/// are needed, or at hand.
pub(crate) trait ValuesSource<M: Model>: Send {
    /// The values.
    fn get(&mut self) -> &M::Values;
}

impl<M: Model, F: FnOnce() -> M::Values + Send> ValuesSource<M> for LazyValues<F, M::Values> {
    fn get(&mut self) -> &M::Values {
        LazyCell::force(self)
    }
}

impl<M: Model> ValuesSource<M> for &M::Values {
    fn get(&mut self) -> &M::Values {
        self
    }
}

/// Why an attempt did not return a row.
pub(crate) enum Failure {
    /// Lost to a concurrent transaction (serialization failure, deadlock, stale snapshot):
    /// retried outside a transaction, reported as [`Error::TransactionMustBeRetried`]
    /// inside one.
    LostConflict(DieselError),
    /// The row changed under us between two statements of the attempt (the row that beat
    /// our insert was deleted before we read it, or one was stored after our update found
    /// none): the attempt is run again.
    RowChanged,
    /// Reported to the caller as is.
    Fatal(Error),
}

impl Failure {
    /// The error a call ends with when this failure is not retried.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Failure::LostConflict(source) => Error::TransactionMustBeRetried { source },
            Failure::RowChanged => Error::RetriesExhausted {
                attempts: 1,
                source: None,
            },
            Failure::Fatal(error) => error,
        }
    }
}

/// One attempt of a call: runs its statements once and returns the row, or why not.
pub(crate) trait Attempt<S: Session>: Send {
    /// What a successful attempt returns.
    type Output: Send;

    /// Runs the attempt's statements.
    fn run(
        &mut self,
        session: &mut S,
    ) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// Runs `attempt` until it succeeds, fails for good, or has run [`MAX_ATTEMPTS`] times.
///
/// Inside the caller's transaction a lost conflict is not retried: the database has rolled
/// the transaction back (MariaDB, on a deadlock) or will only let it roll back
/// (PostgreSQL), so repeating one statement would run it outside the transaction the
/// caller believes it is in.
pub(crate) async fn retried<S, A>(session: &mut S, mut attempt: A) -> Result<A::Output, Error>
where
    S: Session,
    A: Attempt<S>,
{
    let mut attempts = Attempts::new(session)?;
    loop {
        match attempt.run(session).await {
            Ok(output) => return Ok(output),
            Err(failure) => attempts.failed(failure)?,
        }
    }
}

/// The attempts of one call (or one chunk of a bulk call): at most [`MAX_ATTEMPTS`].
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
            Failure::RowChanged => self.last_error = None,
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
pub(crate) fn classify<M: Named<DB>, DB: BackendErrors>(error: DieselError) -> Failure {
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
            Failure::Fatal(no_unique_index::<M, DB>(Some(error)))
        }
        _ => Failure::Fatal(Error::Database(error)),
    }
}

/// [`Error::NoUniqueIndex`] for `M` on `DB`.
pub(crate) fn no_unique_index<M: Named<DB>, DB: Backend>(source: Option<DieselError>) -> Error {
    Error::NoUniqueIndex {
        table: M::table_name(),
        columns: M::KEY_COLUMNS,
        create_index: M::create_index(),
        source,
    }
}

/// [`Error::MultipleRowsMatch`] for `M` on `DB`.
pub(crate) fn multiple_rows_match<M: Named<DB>, DB: Backend>() -> Error {
    Error::MultipleRowsMatch {
        table: M::table_name(),
        columns: M::KEY_COLUMNS,
    }
}

/// A model whose table and key `DB` can name, in messages: every model a strategy of `DB`
/// runs on.
pub(crate) trait Named<DB: Backend>: Model {
    /// The table's name as the database knows it (the `sql_name` of `table!` included),
    /// schema-qualified when the `table!` names a schema, without quotes.
    fn table_name() -> String;

    /// The table's name as `DB`'s SQL writes it, quoted.
    fn table_sql() -> String;

    /// A `CREATE UNIQUE INDEX` statement that backs the key, in `DB`'s SQL.
    fn create_index() -> String;
}

impl<M, DB> Named<DB> for M
where
    M: Columns<DB> + Model<Table: QuerySource<FromClause: QueryFragment<DB>>>,
    DB: Backend<QueryBuilder: Default> + DieselReserveSpecialization + Default,
{
    fn table_name() -> String {
        Self::table_sql()
            .chars()
            .filter(|c| !matches!(c, '"' | '`'))
            .collect()
    }

    fn table_sql() -> String {
        render::<DB>(&M::Table::default().from_clause())
    }

    fn create_index() -> String {
        render::<DB>(&CreateUniqueIndex::<M>::new())
    }
}

/// A fragment as `DB`'s SQL text.
fn render<DB>(fragment: &impl QueryFragment<DB>) -> String
where
    DB: Backend<QueryBuilder: Default> + Default,
{
    let mut sql = <DB::QueryBuilder as Default>::default();
    match fragment.to_sql(&mut sql, &DB::default()) {
        Ok(()) => sql.finish(),
        Err(_) => String::from("?"),
    }
}

/// Runs `query` and returns the one row of `M` it found, if any. Our queries return at
/// most two rows (`LIMIT 2`); two mean the lookup is not unique.
pub(crate) async fn fetch<M, S, Q>(session: &mut S, query: Q) -> Result<Option<M>, Failure>
where
    M: Named<S::Backend> + FromSqlRow<Q::SqlType, S::Backend>,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId + Send,
{
    fetch_as::<M, M, S, Q>(session, query).await
}

/// A failure met while creating the row of `key`: when it is [`Error::NoUniqueIndex`] or
/// [`Error::KeyNotSupported`] and several stored rows match the key,
/// [`Error::MultipleRowsMatch`] instead, which says more (one read more, on this error path
/// only). (The select-then-insert flow's; MySQL/MariaDB reads the key first instead.)
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) async fn several_rows_first<M, S>(
    session: &mut S,
    key: &M::Key,
    failure: Failure,
) -> Failure
where
    M: Stored<S::Backend>,
    S: Session,
    S::Backend: Dialect<M>,
{
    if let Failure::Fatal(Error::NoUniqueIndex { .. } | Error::KeyNotSupported { .. }) = failure {
        let select = crate::sql::SelectByKey::<M, S::Backend>::new(key);
        if let Err(several @ Failure::Fatal(Error::MultipleRowsMatch { .. })) =
            fetch::<M, _, _>(session, select).await
        {
            return several;
        }
    }
    failure
}

/// [`fetch`] of rows that are not just an `M` (a created flag and an `M`, say).
pub(crate) async fn fetch_as<M, T, S, Q>(session: &mut S, query: Q) -> Result<Option<T>, Failure>
where
    M: Named<S::Backend>,
    T: FromSqlRow<Q::SqlType, S::Backend> + Send,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId + Send,
{
    let rows: FirstRow<T> = session
        .load(query)
        .await
        .map_err(classify::<M, S::Backend>)?;
    if rows.more {
        return Err(Failure::Fatal(multiple_rows_match::<M, S::Backend>()));
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
    M: Named<S::Backend>,
    T: FromSqlRow<Q::SqlType, S::Backend> + Send,
    S: Session,
    S::Backend: BackendErrors + QueryMetadata<Q::SqlType>,
    Q: Query + QueryFragment<S::Backend> + QueryId + Send,
{
    session.load(query).await.map_err(classify::<M, S::Backend>)
}
