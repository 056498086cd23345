//! The update PostgreSQL and SQLite share: `UPDATE .. RETURNING` reads the updated row
//! back in the same statement.

use std::marker::PhantomData;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::{QueryResult, Selectable};

use super::{push_update, RowType, Values};
use crate::model::{Columns, Model};

/// `UPDATE <table> SET <changes> WHERE <key> AND <exactly one row matches> RETURNING
/// <model columns>`: the updated row, or nothing.
pub(crate) struct UpdateReturning<'a, M: Model + Selectable<DB>, DB: Backend> {
    key: &'a M::Key,
    changes: Values<'a, M>,
    table: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<fn() -> DB>,
}

impl<'a, M, DB> UpdateReturning<'a, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub(crate) fn new(key: &'a M::Key, changes: Values<'a, M>) -> Self {
        UpdateReturning {
            key,
            changes,
            table: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB> QueryId for UpdateReturning<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    // The text depends on which fields are changed: prepared per text, not per type.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M, DB> Query for UpdateReturning<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

impl<M, DB> QueryFragment<DB> for UpdateReturning<'_, M, DB>
where
    M: Columns<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_update::<M, DB>(&self.table, self.key, self.changes, &mut out)?;
        out.push_sql(" RETURNING ");
        self.selection.walk_ast(out.reborrow())
    }
}
