//! The flow PostgreSQL and SQLite share: both have `INSERT .. ON CONFLICT DO NOTHING
//! RETURNING`.
//!
//! | path | statements |
//! |---|---|
//! | row exists | `SELECT` |
//! | row missing | `SELECT`, `INSERT .. ON CONFLICT (lookup) DO NOTHING RETURNING ..` |
//! | lost race | the two above, then `SELECT` again |
//!
//! Selecting first means a hit writes nothing: no sequence value is consumed, no row is
//! locked, no transaction id is used. The insert names the lookup columns as its conflict
//! target, so a lost race returns no row instead of raising an error (which on PostgreSQL
//! would abort the caller's transaction and force a savepoint on every call), while any
//! other unique violation is still raised and reported. The final `SELECT` is a new
//! statement, so at PostgreSQL's `READ COMMITTED` it sees the winner's row; at stricter
//! levels the insert itself fails with a serialization failure, which is the caller's cue
//! to retry its transaction.

use std::cell::LazyCell;

use diesel::backend::DieselReserveSpecialization;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::Selectable;

use super::{fetch, Attempts, BackendErrors, Failure, LazyDefaults};
use crate::model::ModelSql;
use crate::session::Session;
use crate::statement::{Insert, OnConflictDoNothingReturning, RowType, SelectByLookup};
use crate::Error;

pub(crate) async fn get_or_create<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    defaults: F,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: BackendErrors
        + DieselReserveSpecialization
        + QueryMetadata<RowType<M, S::Backend>>
        + 'static,
    M: ModelSql<S::Backend>
        + Selectable<S::Backend>
        + FromSqlRow<RowType<M, S::Backend>, S::Backend>,
    M::SelectExpression: QueryFragment<S::Backend>,
    <M::Table as QuerySource>::FromClause: QueryFragment<S::Backend>,
    F: FnOnce() -> M::Defaults,
{
    let mut attempts = Attempts::new(session)?;
    let mut defaults = LazyDefaults::new(defaults);
    loop {
        match attempt(session, lookup, &mut defaults).await {
            Ok(found) => return Ok(found),
            Err(failure) => attempts.failed(failure)?,
        }
    }
}

async fn attempt<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    defaults: &mut LazyDefaults<F, M::Defaults>,
) -> Result<(M, bool), Failure>
where
    S: Session,
    S::Backend: BackendErrors
        + DieselReserveSpecialization
        + QueryMetadata<RowType<M, S::Backend>>
        + 'static,
    M: ModelSql<S::Backend>
        + Selectable<S::Backend>
        + FromSqlRow<RowType<M, S::Backend>, S::Backend>,
    M::SelectExpression: QueryFragment<S::Backend>,
    <M::Table as QuerySource>::FromClause: QueryFragment<S::Backend>,
    F: FnOnce() -> M::Defaults,
{
    let select = || SelectByLookup::<M, S::Backend>::new(lookup);
    if let Some(row) = fetch(session, select()).await? {
        return Ok((row, false));
    }
    let defaults: &M::Defaults = LazyCell::force(defaults);
    let insert = Insert::<M, S::Backend, OnConflictDoNothingReturning>::new(lookup, defaults);
    if let Some(row) = fetch(session, insert).await? {
        return Ok((row, true));
    }
    match fetch(session, select()).await? {
        Some(row) => Ok((row, false)),
        None => Err(Failure::Vanished),
    }
}
