//! The statements the strategies send, written as Diesel query fragments.
//!
//! They are our own types rather than Diesel's query builder for two reasons: each has a
//! static [`QueryId`], so Diesel prepares it once per connection and reuses it (Diesel
//! never caches its own `INSERT`s), and they can say what Diesel's DSL cannot, such as
//! MariaDB's `LOCK IN SHARE MODE`.

use std::marker::PhantomData;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::dsl::SqlTypeOf;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::Bool;
use diesel::{QueryResult, Selectable};

use crate::model::{Model, ModelSql};

mod bulk;
pub use bulk::*;

/// The SQL type of the rows a statement returns: the model's columns.
pub type RowType<M, DB> = SqlTypeOf<<M as Selectable<DB>>::SelectExpression>;

/// The query id of a statement for model `M` on backend `DB`, told apart by its `Kind`
/// (a [`LockClause`] or an [`InsertTail`], all distinct types): one prepared statement
/// per model, statement and backend.
pub struct StatementId<M, DB, Kind>(PhantomData<(M, DB, Kind)>);

/// `SELECT <model columns> FROM <table> WHERE <lookup> LIMIT 2 [LOCK IN SHARE MODE]`.
///
/// `LIMIT 2` rather than 1 lets us see that several rows match instead of returning an
/// arbitrary one of them.
pub struct SelectByLookup<'a, M: Model + Selectable<DB>, DB: Backend, Lock = NoLock> {
    lookup: &'a M::Lookup,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<(DB, Lock)>,
}

/// Row locking clause of a [`SelectByLookup`].
pub trait LockClause: 'static {
    /// The SQL appended to the query.
    const SQL: &'static str;
}

/// A plain read.
pub struct NoLock;
impl LockClause for NoLock {
    const SQL: &'static str = "";
}

/// A shared-lock read, which sees the newest committed row even inside a MySQL/MariaDB
/// `REPEATABLE READ` transaction. Written `LOCK IN SHARE MODE` because MariaDB rejects
/// the `FOR SHARE` that Diesel emits.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub struct LockInShareMode;
impl LockClause for LockInShareMode {
    const SQL: &'static str = " LOCK IN SHARE MODE";
}

impl<'a, M, DB, Lock> SelectByLookup<'a, M, DB, Lock>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(lookup: &'a M::Lookup) -> Self {
        SelectByLookup {
            lookup,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB, Lock> QueryId for SelectByLookup<'_, M, DB, Lock>
where
    M: Model + Selectable<DB>,
    DB: Backend + 'static,
    Lock: LockClause,
{
    type QueryId = StatementId<M, DB, Lock>;
    const HAS_STATIC_QUERY_ID: bool = !M::NULLABLE_LOOKUP;
}

impl<M, DB, Lock> Query for SelectByLookup<'_, M, DB, Lock>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

impl<M, DB, Lock> QueryFragment<DB> for SelectByLookup<'_, M, DB, Lock>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
    Lock: LockClause,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        M::walk_lookup(self.lookup, out.reborrow())?;
        out.push_sql(" LIMIT 2");
        out.push_sql(Lock::SQL);
        Ok(())
    }
}

/// `INSERT INTO <table> (<lookup and default columns>) VALUES (..)`, optionally followed by
/// `ON CONFLICT (<lookup columns>) DO NOTHING RETURNING <model columns>`.
pub struct Insert<'a, M: Model + Selectable<DB>, DB: Backend, Tail = NoTail> {
    lookup: &'a M::Lookup,
    values: InsertValues<'a, M>,
    into: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<(DB, Tail)>,
}

/// Where the values of an [`Insert`]'s default fields come from.
pub enum InsertValues<'a, M: Model> {
    /// `get_or_create`: the defaults.
    Defaults(&'a M::Defaults),
    /// `update_or_create`: each field's change, or else its default.
    Changed(&'a M::Changes, Option<&'a M::Defaults>),
}

