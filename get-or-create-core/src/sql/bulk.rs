//! The parts of `get_or_create_many`'s statements that every backend writes alike.
//!
//! Each bulk statement carries the chunk's items as a relation `__goc_i` whose columns are
//! the items' values (`__goc_k0, ..` for the lookup fields: names no table column has, so
//! that a key's `where` filter, written with the table's column names, is never
//! ambiguous) and `__goc_ord`, the item's 1-based position in the chunk, which tells the
//! caller whose row each result is. How the relation is
//! built is the backend's: PostgreSQL unnests one array per column, SQLite and
//! MySQL/MariaDB spell the rows out ([`values`](super::values)).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::QueryResult;

use super::{for_each_key_column, KeyColumn, Separator};
use crate::model::Columns;

/// The relation of the chunk's items.
pub(crate) const INPUT: &str = "__goc_i";
/// The 1-based position of an item in the chunk.
pub(crate) const ORD: &str = "__goc_ord";

/// The input column of the `index`th lookup field.
pub(crate) fn key_input(index: usize) -> String {
    format!("__goc_k{index}")
}

/// `"__goc_k0", "__goc_k1", ..`: the names of the input's lookup columns.
pub(crate) fn push_key_input_names<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, DB>(|column| {
        comma.push(out);
        out.push_identifier(&key_input(column.index))
    })
}

/// `"__goc_i"."<name>"`
pub(crate) fn push_input_column<DB: Backend>(
    out: &mut AstPass<'_, '_, DB>,
    name: &str,
) -> QueryResult<()> {
    out.push_identifier(INPUT)?;
    out.push_sql(".");
    out.push_identifier(name)
}

/// How a backend says "equal, or both `NULL`", which matching a nullable key needs.
pub(crate) trait NullSafeEq: Backend {
    /// The operator, where the backend has one that can use an index (`IS`, `<=>`);
    /// `None` to spell it out (PostgreSQL's `IS NOT DISTINCT FROM` cannot use an index).
    const NULL_SAFE_EQ: Option<&'static str>;
}

/// `<table>.k0 = __goc_i.__goc_k0 AND f(<table>.k1) = f(__goc_i.__goc_k1) ..`: a stored
/// row and an item with the same key, compared the way the key's unique index compares
/// them, `NULL`-safe on the nullable lookup columns.
pub(crate) fn push_keys_match<'b, M, DB, F>(
    table: &'b F,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: NullSafeEq,
    F: QueryFragment<DB>,
{
    let mut and = Separator::new(" AND ");
    for_each_key_column::<M, DB>(|column: KeyColumn| {
        and.push(out);
        let input = key_input(column.index);
        let stored = |out: &mut AstPass<'_, 'b, DB>| {
            table.walk_ast(out.reborrow())?;
            out.push_sql(".");
            out.push_identifier(column.name)
        };
        let given = |out: &mut AstPass<'_, 'b, DB>| push_input_column(out, &input);
        let equal = |operator: &str, out: &mut AstPass<'_, 'b, DB>| {
            column.push_compared(out, stored)?;
            out.push_sql(operator);
            column.push_compared(out, given)
        };
        match (column.nullable, DB::NULL_SAFE_EQ) {
            (false, _) => equal(" = ", out),
            (true, Some(operator)) => equal(operator, out),
            (true, None) => {
                out.push_sql("(");
                equal(" = ", out)?;
                out.push_sql(" OR (");
                stored(out)?;
                out.push_sql(" IS NULL AND ");
                given(out)?;
                out.push_sql(" IS NULL))");
                Ok(())
            }
        }
    })
}

/// `f(__goc_i.__goc_k0), __goc_i.__goc_k1 COLLATE "c", ..`: the items' keys as the unique
/// index compares them, so that two spellings of one key count as one.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn push_input_keys<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, DB>(|column| {
        comma.push(out);
        let input = key_input(column.index);
        column.push_compared(out, |out| push_input_column(out, &input))
    })
}

/// ` ORDER BY <keys>, __goc_ord`: the items in key order, first occurrence first.
/// Concurrent bulk inserts that take their row locks in the same order wait for each
/// other instead of deadlocking.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn push_key_order<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    out.push_sql(" ORDER BY ");
    push_input_keys::<M, DB>(out)?;
    out.push_sql(", ");
    push_input_column(out, ORD)
}

/// `__goc_i.__goc_ord`
pub(crate) fn push_ord<DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    push_input_column(out, ORD)
}
