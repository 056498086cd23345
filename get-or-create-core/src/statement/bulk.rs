//! The statements of `get_or_create_many`.
//!
//! Each one carries the chunk's rows as a relation `__goc_i` with three kinds of columns:
//! the model's insert (or lookup) columns, `__goc_ord` (the row's 1-based position in the
//! chunk, which tells the caller whose row each result is), and `__goc_first` (whether the
//! row is the first of the chunk with its key: only that one may be inserted, so a key
//! that appears twice is created once and both get the same row).
//!
//! PostgreSQL builds the relation from one array per column (`UNNEST`), so its statement's
//! text is the same for every chunk and is prepared once. SQLite and MySQL/MariaDB spell
//! the rows out in a `VALUES` list, one bind per value.

use std::marker::PhantomData;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool};
use diesel::{QueryResult, Selectable};

use super::{push_column_list, LockClause, RowType, StatementId};
use crate::model::{Model, ModelArrays, ModelSql};

/// One `(lookup, defaults)` pair of a bulk call.
pub type Item<M> = (<M as Model>::Lookup, <M as Model>::Defaults);

const INPUT: &str = "__goc_i";
const VALUES: &str = "__goc_v";
const ORD: &str = "__goc_ord";
const FIRST: &str = "__goc_first";
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
const INSERTED: &str = "__goc_inserted";

/// Where the backends' SQL for bulk statements differs.
pub trait BulkSyntax: Backend {
    /// How to say "equal, or both `NULL`", which matching a nullable key needs: the
    /// operator, where the backend has one that can use an index (`IS`, `<=>`); `None` to
    /// spell it out (PostgreSQL's `IS NOT DISTINCT FROM` cannot use an index).
    const NULL_SAFE_EQ: Option<&'static str>;

    /// Whether a list of rows must be written `SELECT .. UNION ALL SELECT ..` rather than
    /// `VALUES (..), (..)`: MariaDB 10.11 reads bind parameters inside `VALUES` as empty
    /// values.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))] // read for MySQL only
    const ROWS_AS_UNION: bool = false;
}