// Not derived: a derive would require `M: Copy`, but only references are copied.
impl<M: Model> Clone for InsertValues<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M: Model> Copy for InsertValues<'_, M> {}

impl<'b, M: Model> InsertValues<'b, M> {
    /// Writes `$1, $2, ..` for [`Model::INSERT_COLUMNS`].
    fn walk<DB>(self, lookup: &'b M::Lookup, out: AstPass<'_, 'b, DB>) -> QueryResult<()>
    where
        M: ModelSql<DB>,
        DB: Backend,
    {
        match self {
            InsertValues::Defaults(defaults) => M::walk_insert_values(lookup, defaults, out),
            InsertValues::Changed(changes, defaults) => {
                M::walk_changed_values(lookup, changes, defaults, out)
            }
        }
    }
}

/// What follows the `VALUES` list of an [`Insert`].
pub trait InsertTail: 'static {}

/// A plain insert (MySQL/MariaDB: a duplicate key is reported as an error, which does not
/// abort the transaction there).
pub struct NoTail;
impl InsertTail for NoTail {}

/// `ON CONFLICT (<lookup columns>) DO NOTHING RETURNING ..` (PostgreSQL, SQLite 3.35+):
/// a lost race returns no row instead of an error that would abort a PostgreSQL
/// transaction, and naming the lookup columns as the conflict target makes the database
/// refuse a lookup without a unique index and report clashes on other unique indexes.
pub struct OnConflictDoNothingReturning;
impl InsertTail for OnConflictDoNothingReturning {}

impl<'a, M, DB, Tail> Insert<'a, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(lookup: &'a M::Lookup, defaults: &'a M::Defaults) -> Self {
        Self::of(lookup, InsertValues::Defaults(defaults))
    }

    pub fn of(lookup: &'a M::Lookup, values: InsertValues<'a, M>) -> Self {
        Insert {
            lookup,
            values,
            into: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB, Tail> QueryId for Insert<'_, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend + 'static,
    Tail: InsertTail,
{
    type QueryId = StatementId<M, DB, Tail>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, DB, Tail> Query for Insert<'_, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

pub(crate) fn push_column_list<DB: Backend>(
    columns: &[&str],
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()> {
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            out.push_sql(", ");
        }
        out.push_identifier(column)?;
    }
    Ok(())
}

impl<M, DB, Tail> Insert<'_, M, DB, Tail>
where
    M: ModelSql<DB> + Selectable<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    /// `INSERT INTO <table> (<columns>) VALUES (<binds>)`, what every tail starts with.
    fn walk_insert<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("INSERT INTO ");
        self.into.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_column_list(M::INSERT_COLUMNS, &mut out)?;
        out.push_sql(") VALUES (");
        self.values.walk(self.lookup, out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl<M, DB> QueryFragment<DB> for Insert<'_, M, DB, NoTail>
where
    M: ModelSql<DB> + Selectable<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.walk_insert(out)
    }
}

impl<M, DB> QueryFragment<DB> for Insert<'_, M, DB, OnConflictDoNothingReturning>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.walk_insert(out.reborrow())?;
        out.push_sql(" ON CONFLICT (");
        push_column_list(M::LOOKUP_COLUMNS, &mut out)?;
        out.push_sql(") DO NOTHING RETURNING ");
        self.selection.walk_ast(out.reborrow())
    }
}

