//! MySQL/MariaDB's own statements.

use std::marker::PhantomData;

use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{QueryResult, Selectable};

use crate::model::{Columns, Model};
use crate::sql::bulk::{push_input_assignments, InputColumns, Occurrence, INPUT};
use crate::sql::bulk::{push_input_keys, push_key_order, push_keys_match, push_ord};
use crate::sql::values::{push_rows, push_values_input, ValuesStatement};
use crate::sql::{push_insert, push_key_match, push_update, RowType};
use crate::sql::{Defaulted, SelectTail, StatementId, Values};

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
    // The columns depend on which fields write their `DEFAULT`, if any can.
    const HAS_STATIC_QUERY_ID: bool = !M::DEFAULTABLE;
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
    changes: Values<'a, M>,
    table: <M::Table as QuerySource>::FromClause,
}

impl<'a, M: Model> Update<'a, M> {
    pub(crate) fn new(key: &'a M::Key, changes: Values<'a, M>) -> Self {
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

/// `SELECT DATABASE(), <model columns> FROM <table> WHERE <key> LIMIT 2`: the row an insert
/// wrote, read back with what the database filled in, and the database it went to (to
/// check the unique indexes once per database).
pub(crate) struct ReadBack<'a, M: Model + Selectable<Mysql>> {
    key: &'a M::Key,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Mysql>> ReadBack<'a, M> {
    pub(crate) fn new(key: &'a M::Key) -> Self {
        ReadBack {
            key,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

/// The [`StatementId`] kind of a [`ReadBack`].
pub(crate) struct ReadBackKind;

impl<M: Model + Selectable<Mysql>> QueryId for ReadBack<'_, M> {
    type QueryId = StatementId<M, Mysql, ReadBackKind>;
    const HAS_STATIC_QUERY_ID: bool = !M::NULLABLE_KEY;
}

impl<M: Model + Selectable<Mysql>> Query for ReadBack<'_, M> {
    /// The database, the row.
    type SqlType = (Nullable<Text>, RowType<M, Mysql>);
}

impl<M> QueryFragment<Mysql> for ReadBack<'_, M>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql("SELECT DATABASE(), ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        push_key_match::<M, Mysql>(self.key, &mut out)?;
        out.push_sql(" LIMIT 2");
        Ok(())
    }
}

/// The first read of a bulk chunk: every item, with its stored row if any, in key order.
///
/// ```sql
/// WITH __goc_i(__goc_ord, <keys>) AS (SELECT 1, $1 UNION ALL SELECT 2, $2 ..)
/// SELECT __goc_ord, row_number() OVER (PARTITION BY <keys> ORDER BY __goc_ord) = 1,
///        row_number() OVER (PARTITION BY <keys> ORDER BY __goc_ord DESC) = 1,
///        DATABASE(), <model columns, NULL when missing>
/// FROM __goc_i LEFT JOIN <table> ON <keys match>
/// ORDER BY <keys>, __goc_ord [LOCK IN SHARE MODE]
/// ```
///
/// The missing keys come in key order, so the insert that follows writes them (and takes
/// their locks) in the same order as any concurrent bulk call: they wait for each other
/// rather than deadlock.
pub(crate) struct ReadAll<Lock>(PhantomData<fn() -> Lock>);

/// `INSERT INTO <table> (..) VALUES (..), (..)`: a simple insert, for which InnoDB
/// allocates exactly one `AUTO_INCREMENT` value per row (an `INSERT .. SELECT` reserves
/// them in growing blocks).
pub(crate) struct InsertRows;

/// `WITH .. SELECT __goc_ord, <model columns> FROM __goc_i JOIN <table> ON <keys match>`:
/// the rows of the keys just inserted.
pub(crate) struct ReadInserted;

impl<M, Lock> Query for ValuesStatement<'_, M, Mysql, ReadAll<Lock>>
where
    M: Model + Selectable<Mysql>,
    Option<M>: Selectable<Mysql>,
{
    /// The item's position in the chunk, whether it is the first and whether the last
    /// with its key, the database, the stored row if any.
    type SqlType = (
        BigInt,
        Bool,
        Bool,
        Nullable<Text>,
        RowType<Option<M>, Mysql>,
    );
}

impl<M, Lock> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, ReadAll<Lock>>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Lock: SelectTail,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        push_values_input::<M, Mysql>(self.items, InputColumns::Key, &mut out)?;
        out.push_sql("SELECT ");
        push_ord(&mut out)?;
        // Whether the item is the first, and the last, of the chunk with its key:
        // `get_or_create_many` inserts the first, `update_or_create_many` writes the
        // last's values.
        for occurrence in [Occurrence::First, Occurrence::Last] {
            out.push_sql(", row_number() OVER (PARTITION BY ");
            push_input_keys::<M, Mysql>(&mut out)?;
            out.push_sql(" ORDER BY ");
            push_ord(&mut out)?;
            out.push_sql(occurrence.direction());
            out.push_sql(") = 1");
        }
        out.push_sql(", DATABASE(), ");
        // `Option<M>`'s selection is `M`'s, read as nullable: the same SQL.
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" LEFT JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Mysql, _>(&self.from, &mut out)?;
        push_key_order(Occurrence::First, &mut out, push_input_keys::<M, Mysql>)?;
        out.push_sql(Lock::SQL);
        Ok(())
    }
}

impl<M> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, InsertRows>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ");
        push_rows::<M, Mysql>(self.items, Defaulted::Keyword, &mut out)
    }
}

impl<M> Query for ValuesStatement<'_, M, Mysql, ReadInserted>
where
    M: Model + Selectable<Mysql>,
{
    /// The item's position among the inserted items, the row.
    type SqlType = (BigInt, RowType<M, Mysql>);
}

impl<M> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, ReadInserted>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        push_values_input::<M, Mysql>(self.items, InputColumns::Key, &mut out)?;
        out.push_sql("SELECT ");
        push_ord(&mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" JOIN ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" ON ");
        push_keys_match::<M, Mysql, _>(&self.from, &mut out)
    }
}

/// `UPDATE <table> JOIN (WITH __goc_i(..) AS (SELECT 1, $1, .. UNION ALL ..) SELECT * FROM
/// __goc_i) AS __goc_i ON <keys match> SET <default column> = __goc_i.__goc_v0, ..,
/// <on_update expressions>`: sets each stored key of an `update_or_create_many` chunk to
/// its last item's values. Its items have distinct keys, all stored, and all leave the
/// same columns to their stored values (see `defaulted_columns`); its count of matched
/// rows says whether each one still was.
pub(crate) struct UpdateJoin;

impl<M> QueryFragment<Mysql> for ValuesStatement<'_, M, Mysql, UpdateJoin>
where
    M: Columns<Mysql> + Selectable<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        let Some(first) = self.items.first() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "get-or-create: an update of no rows".into(),
            ));
        };
        out.push_sql("UPDATE ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" JOIN (");
        push_values_input::<M, Mysql>(self.items, InputColumns::Insert, &mut out)?;
        out.push_sql("SELECT * FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(") AS ");
        out.push_identifier(INPUT)?;
        out.push_sql(" ON ");
        push_keys_match::<M, Mysql, _>(&self.from, &mut out)?;
        out.push_sql(" SET ");
        push_input_assignments::<M, Mysql>(Values::Defaults(&first.1), &mut out)
    }
}
