//! The flow PostgreSQL and SQLite share: read the key's row; only when it is missing,
//! insert it with `ON CONFLICT (<key>) DO NOTHING RETURNING ..`; and when a concurrent
//! caller inserted it first, read the winner's row.
//!
//! | path | `get_or_create` | `update_or_create` |
//! |---|---|---|
//! | row exists | `SELECT` | `UPDATE .. RETURNING` |
//! | row missing | `SELECT`, `INSERT .. RETURNING` | `UPDATE`, `INSERT .. RETURNING` |
//! | lost race | the two above, then `SELECT` again | the two above, then the `UPDATE` again |
//!
//! Reading first means a hit writes nothing: no sequence value is consumed, no row is
//! locked, no transaction id is used. The insert names the lookup columns as its conflict
//! target, so a lost race returns no row instead of raising an error (which on PostgreSQL
//! would abort the caller's transaction), while any other unique violation is still
//! raised and reported. The final `SELECT` is a new statement, so at PostgreSQL's
//! `READ COMMITTED` it sees the winner's row; at stricter levels the insert itself fails
//! with a serialization failure, which is the caller's cue to retry its transaction.

use std::cell::LazyCell;

use super::{fetch, retried, Attempt, Dialect, Failure, LazyValues, Stored};
use crate::model::Model;
use crate::session::Session;
use crate::sql::returning::{InsertReturning, UpdateReturning};
use crate::sql::{count_changes, Changed, SelectByKey, Values};
use crate::Error;

/// `get_or_create` with values computed only when a row is inserted.
pub(crate) async fn get_or_create<M, S, F>(
    session: &mut S,
    key: &M::Key,
    values: F,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: Dialect<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> M::Values + Send,
{
    let attempt = SelectThenInsert::<M, F> {
        key,
        values: LazyValues::new(values),
    };
    retried(session, attempt).await
}

struct SelectThenInsert<'a, M: Model, F> {
    key: &'a M::Key,
    values: LazyValues<F, M::Values>,
}

impl<M, F, S> Attempt<S> for SelectThenInsert<'_, M, F>
where
    S: Session,
    S::Backend: Dialect<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> M::Values + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let select = || SelectByKey::<M, S::Backend>::new(self.key);
        if let Some(row) = fetch(session, select()).await? {
            return Ok((row, false));
        }
        let values: &M::Values = LazyCell::force(&self.values);
        let insert = InsertReturning::<M, S::Backend>::new(self.key, Values::Defaults(values));
        if let Some(row) = fetch(session, insert).await? {
            return Ok((row, true));
        }
        match fetch(session, select()).await? {
            Some(row) => Ok((row, false)),
            None => Err(Failure::RowChanged),
        }
    }
}

/// `update_or_create`: `UPDATE .. RETURNING`, then an insert when nothing matched.
///
/// With no field changed the `UPDATE` is a `SELECT`. A model with a nullable key reads
/// once more before inserting, to tell "no row" from "several rows" (which the `UPDATE`
/// leaves alone).
pub(crate) async fn update_or_create<M, S, F>(
    session: &mut S,
    key: &M::Key,
    changes: &M::Changeset,
    create_values: F,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: Dialect<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    let attempt = UpdateThenInsert::<M, F> {
        key,
        changes,
        changed: count_changes::<M, S::Backend>(changes),
        values: LazyValues::new(create_values),
    };
    retried(session, attempt).await
}

struct UpdateThenInsert<'a, M: Model, F> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
    changed: Changed,
    values: LazyValues<F, Option<M::Values>>,
}

impl<M, F, S> Attempt<S> for UpdateThenInsert<'_, M, F>
where
    S: Session,
    S::Backend: Dialect<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let select = || SelectByKey::<M, S::Backend>::new(self.key);
        let changed = !self.changed.none();
        let stored = if changed {
            let update = UpdateReturning::<M, S::Backend>::new(self.key, self.changes);
            fetch(session, update).await?
        } else {
            fetch(session, select()).await?
        };
        if let Some(row) = stored {
            return Ok((row, false));
        }
        if changed && M::NULLABLE_KEY && fetch::<M, _, _>(session, select()).await?.is_some() {
            // Stored meanwhile: update it in the next attempt.
            return Err(Failure::RowChanged);
        }
        let defaults = if self.changed.all() {
            None
        } else {
            LazyCell::force(&self.values).as_ref()
        };
        let values = Values::Changed(self.changes, defaults);
        let insert = InsertReturning::<M, S::Backend>::new(self.key, values);
        match fetch(session, insert).await? {
            Some(row) => Ok((row, true)),
            // Lost the race to create it: update the winner's row in the next attempt.
            None => Err(Failure::RowChanged),
        }
    }
}
