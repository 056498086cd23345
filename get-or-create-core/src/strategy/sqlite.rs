//! SQLite: the shared `RETURNING` flow (see `returning.rs`), with SQLite's errors.
//!
//! Needs SQLite 3.35 or newer for `RETURNING`. Each statement runs on its own outside a
//! transaction, so concurrent writers simply queue on SQLite's write lock (set a
//! `busy_timeout`). Inside a deferred transaction that has already read, SQLite refuses
//! the upgrade to a write with `database is locked` as soon as another connection has
//! written; that is reported as [`Error::TransactionMustBeRetried`] (use
//! `immediate_transaction` to avoid it).

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::sqlite::Sqlite;
use diesel::Selectable;

use super::returning;
use super::{BackendErrors, Strategy};
use crate::model::ModelSql;
use crate::statement::RowType;
use crate::Error;

impl<M> Strategy<M> for Sqlite
where
    M: ModelSql<Sqlite> + Selectable<Sqlite> + FromSqlRow<RowType<M, Sqlite>, Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
    Sqlite: diesel::expression::QueryMetadata<RowType<M, Sqlite>>,
{
    fn get_or_create<C, F>(
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
