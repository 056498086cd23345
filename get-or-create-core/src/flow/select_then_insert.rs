//! The flow PostgreSQL and SQLite share: read the key's row; only when it is missing,
//! insert it with `ON CONFLICT .. DO NOTHING RETURNING ..`; when the insert clashed,
//! read again.
//!
//! | path | `get_or_create` | `update_or_create` |
//! |---|---|---|
//! | row exists | `SELECT` | `UPDATE .. RETURNING` |
//! | row missing | `SELECT`, `INSERT .. RETURNING` | `UPDATE`, `INSERT .. RETURNING` |
//! | lost race | the two above, then `SELECT` again | the two above, then the `UPDATE` again |
//!
//! Reading first means a hit writes nothing: no sequence value is consumed, no row is
//! locked, no transaction id is used, and the read is the cheapest statement there is.
//! The insert never raises for a clash with the key's own unique index (`DO NOTHING`),
//! so a lost race costs no error, which on PostgreSQL would abort the caller's
//! transaction. The read after a clash is a new statement, so at PostgreSQL's
//! `READ COMMITTED` it sees the winner's row; at stricter levels the insert itself fails
//! with a serialization failure, the caller's cue to retry its transaction.
//!
//! The read after a clash also settles a clash on *another* unique index: when the row it
//! collided with is the row the key names (two spellings of one row, a second unique
//! column), that row is the answer; only a different row is a
//! [`UniqueViolation`](Error::UniqueViolation). How each backend inserts and names such a
//! clash is its own ([`Inserter`]).

use std::cell::LazyCell;
use std::future::Future;

use super::{fetch, retried, several_rows_first, Attempt, Dialect, Failure, LazyValues};
use super::{Stored, ValuesSource};
use crate::model::Model;
use crate::session::Session;
use crate::sql::returning::UpdateReturning;
use crate::sql::{count_changes, Changed, SelectByKey, Values};
use crate::Error;

/// What a backend brings to the flow: its insert.
pub(crate) trait Inserter<M: Stored<Self>>: Dialect<M> {
    /// Makes sure, before a row of `M` is inserted, that a unique index backs the key,
    /// where the insert itself would not refuse a key without one.
    fn check_key_index<S>(session: &mut S) -> impl Future<Output = Result<(), Failure>> + Send
    where
        S: Session<Backend = Self>;

    /// Inserts the row of `key`: the row, or `None` when a stored row clashed with it.
    fn insert<S>(
        session: &mut S,
        key: &M::Key,
        values: Values<'_, M>,
    ) -> impl Future<Output = Result<Option<M>, Failure>> + Send
    where
        S: Session<Backend = Self>;

    /// Sets `changes` on the row of `key` (`UPDATE .. RETURNING`): the row, or `None` when
    /// no row (or several) matched.
    fn update<S>(
        session: &mut S,
        key: &M::Key,
        changes: Values<'_, M>,
    ) -> impl Future<Output = Result<Option<M>, Failure>> + Send
    where
        S: Session<Backend = Self>,
    {
        async move { fetch(session, UpdateReturning::<M, Self>::new(key, changes)).await }
    }

    /// The insert clashed, yet no row of the key is stored: says why. The row, when it
    /// could be created now; `None` to run the attempt again (the row was deleted
    /// meanwhile); or the clash with another row, as a [`Error::UniqueViolation`].
    fn explain_clash<S>(
        session: &mut S,
        key: &M::Key,
        values: Values<'_, M>,
    ) -> impl Future<Output = Result<Option<M>, Failure>> + Send
    where
        S: Session<Backend = Self>;
}

/// What an insert of the flow came to.
enum Outcome<M> {
    /// This call created the row.
    Created(M),
    /// The key's row is stored (a concurrent caller's, or the one a clash named).
    Stored(M),
}

