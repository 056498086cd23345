//! PostgreSQL.
//!
//! | path | `get_or_create` | `get_or_create_with` |
//! |---|---|---|
//! | row exists | 1: [`SelectOrInsert`] | 1: `SELECT` |
//! | row missing | 1: [`SelectOrInsert`] | 2: `SELECT`, `INSERT .. ON CONFLICT DO NOTHING RETURNING` |
//! | lost race | 2: [`SelectOrInsert`], `SELECT` | 3 (see `flow/select_then_insert.rs`) |
//!
//! `update_or_create` with every default field changed is one [`UpdateOrInsert`] (two
//! after a lost race); with some fields left to the create defaults it is the shared
//! flow (`UPDATE .. RETURNING`, then an insert when nothing matched).
//!
//! With the defaults in hand, one statement looks up and, only when nothing is found,
//! inserts. Lazy defaults cannot be sent before we know they are needed, so
//! `get_or_create_with` takes the select-first flow PostgreSQL shares with SQLite.
//! `get_or_create_many` sends one [`UnnestGetOrCreate`] per chunk of 10,000 items, and one
//! more for the items of a chunk that lost a race.

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::pg::Pg;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};

mod arrays;
mod statements;

use statements::{SelectOrInsert, UnnestGetOrCreate, UpdateOrInsert};

use crate::flow::bulk::{self, ChunkAttempt, Numbered};
use crate::flow::{
    fetch, fetch_as, load_all, retried, select_then_insert, Attempt, BackendErrors, Dialect,
    Failure, Stored,
};
use crate::model::Model;
use crate::session::Session;
use crate::sql::bulk::NullSafeEq;
use crate::sql::{count_changes, RowType, SelectByKey};
use crate::strategy::{Item, Strategy};
use crate::Error;

/// Items per [`UnnestGetOrCreate`]: each column is one array parameter whatever the count,
/// so the limit only bounds the size of one statement and of the locks it holds.
const CHUNK_LEN: usize = 10_000;

impl<M> Strategy<M> for Pg
where
    M: Stored<Pg>,
    Pg: Dialect<M>
        + QueryMetadata<(Bool, RowType<M, Pg>)>
        + QueryMetadata<(BigInt, Bool, RowType<M, Pg>)>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Pg>), Pg>,
{
    async fn get_or_create<S>(
        session: &mut S,
        key: &M::Key,
        values: M::Values,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
    {
        retried(
            session,
            SelectOrInsertOnce::<M> {
                key,
                values: &values,
            },
        )
        .await
    }

    async fn get_or_create_with<S, F>(
        session: &mut S,
        key: &M::Key,
        values: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Values + Send,
    {
        select_then_insert::get_or_create(session, key, values).await
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        bulk::run(session, items, CHUNK_LEN, Unnest).await
    }

    async fn update_or_create<S, F>(
        session: &mut S,
        key: &M::Key,
        changes: &M::Changeset,
        create_values: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Values> + Send,
    {
        // One statement needs every inserted value up front: it has them when every field
        // is changed. Otherwise the defaults wait until a row is really created.
        let changed = count_changes::<M, Pg>(changes);
        if changed.none() || !changed.all() {
            return select_then_insert::update_or_create(session, key, changes, create_values)
                .await;
        }
        retried(session, UpdateOrInsertOnce::<M> { key, changes }).await
    }
}

/// One attempt of `get_or_create`: [`SelectOrInsert`], then a `SELECT` if it lost a race.
struct SelectOrInsertOnce<'a, M: Model> {
    key: &'a M::Key,
    values: &'a M::Values,
}

impl<M, S> Attempt<S> for SelectOrInsertOnce<'_, M>
where
    S: Session<Backend = Pg>,
    M: Stored<Pg>,
    Pg: Dialect<M> + QueryMetadata<(Bool, RowType<M, Pg>)>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let statement = SelectOrInsert::<M>::new(self.key, self.values);
        if let Some((created, row)) = fetch_as::<M, (bool, M), _, _>(session, statement).await? {
            return Ok((row, created));
        }
        // Committed after our snapshot: a new statement sees it.
        match fetch(session, SelectByKey::<M, Pg>::new(self.key)).await? {
            Some(row) => Ok((row, false)),
            None => Err(Failure::RowChanged),
        }
    }
}

/// One attempt of `update_or_create` with every field changed: [`UpdateOrInsert`], then a
/// `SELECT` if it returned nothing, to report several matching rows (`NULL` keys) or to
/// try again on a row committed after its snapshot.
struct UpdateOrInsertOnce<'a, M: Model> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
}

impl<M, S> Attempt<S> for UpdateOrInsertOnce<'_, M>
where
    S: Session<Backend = Pg>,
    M: Stored<Pg>,
    Pg: Dialect<M> + QueryMetadata<(Bool, RowType<M, Pg>)>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let statement = UpdateOrInsert::<M>::new(self.key, self.changes);
        if let Some((created, row)) = fetch_as::<M, (bool, M), _, _>(session, statement).await? {
            return Ok((row, created));
        }
        fetch::<M, _, _>(session, SelectByKey::<M, Pg>::new(self.key)).await?;
        Err(Failure::RowChanged)
    }
}

/// One attempt of a bulk chunk: one [`UnnestGetOrCreate`].
struct Unnest;

impl<M, S> ChunkAttempt<S, M> for Unnest
where
    S: Session<Backend = Pg>,
    M: Stored<Pg>,
    Pg: Dialect<M> + QueryMetadata<(BigInt, Bool, RowType<M, Pg>)>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Pg>), Pg>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        _attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let statement = UnnestGetOrCreate::<M>::new(batch);
        load_all::<M, Numbered<M>, _, _>(session, statement).await
    }
}

impl BackendErrors for Pg {
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String> {
        info.constraint_name().map(str::to_owned)
    }

    /// SQLSTATE 42P10, which Diesel does not expose: only its (English) message.
    fn is_missing_unique_index(info: &dyn DatabaseErrorInformation) -> bool {
        info.message()
            .starts_with("there is no unique or exclusion constraint")
    }
}

impl NullSafeEq for Pg {
    const NULL_SAFE_EQ: Option<&'static str> = None;
}
