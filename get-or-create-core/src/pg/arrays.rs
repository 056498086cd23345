//! A bulk chunk bound as one array per column: PostgreSQL unnests them back into rows
//! (`UNNEST($1, $2, ..)`). The statement's text does not depend on the number of items,
//! so it is prepared once, and no bind parameter limit applies.
//!
//! Each column's array is the chunk itself ([`Batch`]), bound under a SQL type that names
//! the column ([`KeyArray`], [`ValueArray`]): serializing it projects that column's value
//! out of every item, so no per-column copy of the chunk is kept.

use std::fmt;
use std::marker::PhantomData;

use diesel::dsl::SqlTypeOf;
use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Array, HasSqlType};
use diesel::{Column, Expression, QueryResult};

use super::statements::InputColumns;
use crate::model::{
    Columns, KeyBind, KeyField, KeyVisitor, Model, ValueBind, ValueField, ValueVisitor,
};
use crate::sql::Separator;
use crate::strategy::Item;

/// The items of a bulk chunk.
pub(crate) struct Batch<'a, M: Model>(pub(crate) &'a [&'a Item<M>]);

impl<M: Model> fmt::Debug for Batch<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch({} items)", self.0.len())
    }
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
    Col: Expression<SqlType: 'static>,
    M: ValueField<Col>,
    <M as ValueField<Col>>::Value: ToSql<SqlTypeOf<Col>, Pg>,
    Pg: HasSqlType<SqlTypeOf<Col>>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let values: Vec<&<M as ValueField<Col>>::Value> =
            self.0.iter().map(|item| M::get(&item.1)).collect();
        ToSql::<Array<SqlTypeOf<Col>>, Pg>::to_sql(&values[..], &mut out.reborrow())
    }
}

/// `$1, $2, ..`: one array parameter per lookup column, then (for
/// [`InputColumns::Insert`]) one per default column.
pub(crate) fn push_arrays<'b, M>(
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
            <M as ValueField<Col>>::Value: ValueBind<Col, Pg>,
            Pg: HasSqlType<SqlTypeOf<Col>>,
        {
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
