//! SQLite: the shared `RETURNING` flow (see `returning.rs`), with SQLite's errors.
//!
//! `get_or_create_many` sends two statements per chunk: an insert of the chunk's missing
//! keys that returns their positions, then a read of all the chunk's rows. SQLite runs
//! one writer at a time, so nothing can slip in between the insert's check and its write.
//!
//! Needs SQLite 3.35 or newer for `RETURNING`. Each statement runs on its own outside a
//! transaction, so concurrent writers simply queue on SQLite's write lock (set a
//! `busy_timeout`). Inside a deferred transaction that has already read, SQLite refuses
//! the upgrade to a write with `database is locked` as soon as another connection has
//! written; that is reported as [`Error::TransactionMustBeRetried`] (use
//! `immediate_transaction` to avoid it).

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::Sqlite;
use diesel::Selectable;

use super::bulk::{BulkResults, Chunk, Numbered};
use super::{load_all, returning, Failure};
use super::{BackendErrors, Strategy};
use crate::model::ModelSql;
use crate::session::Session;
use crate::statement::{
    BulkSyntax, InsertMissingReturningOrd, Item, NoLock, RowType, SelectStoredRows, ValuesStatement,
};
use crate::Error;

/// SQLite's default limit on bind parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BINDS: usize = 32_766;

impl<M> Strategy<M> for Sqlite
where
    M: ModelSql<Sqlite> + Selectable<Sqlite> + FromSqlRow<RowType<M, Sqlite>, Sqlite>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Sqlite>), Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
    Sqlite: QueryMetadata<RowType<M, Sqlite>> + QueryMetadata<(BigInt, Bool, RowType<M, Sqlite>)>,
{
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
        returning::update_or_create(session, lookup, changes, create_defaults).await
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let mut results = BulkResults::new(items.len());
        for positions in results.chunks(MAX_BINDS / M::INSERT_COLUMNS.len().max(1)) {
            let mut chunk = Chunk::start(positions, session)?;
            while let Some(batch) = chunk.batch::<M>(items) {
                let outcome = insert_then_read(session, &batch).await;
                chunk.record(outcome, &mut results)?;
            }
        }
        Ok(results.finish())
    }
}

/// One attempt of a bulk chunk: insert the missing keys, returning their positions, then
/// read every item's row.
async fn insert_then_read<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session<Backend = Sqlite>,
    M: ModelSql<Sqlite> + Selectable<Sqlite>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Sqlite>), Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
    Sqlite: QueryMetadata<BigInt> + QueryMetadata<(BigInt, Bool, RowType<M, Sqlite>)>,
{
    let insert = ValuesStatement::<M, Sqlite, InsertMissingReturningOrd>::new(batch);
    let mut created = vec![false; batch.len() + 1];
    for number in load_all::<M, i64, _, _>(session, insert).await? {
        if let Some(flag) = usize::try_from(number)
            .ok()
            .and_then(|n| created.get_mut(n))
        {
            *flag = true;
        }
    }
    let stored = SelectStoredRows::<M, Sqlite, NoLock>::new(batch);
    let rows = load_all::<M, Numbered<M>, _, _>(session, stored).await?;
    Ok(rows
        .into_iter()
        .map(|(number, _, row)| {
            let created = usize::try_from(number).is_ok_and(|n| created.get(n) == Some(&true));
            (number, created, row)
        })
        .collect())
}

impl BackendErrors for Sqlite {
    /// "UNIQUE constraint failed: users.name": SQLite names the columns.
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String> {
        let (_, columns) = info.message().split_once(": ")?;
        Some(columns.to_owned())
    }

    fn is_missing_unique_index(info: &dyn DatabaseErrorInformation) -> bool {
        info.message()
            .contains("does not match any PRIMARY KEY or UNIQUE constraint")
    }
}

impl BulkSyntax for Sqlite {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" IS ");
}
