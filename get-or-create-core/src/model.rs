//! What `#[derive(GetOrCreate)]` tells the runtime about a model.
//!
//! This is the contract between the derive and the strategies, not an API for users: its
//! items may change in any release. The derive writes one [`Model`] impl (the parts that
//! do not depend on the database) and one [`ModelSql`] impl generic over the backend (the
//! parts that bind values), and the strategies turn them into statements.

use diesel::backend::Backend;
use diesel::dsl::SqlTypeOf;
use diesel::expression::{AsExpression, TypedExpressionType};
use diesel::query_builder::AstPass;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::{Column, Expression, QueryResult, Table};

/// The backend-independent description of a model: its table and which columns are
/// looked up and inserted.
pub trait Model: Sized + 'static {
    /// The generated `<Model>Lookup` struct.
    type Lookup;
    /// The generated `<Model>Defaults` struct.
    type Defaults;
    /// The generated `<Model>Changes` struct: one `Option` per default field.
    type Changes;
    /// The Diesel table, from `#[diesel(table_name = ..)]`.
    type Table: Table + Copy + Default;

    /// The table's name as the user wrote it, for error messages.
    const TABLE_NAME: &'static str;
    /// SQL names of the lookup columns, in field order.
    const LOOKUP_COLUMNS: &'static [&'static str];
    /// SQL names of the columns an insert writes: the lookup columns, then the defaults.
    const INSERT_COLUMNS: &'static [&'static str];
    /// Whether each lookup column (in [`Model::LOOKUP_COLUMNS`] order) is an `Option`, and
    /// so must be compared with a `NULL`-safe equality when two rows are matched by key.
    const LOOKUP_NULLABLE: &'static [bool];
    /// Whether some lookup field is an `Option`: its SQL then depends on the value
    /// (`= $1` or `IS NULL`), so statements are cached by their SQL text rather than by type.
    const NULLABLE_LOOKUP: bool = any(Self::LOOKUP_NULLABLE);

    /// How many fields of `changes` are `Some`.
    fn changed_fields(changes: &Self::Changes) -> usize;

    /// How many default fields the model has: when all are changed, creating a row needs
    /// no defaults.
    fn default_fields() -> usize {
        Self::INSERT_COLUMNS.len() - Self::LOOKUP_COLUMNS.len()
    }
}

/// Whether some flag is set (`<[bool]>::contains` is not `const`).
const fn any(flags: &[bool]) -> bool {
    let mut i = 0;
    while i < flags.len() {
        if flags[i] {
            return true;
        }
        i += 1;
    }
    false
}

/// The backend-dependent half of a model: how its values are bound.
pub trait ModelSql<DB: Backend>: Model {
    /// Writes `col1 = $1 AND col2 IS NULL ..` for the lookup.
    fn walk_lookup<'b>(lookup: &'b Self::Lookup, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;

    /// Writes `$1, $2, ..` for [`Model::INSERT_COLUMNS`].
    fn walk_insert_values<'b>(
        lookup: &'b Self::Lookup,
        defaults: &'b Self::Defaults,
        out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()>;

    /// Writes `$1, $2, ..` for [`Model::INSERT_COLUMNS`]: the lookup, then for each
    /// default field its change, or else its default. Fails if a field has neither.
    fn walk_changed_values<'b>(
        lookup: &'b Self::Lookup,
        changes: &'b Self::Changes,
        defaults: Option<&'b Self::Defaults>,
        out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()>;

    /// Writes `col1 = $1, col2 = $2` for the changed fields.
    fn walk_assignments<'b>(
        changes: &'b Self::Changes,
        out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()>;

    /// Writes `$1, $2, ..` for [`Model::LOOKUP_COLUMNS`].
    fn walk_lookup_values<'b>(
        lookup: &'b Self::Lookup,
        out: AstPass<'_, 'b, DB>,
    ) -> QueryResult<()>;
}

