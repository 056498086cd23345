//! Compile-time checks the derive places on each field, spanned at the field's type, so
//! that a type that does not fit its column is reported at the field, in the crate's words.

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::sql_types::is_nullable::{IsNullable, NotNull};
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::{Column, Expression};

use super::{spelled, WriteValue};

/// Proves at compile time that a field's type, spelled `S` (see
/// [`spelled`](super::spelled)), can be written to its column.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` does not fit the column `{Col}`",
    label = "this type cannot be written to `{Col}`",
    note = "use the Rust type that Diesel maps to the column's SQL type; for a `Nullable<..>` \
            column, `Option<..>` (`None` writes `NULL`) or `Option<Option<..>>` (`None` writes \
            the column's `DEFAULT`); for a `NOT NULL` column, the plain type or `Option<..>` \
            (`None` writes the column's `DEFAULT`)"
)]
pub trait FitsColumn<Col, S = spelled::Plain> {}

impl<T, Col, S> FitsColumn<Col, S> for T
where
    Col: Expression,
    Col::SqlType: SqlType + TypedExpressionType,
    T: FitsSqlType<Col::SqlType, <Col::SqlType as SqlType>::IsNull, S>,
{
}

/// [`FitsColumn`] by the column's SQL type `ST`, its nullability `Null`, and the field
/// type's spelling `S`.
pub trait FitsSqlType<ST, Null, S> {}

impl<T, ST, Null> FitsSqlType<ST, Null, spelled::Plain> for T
where
    ST: SqlType + TypedExpressionType,
    T: AsExpression<ST>,
{
}

impl<U, ST> FitsSqlType<ST, NotNull, spelled::Optional> for Option<U>
where
    ST: SqlType + TypedExpressionType,
    U: AsExpression<ST>,
{
}

impl<U, ST> FitsSqlType<ST, IsNullable, spelled::Optional> for Option<U>
where
    ST: SqlType + TypedExpressionType,
    Option<U>: AsExpression<ST>,
{
}

impl<U, ST> FitsSqlType<ST, IsNullable, spelled::NestedOptional> for Option<Option<U>>
where
    ST: SqlType + TypedExpressionType,
    Option<U>: AsExpression<ST>,
{
}

/// See [`FitsColumn`].
pub fn assert_fits_column<T: FitsColumn<Col, S> + ?Sized, Col, S>() {}

/// Proves at compile time that a field's type, spelled `S`, can be bound for its column
/// on one backend named in `#[diesel(check_for_backend(..))]`.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` cannot be sent to the column `{Col}` on backend `{DB}`",
    label = "not serializable for `{Col}` on `{DB}`",
    note = "`#[diesel(check_for_backend(..))]` asks for this check; \
            use a type that implements `ToSql` for the column's SQL type on that backend"
)]
pub trait BindsOn<Col, DB, S = spelled::Plain> {}

impl<T, Col, DB, S> BindsOn<Col, DB, S> for T
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    SqlTypeOf<Col>: SqlType,
    T: WriteValue<SqlTypeOf<Col>, DB, <SqlTypeOf<Col> as SqlType>::IsNull, S>,
{
}

/// See [`BindsOn`].
pub fn assert_binds_on<T: BindsOn<Col, DB, S>, Col, DB, S>() {}
