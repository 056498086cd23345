//! SQLite's bulk statements, over a chunk's items spelled out as rows.

use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, Selectable};

use crate::model::{Columns, Model};
use crate::sql::bulk::{push_input_join_table, push_ord_and_first};
use crate::sql::returning::push_insert_missing;
use crate::sql::values::{push_values_input, ValueColumns, ValuesStatement};
use crate::sql::RowType;

/// `WITH .. INSERT INTO <table> (..) SELECT .. FROM __goc_i WHERE __goc_first AND NOT
/// EXISTS (<stored>) ORDER BY <key> ON CONFLICT (<key>) DO NOTHING RETURNING rowid`: the
/// rows this statement inserted, told apart from stored ones by their `rowid` (so the
/// table needs one: not `WITHOUT ROWID`).
pub(crate) struct InsertMissingReturningRowid;

/// `WITH .. SELECT __goc_ord, __goc_first, <table>.rowid, <model columns> FROM __goc_i
/// JOIN <table> ON <keys match>`: the stored row of every item, with its `rowid`.
pub(crate) struct SelectStoredWithRowid;

impl<M> Query for ValuesStatement<'_, M, Sqlite, InsertMissingReturningRowid>
where
    M: Model + Selectable<Sqlite>,
{
    /// The `rowid` of an inserted row.
    type SqlType = BigInt;
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, InsertMissingReturningRowid>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        push_values_input::<M, Sqlite>(self.items, ValueColumns::Insert, &mut out)?;
        push_insert_missing::<M, Sqlite, _>(&self.from, &mut out)?;
        // Not the items' positions: a correlated lookup in the input per returned row
        // would make a chunk cost quadratic time.
        out.push_sql(" RETURNING rowid");
        Ok(())
    }
}

impl<M> Query for ValuesStatement<'_, M, Sqlite, SelectStoredWithRowid>
where
    M: Model + Selectable<Sqlite>,
{
    /// The item's position in the chunk, whether it is the first with its key, its row's
    /// `rowid`, the row.
    type SqlType = (BigInt, Bool, BigInt, RowType<M, Sqlite>);
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, SelectStoredWithRowid>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        push_values_input::<M, Sqlite>(self.items, ValueColumns::Key, &mut out)?;
        out.push_sql("SELECT ");
        push_ord_and_first(&mut out)?;
        out.push_sql(", ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".rowid, ");
        self.selection.walk_ast(out.reborrow())?;
        push_input_join_table::<M, Sqlite, _>(&self.from, &mut out)
    }
}
