//! SQLite's own statements.

use std::marker::PhantomData;

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, Selectable};

use crate::model::{Columns, Model};
use crate::sql::bulk::{key_input, push_input_column, push_key_input_names};
use crate::sql::bulk::{push_input_assignments, push_input_keys, push_keys_match, push_ord};
use crate::sql::bulk::{push_value_input_names, InputColumns, INPUT};
use crate::sql::values::{push_rows, push_values_input, ValuesStatement};
use crate::sql::{
    for_each_key_column, push_filter, push_insert, push_insert_columns, push_key_columns,
    push_key_targets, push_on_create, written_count, Defaulted, RowType, Separator, StatementId,
    Values,
};

/// ` ON CONFLICT (<key>) [WHERE <filter>] DO NOTHING`: a clash with the key's own unique
/// index (the partial one the filter names, if any) inserts nothing and returns no row;
/// a key no unique index backs is refused when the statement is prepared; a clash on
/// another unique index is raised (which leaves a SQLite transaction usable).
fn push_on_conflict<M: Columns<Sqlite>>(out: &mut AstPass<'_, '_, Sqlite>) -> QueryResult<()> {
    out.push_sql(" ON CONFLICT (");
    push_key_targets::<M, Sqlite>(out)?;
    out.push_sql(")");
    push_filter::<M, Sqlite>(" WHERE ", out)?;
    out.push_sql(" DO NOTHING");
    Ok(())
}

/// `COALESCE((<filter>), FALSE)`, or `TRUE` for a key without a filter: whether the key's
/// filter holds for a written row.
fn push_in_filter<M: Model>(out: &mut AstPass<'_, '_, Sqlite>) -> QueryResult<()> {
    match M::FILTER {
        Some(_) => {
            push_filter::<M, Sqlite>("COALESCE(", out)?;
            out.push_sql(", FALSE)");
        }
        None => out.push_sql("TRUE"),
    }
    Ok(())
}

/// `INSERT INTO <table> (..) VALUES (..) ON CONFLICT (<key>) [WHERE <filter>] DO NOTHING
/// RETURNING <in filter>, <model columns>`: the row, or nothing when a concurrent caller
/// stored the key first.
pub(crate) struct InsertReturning<'a, M: Model + Selectable<Sqlite>> {
    key: &'a M::Key,
    values: Values<'a, M>,
    into: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Sqlite>> InsertReturning<'a, M> {
    pub(crate) fn new(key: &'a M::Key, values: Values<'a, M>) -> Self {
        InsertReturning {
            key,
            values,
            into: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

/// The [`StatementId`] kind of an [`InsertReturning`].
pub(crate) struct InsertReturningKind;

impl<M: Model + Selectable<Sqlite>> QueryId for InsertReturning<'_, M> {
    type QueryId = StatementId<M, Sqlite, InsertReturningKind>;
    // The columns depend on which fields write their `DEFAULT`, if any can.
    const HAS_STATIC_QUERY_ID: bool = !M::DEFAULTABLE;
}

impl<M: Model + Selectable<Sqlite>> Query for InsertReturning<'_, M> {
    /// Whether the key's filter holds for the row, the row.
    type SqlType = (Bool, RowType<M, Sqlite>);
}

impl<M> QueryFragment<Sqlite> for InsertReturning<'_, M>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        push_insert::<M, Sqlite>(&self.into, self.key, self.values, &mut out)?;
        push_on_conflict::<M>(&mut out)?;
        out.push_sql(" RETURNING ");
        push_in_filter::<M>(&mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())
    }
}

/// `EXPLAIN INSERT INTO <table> (<key columns>) SELECT <key columns> FROM <table> WHERE
/// FALSE ON CONFLICT (<key>) [WHERE <filter>] DO NOTHING`: compiled, not run; SQLite
/// refuses it when no unique index backs the key. (Its rows, the program, are not read.)
pub(crate) struct ExplainKeyIndex<M: Model> {
    table: <M::Table as QuerySource>::FromClause,
    _marker: PhantomData<fn() -> M>,
}

impl<M: Model> ExplainKeyIndex<M> {
    pub(crate) fn new() -> Self {
        ExplainKeyIndex {
            table: M::Table::default().from_clause(),
            _marker: PhantomData,
        }
    }
}

