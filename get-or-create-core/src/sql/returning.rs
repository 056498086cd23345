//! The statements PostgreSQL and SQLite share: both insert with
//! `ON CONFLICT (<key>) DO NOTHING` and read the written row back with `RETURNING`.
//!
//! Naming the lookup columns as the conflict target makes a lost race return no row
//! instead of raising an error (which on PostgreSQL would abort the caller's
//! transaction), makes the database refuse a lookup without a unique index, and still
//! raises a clash on any other unique index.

use std::marker::PhantomData;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::{QueryResult, Selectable};

use super::bulk::INPUT;
use super::bulk::{push_first_items, push_insert_order, push_keys_match, NullSafeEq, Relation};
use super::{push_insert, push_key_columns, push_update, RowType, StatementId, Values};
use crate::model::{Columns, Model};

/// ` ON CONFLICT (<lookup columns>) DO NOTHING`
pub(crate) fn push_on_conflict_do_nothing<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    out.push_sql(" ON CONFLICT (");
    push_key_columns::<M, DB>(out)?;
    out.push_sql(") DO NOTHING");
    Ok(())
}

/// `INSERT INTO <table> (..) VALUES (..) ON CONFLICT (<key>) DO NOTHING RETURNING <model
/// columns>`: the row, or nothing when a concurrent caller stored the key first.
pub(crate) struct InsertReturning<'a, M: Model + Selectable<DB>, DB: Backend> {
    key: &'a M::Key,
    values: Values<'a, M>,
    into: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<fn() -> DB>,
}

impl<'a, M, DB> InsertReturning<'a, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub(crate) fn new(key: &'a M::Key, values: Values<'a, M>) -> Self {
        InsertReturning {
            key,
            values,
            into: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

/// The [`StatementId`] kind of an [`InsertReturning`].
pub(crate) struct InsertReturningKind;

impl<M, DB> QueryId for InsertReturning<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend + 'static,
{
    type QueryId = StatementId<M, DB, InsertReturningKind>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, DB> Query for InsertReturning<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

impl<M, DB> QueryFragment<DB> for InsertReturning<'_, M, DB>
where
    M: Columns<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_insert::<M, DB>(&self.into, self.key, self.values, &mut out)?;
        push_on_conflict_do_nothing::<M, DB>(&mut out)?;
        out.push_sql(" RETURNING ");
        self.selection.walk_ast(out.reborrow())
    }
}

/// `UPDATE <table> SET <changes> WHERE <key> AND <exactly one row matches> RETURNING
/// <model columns>`: the updated row, or nothing.
pub(crate) struct UpdateReturning<'a, M: Model + Selectable<DB>, DB: Backend> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
    table: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<fn() -> DB>,
}

impl<'a, M, DB> UpdateReturning<'a, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub(crate) fn new(key: &'a M::Key, changes: &'a M::Changeset) -> Self {
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

/// `INSERT INTO <table> (<insert columns>) SELECT .. FROM __goc_i WHERE __goc_first AND
/// NOT EXISTS (SELECT 1 FROM <table> WHERE <keys match>) ORDER BY <key> ON CONFLICT
/// (<key>) DO NOTHING`: the chunk's keys that are not stored yet, each once. A key that
/// exists is not inserted, so it consumes no sequence value.
pub(crate) fn push_insert_missing<'b, M, DB, F>(
    from: &'b F,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: NullSafeEq,
    F: QueryFragment<DB>,
{
    out.push_sql("INSERT INTO ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" (");
    super::push_insert_columns::<M, DB>(out)?;
    out.push_sql(") ");
    push_first_items::<M, DB>(out)?;
    out.push_sql(" AND NOT EXISTS (SELECT 1 FROM ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    push_keys_match::<M, DB, F>(Relation::Table(from), Relation::Alias(INPUT), out)?;
    out.push_sql(")");
    push_insert_order::<M, DB>(out)?;
    push_on_conflict_do_nothing::<M, DB>(out)
}
