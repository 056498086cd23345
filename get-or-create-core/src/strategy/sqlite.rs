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

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::Sqlite;
use diesel::Selectable;

use super::bulk::{self, Numbered};
use super::{load_all, returning};
use super::{BackendErrors, Strategy};
use crate::model::ModelSql;
use crate::statement::{
    BulkSyntax, InsertMissingReturningOrd, NoLock, RowType, SelectStoredRows, ValuesStatement,
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
    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
        F: FnOnce() -> M::Defaults,
    {
        returning::get_or_create(conn, lookup, defaults)
    }

    fn get_or_create_many<C>(
        conn: &mut C,
        items: &[(M::Lookup, M::Defaults)],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        C: LoadConnection<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / M::INSERT_COLUMNS.len().max(1);
        bulk::get_or_create_many(conn, items, chunk_len, |conn, batch, _| {
            let insert = ValuesStatement::<M, Sqlite, InsertMissingReturningOrd>::new(batch);
            let mut created = vec![false; batch.len() + 1];
            for number in load_all::<M, i64, _, _>(conn, insert)? {
                if let Some(flag) = usize::try_from(number)
                    .ok()
                    .and_then(|n| created.get_mut(n))
                {
                    *flag = true;
                }
            }
            let stored = SelectStoredRows::<M, Sqlite, NoLock>::new(batch);
            let rows = load_all::<M, Numbered<M>, _, _>(conn, stored)?;
            Ok(rows
                .into_iter()
                .map(|(number, _, row)| {
                    let created =
                        usize::try_from(number).is_ok_and(|n| created.get(n) == Some(&true));
                    (number, created, row)
                })
                .collect())
        })
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

impl BulkSyntax for Sqlite {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" IS ");
}