/// Prepared each time, though its text is the model's alone: the check is the prepare
/// itself, and a kept `EXPLAIN` still runs after its index is dropped.
impl<M: Model> QueryId for ExplainKeyIndex<M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M> QueryFragment<Sqlite> for ExplainKeyIndex<M>
where
    M: Columns<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("EXPLAIN INSERT INTO ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_key_columns::<M, Sqlite>(&mut out)?;
        out.push_sql(") SELECT ");
        push_key_columns::<M, Sqlite>(&mut out)?;
        out.push_sql(" FROM ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE FALSE");
        push_on_conflict::<M>(&mut out)
    }
}

/// `INSERT INTO <table> (..) VALUES (..), (..) ON CONFLICT (<key>) [WHERE <filter>] DO
/// NOTHING RETURNING rowid, <in filter>`: the chunk's items in one plain insert (one per
/// set of columns the items leave to their `DEFAULT`, which SQLite cannot write). An item
/// whose key is stored, or whose key an earlier item of the chunk shares, meets that row
/// and inserts nothing; no sort, no subquery.
pub(crate) struct InsertRows;

/// `WITH __goc_i(__goc_ord, __goc_k0, ..) AS (VALUES ..) SELECT __goc_ord, <table>.rowid,
/// (<table>.k0 IS __goc_i.__goc_k0 COLLATE BINARY AND ..), <model columns> FROM __goc_i
/// JOIN <table> ON <keys match> [AND (<filter>)]`: every item's stored row, with its
/// `rowid` to tell the rows the insert created, and whether the row holds the item's key
/// byte for byte, as the item spelled it (which tells, on a column whose collation
/// ignores case, from which spelling of a new key an insert wrote the row).
pub(crate) struct ReadKeys;

/// What [`ReadKeys`] returns per item: its position in the chunk, its row's `rowid`,
/// whether the row holds the item's key as spelled, the row.
pub(crate) type ReadKeysRow<M> = (BigInt, BigInt, Bool, RowType<M, Sqlite>);

impl<M: Model + Selectable<Sqlite>> Query for ValuesStatement<'_, M, Sqlite, InsertRows> {
    /// The `rowid` of an inserted row, whether the key's filter holds for it.
    type SqlType = (BigInt, Bool);
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, InsertRows>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ");
        push_rows::<M, Sqlite>(self.items, Defaulted::Omitted, &mut out)?;
        push_on_conflict::<M>(&mut out)?;
        out.push_sql(" RETURNING rowid, ");
        push_in_filter::<M>(&mut out)
    }
}

impl<M: Model + Selectable<Sqlite>> Query for ValuesStatement<'_, M, Sqlite, ReadKeys> {
    type SqlType = ReadKeysRow<M>;
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, ReadKeys>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    M::SelectExpression: QueryFragment<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        push_values_input::<M, Sqlite>(self.items, InputColumns::Key, &mut out)?;
        out.push_sql("SELECT ");
        push_ord(&mut out)?;
        out.push_sql(", ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".rowid, (");
        let mut and = Separator::new(" AND ");
        for_each_key_column::<M, Sqlite>(|column| {
            and.push(&mut out);
            self.from.walk_ast(out.reborrow())?;
            out.push_sql(".");
            out.push_identifier(column.name)?;
            out.push_sql(" IS ");
            push_input_column(&mut out, &key_input(column.index))?;
            out.push_sql(" COLLATE BINARY");
            Ok(())
        })?;
        out.push_sql("), ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        out.push_identifier(crate::sql::bulk::INPUT)?;
        out.push_sql(" JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Sqlite, _>(&self.from, &mut out)?;
        push_filter::<M, Sqlite>(" AND ", &mut out)
    }
}

/// `WITH __goc_i(..) AS (VALUES ..) UPDATE <table> SET <default column> = __goc_i.__goc_v0,
/// .., <on_update expressions> FROM (SELECT * FROM __goc_i WHERE __goc_ord IN (SELECT
/// max(__goc_ord) FROM __goc_i JOIN <table> ON <keys match> [AND (<filter>)] GROUP BY
/// <table>.rowid)) AS __goc_i WHERE <keys match> [AND (<filter>)] RETURNING
/// <table>.rowid`: the first statement of an
/// `update_or_create_many` chunk, which sets each stored key to its last item's values.
/// Its items all leave the same columns to their stored values (see
/// `defaulted_columns`). (SQLite's `RETURNING` cannot name the items, so the rows are read
/// afterwards with [`ReadKeys`].)
pub(crate) struct UpdateLast;

impl<M: Model + Selectable<Sqlite>> Query for ValuesStatement<'_, M, Sqlite, UpdateLast> {
    /// The `rowid` of an updated row.
    type SqlType = BigInt;
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, UpdateLast>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        let Some(first) = self.items.first() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "get-or-create: an update of no rows".into(),
            ));
        };
        push_values_input::<M, Sqlite>(self.items, InputColumns::Insert, &mut out)?;
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        push_input_assignments::<M, Sqlite>(Values::Defaults(&first.1), &mut out)?;
        // Each stored row's last item, as `max(__goc_ord)` per row: grouped by the row
        // the items find, not by their keys, so that two spellings of one key count as
        // one on a column whose own collation ignores case, undeclared on the lookup. (A
        // `row_number()` column here leads SQLite 3.53 to probe this subquery on that
        // column for every stored row, quadratic in the chunk; without one it looks each
        // item up in the key's index.)
        out.push_sql(" FROM (SELECT * FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" WHERE ");
        push_ord(&mut out)?;
        out.push_sql(" IN (SELECT max(");
        push_ord(&mut out)?;
        out.push_sql(") FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Sqlite, _>(&self.from, &mut out)?;
        push_filter::<M, Sqlite>(" AND ", &mut out)?;
        out.push_sql(" GROUP BY ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".rowid)) AS ");
        out.push_identifier(INPUT)?;
        out.push_sql(" WHERE ");
        push_keys_match::<M, Sqlite, _>(&self.from, &mut out)?;
        push_filter::<M, Sqlite>(" AND ", &mut out)?;
        out.push_sql(" RETURNING ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".rowid");
        Ok(())
    }
}

