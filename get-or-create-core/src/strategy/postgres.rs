//! PostgreSQL: the shared `RETURNING` flow (see `returning.rs`), with PostgreSQL's errors.

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::Selectable;

use super::returning::{self, ClassifyError};
use super::{Failure, Strategy};
use crate::model::{Model, ModelSql};
use crate::statement::RowType;
use crate::Error;

impl<M> Strategy<M> for Pg
where
    M: ModelSql<Pg> + Selectable<Pg> + FromSqlRow<RowType<M, Pg>, Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Pg: diesel::expression::QueryMetadata<RowType<M, Pg>>,
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

impl ClassifyError for Pg {
    fn classify<M: Model>(error: DieselError) -> Failure {
        if crate::retry::is_lost_conflict(&error) {
            return Failure::LostConflict(error);
        }
        let DieselError::DatabaseError(kind, info) = &error else {
            return Failure::Fatal(Error::Database(error));
        };
        match kind {
            DatabaseErrorKind::UniqueViolation => Failure::Fatal(Error::UniqueViolation {
                constraint: info.constraint_name().map(str::to_owned),
                source: error,
            }),
            // Diesel does not expose SQLSTATE 42P10 (invalid_column_reference), only the
            // (English) message.
            _ if info
                .message()
                .starts_with("there is no unique or exclusion constraint") =>
            {
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
