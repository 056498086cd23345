//! PostgreSQL.
//!
//! | path | `get_or_create` | `get_or_create_with` |
//! |---|---|---|
//! | row exists | 1: [`SelectOrInsert`] | 1: `SELECT` |
//! | row missing | 1: [`SelectOrInsert`] | 2: `SELECT`, `INSERT .. ON CONFLICT DO NOTHING RETURNING` |
//! | lost race | 2: [`SelectOrInsert`], `SELECT` | 3 (see `returning.rs`) |
//!
//! `update_or_create` with every default field changed is one [`UpdateOrInsert`] (two
//! after a lost race); with some fields left to the create defaults it is the shared
//! flow of `returning.rs` (`UPDATE .. RETURNING`, then an insert when nothing matched).
//!
//! With the defaults in hand, one statement looks up and, only when nothing is found,
//! inserts. Lazy defaults cannot be sent before we know they are needed, so
//! `get_or_create_with` takes the select-first flow PostgreSQL shares with SQLite.
//! `get_or_create_many` sends one [`UnnestGetOrCreate`] per chunk of 10,000 items, and one
//! more for the items of a chunk that lost a race.

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};
use diesel::Selectable;

use super::bulk::{BulkResults, Chunk, Numbered};
use super::{fetch, fetch_as, load_all, returning, Attempts, Failure};
use super::{BackendErrors, Strategy};
use crate::model::{ModelArrays, ModelSql};
use crate::session::Session;
use crate::statement::{
    BulkSyntax, Item, RowType, SelectByLookup, SelectOrInsert, UnnestGetOrCreate, UpdateOrInsert,
};
use crate::Error;

/// Items per [`UnnestGetOrCreate`]: each column is one array parameter whatever the count,
/// so the limit only bounds the size of one statement and of the locks it holds.
const CHUNK_LEN: usize = 10_000;

impl<M> Strategy<M> for Pg
where
    M: ModelSql<Pg> + ModelArrays<Pg> + Selectable<Pg> + FromSqlRow<RowType<M, Pg>, Pg>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Pg>), Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Pg: QueryMetadata<RowType<M, Pg>>
        + QueryMetadata<(Bool, RowType<M, Pg>)>
        + QueryMetadata<(BigInt, Bool, RowType<M, Pg>)>,
{
    async fn get_or_create<S>(
        session: &mut S,
        lookup: &M::Lookup,
        defaults: M::Defaults,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
    {
        let mut attempts = Attempts::new(session)?;
        loop {
            match select_or_insert(session, lookup, &defaults).await {
                Ok(found) => return Ok(found),
                Err(failure) => attempts.failed(failure)?,
            }
        }
    }

    async fn get_or_create_with<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Defaults,
    {
        returning::get_or_create(session, lookup, defaults).await
    }

    async fn update_or_create<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        changes: &M::Changes,
        create_defaults: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Defaults>,
    {
        // One statement needs every inserted value up front: it has them when every field
        // is changed. Otherwise the defaults wait until a row is really created.
        let changed = M::changed_fields(changes);
        if changed == 0 || changed < M::default_fields() {
            return returning::update_or_create(session, lookup, changes, create_defaults).await;
        }
        let mut attempts = Attempts::new(session)?;
        loop {
            match update_or_insert(session, lookup, changes).await {
                Ok(found) => return Ok(found),
                Err(failure) => attempts.failed(failure)?,
            }
        }
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let mut results = BulkResults::new(items.len());
        for positions in results.chunks(CHUNK_LEN) {
            let mut chunk = Chunk::start(positions, session)?;
            while let Some(batch) = chunk.batch::<M>(items) {
                let statement = UnnestGetOrCreate::<M, Pg>::new(&batch);
                let outcome = load_all::<M, Numbered<M>, _, _>(session, statement).await;
                chunk.record(outcome, &mut results)?;
            }
        }
        Ok(results.finish())
    }
}

/// One attempt of `update_or_create` with every field changed: [`UpdateOrInsert`], then a
/// `SELECT` if it returned nothing, to report several matching rows (`NULL` keys) or to
/// try again on a row committed after its snapshot.
async fn update_or_insert<M, S>(
    session: &mut S,
    lookup: &M::Lookup,
    changes: &M::Changes,
) -> Result<(M, bool), Failure>
where
    S: Session<Backend = Pg>,
    M: ModelSql<Pg> + Selectable<Pg> + FromSqlRow<RowType<M, Pg>, Pg>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Pg: QueryMetadata<RowType<M, Pg>> + QueryMetadata<(Bool, RowType<M, Pg>)>,
{
    let statement = UpdateOrInsert::<M, Pg>::new(lookup, changes, None);
    if let Some((created, row)) = fetch_as::<M, (bool, M), _, _>(session, statement).await? {
        return Ok((row, created));
    }
    fetch::<M, _, _>(session, SelectByLookup::<M, Pg>::new(lookup)).await?;
    Err(Failure::Vanished)
}

/// One attempt of `get_or_create`: [`SelectOrInsert`], then a `SELECT` if it lost a race.
async fn select_or_insert<M, S>(
    session: &mut S,
    lookup: &M::Lookup,
    defaults: &M::Defaults,
) -> Result<(M, bool), Failure>
where
    S: Session<Backend = Pg>,
    M: ModelSql<Pg> + Selectable<Pg> + FromSqlRow<RowType<M, Pg>, Pg>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Pg: QueryMetadata<RowType<M, Pg>> + QueryMetadata<(Bool, RowType<M, Pg>)>,
{
    let statement = SelectOrInsert::<M, Pg>::new(lookup, defaults);
    if let Some((created, row)) = fetch_as::<M, (bool, M), _, _>(session, statement).await? {
        return Ok((row, created));
    }
    // Committed after our snapshot: a new statement sees it.
    match fetch(session, SelectByLookup::<M, Pg>::new(lookup)).await? {
        Some(row) => Ok((row, false)),
        None => Err(Failure::Vanished),
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

impl BulkSyntax for Pg {
    const NULL_SAFE_EQ: Option<&'static str> = None;
}
