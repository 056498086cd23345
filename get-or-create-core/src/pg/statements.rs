//! PostgreSQL's own statements. None of them reads a table twice or holds a CTE, so each
//! is one plain statement on Citus as well (see the module docs of `pg`).

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool, Oid, Text};
use diesel::{QueryResult, Selectable, Table};

use super::input::{push_input, push_input_values, Batch};
use crate::model::{Columns, Model};
use crate::sql::bulk::{key_input, push_input_column, push_keys_match, push_ord};
use crate::sql::bulk::{push_input_assignments, push_input_keys, push_key_order};
use crate::sql::bulk::{InputColumns, Occurrence};
use crate::sql::{for_each_key_column, push_filter, push_insert, push_insert_columns};
use crate::sql::{push_key_columns, Separator};
use crate::sql::{push_key_targets, push_on_create, Defaulted, RowType, StatementId, Values};
use crate::strategy::Item;

/// ` RETURNING tableoid, <in filter>, `: which table the row went to (to check its
/// unique indexes once per table) and whether the key's filter holds for it.
fn push_returning_head<M: Model>(out: &mut AstPass<'_, '_, Pg>) -> QueryResult<()> {
    out.push_sql(" RETURNING tableoid, ");
    push_in_filter::<M>(out)?;
    out.push_sql(", ");
    Ok(())
}

/// `COALESCE((<filter>), FALSE)`, or `TRUE` for a key without a filter.
fn push_in_filter<M: Model>(out: &mut AstPass<'_, '_, Pg>) -> QueryResult<()> {
    match M::FILTER {
        Some(_) => {
            push_filter::<M, Pg>("COALESCE(", out)?;
            out.push_sql(", FALSE)");
        }
        None => out.push_sql("TRUE"),
    }
    Ok(())
}

/// What a single-row insert does on a clash with a stored row.
pub(crate) trait OnClash: 'static {
    /// What follows the `VALUES` list.
    const SQL: &'static str;
}

/// ` ON CONFLICT DO NOTHING`, with no conflict target: a clash on any unique index, the
/// key's or another's, inserts nothing and returns no row, and raises no error (which
/// would abort the caller's transaction). The caller then reads the key's row.
pub(crate) struct DoNothing;

impl OnClash for DoNothing {
    const SQL: &'static str = " ON CONFLICT DO NOTHING";
}

/// A plain insert, which raises a clash as a unique violation naming the constraint: only
/// sent to name a clash that [`DoNothing`] met and a read could not explain.
pub(crate) struct Raise;

impl OnClash for Raise {
    const SQL: &'static str = "";
}

/// `INSERT INTO <table> (<insert columns>) VALUES (..) [ON CONFLICT DO NOTHING]
/// RETURNING tableoid, <in filter>, <model columns>`
pub(crate) struct Insert<'a, M: Model + Selectable<Pg>, Clash> {
    key: &'a M::Key,
    values: Values<'a, M>,
    into: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<fn() -> Clash>,
}

impl<'a, M: Model + Selectable<Pg>, Clash> Insert<'a, M, Clash> {
    pub(crate) fn new(key: &'a M::Key, values: Values<'a, M>) -> Self {
        Insert {
            key,
            values,
            into: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M: Model + Selectable<Pg>, Clash: OnClash> QueryId for Insert<'_, M, Clash> {
    type QueryId = StatementId<M, Pg, Clash>;
    // The columns depend on which fields write their `DEFAULT`, if any can.
    const HAS_STATIC_QUERY_ID: bool = !M::DEFAULTABLE;
}

impl<M: Model + Selectable<Pg>, Clash> Query for Insert<'_, M, Clash> {
    /// The table's oid, whether the key's filter holds for the row, the row.
    type SqlType = (Oid, Bool, RowType<M, Pg>);
}

impl<M, Clash> QueryFragment<Pg> for Insert<'_, M, Clash>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Clash: OnClash,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        push_insert::<M, Pg>(&self.into, self.key, self.values, &mut out)?;
        out.push_sql(Clash::SQL);
        push_returning_head::<M>(&mut out)?;
        self.selection.walk_ast(out.reborrow())
    }
}

/// `SELECT CAST(CAST($1 AS regclass) AS oid)`: the oid of the table named `$1`, resolved
/// the way the session's statements resolve it (`search_path` included).
pub(crate) struct TableOid {
    pub(crate) name: String,
}

impl QueryId for TableOid {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for TableOid {
    type SqlType = Oid;
}

impl QueryFragment<Pg> for TableOid {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("SELECT CAST(CAST(");
        out.push_bind_param::<Text, _>(&self.name)?;
        out.push_sql(" AS regclass) AS oid)");
        Ok(())
    }
}