/// `INSERT INTO <table> (<columns>) SELECT $1, $2, .. WHERE NOT EXISTS (SELECT 1 FROM
/// <table> WHERE <lookup>) ON CONFLICT (<lookup columns>) DO NOTHING RETURNING <model
/// columns>`: the insert of PostgreSQL's one-statement calls, which runs only when the
/// statement's snapshot holds no row of the key.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
fn push_insert_if_missing<'b, M, DB>(
    table: &'b <M::Table as QuerySource>::FromClause,
    lookup: &'b M::Lookup,
    values: InsertValues<'b, M>,
    selection: &'b M::SelectExpression,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend,
{
    out.push_sql("INSERT INTO ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" (");
    push_column_list(M::INSERT_COLUMNS, out)?;
    out.push_sql(") SELECT ");
    values.walk(lookup, out.reborrow())?;
    out.push_sql(" WHERE NOT EXISTS (SELECT 1 FROM ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    M::walk_lookup(lookup, out.reborrow())?;
    out.push_sql(") ON CONFLICT (");
    push_column_list(M::LOOKUP_COLUMNS, out)?;
    out.push_sql(") DO NOTHING RETURNING ");
    selection.walk_ast(out.reborrow())
}

/// PostgreSQL's whole get-or-create in one statement, for a row that exists and for one
/// that does not:
///
/// ```sql
/// WITH __goc_inserted AS (
///     INSERT INTO <table> (<columns>) SELECT $1, $2, ..
///     WHERE NOT EXISTS (SELECT 1 FROM <table> WHERE <lookup>)
///     ON CONFLICT (<lookup columns>) DO NOTHING
///     RETURNING <model columns>)
/// SELECT TRUE, * FROM __goc_inserted
/// UNION ALL (SELECT FALSE, <model columns> FROM <table> WHERE <lookup> LIMIT 2)
/// ```
///
/// The insert runs only when the lookup found nothing, so a hit consumes no sequence
/// value. Both parts read the statement's one snapshot: exactly one of them returns the
/// row, except when a concurrent transaction committed the row after the snapshot was
/// taken: then the insert does nothing, the read cannot see it, and the statement returns
/// no row. The caller then reads again with a new statement.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
pub struct SelectOrInsert<'a, M: Model + Selectable<DB>, DB: Backend> {
    lookup: &'a M::Lookup,
    defaults: &'a M::Defaults,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<DB>,
}

/// The [`StatementId`] kind of a [`SelectOrInsert`].
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
pub struct SelectOrInsertKind;

#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
impl<'a, M, DB> SelectOrInsert<'a, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(lookup: &'a M::Lookup, defaults: &'a M::Defaults) -> Self {
        SelectOrInsert {
            lookup,
            defaults,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB> QueryId for SelectOrInsert<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend + 'static,
{
    type QueryId = StatementId<M, DB, SelectOrInsertKind>;
    const HAS_STATIC_QUERY_ID: bool = !M::NULLABLE_LOOKUP;
}

impl<M, DB> Query for SelectOrInsert<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    /// Whether this statement created the row, then the row.
    type SqlType = (Bool, RowType<M, DB>);
}

impl<M, DB> QueryFragment<DB> for SelectOrInsert<'_, M, DB>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("WITH __goc_inserted AS (");
        let values = InsertValues::<M>::Defaults(self.defaults);
        push_insert_if_missing(&self.from, self.lookup, values, &self.selection, &mut out)?;
        out.push_sql(") SELECT TRUE, * FROM __goc_inserted UNION ALL (SELECT FALSE, ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        M::walk_lookup(self.lookup, out.reborrow())?;
        out.push_sql(" LIMIT 2)");
        Ok(())
    }
}

/// `UPDATE <table> SET <changes> WHERE <lookup> AND <exactly one row matches>`, followed by
/// `RETURNING <model columns>` ([`Returning`], PostgreSQL and SQLite) or nothing
/// ([`NoTail`], MySQL/MariaDB, which then reads the row back).
///
/// The guard (`(SELECT COUNT(*) FROM (SELECT 1 .. LIMIT 2)) = 1`) keeps a lookup that
/// matches several rows (a `NULL` key under an index whose `NULL`s are distinct) from
/// changing them all: such a call then finds the rows with a read and reports them.
pub struct UpdateByLookup<'a, M: Model + Selectable<DB>, DB: Backend, Tail> {
    lookup: &'a M::Lookup,
    changes: &'a M::Changes,
    table: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<(DB, Tail)>,
}

/// `RETURNING <model columns>` after an [`UpdateByLookup`].
pub struct Returning;
impl InsertTail for Returning {}

impl<'a, M, DB, Tail> UpdateByLookup<'a, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(lookup: &'a M::Lookup, changes: &'a M::Changes) -> Self {
        UpdateByLookup {
            lookup,
            changes,
            table: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB, Tail> QueryId for UpdateByLookup<'_, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    // The text depends on which fields are changed: cached by text, not by type.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M, DB> Query for UpdateByLookup<'_, M, DB, Returning>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

/// `UPDATE <table> SET <changes> WHERE <lookup> AND <exactly one row matches>`
fn push_update<'b, M, DB>(
    table: &'b <M::Table as QuerySource>::FromClause,
    lookup: &'b M::Lookup,
    changes: &'b M::Changes,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: ModelSql<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend,
{
    out.push_sql("UPDATE ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" SET ");
    M::walk_assignments(changes, out.reborrow())?;
    out.push_sql(" WHERE ");
    M::walk_lookup(lookup, out.reborrow())?;
    out.push_sql(" AND (SELECT COUNT(*) FROM (SELECT 1 FROM ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    M::walk_lookup(lookup, out.reborrow())?;
    out.push_sql(" LIMIT 2) AS __goc_matches) = 1");
    Ok(())
}

impl<M, DB> QueryFragment<DB> for UpdateByLookup<'_, M, DB, Returning>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_update::<M, DB>(&self.table, self.lookup, self.changes, &mut out)?;
        out.push_sql(" RETURNING ");
        self.selection.walk_ast(out.reborrow())
    }
}

impl<M, DB> QueryFragment<DB> for UpdateByLookup<'_, M, DB, NoTail>
where
    M: ModelSql<DB> + Selectable<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        push_update::<M, DB>(&self.table, self.lookup, self.changes, &mut out)
    }
}

/// PostgreSQL's whole update-or-create in one statement:
///
/// ```sql
/// WITH __goc_updated AS (UPDATE .. (see UpdateByLookup) RETURNING <model columns>),
///      __goc_inserted AS (INSERT INTO <table> (<columns>) SELECT $1, $2, ..
///                         WHERE NOT EXISTS (SELECT 1 FROM <table> WHERE <lookup>)
///                         ON CONFLICT (<lookup columns>) DO NOTHING
///                         RETURNING <model columns>)
/// SELECT FALSE, * FROM __goc_updated UNION ALL SELECT TRUE, * FROM __goc_inserted
/// ```
///
/// As with [`SelectOrInsert`], a row committed after the statement's snapshot makes it
/// return nothing, and the caller asks again.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
pub struct UpdateOrInsert<'a, M: Model + Selectable<DB>, DB: Backend> {
    update: UpdateByLookup<'a, M, DB, Returning>,
    values: InsertValues<'a, M>,
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL only
impl<'a, M, DB> UpdateOrInsert<'a, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub fn new(
        lookup: &'a M::Lookup,
        changes: &'a M::Changes,
        defaults: Option<&'a M::Defaults>,
    ) -> Self {
        UpdateOrInsert {
            update: UpdateByLookup::new(lookup, changes),
            values: InsertValues::Changed(changes, defaults),
        }
    }
}

impl<M, DB> QueryId for UpdateOrInsert<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M, DB> Query for UpdateOrInsert<'_, M, DB>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    /// Whether this statement created the row, then the row.
    type SqlType = (Bool, RowType<M, DB>);
}

impl<M, DB> QueryFragment<DB> for UpdateOrInsert<'_, M, DB>
where
    M: ModelSql<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let UpdateByLookup {
            lookup,
            ref table,
            ref selection,
            ..
        } = self.update;
        out.push_sql("WITH __goc_updated AS (");
        self.update.walk_ast(out.reborrow())?;
        out.push_sql("), __goc_inserted AS (");
        push_insert_if_missing(table, lookup, self.values, selection, &mut out)?;
        out.push_sql(
            ") SELECT FALSE, * FROM __goc_updated UNION ALL SELECT TRUE, * FROM __goc_inserted",
        );
        Ok(())
    }
}
