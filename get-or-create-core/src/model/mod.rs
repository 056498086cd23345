//! What `#[derive(GetOrCreate)]` tells the runtime about a model: typed data, no SQL.
//!
//! The derive describes a model in three parts:
//!
//! - [`Model`]: its generated structs and its table;
//! - for each field, where its value is and which column it maps to: a [`KeyField`] impl
//!   per `#[lookup]` field and a [`ValueField`] impl per `#[default]` field, each keyed by
//!   the column's type (`KeyField<users::email>`);
//! - [`Columns`]: the order of those fields, as calls of a visitor
//!   (`visitor.visit::<users::email>()`), with what binding each field's value on a
//!   backend requires.
//!
//! Every statement is written by the runtime, by visitors that walk this description
//! (see `sql/`). A new statement shape is a new visitor, never new derive code; and what
//! a field needs beyond its column and value (how a key is compared, what a `None` means)
//! is an associated item of its field impl.
//!
//! This is the contract between the two crates, not an API for users: it may change in
//! any release.

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::sql_types::HasSqlType;
use diesel::{Column, QueryResult, Table};

mod bind;
mod check;

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
pub(crate) use bind::bind_written;
pub use bind::{defaultable, nullable, spelled, Spelling};
pub use bind::{ArrayProbe, IsArray, IsNotArray};
pub use bind::{KeyBind, KeyValue, Nullability, ValueBind, WriteValue};
pub use check::{assert_binds_on, assert_fits_column, assert_key_fits_column};
pub use check::{BindsOn, FitsColumn, FitsSqlType, KeyFitsColumn, KeyShape};
pub use check::{DefaultProbe, ShortDefaultClash, ShortDefaultFine};

/// A model: its generated structs and its table.
pub trait Model: Sized + Send + 'static {
    /// The generated `<Model>Lookup`: the key of a row.
    type Key: Send + Sync;
    /// The generated `<Model>Defaults`: the values a row is created with.
    type Values: Send + Sync;
    /// The generated `<Model>Changes`: one `Option` per default field.
    type Changeset: Default + From<Self::Values> + Send + Sync;
    /// The Diesel table, from `#[diesel(table_name = ..)]`.
    type Table: Table + Default + Send + Sync;

    /// The SQL names of the lookup columns, in field order, for error messages.
    const KEY_COLUMNS: &'static [&'static str];

    /// Whether some lookup column is nullable: a statement that compares the key then
    /// depends on its values (`= $1` or `IS NULL`), and is prepared per text, not per type.
    const NULLABLE_KEY: bool;

    /// `#[get_or_create(where = "..")]`: the predicate of the partial unique index that
    /// backs the key, as SQL. A lookup sees only the rows it holds for.
    const FILTER: Option<&'static str>;

    /// Whether some default field can write its column's `DEFAULT` (an `Option` on a `NOT
    /// NULL` column, see [`ValueBind`]): an insert's columns then depend on its values, so
    /// it is prepared per text, not per type.
    const DEFAULTABLE: bool;

    /// The fields whose value is an SQL expression (`#[get_or_create(on_create = "now()")]`).
    const SQL_COLUMNS: &'static [SqlColumn];

    /// Whether some lookup or default column has an array type (see [`ArrayProbe`]).
    fn has_array_column() -> bool;
}

/// A field whose value is an SQL expression, written by the database.
#[derive(Clone, Copy, Debug)]
pub struct SqlColumn {
    /// The column's SQL name.
    pub name: &'static str,
    /// The expression written when a row is created, if any.
    pub on_create: Option<&'static str>,
    /// The expression written when a row is updated, if any.
    pub on_update: Option<&'static str>,
}

/// How a lookup field is compared with the stored rows: the way its unique index compares
/// them (`#[lookup(function = ..)]`, `#[lookup(collate = ..)]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `column = value`
    Equal,
    /// `function(column) = function(value)`, for an index on `function(column)`.
    Function(&'static str),
    /// `column COLLATE "collation" = value`, for an index on `column COLLATE "collation"`.
    Collate(&'static str),
}

/// A `#[lookup]` field of model `Self`, on column `Col`.
pub trait KeyField<Col>: Model {
    /// The field's type.
    type Value: 'static;

    /// How the field is compared.
    const COMPARE: Compare;

    /// The field's value in a key.
    fn get(key: &Self::Key) -> &Self::Value;
}

/// A `#[default]` field of model `Self`, on column `Col`.
pub trait ValueField<Col>: Model {
    /// The field's type.
    type Value: 'static;

    /// How the field's type is spelled, which says what its `None` means ([`spelled`]).
    type Spelled: Spelling;

    /// The field's value in the defaults.
    fn get(values: &Self::Values) -> &Self::Value;

    /// The field's value in a changeset, if it is changed.
    fn change(changes: &Self::Changeset) -> Option<&Self::Value>;
}

/// The fields of a model in order, and what binding them on backend `DB` requires.
///
/// The derive writes one impl generic over the backend, whose `where` clause states, per
/// field, that the backend has the column's SQL type and the field's type can be bound
/// for it ([`KeyBind`], [`ValueBind`]): the model then works on every backend where those
/// hold, and nowhere else.
pub trait Columns<DB: Backend>: Model {
    /// Calls `visitor.visit::<Col>()` for each lookup field's column, in field order.
    fn visit_key<V: KeyVisitor<Self, DB>>(visitor: &mut V) -> QueryResult<()>;

    /// Calls `visitor.visit::<Col>()` for each default field's column, in field order.
    fn visit_values<V: ValueVisitor<Self, DB>>(visitor: &mut V) -> QueryResult<()>;
}

/// Walks the lookup fields of `M` (see [`Columns::visit_key`]).
pub trait KeyVisitor<M: Model, DB: Backend> {
    /// Visits the lookup field on column `Col`.
    fn visit<Col>(&mut self) -> QueryResult<()>
    where
        Col: Column<SqlType: 'static>,
        M: KeyField<Col>,
        <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
        DB: HasSqlType<SqlTypeOf<Col>>;
}

/// Walks the default fields of `M` (see [`Columns::visit_values`]).
pub trait ValueVisitor<M: Model, DB: Backend> {
    /// Visits the default field on column `Col`.
    fn visit<Col>(&mut self) -> QueryResult<()>
    where
        Col: Column<SqlType: 'static>,
        M: ValueField<Col>,
        <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
        DB: HasSqlType<SqlTypeOf<Col>>;
}