/// Inserts the row of `key` and settles a clash: see the module docs.
async fn insert<M, S>(
    session: &mut S,
    key: &M::Key,
    values: Values<'_, M>,
) -> Result<Outcome<M>, Failure>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
{
    let select = || SelectByKey::<M, S::Backend>::new(key);
    match S::Backend::insert(session, key, values).await {
        Ok(Some(row)) => return Ok(Outcome::Created(row)),
        Ok(None) => {}
        Err(Failure::Fatal(clash @ Error::UniqueViolation { .. })) => {
            return match fetch(session, select()).await? {
                Some(row) => Ok(Outcome::Stored(row)),
                None => Err(Failure::Fatal(clash)),
            };
        }
        Err(failure) => return Err(failure),
    }
    if let Some(row) = fetch(session, select()).await? {
        return Ok(Outcome::Stored(row));
    }
    match S::Backend::explain_clash(session, key, values).await? {
        Some(row) => Ok(Outcome::Created(row)),
        None => Err(Failure::RowChanged),
    }
}

/// `get_or_create` with values computed only when a row is inserted.
pub(crate) async fn get_or_create<M, S, F>(
    session: &mut S,
    key: &M::Key,
    values: F,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> M::Values + Send,
{
    let attempt = SelectThenInsert::<M, _> {
        key,
        values: LazyValues::new(values),
    };
    retried(session, attempt).await
}

/// `get_or_create` with values at hand (an item of a bulk call answered alone).
pub(crate) async fn get_or_create_item<M, S>(
    session: &mut S,
    key: &M::Key,
    values: &M::Values,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
{
    retried(session, SelectThenInsert::<M, _> { key, values }).await
}

struct SelectThenInsert<'a, M: Model, V> {
    key: &'a M::Key,
    values: V,
}

impl<M, V, S> Attempt<S> for SelectThenInsert<'_, M, V>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
    V: ValuesSource<M>,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let select = || SelectByKey::<M, S::Backend>::new(self.key);
        if let Some(row) = fetch(session, select()).await? {
            return Ok((row, false));
        }
        S::Backend::check_key_index(session).await?;
        let values: &M::Values = self.values.get();
        match insert(session, self.key, Values::Defaults(values)).await? {
            Outcome::Created(row) => Ok((row, true)),
            Outcome::Stored(row) => Ok((row, false)),
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
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    let changes = Values::Changed(changes, None);
    let attempt = UpdateThenInsert::<M, F> {
        key,
        changes,
        changed: count_changes::<M, S::Backend>(changes),
        values: LazyValues::new(create_values),
    };
    retried(session, attempt).await
}

/// `update_or_create` of every field, with values at hand (an item of a bulk call
/// answered alone).
pub(crate) async fn update_or_create_item<M, S>(
    session: &mut S,
    key: &M::Key,
    values: &M::Values,
) -> Result<(M, bool), Error>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
{
    let changes = Values::Defaults(values);
    let attempt = UpdateThenInsert::<M, _> {
        key,
        changes,
        changed: count_changes::<M, S::Backend>(changes),
        values: LazyValues::new(|| None),
    };
    retried(session, attempt).await
}

struct UpdateThenInsert<'a, M: Model, F> {
    key: &'a M::Key,
    changes: Values<'a, M>,
    changed: Changed,
    values: LazyValues<F, Option<M::Values>>,
}

impl<M, F, S> Attempt<S> for UpdateThenInsert<'_, M, F>
where
    S: Session,
    S::Backend: Inserter<M>,
    M: Stored<S::Backend>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let select = || SelectByKey::<M, S::Backend>::new(self.key);
        let changed = !self.changed.none();
        let stored = if changed {
            S::Backend::update(session, self.key, self.changes).await?
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
        if let Err(failure) = S::Backend::check_key_index(session).await {
            return Err(several_rows_first::<M, S>(session, self.key, failure).await);
        }
        let values = self
            .changes
            .for_insert(self.changed, || LazyCell::force(&self.values).as_ref());
        let inserted = match insert(session, self.key, values).await {
            Ok(inserted) => inserted,
            Err(failure) => {
                return Err(several_rows_first::<M, S>(session, self.key, failure).await)
            }
        };
        match inserted {
            Outcome::Created(row) => Ok((row, true)),
            // Stored meanwhile, by a concurrent caller: update it in the next attempt.
            Outcome::Stored(_) if changed => Err(Failure::RowChanged),
            Outcome::Stored(row) => Ok((row, false)),
        }
    }
}