/// `WITH __goc_i(..) AS (VALUES ..) INSERT INTO <table> (..) SELECT <the input's columns>
/// FROM (<each key's last item>) AS __goc_i WHERE .. AND NOT EXISTS (SELECT 1 FROM <table>
/// WHERE <keys match> [AND (<filter>)]) ORDER BY __goc_ord ON CONFLICT (<key>) [WHERE
/// <filter>] DO NOTHING RETURNING rowid, <in filter>`: the insert of an
/// `update_or_create_many` chunk, each missing key from its last item, in the items'
/// order (so that rows are numbered as the items are); a stored key uses no id.
pub(crate) struct InsertLast;

impl<M: Model + Selectable<Sqlite>> Query for ValuesStatement<'_, M, Sqlite, InsertLast> {
    /// The `rowid` of an inserted row, whether the key's filter holds for it.
    type SqlType = (BigInt, Bool);
}

impl<M> QueryFragment<Sqlite> for ValuesStatement<'_, M, Sqlite, InsertLast>
where
    M: Columns<Sqlite> + Selectable<Sqlite>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        let Some(first) = self.items.first() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "get-or-create: an insert of no rows".into(),
            ));
        };
        let values = Values::Defaults(&first.1);
        push_values_input::<M, Sqlite>(self.items, InputColumns::Insert, &mut out)?;
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_insert_columns::<M, Sqlite>(values, Defaulted::Omitted, &mut out)?;
        out.push_sql(") SELECT ");
        push_key_input_names::<M, Sqlite>(&mut out)?;
        if written_count::<M, Sqlite>(values) > 0 {
            out.push_sql(", ");
            push_value_input_names::<M, Sqlite>(values, &mut out)?;
        }
        push_on_create::<Sqlite, M>(&mut out);
        out.push_sql(" FROM (SELECT *, row_number() OVER (PARTITION BY ");
        push_input_keys::<M, Sqlite>(&mut out)?;
        out.push_sql(" ORDER BY ");
        push_ord(&mut out)?;
        out.push_sql(" DESC) AS __goc_n FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(") AS ");
        out.push_identifier(INPUT)?;
        // `WHERE` also keeps SQLite from reading `ON CONFLICT` as a join's `ON`. A stored
        // key is left out, not offered to `DO NOTHING`: SQLite's `AUTOINCREMENT` counter
        // advances for every row offered.
        out.push_sql(" WHERE __goc_n = 1 AND NOT EXISTS (SELECT 1 FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        push_keys_match::<M, Sqlite, _>(&self.from, &mut out)?;
        push_filter::<M, Sqlite>(" AND ", &mut out)?;
        out.push_sql(") ORDER BY ");
        out.push_identifier(crate::sql::bulk::ORD)?;
        push_on_conflict::<M>(&mut out)?;
        out.push_sql(" RETURNING rowid, ");
        push_in_filter::<M>(&mut out)
    }
}
