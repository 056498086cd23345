//! A chunk's items spelled out as rows, one bind per value: the input relation of
//! SQLite's and MySQL/MariaDB's bulk statements (PostgreSQL unnests arrays instead).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryId};
use diesel::query_source::QuerySource;
use diesel::{QueryResult, Selectable};

use super::bulk::{push_first_of_key, NullSafeEq, INPUT, ORD};
use super::{push_insert_columns, push_insert_values, push_key_columns, push_key_values};
use super::{Separator, Values};
use crate::model::{Columns, Model};
use crate::strategy::Item;

/// How a backend writes a list of rows.
pub(crate) trait RowList: NullSafeEq {
    /// Whether a list of rows must be written `SELECT .. UNION ALL SELECT ..` rather than
    /// `VALUES (..), (..)`: MariaDB 10.11 reads bind parameters inside `VALUES` as empty
    /// values.
    const ROWS_AS_UNION: bool;
}

/// How many columns an insert writes: what a row costs in bind parameters.
pub(crate) fn insert_column_count<M, DB>() -> usize
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut count = 0;
    // Counting cannot fail.
    let _ = super::for_each_key_column::<M, DB>(|_, _| {
        count += 1;
        Ok(())
    });
    let _ = super::for_each_value_column::<M, DB>(|_| {
        count += 1;
        Ok(())
    });
    count
}

/// Which columns the rows carry.
#[derive(Clone, Copy)]
pub(crate) enum ValueColumns {
    /// The lookup columns, to read the stored rows of the keys.
    Key,
    /// Every insert column, to insert.
    Insert,
}

/// `WITH __goc_v(__goc_ord, <columns>) AS (VALUES (1, $1, ..), (2, ..)),
/// __goc_i AS (SELECT *, <first of key> FROM __goc_v) `
pub(crate) fn push_values_input<'b, M, DB>(
    items: &'b [&Item<M>],
    columns: ValueColumns,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: RowList,
{
    const VALUES: &str = "__goc_v";
    out.push_sql("WITH ");
    out.push_identifier(VALUES)?;
    out.push_sql("(");
    out.push_identifier(ORD)?;
    out.push_sql(", ");
    match columns {
        ValueColumns::Key => push_key_columns::<M, DB>(out)?,
        ValueColumns::Insert => push_insert_columns::<M, DB>(out)?,
    }
    let (open, separator, close) = if DB::ROWS_AS_UNION {
        ("SELECT ", " UNION ALL SELECT ", "")
    } else {
        ("VALUES (", "), (", ")")
    };
    out.push_sql(") AS (");
    out.push_sql(open);
    for (i, (key, defaults)) in items.iter().map(|item| (&item.0, &item.1)).enumerate() {
        if i > 0 {
            out.push_sql(separator);
        }
        out.push_sql(&format!("{}", i + 1));
        match columns {
            ValueColumns::Key => {
                let mut comma = Separator::new(", ");
                // The position comes first: every value follows a comma.
                comma.push(out);
                push_key_values::<M, DB>(key, out, &mut comma)?;
            }
            ValueColumns::Insert => {
                out.push_sql(", ");
                push_insert_values::<M, DB>(key, Values::Defaults(defaults), out)?;
            }
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

/// A statement over a chunk's items spelled out as rows (SQLite, MySQL/MariaDB); each
/// backend writes its `Kind`s. Its text depends on the number of rows, so it is not kept
/// as a prepared statement.
pub(crate) struct ValuesStatement<'a, M: Model + Selectable<DB>, DB: Backend, Kind> {
    pub(crate) items: &'a [&'a Item<M>],
    pub(crate) from: <M::Table as QuerySource>::FromClause,
    pub(crate) selection: M::SelectExpression,
    _marker: PhantomData<fn() -> Kind>,
}

impl<'a, M, DB, Kind> ValuesStatement<'a, M, DB, Kind>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub(crate) fn new(items: &'a [&'a Item<M>]) -> Self {
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
