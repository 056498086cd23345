//! MySQL/MariaDB's own statements.

use std::marker::PhantomData;

use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool};
use diesel::{QueryResult, Selectable};

use crate::model::{Columns, Model};
use crate::sql::bulk::push_ord_and_first;
use crate::sql::bulk::{push_first_items, push_input_join_table, push_insert_order};
use crate::sql::values::{push_values_input, ValueColumns, ValuesStatement};
use crate::sql::RowType;
use crate::sql::{push_insert, push_insert_columns, push_update, SelectTail, StatementId, Values};

/// A shared-lock read, which sees the newest committed row even inside a `REPEATABLE
/// READ` transaction. Written `LOCK IN SHARE MODE` because MariaDB rejects the `FOR SHARE`
/// that Diesel emits.
pub(crate) struct LockInShareMode;

impl SelectTail for LockInShareMode {
    const SQL: &'static str = " LOCK IN SHARE MODE";
}

/// `INSERT INTO <table> (<insert columns>) VALUES (..)`: a plain insert, whose duplicate
/// key is reported as an error (which does not abort the transaction on MySQL) naming the
/// index that fired.
pub(crate) struct Insert<'a, M: Model> {
    key: &'a M::Key,
    values: Values<'a, M>,
    into: <M::Table as QuerySource>::FromClause,
}

impl<'a, M: Model> Insert<'a, M> {
    pub(crate) fn new(key: &'a M::Key, values: Values<'a, M>) -> Self {
        Insert {
            key,
            values,
            into: M::Table::default().from_clause(),
        }
    }
}

/// The [`StatementId`] kind of an [`Insert`].
pub(crate) struct InsertKind;

impl<M: Model> QueryId for Insert<'_, M> {
    type QueryId = StatementId<M, Mysql, InsertKind>;
    // `Values::Changed` leaves no field out: the text depends on the model only.
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M> QueryFragment<Mysql> for Insert<'_, M>
where
    M: Columns<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        push_insert::<M, Mysql>(&self.into, self.key, self.values, &mut out)
    }
}

/// `UPDATE <table> SET <changes> WHERE <key> AND <exactly one row matches>`; its count of
/// matched rows (Diesel asks MySQL for found, not changed, rows) says whether the row
/// exists.
pub(crate) struct Update<'a, M: Model> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
    table: <M::Table as QuerySource>::FromClause,
}

impl<'a, M: Model> Update<'a, M> {
    pub(crate) fn new(key: &'a M::Key, changes: &'a M::Changeset) -> Self {
        Update {
            key,
            changes,
            table: M::Table::default().from_clause(),
        }
    }
}

impl<M: Model> QueryId for Update<'_, M> {
    // The text depends on which fields are changed: prepared per text, not per type.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M> QueryFragment<Mysql> for Update<'_, M>
where
    M: Columns<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        push_update::<M, Mysql>(&self.table, self.key, self.changes, &mut out)
    }
}

/// `WITH .. SELECT __goc_ord, __goc_first, <model columns> FROM __goc_i JOIN <table>
/// ON <keys match> [LOCK IN SHARE MODE]`: the stored rows of the chunk's keys.
pub(crate) struct SelectStored<Lock>(PhantomData<fn() -> Lock>);

/// `INSERT INTO <table> (..) WITH .. SELECT .. FROM __goc_i WHERE __goc_first ORDER BY
/// <key>`, for keys just found missing: a key stored meanwhile fails the statement with a
/// duplicate key, as a single insert does.
pub(crate) struct InsertAll;

/// A [`ValuesStatement`] that reads the stored rows of its keys.
pub(crate) type SelectStoredRows<'a, M, Lock> = ValuesStatement<'a, M, Mysql, SelectStored<Lock>>;

impl<M, Lock> Query for ValuesStatement<'_, M, Mysql, SelectStored<Lock>>
where
    M: Model + Selectable<Mysql>,
{
    /// The item's position in the chunk, whether it is the first with its key, the row.
    type SqlType = (BigInt, Bool, RowType<M, Mysql>);
}

impl<M, Lock> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, SelectStored<Lock>>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Lock: SelectTail,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        push_values_input::<M, Mysql>(self.items, ValueColumns::Key, &mut out)?;
        out.push_sql("SELECT ");
        push_ord_and_first(&mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())?;
        push_input_join_table::<M, Mysql, _>(&self.from, &mut out)?;
        out.push_sql(Lock::SQL);
        Ok(())
    }
}

impl<M> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, InsertAll>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        // MySQL wants the `WITH` after `INSERT INTO t (..)`: the head, then the input.
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_insert_columns::<M, Mysql>(&mut out)?;
        out.push_sql(") ");
        push_values_input::<M, Mysql>(self.items, ValueColumns::Insert, &mut out)?;
        push_first_items::<M, Mysql>(&mut out)?;
        push_insert_order::<M, Mysql>(&mut out)
    }
}
