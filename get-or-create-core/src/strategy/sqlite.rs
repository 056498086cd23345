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
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::Sqlite;
use diesel::Selectable;

use super::returning::{self, ClassifyError};
use super::{Failure, Strategy};
use crate::model::{Model, ModelSql};
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

impl ClassifyError for Sqlite {
    fn classify<M: Model>(error: DieselError) -> Failure {
        // SQLITE_BUSY / SQLITE_BUSY_SNAPSHOT: outside a transaction this only comes after
        // the busy timeout and is retried; inside one it means a stale snapshot.
        if crate::retry::is_lost_conflict(&error) {
            return Failure::LostConflict(error);
        }
        let DieselError::DatabaseError(kind, info) = &error else {
            return Failure::Fatal(Error::Database(error));
        };
        let message = info.message();
        match kind {
            // "UNIQUE constraint failed: users.name": SQLite names the columns.
            DatabaseErrorKind::UniqueViolation => Failure::Fatal(Error::UniqueViolation {
                constraint: message
                    .split_once(": ")
                    .map(|(_, columns)| columns.to_owned()),
                source: error,
            }),
            _ if message.contains("does not match any PRIMARY KEY or UNIQUE constraint") => {
                Failure::Fatal(Error::NoUniqueIndex {
                    table: M::TABLE_NAME,
                    columns: M::LOOKUP_COLUMNS,
                    source: Some(error),
                })
            }
            _ => Failure::Fatal(Error::Database(error)),
        }
    }
}