/// A chunk of rows as one array per insert column, which PostgreSQL binds as one
/// parameter each (`UNNEST($1, $2, ..)`): the statement's text does not depend on the
/// number of rows, so it is prepared once, and no bind parameter limit applies.
pub trait ModelArrays<DB: Backend>: Model {
    /// One `Vec` of references per insert column.
    type Arrays<'a>;

    /// Splits `items` into its columns.
    fn arrays<'a>(items: &[&'a (Self::Lookup, Self::Defaults)]) -> Self::Arrays<'a>;

    /// Writes `$1, $2, ..`, one array parameter per column of [`Model::INSERT_COLUMNS`].
    fn walk_arrays<'b>(arrays: &'b Self::Arrays<'_>, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

/// A backend that can bind a column of values as one array parameter of SQL type
/// `Array<ST>`: only PostgreSQL.
pub trait BindArray<ST, T>: Backend {
    /// Binds `values` as one array.
    fn push_array<'b>(values: &'b [&T], out: AstPass<'_, 'b, Self>) -> QueryResult<()>;
}

#[cfg(feature = "postgres")]
impl<ST, T> BindArray<ST, T> for diesel::pg::Pg
where
    ST: 'static,
    diesel::pg::Pg: HasSqlType<ST>,
    T: ToSql<ST, diesel::pg::Pg>,
{
    fn push_array<'b>(values: &'b [&T], mut out: AstPass<'_, 'b, Self>) -> QueryResult<()> {
        out.push_bind_param::<diesel::sql_types::Array<ST>, [&T]>(values)
    }
}

/// Writes the array parameter of one column; see [`ModelArrays`].
pub fn push_array<'b, Col, T, DB>(values: &'b [&T], out: AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    Col: Column,
    DB: BindArray<SqlTypeOf<Col>, T>,
{
    DB::push_array(values, out)
}

/// Writes `column = $n` for a lookup field that is never `NULL`.
pub fn push_eq<'b, Col, T, DB>(value: &'b T, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    out.push_identifier(Col::NAME)?;
    out.push_sql(" = ");
    push_value::<Col, T, DB>(value, out)
}

/// Writes `column = $n`, or `column IS NULL` when the value is `None`: `column = NULL` is
/// never true in SQL.
pub fn push_eq_or_is_null<'b, Col, T, DB>(
    value: &'b Option<T>,
    mut out: AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    Option<T>: ToSql<SqlTypeOf<Col>, DB>,
{
    out.push_identifier(Col::NAME)?;
    match value {
        None => {
            out.push_sql(" IS NULL");
            Ok(())
        }
        Some(_) => {
            out.push_sql(" = ");
            push_value::<Col, Option<T>, DB>(value, out)
        }
    }
}

/// Writes the bind parameter of one inserted value.
pub fn push_value<'b, Col, T, DB>(value: &'b T, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    out.push_bind_param::<SqlTypeOf<Col>, T>(value)
}

/// Writes `column = $n` after a `, ` unless it is the `first` assignment, for a changed
/// field; nothing for an unchanged one.
pub fn push_assignment<'b, Col, T, DB>(
    change: &'b Option<T>,
    first: &mut bool,
    mut out: AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    let Some(value) = change else {
        return Ok(());
    };
    if !std::mem::take(first) {
        out.push_sql(", ");
    }
    out.push_identifier(Col::NAME)?;
    out.push_sql(" = ");
    push_value::<Col, T, DB>(value, out)
}

/// Writes the bind parameter of a default field's inserted value: its change if any, else
/// its default.
pub fn push_changed_value<'b, Col, T, DB>(
    change: &'b Option<T>,
    default: Option<&'b T>,
    out: AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    T: ToSql<SqlTypeOf<Col>, DB>,
{
    match change.as_ref().or(default) {
        Some(value) => push_value::<Col, T, DB>(value, out),
        None => Err(diesel::result::Error::QueryBuilderError(
            format!("get-or-create: no value to insert into `{}`", Col::NAME).into(),
        )),
    }
}

/// Proves at compile time that a field's type can be written to its column. The derive
/// calls it with the span of the field's type, so that a mismatch underlines the field.
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
