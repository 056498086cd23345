//! The flows PostgreSQL and SQLite share: both have `INSERT .. ON CONFLICT DO NOTHING
//! RETURNING` and `UPDATE .. RETURNING`.
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

use super::{defaults_for_insert, fetch, Attempts, BackendErrors, Failure, LazyDefaults};
use crate::model::ModelSql;
use crate::session::Session;
use crate::statement::{
    Insert, InsertValues, OnConflictDoNothingReturning, Returning, RowType, SelectByLookup,
    UpdateByLookup,
};
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

/// `update_or_create`:
///
/// | path | statements |
/// |---|---|
/// | row exists | `UPDATE .. RETURNING` |
/// | row missing | `UPDATE .. RETURNING`, `INSERT .. ON CONFLICT (lookup) DO NOTHING RETURNING` |
/// | lost race | the two above, then the `UPDATE` again |
///
/// With no field changed the `UPDATE` is a `SELECT`. A model with an `Option` lookup
/// field reads once more before inserting, to tell "no row" from "several rows" (which
/// the `UPDATE` leaves alone).
pub(crate) async fn update_or_create<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    changes: &M::Changes,
    create_defaults: F,
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
    F: FnOnce() -> Option<M::Defaults>,
{
    let mut attempts = Attempts::new(session)?;
    let mut defaults = LazyDefaults::new(create_defaults);
    loop {
        match update_or_insert(session, lookup, changes, &mut defaults).await {
            Ok(found) => return Ok(found),
            Err(failure) => attempts.failed(failure)?,
        }
    }
}

async fn update_or_insert<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    changes: &M::Changes,
    defaults: &mut LazyDefaults<F, Option<M::Defaults>>,
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
    F: FnOnce() -> Option<M::Defaults>,
{
    let select = || SelectByLookup::<M, S::Backend>::new(lookup);
    let changed = M::changed_fields(changes) > 0;
    let stored = if changed {
        let update = UpdateByLookup::<M, S::Backend, Returning>::new(lookup, changes);
        fetch(session, update).await?
    } else {
        fetch(session, select()).await?
    };
    if let Some(row) = stored {
        return Ok((row, false));
    }
    if changed && M::NULLABLE_LOOKUP && fetch::<M, _, _>(session, select()).await?.is_some() {
        // Stored meanwhile: update it in the next attempt.
        return Err(Failure::Vanished);
    }
    let defaults = defaults_for_insert::<M, F>(changes, defaults);
    let values = InsertValues::Changed(changes, defaults);
    let insert = Insert::<M, S::Backend, OnConflictDoNothingReturning>::of(lookup, values);
    match fetch(session, insert).await? {
        Some(row) => Ok((row, true)),
        // Lost the race to create it: update the winner's row in the next attempt.
        None => Err(Failure::Vanished),
    }
}