/// `SELECT EXISTS (<a unique index of the table named $1, not its primary key, whose name
/// is not in $2>)`: whether an update of the table's other columns could clash on a unique
/// index other than the key's (`$2`, the key's arbiter indexes).
pub(crate) struct OtherUniqueIndexes {
    pub(crate) table: String,
    pub(crate) key_indexes: Vec<String>,
}

impl QueryId for OtherUniqueIndexes {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for OtherUniqueIndexes {
    type SqlType = Bool;
}

impl QueryFragment<Pg> for OtherUniqueIndexes {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index AS i \
             JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid \
             WHERE i.indrelid = CAST(",
        );
        out.push_bind_param::<Text, _>(&self.table)?;
        out.push_sql(
            " AS regclass) AND i.indisunique AND NOT i.indisprimary AND c.relname <> ALL(",
        );
        out.push_bind_param::<diesel::sql_types::Array<Text>, _>(&self.key_indexes)?;
        out.push_sql("))");
        Ok(())
    }
}

/// `EXPLAIN (COSTS OFF) INSERT INTO <table> (<key columns>) SELECT <key columns> FROM
/// <table> WHERE FALSE ON CONFLICT (<key>) [WHERE <filter>] DO NOTHING`: asks PostgreSQL to
/// infer the unique index that backs the key exactly as an `ON CONFLICT` target would
/// (columns, expressions, collations, a partial index's predicate), without running
/// anything. It fails with 42P10 when no index does; its plan names the index
/// (`Conflict Arbiter Indexes: ..`).
pub(crate) struct ExplainKeyIndex<M: Model> {
    table: <M::Table as QuerySource>::FromClause,
}

impl<M: Model> ExplainKeyIndex<M> {
    pub(crate) fn new() -> Self {
        ExplainKeyIndex {
            table: M::Table::default().from_clause(),
        }
    }
}

impl<M: Model> QueryId for ExplainKeyIndex<M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model> Query for ExplainKeyIndex<M> {
    /// The lines of the plan.
    type SqlType = Text;
}

impl<M> QueryFragment<Pg> for ExplainKeyIndex<M>
where
    M: Columns<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("EXPLAIN (COSTS OFF) INSERT INTO ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_key_columns::<M, Pg>(&mut out)?;
        out.push_sql(") SELECT ");
        push_key_columns::<M, Pg>(&mut out)?;
        out.push_sql(" FROM ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE FALSE ON CONFLICT (");
        push_key_targets::<M, Pg>(&mut out)?;
        out.push_sql(")");
        push_filter::<M, Pg>(" WHERE ", &mut out)?;
        out.push_sql(" DO NOTHING");
        Ok(())
    }
}

/// `ROW(<primary key>)::text`: a row's identity, to tell the rows a bulk insert created
/// among the rows a bulk read returns.
fn push_identity<'b, K>(primary_key: &'b K, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>
where
    K: QueryFragment<Pg>,
{
    out.push_sql("CAST(ROW(");
    primary_key.walk_ast(out.reborrow())?;
    out.push_sql(") AS text)");
    Ok(())
}

/// `f(COALESCE(<table>.k0, __goc_i.__goc_k0)), ..`: the keys of the anti-join's items, in
/// the collation of the table's columns. The stored columns are `NULL` in every row the
/// anti-join keeps, so the values are the items'; `COALESCE` only lends them the column's
/// collation (an item's own is the default), so that on a column whose collation ignores
/// case, though the lookup does not say so, two spellings of one key sort as one, the
/// occurrence taken first.
fn push_stored_or_input_keys<'b, M, F>(
    table: &'b F,
    out: &mut AstPass<'_, 'b, Pg>,
) -> QueryResult<()>
where
    M: Columns<Pg>,
    F: QueryFragment<Pg>,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, Pg>(|column| {
        comma.push(out);
        column.push_compared(out, |out| {
            out.push_sql("COALESCE(");
            table.walk_ast(out.reborrow())?;
            out.push_sql(".");
            out.push_identifier(column.name)?;
            out.push_sql(", ");
            push_input_column(out, &key_input(column.index))?;
            out.push_sql(")");
            Ok(())
        })
    })
}

