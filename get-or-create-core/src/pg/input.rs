//! A bulk chunk's items as a relation, `__goc_i(__goc_k0, .., __goc_v0, .., __goc_ord)`,
//! in one of two forms:
//!
//! - one array parameter per column, unnested back into rows (`UNNEST($1, $2, ..) WITH
//!   ORDINALITY`): the statement's text does not depend on the number of items and no
//!   bind parameter limit applies. Each column's array is the chunk itself ([`Batch`]),
//!   bound under a SQL type that names the column ([`KeyArray`], [`ValueArray`]):
//!   serializing it projects that column's value out of every item, so no per-column copy
//!   of the chunk is kept.
//! - the rows spelled out, one parameter per value (`(VALUES ($1, $2, 1), ..)`), for a
//!   model with an array column: PostgreSQL has no arrays of arrays, so such a column
//!   cannot be sent as one array of its values.
//!
//! The value columns are those the chunk's items write: the items of one insert all leave
//! the same columns to their `DEFAULT` (see `defaulted_columns`), and the first item's
//! values say which.

use std::fmt;
use std::marker::PhantomData;

use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Array, HasSqlType};
use diesel::{Column, Expression, QueryResult};

use crate::model::ValueVisitor;
use crate::model::{Columns, KeyBind, KeyField, KeyVisitor, Model, ValueBind, ValueField};
use crate::sql::bulk::{key_input, push_key_input_names, push_value_input_names, value_input};
use crate::sql::bulk::{InputColumns, INPUT, ORD};
use crate::sql::{for_each_key_column, for_each_written_column, push_default_values};
use crate::sql::{push_key_values, Defaulted, Separator, Values};
use crate::strategy::Item;

/// The items of a bulk chunk.
pub(crate) struct Batch<'a, M: Model>(pub(crate) &'a [&'a Item<M>]);

impl<M: Model> fmt::Debug for Batch<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({} items)", self.0.len())
    }
}

impl<'a, M: Model> Batch<'a, M> {
    /// The values of the chunk's first item, which say which value columns it writes.
    pub(crate) fn first_values(&self) -> QueryResult<Values<'a, M>> {
        match self.0.first() {
            Some(item) => Ok(Values::Defaults(&item.1)),
            None => Err(diesel::result::Error::QueryBuilderError(
                "get-or-create: a bulk statement of no items".into(),
            )),
        }
    }
}

/// Whether the items are sent as rows rather than arrays: see the module docs.
pub(crate) fn sent_as_rows<M: Model>() -> bool {
    M::has_array_column()
}

/// The SQL type of the array of a lookup column's values: `Array<SqlTypeOf<Col>>`.
pub(crate) struct KeyArray<Col>(PhantomData<Col>);

/// The SQL type of the array of a default column's values: `Array<SqlTypeOf<Col>>`.
pub(crate) struct ValueArray<Col>(PhantomData<Col>);

impl<Col> HasSqlType<KeyArray<Col>> for Pg
where
    Col: Expression<SqlType: 'static>,
    Pg: HasSqlType<Array<SqlTypeOf<Col>>>,
{
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        <Pg as HasSqlType<Array<SqlTypeOf<Col>>>>::metadata(lookup)
    }
}

impl<Col> HasSqlType<ValueArray<Col>> for Pg
where
    Col: Expression<SqlType: 'static>,
    Pg: HasSqlType<Array<SqlTypeOf<Col>>>,
{
    fn metadata(lookup: &mut Self::MetadataLookup) -> Self::TypeMetadata {
        <Pg as HasSqlType<Array<SqlTypeOf<Col>>>>::metadata(lookup)
    }
}

impl<M, Col> ToSql<KeyArray<Col>, Pg> for Batch<'_, M>
where
    Col: Expression<SqlType: 'static>,
    M: KeyField<Col>,
    <M as KeyField<Col>>::Value: ToSql<SqlTypeOf<Col>, Pg>,
    Pg: HasSqlType<SqlTypeOf<Col>>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let values: Vec<&<M as KeyField<Col>>::Value> =
            self.0.iter().map(|item| M::get(&item.0)).collect();
        ToSql::<Array<SqlTypeOf<Col>>, Pg>::to_sql(&values[..], &mut out.reborrow())
    }
}

impl<M, Col> ToSql<ValueArray<Col>, Pg> for Batch<'_, M>
where
    Col: Column<SqlType: 'static>,
    M: ValueField<Col>,
    <M as ValueField<Col>>::Value: ValueBind<Col, Pg, <M as ValueField<Col>>::Spelled>,
    Pg: HasSqlType<SqlTypeOf<Col>>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let values: Option<Vec<_>> = self
            .0
            .iter()
            .map(|item| ValueBind::<Col, Pg, _>::written(M::get(&item.1)))
            .collect();
        let Some(values) = values else {
            let message = format!(
                "get-or-create: an item of a bulk insert leaves `{}` to its DEFAULT, \
                 and its first item does not",
                Col::NAME
            );
            return Err(message.into());
        };
        ToSql::<Array<SqlTypeOf<Col>>, Pg>::to_sql(&values[..], &mut out.reborrow())
    }
}

