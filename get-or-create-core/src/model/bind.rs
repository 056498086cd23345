//! How a field's value is bound for its column: what the derive's `where` clauses ask of
//! each field type, so that a model works on every backend that can bind its fields.

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::query_builder::AstPass;
use diesel::serialize::ToSql;
use diesel::sql_types::is_nullable::{IsNullable, NotNull};
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::{Column, Expression, QueryResult};
use std::marker::PhantomData;

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

/// How the derive saw a default field's type spelled: with the column's nullability, it
/// decides what the field's `None` means ([`ValueBind`]).
pub mod spelled {
    /// Any type but an `Option`: the value is always written.
    pub struct Plain;
    /// `Option<T>`: on a `NOT NULL` column `None` writes the column's `DEFAULT`; on a
    /// nullable column it writes `NULL`.
    pub struct Optional;
    /// `Option<Option<T>>`, on a nullable column: `None` writes the column's `DEFAULT`,
    /// `Some(None)` writes `NULL`.
    pub struct NestedOptional;
}

/// What a spelling of a default field's type can mean, per nullability of its column.
pub trait Spelling: 'static {
    /// Whether `None` can mean the `DEFAULT` of a `NOT NULL` column.
    const DEFAULT_ON_NOT_NULL: bool;
    /// Whether `None` can mean the `DEFAULT` of a nullable column.
    const DEFAULT_ON_NULLABLE: bool;
}

impl Spelling for spelled::Plain {
    const DEFAULT_ON_NOT_NULL: bool = false;
    const DEFAULT_ON_NULLABLE: bool = false;
}

impl Spelling for spelled::Optional {
    const DEFAULT_ON_NOT_NULL: bool = true;
    const DEFAULT_ON_NULLABLE: bool = false;
}

impl Spelling for spelled::NestedOptional {
    const DEFAULT_ON_NOT_NULL: bool = true;
    const DEFAULT_ON_NULLABLE: bool = true;
}

/// Whether a default field spelled `S` on column `Col` can write the column's `DEFAULT`:
/// the derive combines these into `Model`'s `DEFAULTABLE`.
pub const fn defaultable<Col, S>() -> bool
where
    Col: Expression,
    Col::SqlType: SqlType<IsNull: Nullability>,
    S: Spelling,
{
    if nullable::<Col>() {
        S::DEFAULT_ON_NULLABLE
    } else {
        S::DEFAULT_ON_NOT_NULL
    }
}

/// A default field's value, written to column `Col` on backend `DB`, its type spelled `S`
/// (see [`spelled`]). This follows Diesel's `Insertable` on `NOT NULL` columns, where an
/// `Option` field's `None` writes `DEFAULT`; on a nullable column an `Option`'s `None`
/// writes `NULL`, and `Option<Option<T>>` says `DEFAULT` with its outer `None`.
pub trait ValueBind<Col: Expression, DB: Backend, S> {
    /// What is bound when the value is written.
    type Bound: ToSql<SqlTypeOf<Col>, DB> + 'static;

    /// The value to write, or `None` for the column's `DEFAULT`.
    fn written(&self) -> Option<&Self::Bound>;
}

impl<T, Col, DB, S> ValueBind<Col, DB, S> for T
where
    Col: Column,
    SqlTypeOf<Col>: SqlType,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: WriteValue<SqlTypeOf<Col>, DB, <SqlTypeOf<Col> as SqlType>::IsNull, S>,
{
    type Bound = T::Bound;

    fn written(&self) -> Option<&Self::Bound> {
        WriteValue::written(self)
    }
}

/// A default value of SQL type `ST` on backend `DB`, for a column whose nullability is
/// `Null`, its type spelled `S`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to a column of SQL type `{ST}`",
    label = "not a value for this column",
    note = "a `NOT NULL` column takes the plain type, or `Option<..>` whose `None` writes the \
            column's `DEFAULT`",
    note = "a nullable column (`Nullable<..>`) takes `Option<..>`, whose `None` writes `NULL`, \
            or `Option<Option<..>>`, whose `None` writes the column's `DEFAULT`",
    note = "use the Rust type that Diesel maps to the column's SQL type"
)]
pub trait WriteValue<ST, DB: Backend, Null, S> {
    /// What is bound when the value is written.
    type Bound: ToSql<ST, DB> + 'static;

    /// The value to write, or `None` for the column's `DEFAULT`.
    fn written(&self) -> Option<&Self::Bound>;
}

impl<T, ST, DB, Null> WriteValue<ST, DB, Null, spelled::Plain> for T
where
    DB: Backend,
    T: ToSql<ST, DB> + 'static,
{
    type Bound = T;

    fn written(&self) -> Option<&T> {
        Some(self)
    }
}

impl<U, ST, DB> WriteValue<ST, DB, NotNull, spelled::Optional> for Option<U>
where
    DB: Backend,
    U: ToSql<ST, DB> + 'static,
{
    type Bound = U;

    fn written(&self) -> Option<&U> {
        self.as_ref()
    }
}

impl<U, ST, DB> WriteValue<ST, DB, IsNullable, spelled::Optional> for Option<U>
where
    DB: Backend,
    U: 'static,
    Option<U>: ToSql<ST, DB>,
{
    type Bound = Option<U>;

    fn written(&self) -> Option<&Option<U>> {
        Some(self)
    }
}

impl<U, ST, DB> WriteValue<ST, DB, IsNullable, spelled::NestedOptional> for Option<Option<U>>
where
    DB: Backend,
    U: 'static,
    Option<U>: ToSql<ST, DB>,
{
    type Bound = Option<U>;

    fn written(&self) -> Option<&Option<U>> {
        self.as_ref()
    }
}

/// Pushes a written value as a bind parameter for `Col` (for the statements of `sql`,
/// which a build without a backend leaves out).
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
pub(crate) fn bind_written<'b, Col, DB, T>(
    value: &'b T,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    out.push_bind_param::<SqlTypeOf<Col>, T>(value)
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

/// Whether a column's SQL type is an array (`Array<..>`, or `Nullable<Array<..>>`), asked
/// in the derive's code, where the type is concrete: `(&&ArrayProbe::<ST>::new()).is_array()`
/// with [`IsArray`] and [`IsNotArray`] in scope picks the first when it applies (the
/// method resolution prefers the impl on `&ArrayProbe`), the second otherwise.
///
/// PostgreSQL's bulk statements bind one array per column, and an array of arrays is not
/// a type PostgreSQL has: a model with an array column is sent another way.
pub struct ArrayProbe<ST>(PhantomData<ST>);

impl<ST> ArrayProbe<ST> {
    /// A probe of `ST`.
    pub const fn new() -> Self {
        ArrayProbe(PhantomData)
    }
}

impl<ST> Default for ArrayProbe<ST> {
    fn default() -> Self {
        Self::new()
    }
}

/// See [`ArrayProbe`]: picked for array types.
pub trait IsArray {
    /// `true`
    fn is_array(&self) -> bool {
        true
    }
}

#[cfg(feature = "postgres")]
impl<T: 'static> IsArray for &ArrayProbe<diesel::sql_types::Array<T>> {}

#[cfg(feature = "postgres")]
impl<T: 'static> IsArray for &ArrayProbe<diesel::sql_types::Nullable<diesel::sql_types::Array<T>>> {}

/// See [`ArrayProbe`]: picked for every other type.
pub trait IsNotArray {
    /// `false`
    fn is_array(&self) -> bool {
        false
    }
}

impl<T> IsNotArray for ArrayProbe<T> {}
