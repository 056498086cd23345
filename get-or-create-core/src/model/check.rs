//! Compile-time checks the derive places on each field, spanned at the field's type, so
//! that a type that does not fit its column is reported at the field, in the crate's words.

use diesel::backend::Backend;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::serialize::ToSql;
use diesel::sql_types::SqlType;
use diesel::Expression;

/// Proves at compile time that a field's type can be written to its column.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` does not fit the column `{Col}`",
    label = "this type cannot be written to `{Col}`",
    note = "use the Rust type that Diesel maps to the column's SQL type \
            (for a `Nullable<..>` column: `Option<..>`)"
)]
pub trait FitsColumn<Col> {}

impl<T, Col> FitsColumn<Col> for T
where
    Col: Expression,
    Col::SqlType: SqlType + TypedExpressionType,
    T: AsExpression<Col::SqlType>,
{
}

/// See [`FitsColumn`].
pub fn assert_fits_column<T: FitsColumn<Col> + ?Sized, Col>() {}

/// Proves at compile time that a field's type can be bound for its column on one backend
/// named in `#[diesel(check_for_backend(..))]`.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` cannot be sent to the column `{Col}` on backend `{DB}`",
    label = "not serializable for `{Col}` on `{DB}`",
    note = "`#[diesel(check_for_backend(..))]` asks for this check; \
            use a type that implements `ToSql` for the column's SQL type on that backend"
)]
pub trait BindsOn<Col, DB> {}

impl<T, Col, DB> BindsOn<Col, DB> for T
where
    Col: Expression,
    DB: Backend,
    T: ToSql<Col::SqlType, DB>,
{
}

/// See [`BindsOn`].
pub fn assert_binds_on<T: BindsOn<Col, DB>, Col, DB>() {}