/// ` FROM UNNEST($1, ..) WITH ORDINALITY AS __goc_i(__goc_k0, .., __goc_ord)` or
/// ` FROM (VALUES ($1, .., 1), ..) AS __goc_i(__goc_k0, .., __goc_ord)`: the chunk's items
/// as a relation.
pub(crate) fn push_input<'b, M>(
    batch: &'b Batch<'_, M>,
    columns: InputColumns,
    out: &mut AstPass<'_, 'b, Pg>,
) -> QueryResult<()>
where
    M: Columns<Pg>,
{
    if sent_as_rows::<M>() {
        out.push_sql(" FROM (VALUES ");
        push_rows::<M>(batch, columns, out)?;
        out.push_sql(") AS ");
    } else {
        out.push_sql(" FROM UNNEST(");
        push_arrays::<M>(batch, columns, out)?;
        out.push_sql(") WITH ORDINALITY AS ");
    }
    out.push_identifier(INPUT)?;
    out.push_sql("(");
    push_input_names::<M>(batch, columns, out)?;
    out.push_sql(", ");
    out.push_identifier(ORD)?;
    out.push_sql(")");
    Ok(())
}

/// `"__goc_k0", .., "__goc_v0", ..`: the names of the input's columns.
fn push_input_names<M: Columns<Pg>>(
    batch: &Batch<'_, M>,
    columns: InputColumns,
    out: &mut AstPass<'_, '_, Pg>,
) -> QueryResult<()> {
    push_key_input_names::<M, Pg>(out)?;
    if let InputColumns::Insert = columns {
        out.push_sql(", ");
        push_value_input_names::<M, Pg>(batch.first_values()?, out)?;
    }
    Ok(())
}

/// `"__goc_i"."__goc_k0", .., "__goc_i"."__goc_v0", ..`: every written column's value of
/// an input row, for an `INSERT .. SELECT` (the `on_create` expressions follow).
pub(crate) fn push_input_values<M: Columns<Pg>>(
    batch: &Batch<'_, M>,
    out: &mut AstPass<'_, '_, Pg>,
) -> QueryResult<()> {
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, Pg>(|column| {
        comma.push(out);
        crate::sql::bulk::push_input_column(out, &key_input(column.index))
    })?;
    let mut index = 0;
    for_each_written_column::<M, Pg>(batch.first_values()?, |_, written| {
        if written {
            comma.push(out);
            crate::sql::bulk::push_input_column(out, &value_input(index))?;
            index += 1;
        }
        Ok(())
    })
}

/// `($1, $2, .., CAST(1 AS int8)), ($n, .., 2)`: one row per item, its position last.
fn push_rows<'b, M>(
    batch: &'b Batch<'_, M>,
    columns: InputColumns,
    out: &mut AstPass<'_, 'b, Pg>,
) -> QueryResult<()>
where
    M: Columns<Pg>,
{
    let mut rows = Separator::new(", ");
    for (position, item) in batch.0.iter().enumerate() {
        rows.push(out);
        out.push_sql("(");
        let mut comma = Separator::new(", ");
        push_key_values::<M, Pg>(&item.0, out, &mut comma)?;
        if let InputColumns::Insert = columns {
            let values = Values::Defaults(&item.1);
            push_default_values::<M, Pg>(values, Defaulted::Omitted, out, &mut comma)?;
        }
        comma.push(out);
        // The first row sets the column's type: `bigint`, as `WITH ORDINALITY` gives.
        if position == 0 {
            out.push_sql("CAST(1 AS int8)");
        } else {
            out.push_sql(&(position + 1).to_string());
        }
        out.push_sql(")");
    }
    Ok(())
}

/// `$1, $2, ..`: one array parameter per lookup column, then (for
/// [`InputColumns::Insert`]) one per written default column.
fn push_arrays<'b, M>(
    batch: &'b Batch<'_, M>,
    columns: InputColumns,
    out: &mut AstPass<'_, 'b, Pg>,
) -> QueryResult<()>
where
    M: Columns<Pg>,
{
    struct Arrays<'a, 'o, 'b, 'i, M: Model> {
        batch: &'b Batch<'i, M>,
        out: &'a mut AstPass<'o, 'b, Pg>,
        comma: Separator,
    }
    impl<M: Model> KeyVisitor<M, Pg> for Arrays<'_, '_, '_, '_, M> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: KeyField<Col>,
            <M as KeyField<Col>>::Value: KeyBind<Col, Pg>,
            Pg: HasSqlType<SqlTypeOf<Col>>,
        {
            self.comma.push(self.out);
            self.out.push_bind_param::<KeyArray<Col>, _>(self.batch)
        }
    }
    impl<M: Model> ValueVisitor<M, Pg> for Arrays<'_, '_, '_, '_, M> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, Pg, <M as ValueField<Col>>::Spelled>,
            Pg: HasSqlType<SqlTypeOf<Col>>,
        {
            let first = self.batch.first_values()?;
            let Values::Defaults(values) = first else {
                return Ok(());
            };
            if ValueBind::<Col, Pg, _>::written(M::get(values)).is_none() {
                return Ok(());
            }
            self.comma.push(self.out);
            self.out.push_bind_param::<ValueArray<Col>, _>(self.batch)
        }
    }
    let mut arrays = Arrays::<M> {
        batch,
        out,
        comma: Separator::new(", "),
    };
    M::visit_key(&mut arrays)?;
    match columns {
        InputColumns::Key => Ok(()),
        InputColumns::Insert => M::visit_values(&mut arrays),
    }
}
