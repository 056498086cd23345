//! SQLite: the select-then-insert flow it shares with PostgreSQL
//! (`flow/select_then_insert.rs`), with SQLite's errors.
//!
//! `get_or_create_many` sends two statements per chunk: an insert of the chunk's missing
//! keys that returns their `rowid`s, then a read of all the chunk's rows with theirs.
//! SQLite runs one writer at a time, so nothing can slip in between the insert's check
//! and its write.
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

mod statements;

use statements::{InsertMissingReturningRowid, SelectStoredWithRowid};

use crate::flow::bulk::{self, ChunkAttempt, Numbered};
use crate::flow::{load_all, select_then_insert, BackendErrors, Dialect, Failure, Stored};
use crate::session::Session;
use crate::sql::bulk::NullSafeEq;
use crate::sql::values::{insert_column_count, RowList, ValuesStatement};
use crate::sql::RowType;
use crate::strategy::{Item, Strategy};
use crate::Error;

/// SQLite's default limit on bind parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BINDS: usize = 32_766;

impl<M> Strategy<M> for Sqlite
where
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(BigInt, Bool, BigInt, RowType<M, Sqlite>)>,
    (i64, bool, i64, M): FromSqlRow<(BigInt, Bool, BigInt, RowType<M, Sqlite>), Sqlite>,
{
    async fn get_or_create<S>(
        session: &mut S,
        key: &M::Key,
        values: M::Values,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
    {
        select_then_insert::get_or_create(session, key, move || values).await
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
        let chunk_len = MAX_BINDS / insert_column_count::<M, Sqlite>().max(1);
        bulk::run(session, items, chunk_len, InsertThenRead).await
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
        select_then_insert::update_or_create(session, key, changes, create_values).await
    }
}

/// One attempt of a bulk chunk: insert the missing keys, returning their `rowid`s, then
/// read every item's row with its `rowid`. A row is created for the first item of its key
/// when the insert returned its `rowid`.
struct InsertThenRead;

impl<M, S> ChunkAttempt<S, M> for InsertThenRead
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(BigInt, Bool, BigInt, RowType<M, Sqlite>)>,
    (i64, bool, i64, M): FromSqlRow<(BigInt, Bool, BigInt, RowType<M, Sqlite>), Sqlite>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        _attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
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

impl NullSafeEq for Sqlite {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" IS ");
}

impl RowList for Sqlite {
    const ROWS_AS_UNION: bool = false;
}