/// A relation whose columns a key comparison names: the model's table, or an alias.
enum Relation<'b, F> {
    Table(&'b F),
    Alias(&'static str),
}

// Not derived: a derive would require `F: Copy`, but only a reference to it is copied.
impl<F> Clone for Relation<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for Relation<'_, F> {}

impl<'b, F> Relation<'b, F> {
    fn push_column<DB>(self, column: &str, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        DB: Backend,
        F: QueryFragment<DB>,
    {
        match self {
            Relation::Table(from) => from.walk_ast(out.reborrow())?,
            Relation::Alias(alias) => out.push_identifier(alias)?,
        }
        out.push_sql(".");
        out.push_identifier(column)
    }
}

/// `left.k1 = right.k1 AND ..`, `NULL`-safe on the nullable lookup columns.
fn push_keys_match<'b, M, DB, F>(
    left: Relation<'b, F>,
    right: Relation<'b, F>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Model,
    DB: BulkSyntax,
    F: QueryFragment<DB>,
{
    let columns = M::LOOKUP_COLUMNS.iter().zip(M::LOOKUP_NULLABLE);
    for (i, (column, &nullable)) in columns.enumerate() {
        if i > 0 {
            out.push_sql(" AND ");
        }
        let equal = |operator: &str, out: &mut AstPass<'_, 'b, DB>| {
            left.push_column(column, out)?;
            out.push_sql(operator);
            right.push_column(column, out)
        };
        match (nullable, DB::NULL_SAFE_EQ) {
            (false, _) => equal(" = ", out)?,
            (true, Some(operator)) => equal(operator, out)?,
            (true, None) => {
                out.push_sql("(");
                equal(" = ", out)?;
                out.push_sql(" OR (");
                left.push_column(column, out)?;
                out.push_sql(" IS NULL AND ");
                right.push_column(column, out)?;
                out.push_sql(" IS NULL))");
            }
        }
    }
    Ok(())
}

/// `row_number() OVER (PARTITION BY <lookup columns> ORDER BY __goc_ord) = 1 AS __goc_first`
fn push_first_of_key<M: Model, DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    out.push_sql("row_number() OVER (PARTITION BY ");
    push_column_list(M::LOOKUP_COLUMNS, out)?;
    out.push_sql(" ORDER BY ");
    out.push_identifier(ORD)?;
    out.push_sql(") = 1 AS ");
    out.push_identifier(FIRST)
}

/// `INSERT INTO <table> (<insert columns>) SELECT <insert columns> FROM __goc_i WHERE
/// __goc_first`; the caller appends more conditions, then [`push_insert_order`].
fn push_insert_from_input<'b, M, DB, F>(
    from: &'b F,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Model,
    DB: Backend,
    F: QueryFragment<DB>,
{
    out.push_sql("INSERT INTO ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" (");
    push_column_list(M::INSERT_COLUMNS, out)?;
    out.push_sql(") SELECT ");
    push_column_list(M::INSERT_COLUMNS, out)?;
    out.push_sql(" FROM ");
    out.push_identifier(INPUT)?;
    out.push_sql(" WHERE ");
    out.push_identifier(FIRST)
}

/// ` AND NOT EXISTS (SELECT 1 FROM <table> WHERE <keys match>)`: a key that exists is not
/// inserted, so it consumes no sequence value.
fn push_not_yet_stored<'b, M, DB, F>(from: &'b F, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    M: Model,
    DB: BulkSyntax,
    F: QueryFragment<DB>,
{
    out.push_sql(" AND NOT EXISTS (SELECT 1 FROM ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    push_keys_match::<M, DB, F>(Relation::Table(from), Relation::Alias(INPUT), out)?;
    out.push_sql(")");
    Ok(())
}

/// ` ORDER BY <lookup columns>`: concurrent bulk inserts take their row locks in the same
/// order, so they wait for each other instead of deadlocking.
fn push_insert_order<M: Model, DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    out.push_sql(" ORDER BY ");
    push_column_list(M::LOOKUP_COLUMNS, out)
}

/// ` ON CONFLICT (<lookup columns>) DO NOTHING`
fn push_on_conflict_do_nothing<M: Model, DB: Backend>(
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()> {
    out.push_sql(" ON CONFLICT (");
    push_column_list(M::LOOKUP_COLUMNS, out)?;
    out.push_sql(") DO NOTHING");
    Ok(())
}

/// PostgreSQL's bulk get-or-create of one chunk, in one statement:
///
/// ```sql
/// WITH __goc_i AS (SELECT *, <first of key> FROM UNNEST($1, $2, ..)
///                  WITH ORDINALITY AS __goc_v(<insert columns>, __goc_ord)),
///      __goc_inserted AS (INSERT INTO <table> (..) SELECT .. FROM __goc_i
///                         WHERE __goc_first AND NOT EXISTS (<stored>) ORDER BY <lookup>
///                         ON CONFLICT (<lookup>) DO NOTHING RETURNING <model columns>)
/// SELECT __goc_ord, __goc_first, __goc_inserted.* FROM __goc_i JOIN __goc_inserted ON ..
/// UNION ALL
/// SELECT __goc_ord, FALSE, <model columns> FROM __goc_i JOIN <table> ON ..
/// ```
///
/// As with [`SelectOrInsert`](super::SelectOrInsert), a key whose row a concurrent
/// transaction committed after the statement's snapshot comes back in neither part; the
/// caller asks again for those keys.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
pub struct UnnestGetOrCreate<'a, M: ModelArrays<DB> + Selectable<DB>, DB: Backend> {
    arrays: M::Arrays<'a>,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

/// The [`StatementId`] kind of an [`UnnestGetOrCreate`].
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
pub struct UnnestGetOrCreateKind;

#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
impl<'a, M, DB> UnnestGetOrCreate<'a, M, DB>
where
    M: ModelArrays<DB> + Selectable<DB>,
    DB: Backend,
{
    pub fn new(items: &[&'a Item<M>]) -> Self {
        UnnestGetOrCreate {
            arrays: M::arrays(items),
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

impl<M, DB> QueryId for UnnestGetOrCreate<'_, M, DB>
where
    M: ModelArrays<DB> + Selectable<DB>,
    DB: Backend + 'static,
{
    type QueryId = StatementId<M, DB, UnnestGetOrCreateKind>;
    // One text for every chunk and every value, `NULL`s included.
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, DB> Query for UnnestGetOrCreate<'_, M, DB>
where
    M: ModelArrays<DB> + Selectable<DB>,
    DB: Backend,
{
    /// The row's position in the chunk, whether this statement created it, the row.
    type SqlType = (BigInt, Bool, RowType<M, DB>);
}

impl<M, DB> QueryFragment<DB> for UnnestGetOrCreate<'_, M, DB>
where
    M: ModelArrays<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: BulkSyntax + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let from = &self.from;
        out.push_sql("WITH ");
        out.push_identifier(INPUT)?;
        out.push_sql(" AS (SELECT *, ");
        push_first_of_key::<M, DB>(&mut out)?;
        out.push_sql(" FROM UNNEST(");
        M::walk_arrays(&self.arrays, out.reborrow())?;
        out.push_sql(") WITH ORDINALITY AS ");
        out.push_identifier(VALUES)?;
        out.push_sql("(");
        push_column_list(M::INSERT_COLUMNS, &mut out)?;
        out.push_sql(", ");
        out.push_identifier(ORD)?;
        out.push_sql(")), ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" AS (");
        push_insert_from_input::<M, DB, _>(from, &mut out)?;
        push_not_yet_stored::<M, DB, _>(from, &mut out)?;
        push_insert_order::<M, DB>(&mut out)?;
        push_on_conflict_do_nothing::<M, DB>(&mut out)?;
        out.push_sql(" RETURNING ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(") SELECT ");
        push_ord_and_first(&mut out)?;
        out.push_sql(", ");
        out.push_identifier(INSERTED)?;
        out.push_sql(".* FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" JOIN ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" ON ");
        push_keys_match::<M, DB, <M::Table as QuerySource>::FromClause>(
            Relation::Alias(INSERTED),
            Relation::Alias(INPUT),
            &mut out,
        )?;
        out.push_sql(" UNION ALL SELECT ");
        out.push_identifier(INPUT)?;
        out.push_sql(".");
        out.push_identifier(ORD)?;
        out.push_sql(", FALSE, ");
        self.selection.walk_ast(out.reborrow())?;
        push_input_join_table::<M, DB, _>(from, &mut out)
    }
}

/// `__goc_i.__goc_ord, __goc_i.__goc_first`
fn push_ord_and_first<DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    out.push_identifier(INPUT)?;
    out.push_sql(".");
    out.push_identifier(ORD)?;
    out.push_sql(", ");
    out.push_identifier(INPUT)?;
    out.push_sql(".");
    out.push_identifier(FIRST)
}

/// ` FROM __goc_i JOIN <table> ON <keys match>`
fn push_input_join_table<'b, M, DB, F>(
    from: &'b F,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Model,
    DB: BulkSyntax,
    F: QueryFragment<DB>,
{
    out.push_sql(" FROM ");
    out.push_identifier(INPUT)?;
    out.push_sql(" JOIN ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" ON ");
    push_keys_match::<M, DB, F>(Relation::Table(from), Relation::Alias(INPUT), out)
}

/// Which columns a `VALUES` list carries.
#[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))] // SQLite, MySQL
#[derive(Clone, Copy)]
enum ValueColumns {
    Lookup,
    Insert,
}

/// `WITH __goc_v(__goc_ord, <columns>) AS (VALUES (1, $1, ..), (2, ..)),
/// __goc_i AS (SELECT *, <first of key> FROM __goc_v) `
#[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))] // SQLite, MySQL
fn push_values_input<'b, M, DB>(
    items: &'b [&Item<M>],
    columns: ValueColumns,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: ModelSql<DB>,
    DB: BulkSyntax,
{
    out.push_sql("WITH ");
    out.push_identifier(VALUES)?;
    out.push_sql("(");
    out.push_identifier(ORD)?;
    out.push_sql(", ");
    push_column_list(
        match columns {
            ValueColumns::Lookup => M::LOOKUP_COLUMNS,
            ValueColumns::Insert => M::INSERT_COLUMNS,
        },
        out,
    )?;
    let (open, separator, close) = if DB::ROWS_AS_UNION {
        ("SELECT ", " UNION ALL SELECT ", "")
    } else {
        ("VALUES (", "), (", ")")
    };
    out.push_sql(") AS (");
    out.push_sql(open);
    for (i, (lookup, defaults)) in items.iter().map(|item| (&item.0, &item.1)).enumerate() {
        if i > 0 {
            out.push_sql(separator);
        }
        out.push_sql(&format!("{}, ", i + 1));
        match columns {
            ValueColumns::Lookup => M::walk_lookup_values(lookup, out.reborrow())?,
            ValueColumns::Insert => M::walk_insert_values(lookup, defaults, out.reborrow())?,
        }
    }
    out.push_sql(close);
    out.push_sql("), ");
    out.push_identifier(INPUT)?;
    out.push_sql(" AS (SELECT *, ");
    push_first_of_key::<M, DB>(out)?;
    out.push_sql(" FROM ");
    out.push_identifier(VALUES)?;
    out.push_sql(") ");
    Ok(())
}

/// The rows of a chunk spelled out as a `VALUES` list (SQLite, MySQL/MariaDB). Its text
/// depends on the number of rows, so it is not kept as a prepared statement.
#[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))] // SQLite, MySQL
pub struct ValuesStatement<'a, M: Model + Selectable<DB>, DB: Backend, Kind> {
    items: &'a [&'a Item<M>],
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<Kind>,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))] // SQLite, MySQL
impl<'a, M, DB, Kind> ValuesStatement<'a, M, DB, Kind>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(items: &'a [&'a Item<M>]) -> Self {
        ValuesStatement {
            items,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB, Kind> QueryId for ValuesStatement<'_, M, DB, Kind>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// `WITH .. SELECT __goc_ord, __goc_first, <model columns> FROM __goc_i JOIN <table>
/// ON <keys match> [LOCK IN SHARE MODE]`: the stored rows of the chunk's keys.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
pub struct SelectStored<Lock>(PhantomData<Lock>);

/// SQLite: `WITH .. INSERT INTO <table> (..) SELECT .. FROM __goc_i WHERE __goc_first
/// AND NOT EXISTS (<stored>) ORDER BY <lookup> ON CONFLICT (<lookup>) DO NOTHING
/// RETURNING rowid`: the rows this statement inserted, told apart from stored ones by
/// their `rowid` (so the table needs one: not `WITHOUT ROWID`).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))] // SQLite only
pub struct InsertMissingReturningRowid;

/// SQLite: [`SelectStored`] with each row's `rowid` after its position and first flag.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))] // SQLite only
pub struct SelectStoredWithRowid;

/// MySQL/MariaDB: `INSERT INTO <table> (..) WITH .. SELECT .. FROM __goc_i WHERE
/// __goc_first ORDER BY <lookup>`, for keys just found missing: a key stored meanwhile
/// fails the statement with a duplicate key, as a single insert does.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
pub struct InsertAll;

/// A [`ValuesStatement`] that reads the stored rows of its keys.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
pub type SelectStoredRows<'a, M, DB, Lock> = ValuesStatement<'a, M, DB, SelectStored<Lock>>;

impl<M, DB, Lock> Query for ValuesStatement<'_, M, DB, SelectStored<Lock>>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    /// The row's position in the chunk, whether it is the first with its key, the row.
    type SqlType = (BigInt, Bool, RowType<M, DB>);
}

impl<M, DB, Lock> QueryFragment<DB> for ValuesStatement<'_, M, DB, SelectStored<Lock>>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: BulkSyntax + DieselReserveSpecialization,
    Lock: LockClause,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_values_input::<M, DB>(self.items, ValueColumns::Lookup, &mut out)?;
        out.push_sql("SELECT ");
        push_ord_and_first(&mut out)?;
        out.push_sql(", ");
        self.selection.walk_ast(out.reborrow())?;
        push_input_join_table::<M, DB, _>(&self.from, &mut out)?;
        out.push_sql(Lock::SQL);
        Ok(())
    }
}

impl<M, DB> Query for ValuesStatement<'_, M, DB, SelectStoredWithRowid>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    /// The row's position in the chunk, whether it is the first with its key, its `rowid`,
    /// the row.
    type SqlType = (BigInt, Bool, BigInt, RowType<M, DB>);
}

impl<M, DB> QueryFragment<DB> for ValuesStatement<'_, M, DB, SelectStoredWithRowid>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: BulkSyntax + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_values_input::<M, DB>(self.items, ValueColumns::Lookup, &mut out)?;
        out.push_sql("SELECT ");
        push_ord_and_first(&mut out)?;
        out.push_sql(", ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(".rowid, ");
        self.selection.walk_ast(out.reborrow())?;
        push_input_join_table::<M, DB, _>(&self.from, &mut out)
    }
}

impl<M, DB> Query for ValuesStatement<'_, M, DB, InsertMissingReturningRowid>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    /// The `rowid` of an inserted row.
    type SqlType = BigInt;
}

