//! How a field's value is bound for its column: what the derive's `where` clauses ask of
//! each field type, so that a model works on every backend that can bind its fields.

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::query_builder::AstPass;
use diesel::serialize::ToSql;
use diesel::sql_types::is_nullable::{IsNullable, NotNull};
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::{Column, Expression, QueryResult};

/// A lookup field's value, bound for column `Col` on backend `DB`.
///
/// Whether the value can be `NULL` comes from the column's SQL type, not from how the
/// field's type is spelled: on a nullable column the field must be an `Option` (through
/// any alias), whose `None` is matched with `IS NULL`; on a `NOT NULL` column it must not
/// be one.
pub trait KeyBind<Col: Expression, DB: Backend>: ToSql<SqlTypeOf<Col>, DB> {
    /// Whether the column is nullable.
    const NULLABLE: bool;

    /// Whether the value is SQL `NULL`.
    fn is_null(&self) -> bool;

    /// Pushes the value as a bind parameter.
    fn bind_key<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<T, Col, DB> KeyBind<Col, DB> for T
where
    Col: Column,
    SqlTypeOf<Col>: SqlType,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    <SqlTypeOf<Col> as SqlType>::IsNull: Nullability,
    T: KeyValue<SqlTypeOf<Col>, DB, <SqlTypeOf<Col> as SqlType>::IsNull>,
{
    const NULLABLE: bool = <<SqlTypeOf<Col> as SqlType>::IsNull as Nullability>::NULLABLE;

    fn is_null(&self) -> bool {
        KeyValue::is_null(self)
    }

    fn bind_key<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<SqlTypeOf<Col>, T>(self)
    }
}

/// A lookup value of SQL type `ST` on backend `DB`, for a column whose nullability is
/// `Null` (Diesel's `NotNull` or `IsNullable`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a lookup value for a column of SQL type `{ST}`",
    label = "not a lookup value for this column",
    note = "a nullable column (`Nullable<..>`) needs an `Option<..>` lookup field, whose `None` \
            is matched with `IS NULL`; a `NOT NULL` column needs the plain type",
    note = "use the Rust type that Diesel maps to the column's SQL type"
)]
pub trait KeyValue<ST, DB: Backend, Null>: ToSql<ST, DB> {
    /// Whether the value is SQL `NULL`.
    fn is_null(&self) -> bool;
}

impl<T, ST, DB> KeyValue<ST, DB, NotNull> for T
where
    DB: Backend,
    T: ToSql<ST, DB>,
{
    fn is_null(&self) -> bool {
        false
    }
}

impl<U, ST, DB> KeyValue<ST, DB, IsNullable> for Option<U>
where
    DB: Backend,
    Option<U>: ToSql<ST, DB>,
{
    fn is_null(&self) -> bool {
        self.is_none()
    }
}

/// A default field's value, bound for column `Col` on backend `DB`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to the column `{Col}` on backend `{DB}`",
    label = "not a value for this column",
    note = "use the Rust type that Diesel maps to the column's SQL type \
            (for a `Nullable<..>` column: `Option<..>`)"
)]
pub trait ValueBind<Col: Expression, DB: Backend>: ToSql<SqlTypeOf<Col>, DB> {
    /// Pushes the value as a bind parameter.
    fn bind_value<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<T, Col, DB> ValueBind<Col, DB> for T
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    fn bind_value<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<SqlTypeOf<Col>, T>(self)
    }
}

/// Whether a column's SQL type is nullable, as a constant: the derive combines these into
/// `Model`'s `NULLABLE_KEY`, which decides whether a statement's text can depend on its
/// values (`= $1` or `IS NULL`).
pub const fn nullable<Col>() -> bool
where
    Col: Expression,
    Col::SqlType: SqlType<IsNull: Nullability>,
{
    <<Col::SqlType as SqlType>::IsNull as Nullability>::NULLABLE
}

/// Diesel's two nullability markers, as a constant.
pub trait Nullability {
    /// Whether the column can hold `NULL`.
    const NULLABLE: bool;
}

impl Nullability for NotNull {
    const NULLABLE: bool = false;
}

impl Nullability for IsNullable {
    const NULLABLE: bool = true;
}
