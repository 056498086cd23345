//! PostgreSQL's own statements.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::{BigInt, Bool};
use diesel::{QueryResult, Selectable};

use super::arrays::{push_arrays, Batch};
use crate::model::{Columns, Model};
use crate::sql::bulk::{
    push_first_of_key, push_input_join_table, push_keys_match, push_ord_and_first, Relation, INPUT,
    ORD,
};
use crate::sql::returning::{push_insert_missing, push_on_conflict_do_nothing};
use crate::sql::{
    push_insert_columns, push_insert_values, push_key_match, push_update, RowType, StatementId,
    Values,
};
use crate::strategy::Item;

/// The name of the insert's rows in a statement that inserts in a CTE.
const INSERTED: &str = "__goc_inserted";

/// `INSERT INTO <table> (<columns>) SELECT $1, $2, .. WHERE NOT EXISTS (SELECT 1 FROM
/// <table> WHERE <key>) ON CONFLICT (<key>) DO NOTHING RETURNING <model columns>`: the
/// insert of the one-statement calls, which runs only when the statement's snapshot holds
/// no row of the key.
fn push_insert_if_missing<'b, M>(
    table: &'b <M::Table as QuerySource>::FromClause,
    key: &'b M::Key,
    values: Values<'b, M>,
    selection: &'b M::SelectExpression,
    out: &mut AstPass<'_, 'b, Pg>,
) -> QueryResult<()>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
{
    out.push_sql("INSERT INTO ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" (");
    push_insert_columns::<M, Pg>(out)?;
    out.push_sql(") SELECT ");
    push_insert_values::<M, Pg>(key, values, out)?;
    out.push_sql(" WHERE NOT EXISTS (SELECT 1 FROM ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    push_key_match::<M, Pg>(key, out)?;
    out.push_sql(")");
    push_on_conflict_do_nothing::<M, Pg>(out)?;
    out.push_sql(" RETURNING ");
    selection.walk_ast(out.reborrow())
}

/// The whole get-or-create in one statement, for a row that exists and for one that does
/// not:
///
/// ```sql
/// WITH __goc_inserted AS (<insert if missing>)
/// SELECT TRUE, * FROM __goc_inserted
/// UNION ALL (SELECT FALSE, <model columns> FROM <table> WHERE <key> LIMIT 2)
/// ```
///
/// The insert runs only when the lookup found nothing, so a hit consumes no sequence
/// value. Both parts read the statement's one snapshot: exactly one of them returns the
/// row, except when a concurrent transaction committed the row after the snapshot was
/// taken: then the insert does nothing, the read cannot see it, and the statement returns
/// no row. The caller then reads again with a new statement.
pub(crate) struct SelectOrInsert<'a, M: Model + Selectable<Pg>> {
    key: &'a M::Key,
    values: &'a M::Values,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Pg>> SelectOrInsert<'a, M> {
    pub(crate) fn new(key: &'a M::Key, values: &'a M::Values) -> Self {
        SelectOrInsert {
            key,
            values,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

/// The [`StatementId`] kind of a [`SelectOrInsert`].
pub(crate) struct SelectOrInsertKind;

impl<M: Model + Selectable<Pg>> QueryId for SelectOrInsert<'_, M> {
    type QueryId = StatementId<M, Pg, SelectOrInsertKind>;
    const HAS_STATIC_QUERY_ID: bool = !M::NULLABLE_KEY;
}

impl<M: Model + Selectable<Pg>> Query for SelectOrInsert<'_, M> {
    /// Whether this statement created the row, then the row.
    type SqlType = (Bool, RowType<M, Pg>);
}

impl<M> QueryFragment<Pg> for SelectOrInsert<'_, M>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" AS (");
        let values = Values::<M>::Defaults(self.values);
        push_insert_if_missing::<M>(&self.from, self.key, values, &self.selection, &mut out)?;
        out.push_sql(") SELECT TRUE, * FROM ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" UNION ALL (SELECT FALSE, ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        push_key_match::<M, Pg>(self.key, &mut out)?;
        out.push_sql(" LIMIT 2)");
        Ok(())
    }
}

/// The whole update-or-create in one statement, when every field is changed:
///
/// ```sql
/// WITH __goc_updated AS (UPDATE .. (see push_update) RETURNING <model columns>),
///      __goc_inserted AS (<insert if missing>)
/// SELECT FALSE, * FROM __goc_updated UNION ALL SELECT TRUE, * FROM __goc_inserted
/// ```
///
/// As with [`SelectOrInsert`], a row committed after the statement's snapshot makes it
/// return nothing, and the caller asks again.
pub(crate) struct UpdateOrInsert<'a, M: Model + Selectable<Pg>> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
    table: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Pg>> UpdateOrInsert<'a, M> {
    pub(crate) fn new(key: &'a M::Key, changes: &'a M::Changeset) -> Self {
        UpdateOrInsert {
            key,
            changes,
            table: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

impl<M: Model + Selectable<Pg>> QueryId for UpdateOrInsert<'_, M> {
    // The text depends on which fields are changed: prepared per text, not per type.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<M: Model + Selectable<Pg>> Query for UpdateOrInsert<'_, M> {
    /// Whether this statement created the row, then the row.
    type SqlType = (Bool, RowType<M, Pg>);
}

impl<M> QueryFragment<Pg> for UpdateOrInsert<'_, M>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH __goc_updated AS (");
        push_update::<M, Pg>(&self.table, self.key, self.changes, &mut out)?;
        out.push_sql(" RETURNING ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql("), ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" AS (");
        let values = Values::<M>::Changed(self.changes, None);
        push_insert_if_missing::<M>(&self.table, self.key, values, &self.selection, &mut out)?;
        out.push_sql(") SELECT FALSE, * FROM __goc_updated UNION ALL SELECT TRUE, * FROM ");
        out.push_identifier(INSERTED)
    }
}

/// The bulk get-or-create of one chunk, in one statement:
///
/// ```sql
/// WITH __goc_i AS (SELECT *, <first of key> FROM UNNEST($1, $2, ..)
///                  WITH ORDINALITY AS __goc_v(<insert columns>, __goc_ord)),
///      __goc_inserted AS (INSERT INTO <table> (..) SELECT .. FROM __goc_i
///                         WHERE __goc_first AND NOT EXISTS (<stored>) ORDER BY <key>
///                         ON CONFLICT (<key>) DO NOTHING RETURNING <model columns>)
/// SELECT __goc_ord, __goc_first, __goc_inserted.* FROM __goc_i JOIN __goc_inserted ON ..
/// UNION ALL
/// SELECT __goc_ord, FALSE, <model columns> FROM __goc_i JOIN <table> ON ..
/// ```
///
/// Each column is one array parameter whatever the number of items, so the text is the
/// same for every chunk and is prepared once. As with [`SelectOrInsert`], a key whose row
/// a concurrent transaction committed after the statement's snapshot comes back in
/// neither part; the caller asks again for those keys.
pub(crate) struct UnnestGetOrCreate<'a, M: Model + Selectable<Pg>> {
    batch: Batch<'a, M>,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
}

impl<'a, M: Model + Selectable<Pg>> UnnestGetOrCreate<'a, M> {
    pub(crate) fn new(items: &'a [&'a Item<M>]) -> Self {
        UnnestGetOrCreate {
            batch: Batch(items),
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
        }
    }
}

