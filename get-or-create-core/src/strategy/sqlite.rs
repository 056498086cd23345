//! SQLite: the shared `RETURNING` flow (see `returning.rs`), with SQLite's errors.
//!
//! `get_or_create_many` sends two statements per chunk: an insert of the chunk's missing
//! keys that returns their `rowid`s, then a read of all the chunk's rows with theirs. SQLite runs
//! one writer at a time, so nothing can slip in between the insert's check and its write.
//!
//! Needs SQLite 3.35 or newer for `RETURNING`. Each statement runs on its own outside a
//! transaction, so concurrent writers simply queue on SQLite's write lock (set a
//! `busy_timeout`). Inside a deferred transaction that has already read, SQLite refuses
//! the upgrade to a write with `database is locked` as soon as another connection has
//! written; that is reported as [`Error::TransactionMustBeRetried`] (use
//! `immediate_transaction` to avoid it).

use std::collections::HashSet;

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::Sqlite;

use super::bulk::{BulkResults, Chunk, Numbered};
use super::{load_all, returning, Failure};
use super::{BackendErrors, Stored, Strategy};
use crate::session::Session;
use crate::statement::{
    BulkSyntax, InsertMissingReturningRowid, Item, RowType, SelectStoredWithRowid, ValuesStatement,
};
use crate::Error;

/// SQLite's default limit on bind parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BINDS: usize = 32_766;

impl<M> Strategy<M> for Sqlite
where
    M: Stored<Sqlite>,
    (i64, bool, i64, M): FromSqlRow<(BigInt, Bool, BigInt, RowType<M, Sqlite>), Sqlite>,
    Sqlite: QueryMetadata<RowType<M, Sqlite>>
        + QueryMetadata<(BigInt, Bool, BigInt, RowType<M, Sqlite>)>,
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

/// One attempt of a bulk chunk: insert the missing keys, returning their `rowid`s, then
/// read every item's row with its `rowid`. A row is created for the first item of its key
/// when the insert returned its `rowid`.
async fn insert_then_read<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    (i64, bool, i64, M): FromSqlRow<(BigInt, Bool, BigInt, RowType<M, Sqlite>), Sqlite>,
    Sqlite: QueryMetadata<BigInt> + QueryMetadata<(BigInt, Bool, BigInt, RowType<M, Sqlite>)>,
{
    let insert = ValuesStatement::<M, Sqlite, InsertMissingReturningRowid>::new(batch);
    let inserted: HashSet<i64> = load_all::<M, i64, _, _>(session, insert)
        .await?
        .into_iter()
        .collect();
    let stored = ValuesStatement::<M, Sqlite, SelectStoredWithRowid>::new(batch);
    let rows: Vec<(i64, bool, i64, M)> = load_all::<M, _, _, _>(session, stored).await?;
    Ok(rows
        .into_iter()
        .map(|(number, first, rowid, row)| (number, first && inserted.contains(&rowid), row))
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
