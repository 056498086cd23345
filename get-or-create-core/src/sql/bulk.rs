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

use super::{for_each_key_column, for_each_written_column, KeyColumn, Separator, Values};
use crate::model::Columns;

/// The relation of the chunk's items.
pub(crate) const INPUT: &str = "__goc_i";
/// The 1-based position of an item in the chunk.
pub(crate) const ORD: &str = "__goc_ord";

/// Which of the items' values an input relation carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputColumns {
    /// The lookup fields', to read the stored rows of the keys.
    Key,
    /// Every column an insert writes, to insert or update.
    Insert,
}

/// The input column of the `index`th written default field.
pub(crate) fn value_input(index: usize) -> String {
    format!("__goc_v{index}")
}

/// `"__goc_v0", "__goc_v1", ..`: the names of the input's default columns, one per column
/// `values` writes (the input's items all write the same columns).
pub(crate) fn push_value_input_names<M, DB>(
    values: Values<'_, M>,
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    let mut index = 0;
    for_each_written_column::<M, DB>(values, |_, written| {
        if written {
            comma.push(out);
            out.push_identifier(&value_input(index))?;
            index += 1;
        }
        Ok(())
    })
}

/// `"d1" = "__goc_i"."__goc_v0", .., "s1" = <on_update>`: an update's assignments from the
/// input's columns, those `values` writes (see [`assigns_anything`](super::assigns_anything)
/// for whether there are any).
pub(crate) fn push_input_assignments<M, DB>(
    values: Values<'_, M>,
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    let mut index = 0;
    for_each_written_column::<M, DB>(values, |name, written| {
        if written {
            comma.push(out);
            out.push_identifier(name)?;
            out.push_sql(" = ");
            push_input_column(out, &value_input(index))?;
            index += 1;
        }
        Ok(())
    })?;
    for column in M::SQL_COLUMNS {
        if let Some(expression) = column.on_update {
            comma.push(out);
            out.push_identifier(column.name)?;
            out.push_sql(" = ");
            out.push_sql(expression);
        }
    }
    Ok(())
}

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

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// Which of the items that share a key a bulk statement takes: `get_or_create_many`
/// creates a row from the first, `update_or_create_many` leaves it with the last (as a
/// loop of single calls would).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Occurrence {
    First,
    Last,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Occurrence {
    /// The direction of `__goc_ord` that puts the occurrence taken first.
    pub(crate) fn direction(self) -> &'static str {
        match self {
            Occurrence::First => "",
            Occurrence::Last => " DESC",
        }
    }
}

/// ` ORDER BY <keys>, __goc_ord [DESC]`: the items in key order, the occurrence taken
/// first. Concurrent bulk statements that take their row locks in the same order wait for
/// each other instead of deadlocking. `keys` writes the keys as the statement can compare
/// them (usually [`push_input_keys`]).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn push_key_order<'b, DB: Backend>(
    occurrence: Occurrence,
    out: &mut AstPass<'_, 'b, DB>,
    keys: impl FnOnce(&mut AstPass<'_, 'b, DB>) -> QueryResult<()>,
) -> QueryResult<()> {
    out.push_sql(" ORDER BY ");
    keys(out)?;
    out.push_sql(", ");
    push_input_column(out, ORD)?;
    out.push_sql(occurrence.direction());
    Ok(())
}

/// `__goc_i.__goc_ord`
pub(crate) fn push_ord<DB: Backend>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
    push_input_column(out, ORD)
}