impl<M, DB> QueryFragment<DB> for ValuesStatement<'_, M, DB, InsertMissingReturningRowid>
where
    M: ModelSql<DB> + Selectable<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: BulkSyntax + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let from = &self.from;
        push_values_input::<M, DB>(self.items, ValueColumns::Insert, &mut out)?;
        push_insert_from_input::<M, DB, _>(from, &mut out)?;
        push_not_yet_stored::<M, DB, _>(from, &mut out)?;
        push_insert_order::<M, DB>(&mut out)?;
        push_on_conflict_do_nothing::<M, DB>(&mut out)?;
        // Not the items' positions: a correlated lookup in the input per returned row
        // would make a chunk cost quadratic time.
        out.push_sql(" RETURNING rowid");
        Ok(())
    }
}

impl<M, DB> QueryFragment<DB> for ValuesStatement<'_, M, DB, InsertAll>
where
    M: ModelSql<DB> + Selectable<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: BulkSyntax + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // MySQL wants the `WITH` after `INSERT INTO t (..)`; write the head, then the input.
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_column_list(M::INSERT_COLUMNS, &mut out)?;
        out.push_sql(") ");
        push_values_input::<M, DB>(self.items, ValueColumns::Insert, &mut out)?;
        out.push_sql("SELECT ");
        push_column_list(M::INSERT_COLUMNS, &mut out)?;
        out.push_sql(" FROM ");
        out.push_identifier(INPUT)?;
        out.push_sql(" WHERE ");
        out.push_identifier(FIRST)?;
        push_insert_order::<M, DB>(&mut out)
    }
}