/// The insert of a bulk chunk, the first of its two statements:
///
/// ```sql
/// INSERT INTO <table> (<insert columns>)
/// SELECT __goc_i.*, <on_create expressions> FROM UNNEST($1, ..) WITH ORDINALITY AS __goc_i(..)
/// LEFT JOIN <table> ON <keys match> [AND (<filter>)] WHERE <table>.ctid IS NULL
/// ORDER BY COALESCE(<table>.<key>, __goc_i.<key>), .., __goc_ord [DESC]
/// ON CONFLICT DO NOTHING
/// RETURNING tableoid, ROW(<primary key>)::text, <in filter>
/// ```
///
/// The anti-join leaves out the keys that are stored, so a hit consumes no sequence
/// value; an item whose key another item of the chunk shares is inserted once, the first
/// in the order (the later ones meet its row and do nothing): the first occurrence for
/// `get_or_create_many`, the last for `update_or_create_many`; the key order makes
/// concurrent bulk inserts wait for each other rather than deadlock. It reads the table
/// once, as a join, which Citus runs shard by shard. Its items all leave the same columns
/// to their `DEFAULT`, which an `INSERT .. SELECT` cannot write per row.
pub(crate) struct InsertMissing<'a, M: Model> {
    batch: Batch<'a, M>,
    occurrence: Occurrence,
    primary_key: <M::Table as Table>::PrimaryKey,
    from: <M::Table as QuerySource>::FromClause,
}

impl<'a, M: Model> InsertMissing<'a, M> {
    /// The insert of `items`, each key once, from the items `occurrence` names.
    pub(crate) fn new(items: &'a [&'a Item<M>], occurrence: Occurrence) -> Self {
        InsertMissing {
            batch: Batch(items),
            occurrence,
            primary_key: M::Table::default().primary_key(),
            from: M::Table::default().from_clause(),
        }
    }
}

impl<M: Model> QueryId for InsertMissing<'_, M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model> Query for InsertMissing<'_, M> {
    /// The table's oid, the row's identity, whether the key's filter holds for it.
    type SqlType = (Oid, Text, Bool);
}

impl<M> QueryFragment<Pg> for InsertMissing<'_, M>
where
    M: Columns<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    <M::Table as Table>::PrimaryKey: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Planned for its own arrays each time: a plan kept for the statement would be
        // made for unnests of unknown length, and turns slow after five executions.
        out.unsafe_to_cache_prepared();
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        let Some(first) = self.batch.0.first() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "get-or-create: an insert of no rows".into(),
            ));
        };
        push_insert_columns::<M, Pg>(Values::Defaults(&first.1), Defaulted::Omitted, &mut out)?;
        out.push_sql(") SELECT ");
        push_input_values::<M>(&self.batch, &mut out)?;
        push_on_create::<Pg, M>(&mut out);
        push_input(&self.batch, InputColumns::Insert, &mut out)?;
        out.push_sql(" LEFT JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Pg, _>(&self.from, &mut out)?;
        push_filter::<M, Pg>(" AND ", &mut out)?;
        out.push_sql(" WHERE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".ctid IS NULL");
        push_key_order(self.occurrence, &mut out, |out| {
            push_stored_or_input_keys::<M, _>(&self.from, out)
        })?;
        out.push_sql(" ON CONFLICT DO NOTHING RETURNING tableoid, ");
        push_identity(&self.primary_key, &mut out)?;
        out.push_sql(", ");
        push_in_filter::<M>(&mut out)
    }
}

/// The read of a bulk chunk, the second of its two statements: every item's stored row.
///
/// ```sql
/// SELECT __goc_i.__goc_ord, ROW(<primary key>)::text, <model columns>
/// FROM UNNEST($1, ..) WITH ORDINALITY AS __goc_i(<keys>, __goc_ord)
/// JOIN <table> ON <keys match> [AND (<filter>)]
/// ```
///
/// A new statement, so at `READ COMMITTED` it sees the rows concurrent callers committed
/// while the insert waited for them.
pub(crate) struct ReadKeys<'a, M: Model + Selectable<Pg>> {
    batch: Batch<'a, M>,
    primary_key: <M::Table as Table>::PrimaryKey,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Pg>> ReadKeys<'a, M> {
    pub(crate) fn new(items: &'a [&'a Item<M>]) -> Self {
        ReadKeys {
            batch: Batch(items),
            primary_key: M::Table::default().primary_key(),
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

impl<M: Model + Selectable<Pg>> QueryId for ReadKeys<'_, M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model + Selectable<Pg>> Query for ReadKeys<'_, M> {
    /// The item's position in the chunk, its row's identity, the row.
    type SqlType = (BigInt, Text, RowType<M, Pg>);
}

impl<M> QueryFragment<Pg> for ReadKeys<'_, M>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    <M::Table as Table>::PrimaryKey: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("SELECT ");
        push_ord(&mut out)?;
        out.push_sql(", ");
        push_identity(&self.primary_key, &mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())?;
        push_input(&self.batch, InputColumns::Key, &mut out)?;
        out.push_sql(" JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Pg, _>(&self.from, &mut out)?;
        push_filter::<M, Pg>(" AND ", &mut out)
    }
}

/// Which of a chunk's items share a key, as the table compares keys: for a chunk that goes
/// one key at a time after a deadlock.
///
/// ```sql
/// SELECT __goc_i.__goc_ord, CASE WHEN <table>.ctid IS NULL
///     THEN 'k' || CAST(ROW(<keys as compared>) AS text)
///     ELSE 'r' || CAST(ROW(<primary key>) AS text) END
/// FROM UNNEST($1, ..) WITH ORDINALITY AS __goc_i(<keys>, __goc_ord)
/// LEFT JOIN <table> ON <keys match> [AND (<filter>)]
/// ```
///
/// A stored key is named by its row, a new one by its value as its index compares it
/// (`lower(..)`, a declared collation). A plain left join, as the bulk insert's.
pub(crate) struct KeyGroups<'a, M: Model> {
    batch: Batch<'a, M>,
    primary_key: <M::Table as Table>::PrimaryKey,
    from: <M::Table as QuerySource>::FromClause,
}

