//! A chunk's items spelled out as rows, one bind per value: the bulk statements of SQLite
//! and MySQL/MariaDB (PostgreSQL unnests arrays instead).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::HasSqlType;
use diesel::{QueryResult, Selectable};

use super::bulk::{push_key_input_names, push_value_input_names, InputColumns, NullSafeEq};
use super::bulk::{INPUT, ORD};
use super::{push_default_values_cast, push_insert_columns, push_insert_values};
use super::{push_key_values_cast, BindCast};
use super::{Defaulted, Separator, Values};
use crate::model::{Columns, Model};
use crate::strategy::Item;

/// How a backend writes a list of rows inside a statement.
pub(crate) trait RowList: NullSafeEq {
    /// Whether the input relation must be written `SELECT .. UNION ALL SELECT ..` rather
    /// than `VALUES (..), (..)`: MariaDB 10.11 reads bind parameters inside a `VALUES`
    /// table constructor as empty values (the `VALUES` list of an `INSERT` is fine).
    const ROWS_AS_UNION: bool;

    /// Whether a value of SQL type `ST` is written `CAST(? AS BINARY)` in the input
    /// relation, so that the relation's column is binary whatever type the driver sends
    /// the bind as.
    fn binary_input<ST>() -> bool
    where
        Self: HasSqlType<ST>,
    {
        false
    }
}

/// The binds of the input relation, cast as [`RowList::binary_input`] says.
struct InputCast;

impl<DB: RowList> BindCast<DB> for InputCast {
    fn cast<ST>() -> Option<&'static str>
    where
        DB: HasSqlType<ST>,
    {
        DB::binary_input::<ST>().then_some("BINARY")
    }
}

/// `(<insert columns>) VALUES (k1, .., d1, ..), (..)`: the items as the column list and
/// `VALUES` list of an `INSERT`. With [`Defaulted::Omitted`] the items must all leave the
/// same columns to their `DEFAULT` (see [`defaulted_columns`](super::defaulted_columns)):
/// the first item's say which.
pub(crate) fn push_rows<'b, M, DB>(
    items: &'b [&Item<M>],
    defaulted: Defaulted,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let Some(first) = items.first() else {
        return Err(diesel::result::Error::QueryBuilderError(
            "get-or-create: an insert of no rows".into(),
        ));
    };
    out.push_sql("(");
    push_insert_columns::<M, DB>(Values::Defaults(&first.1), defaulted, out)?;
    out.push_sql(") VALUES ");
    let mut comma = Separator::new(", ");
    for (key, values) in items.iter().map(|item| (&item.0, &item.1)) {
        comma.push(out);
        out.push_sql("(");
        push_insert_values::<M, DB>(key, Values::Defaults(values), defaulted, out)?;
        out.push_sql(")");
    }
    Ok(())
}

/// `WITH __goc_i(__goc_ord, __goc_k0, .., __goc_v0, ..) AS (VALUES (1, $1, ..), (2, ..)) `:
/// the items' keys, and with [`InputColumns::Insert`] the values they write (all the
/// same columns: see [`defaulted_columns`](super::defaulted_columns)), as the input
/// relation.
pub(crate) fn push_values_input<'b, M, DB>(
    items: &'b [&Item<M>],
    columns: InputColumns,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: RowList,
{
    out.push_sql("WITH ");
    out.push_identifier(INPUT)?;
    out.push_sql("(");
    out.push_identifier(ORD)?;
    out.push_sql(", ");
    push_key_input_names::<M, DB>(out)?;
    if columns == InputColumns::Insert {
        if let Some(first) = items.first() {
            out.push_sql(", ");
            push_value_input_names::<M, DB>(Values::Defaults(&first.1), out)?;
        }
    }
    let (open, separator, close) = if DB::ROWS_AS_UNION {
        ("SELECT ", " UNION ALL SELECT ", "")
    } else {
        ("VALUES (", "), (", ")")
    };
    out.push_sql(") AS (");
    out.push_sql(open);
    for (i, (key, values)) in items.iter().map(|item| (&item.0, &item.1)).enumerate() {
        if i > 0 {
            out.push_sql(separator);
        }
        out.push_sql(&format!("{}, ", i + 1));
        let mut comma = Separator::new(", ");
        push_key_values_cast::<M, DB, InputCast>(key, out, &mut comma)?;
        if columns == InputColumns::Insert {
            let values = Values::Defaults(values);
            let defaulted = Defaulted::Omitted;
            push_default_values_cast::<M, DB, InputCast>(values, defaulted, out, &mut comma)?;
        }
    }
    out.push_sql(close);
    out.push_sql(") ");
    Ok(())
}

/// A statement over a chunk's items spelled out as rows (SQLite, MySQL/MariaDB); each
/// backend writes its `Kind`s. Its text depends on the number of items, so it is
/// prepared each time rather than kept: a cache keyed by text would keep one statement
/// per chunk size.
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
