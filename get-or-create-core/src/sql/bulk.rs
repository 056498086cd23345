//! The parts of `get_or_create_many`'s statements that every backend writes alike.
//!
//! Each bulk statement carries the chunk's items as a relation `__goc_i` with three kinds
//! of columns: the model's insert (or lookup) columns, `__goc_ord` (the item's 1-based
//! position in the chunk, which tells the caller whose row each result is), and
//! `__goc_first` (whether the item is the first of the chunk with its key: only that one
//! may be inserted, so a key that appears twice is created once and both get the same
//! row). How the relation is built is the backend's: PostgreSQL unnests one array per
//! column, SQLite and MySQL/MariaDB spell the rows out ([`values`](super::values)).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::QueryResult;

use super::{for_each_key_column, push_insert_columns, push_key_columns, Separator};
use crate::model::Columns;

/// The relation of the chunk's items.
pub(crate) const INPUT: &str = "__goc_i";
/// The 1-based position of an item in the chunk.
pub(crate) const ORD: &str = "__goc_ord";
/// Whether an item is the first of the chunk with its key.
pub(crate) const FIRST: &str = "__goc_first";

/// How a backend says "equal, or both `NULL`", which matching a nullable key needs.
pub(crate) trait NullSafeEq: Backend {
    /// The operator, where the backend has one that can use an index (`IS`, `<=>`);
    /// `None` to spell it out (PostgreSQL's `IS NOT DISTINCT FROM` cannot use an index).
    const NULL_SAFE_EQ: Option<&'static str>;
}

/// A relation whose columns a key comparison names: the model's table, or an alias.
pub(crate) enum Relation<'b, F> {
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
pub(crate) fn push_keys_match<'b, M, DB, F>(
    left: Relation<'b, F>,
    right: Relation<'b, F>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: NullSafeEq,
    F: QueryFragment<DB>,
{
    let mut and = Separator::new(" AND ");
    for_each_key_column::<M, DB>(|column, nullable| {
        and.push(out);
        let equal = |operator: &str, out: &mut AstPass<'_, 'b, DB>| {
            left.push_column(column, out)?;
            out.push_sql(operator);
            right.push_column(column, out)
        };
        match (nullable, DB::NULL_SAFE_EQ) {
            (false, _) => equal(" = ", out),
            (true, Some(operator)) => equal(operator, out),
            (true, None) => {
                out.push_sql("(");
                equal(" = ", out)?;
                out.push_sql(" OR (");
                left.push_column(column, out)?;
                out.push_sql(" IS NULL AND ");
                right.push_column(column, out)?;
                out.push_sql(" IS NULL))");
                Ok(())
            }
        }
    })
}

/// `row_number() OVER (PARTITION BY <lookup columns> ORDER BY __goc_ord) = 1 AS __goc_first`
pub(crate) fn push_first_of_key<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    out.push_sql("row_number() OVER (PARTITION BY ");
    push_key_columns::<M, DB>(out)?;
    out.push_sql(" ORDER BY ");
    out.push_identifier(ORD)?;
    out.push_sql(") = 1 AS ");
    out.push_identifier(FIRST)
}

/// `SELECT <insert columns> FROM __goc_i WHERE __goc_first`: the items to insert.
pub(crate) fn push_first_items<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    out.push_sql("SELECT ");
    push_insert_columns::<M, DB>(out)?;
    out.push_sql(" FROM ");
    out.push_identifier(INPUT)?;
    out.push_sql(" WHERE ");
    out.push_identifier(FIRST)
}

/// ` ORDER BY <lookup columns>`: concurrent bulk inserts take their row locks in the same
/// order, so they wait for each other instead of deadlocking.
pub(crate) fn push_insert_order<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    out.push_sql(" ORDER BY ");
    push_key_columns::<M, DB>(out)
}

/// `__goc_i.__goc_ord, __goc_i.__goc_first`
pub(crate) fn push_ord_and_first<DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    out.push_identifier(INPUT)?;
    out.push_sql(".");
    out.push_identifier(ORD)?;
    out.push_sql(", ");
    out.push_identifier(INPUT)?;
    out.push_sql(".");
    out.push_identifier(FIRST)
}

/// ` FROM __goc_i JOIN <table> ON <keys match>`: every item with its stored row.
pub(crate) fn push_input_join_table<'b, M, DB, F>(
    from: &'b F,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: NullSafeEq,
    F: QueryFragment<DB>,
{
    out.push_sql(" FROM ");
    out.push_identifier(INPUT)?;
    out.push_sql(" JOIN ");
    from.walk_ast(out.reborrow())?;
    out.push_sql(" ON ");
    push_keys_match::<M, DB, F>(Relation::Table(from), Relation::Alias(INPUT), out)
}