impl<'a, M: Model> KeyGroups<'a, M> {
    pub(crate) fn new(items: &'a [&'a Item<M>]) -> Self {
        KeyGroups {
            batch: Batch(items),
            primary_key: M::Table::default().primary_key(),
            from: M::Table::default().from_clause(),
        }
    }
}

impl<M: Model> QueryId for KeyGroups<'_, M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model> Query for KeyGroups<'_, M> {
    /// The item's position in the chunk, its key.
    type SqlType = (BigInt, Text);
}

impl<M> QueryFragment<Pg> for KeyGroups<'_, M>
where
    M: Columns<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    <M::Table as Table>::PrimaryKey: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("SELECT ");
        push_ord(&mut out)?;
        out.push_sql(", CASE WHEN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".ctid IS NULL THEN 'k' || CAST(ROW(");
        push_input_keys::<M, Pg>(&mut out)?;
        out.push_sql(") AS text) ELSE 'r' || ");
        push_identity(&self.primary_key, &mut out)?;
        out.push_sql(" END");
        push_input(&self.batch, InputColumns::Key, &mut out)?;
        out.push_sql(" LEFT JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Pg, _>(&self.from, &mut out)?;
        push_filter::<M, Pg>(" AND ", &mut out)
    }
}

/// The update of a bulk `update_or_create_many` chunk, its first statement:
///
/// ```sql
/// UPDATE <table> SET <default column> = __goc_i.__goc_v0, .., <on_update expressions>
/// FROM (SELECT DISTINCT ON (<keys>) * FROM UNNEST($1, ..) WITH ORDINALITY AS __goc_i(..)
///       ORDER BY <keys>, __goc_ord DESC) AS __goc_i
/// WHERE <keys match> [AND (<filter>)]
/// RETURNING __goc_i.__goc_ord, ROW(<primary key>)::text, <model columns>
/// ```
///
/// Each stored key is set to the values of its last item, once; the rows it returns
/// answer those items. Its items all leave the same columns to their stored values (see
/// `defaulted_columns`). One statement, reading the table once, as a join.
pub(crate) struct UpdateFromInput<'a, M: Model + Selectable<Pg>> {
    batch: Batch<'a, M>,
    primary_key: <M::Table as Table>::PrimaryKey,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Pg>> UpdateFromInput<'a, M> {
    pub(crate) fn new(items: &'a [&'a Item<M>]) -> Self {
        UpdateFromInput {
            batch: Batch(items),
            primary_key: M::Table::default().primary_key(),
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

impl<M: Model + Selectable<Pg>> QueryId for UpdateFromInput<'_, M> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model + Selectable<Pg>> Query for UpdateFromInput<'_, M> {
    /// The item's position in the chunk, its row's identity, the row.
    type SqlType = (BigInt, Text, RowType<M, Pg>);
}

impl<M> QueryFragment<Pg> for UpdateFromInput<'_, M>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    <M::Table as Table>::PrimaryKey: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" SET ");
        push_input_assignments::<M, Pg>(self.batch.first_values()?, &mut out)?;
        out.push_sql(" FROM (SELECT DISTINCT ON (");
        push_input_keys::<M, Pg>(&mut out)?;
        out.push_sql(") *");
        push_input(&self.batch, InputColumns::Insert, &mut out)?;
        push_key_order(Occurrence::Last, &mut out, push_input_keys::<M, Pg>)?;
        out.push_sql(") AS ");
        out.push_identifier(crate::sql::bulk::INPUT)?;
        out.push_sql(" WHERE ");
        push_keys_match::<M, Pg, _>(&self.from, &mut out)?;
        push_filter::<M, Pg>(" AND ", &mut out)?;
        out.push_sql(" RETURNING ");
        push_ord(&mut out)?;
        out.push_sql(", ");
        push_identity(&self.primary_key, &mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())
    }
}
