//! Compile-time checks the derive places on each field, spanned at the field's type, so
//! that a type that does not fit its column is reported at the field, in the crate's words.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::sql_types::is_nullable::{IsNullable, NotNull};
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::Column;

use super::{spelled, WriteValue};

/// Proves at compile time that a field's type, spelled `S` (see
/// [`spelled`](super::spelled)), can be written to a column of SQL type `ST`.
#[diagnostic::on_unimplemented(
    message = "the field type `{Self}` cannot be written to a column of SQL type `{ST}`",
    label = "not a value for this column",
    note = "use the Rust type that Diesel maps to the column's SQL type; for a `Nullable<..>` \
            column, `Option<..>` (`None` writes `NULL`) or `Option<Option<..>>` (`None` writes \
            the column's `DEFAULT`); for a `NOT NULL` column, the plain type or `Option<..>` \
            (`None` writes the column's `DEFAULT`)"
)]
pub trait FitsColumn<ST, S = spelled::Plain> {}

// Not recommended: rustc would otherwise list every type Diesel maps to `ST` instead of
// the message above.
#[diagnostic::do_not_recommend]
impl<T, ST, S> FitsColumn<ST, S> for T
where
    ST: SqlType + TypedExpressionType,
    T: FitsSqlType<ST, <ST as SqlType>::IsNull, S>,
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
pub fn assert_fits_column<T: FitsColumn<ST, S> + ?Sized, ST, S>() {}

/// Proves at compile time that a lookup field can match every value of its column, of
/// SQL type `ST`: on a nullable column it must be an `Option`, whose `None` matches `NULL`.
#[diagnostic::on_unimplemented(
    message = "the lookup field type `{Self}` cannot match the `NULL`s of its nullable \
               column (SQL type `{ST}`)",
    label = "make this an `Option<..>`",
    note = "a lookup on a nullable column is an `Option`: `None` finds the row whose column \
            is `NULL` (`IS NULL`); or, if the column never holds `NULL`, declare it `NOT NULL` \
            in the database and in `table!`"
)]
pub trait KeyFitsColumn<ST> {}

#[diagnostic::do_not_recommend]
impl<T, ST> KeyFitsColumn<ST> for T
where
    ST: SqlType,
    T: KeyShape<<ST as SqlType>::IsNull>,
{
}

/// [`KeyFitsColumn`] by the column's nullability: any type on a `NOT NULL` column (whether
/// it fits is [`FitsColumn`]'s question), an `Option` on a nullable one.
pub trait KeyShape<Null> {}

impl<T> KeyShape<NotNull> for T {}

impl<U> KeyShape<IsNullable> for Option<U> {}

/// See [`KeyFitsColumn`].
pub fn assert_key_fits_column<T: KeyFitsColumn<ST> + ?Sized, ST>() {}

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

/// Asks, in the derive's code, whether a model written with `#[default]` implements
/// `Default`: if it derives it, std's derive refuses our `#[default]` as its own, and its
/// error says nothing of `#[get_or_create(default)]`. The call of
/// `(&&DefaultProbe::<Model>::new()).short_default()` then picks
/// [`ShortDefaultClash`]'s deprecated method, whose warning says it.
pub struct DefaultProbe<T>(PhantomData<T>);

impl<T> DefaultProbe<T> {
    /// A probe of `T`.
    pub const fn new() -> Self {
        DefaultProbe(PhantomData)
    }
}

impl<T> Default for DefaultProbe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// See [`DefaultProbe`]: picked for a model that implements `Default`.
pub trait ShortDefaultClash {
    /// Warns that `#[default]` clashes with `derive(Default)`.
    #[deprecated(
        note = "this model implements `Default`: if it derives it, std's `derive(Default)` \
                reads `#[default]` on a field as its own attribute and refuses it; write \
                `#[get_or_create(default)]` instead"
    )]
    fn short_default(&self) {}
}

impl<T: Default> ShortDefaultClash for &DefaultProbe<T> {}

/// See [`DefaultProbe`]: picked for every other model.
pub trait ShortDefaultFine {
    /// Nothing to say.
    fn short_default(&self) {}
}

impl<T> ShortDefaultFine for DefaultProbe<T> {}
