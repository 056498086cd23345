//! PostgreSQL: the shared `RETURNING` flow (see `returning.rs`), with PostgreSQL's errors.

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::Selectable;

use super::returning;
use super::{BackendErrors, Strategy};
use crate::model::ModelSql;
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