/// The [`StatementId`] kind of an [`UnnestGetOrCreate`].
pub(crate) struct UnnestGetOrCreateKind;

impl<M: Model + Selectable<Pg>> QueryId for UnnestGetOrCreate<'_, M> {
    type QueryId = StatementId<M, Pg, UnnestGetOrCreateKind>;
    // One text for every chunk and every value, `NULL`s included.
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M: Model + Selectable<Pg>> Query for UnnestGetOrCreate<'_, M> {
    /// The item's position in the chunk, whether this statement created its row, the row.
    type SqlType = (BigInt, Bool, RowType<M, Pg>);
}

impl<M> QueryFragment<Pg> for UnnestGetOrCreate<'_, M>
where
    M: Columns<Pg> + Selectable<Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        const VALUES: &str = "__goc_v";
        let from = &self.from;
        out.push_sql("WITH ");
        out.push_identifier(INPUT)?;
        out.push_sql(" AS (SELECT *, ");
        push_first_of_key::<M, Pg>(&mut out)?;
        out.push_sql(" FROM UNNEST(");
        push_arrays::<M>(&self.batch, &mut out)?;
        out.push_sql(") WITH ORDINALITY AS ");
        out.push_identifier(VALUES)?;
        out.push_sql("(");
        push_insert_columns::<M, Pg>(&mut out)?;
        out.push_sql(", ");
        out.push_identifier(ORD)?;
        out.push_sql(")), ");
        out.push_identifier(INSERTED)?;
        out.push_sql(" AS (");
        push_insert_missing::<M, Pg, _>(from, &mut out)?;
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
        push_keys_match::<M, Pg, <M::Table as QuerySource>::FromClause>(
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
        push_input_join_table::<M, Pg, _>(from, &mut out)
    }
}
