//! The SQL every backend writes the same way: the parts of a statement that walk a
//! model's description (key comparisons, column and value lists, assignments) and the
//! statements all backends send alike.
//!
//! Each part is a visitor over the model's fields (see `model`), writing straight into
//! Diesel's `AstPass`: no allocation, and a value is bound where it is visited. What only
//! some backends send lives in their folders (`pg/`, `sqlite/`, `mysql/`), or, for what
//! PostgreSQL and SQLite share, in [`returning`].

use std::marker::PhantomData;

use diesel::backend::{Backend, DieselReserveSpecialization};
use diesel::dsl::SqlTypeOf;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::sql_types::HasSqlType;
use diesel::{Column, QueryResult, Selectable};

use crate::model::{bind_written, Columns, Compare, KeyBind, KeyField, KeyVisitor, Model};
use crate::model::{ValueBind, ValueField, ValueVisitor};

pub(crate) mod bulk;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) mod returning;
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) mod values;

/// The SQL type of the rows a statement returns: the model's columns.
pub(crate) type RowType<M, DB> = SqlTypeOf<<M as Selectable<DB>>::SelectExpression>;

/// The query id of a statement for model `M` on backend `DB`, told apart by its `Kind`: one
/// prepared statement per model, statement and backend.
pub struct StatementId<M, DB, Kind>(PhantomData<(M, DB, Kind)>);

/// Writes the separator before every item but the first.
pub(crate) struct Separator {
    text: &'static str,
    first: bool,
}

impl Separator {
    pub(crate) fn new(text: &'static str) -> Self {
        Separator { text, first: true }
    }

    pub(crate) fn push<DB: Backend>(&mut self, out: &mut AstPass<'_, '_, DB>) {
        if !std::mem::take(&mut self.first) {
            out.push_sql(self.text);
        }
    }
}

/// One lookup column as the SQL sees it: its name, whether its type is nullable, and how
/// the key compares it.
#[derive(Clone, Copy)]
pub(crate) struct KeyColumn {
    /// The field's position among the lookup fields.
    pub(crate) index: usize,
    pub(crate) name: &'static str,
    pub(crate) nullable: bool,
    pub(crate) compare: Compare,
}

impl KeyColumn {
    /// The column as its unique index holds it: `col`, `f(col)` or `col COLLATE "c"`, where
    /// `column` writes the reference to the column (`"col"`, `"t"."col"`, or the column of
    /// the same key in another relation).
    pub(crate) fn push_compared<'b, DB: Backend>(
        self,
        out: &mut AstPass<'_, 'b, DB>,
        column: impl FnOnce(&mut AstPass<'_, 'b, DB>) -> QueryResult<()>,
    ) -> QueryResult<()> {
        if let Compare::Function(function) = self.compare {
            out.push_sql(function);
            out.push_sql("(");
        }
        column(out)?;
        match self.compare {
            Compare::Equal => {}
            Compare::Function(_) => out.push_sql(")"),
            Compare::Collate(collation) => {
                out.push_sql(" COLLATE ");
                out.push_identifier(collation)?;
            }
        }
        Ok(())
    }

    /// The column as an index or conflict target names it: `col`, `(f(col))` or
    /// `col COLLATE "c"` (an expression needs its own parentheses there).
    pub(crate) fn push_target<DB: Backend>(self, out: &mut AstPass<'_, '_, DB>) -> QueryResult<()> {
        let function = matches!(self.compare, Compare::Function(_));
        if function {
            out.push_sql("(");
        }
        self.push_compared(out, |out| out.push_identifier(self.name))?;
        if function {
            out.push_sql(")");
        }
        Ok(())
    }
}

/// `k1 = $1 AND f(k2) = f($2) AND k3 IS NULL .. AND (<filter>)`: the rows of `key`, compared
/// the way the key's unique index compares them. A `NULL` value is matched with `IS NULL`,
/// since `= NULL` is never true.
pub(crate) fn push_key_match<'b, M, DB>(
    key: &'b M::Key,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    struct KeyMatch<'a, 'o, 'b, M: Model, DB: Backend> {
        key: &'b M::Key,
        out: &'a mut AstPass<'o, 'b, DB>,
        and: Separator,
    }
    impl<M: Model, DB: Backend> KeyVisitor<M, DB> for KeyMatch<'_, '_, '_, M, DB> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: KeyField<Col>,
            <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let value = <M as KeyField<Col>>::get(self.key);
            self.and.push(self.out);
            if value.is_null() {
                self.out.push_identifier(Col::NAME)?;
                self.out.push_sql(" IS NULL");
                return Ok(());
            }
            let column = key_column::<M, Col, DB>(0);
            column.push_compared(self.out, |out| out.push_identifier(Col::NAME))?;
            self.out.push_sql(" = ");
            match column.compare {
                Compare::Function(function) => {
                    self.out.push_sql(function);
                    self.out.push_sql("(");
                    value.bind_key(self.out)?;
                    self.out.push_sql(")");
                    Ok(())
                }
                Compare::Equal | Compare::Collate(_) => value.bind_key(self.out),
            }
        }
    }
    M::visit_key(&mut KeyMatch::<M, DB> {
        key,
        out: &mut *out,
        and: Separator::new(" AND "),
    })?;
    push_filter::<M, DB>(" AND ", out)
}

/// Whether some value of `key` is `NULL`.
pub(crate) fn key_has_null<M, DB>(key: &M::Key) -> bool
where
    M: Columns<DB>,
    DB: Backend,
{
    struct HasNull<'k, M: Model>(&'k M::Key, bool);
    impl<M: Model, DB: Backend> KeyVisitor<M, DB> for HasNull<'_, M> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: KeyField<Col>,
            <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            self.1 |= <M as KeyField<Col>>::get(self.0).is_null();
            Ok(())
        }
    }
    let mut visitor = HasNull::<M>(key, false);
    // Looking cannot fail.
    let _ = M::visit_key::<_>(&mut visitor);
    visitor.1
}

/// `<joiner>(<filter>)` when the key is scoped to a partial index, else nothing.
pub(crate) fn push_filter<M: Model, DB: Backend>(
    joiner: &str,
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()> {
    if let Some(filter) = M::FILTER {
        out.push_sql(joiner);
        out.push_sql("(");
        out.push_sql(filter);
        out.push_sql(")");
    }
    Ok(())
}

/// The [`KeyColumn`] of the lookup field on `Col`, the `index`th.
fn key_column<M, Col, DB>(index: usize) -> KeyColumn
where
    Col: Column<SqlType: 'static>,
    M: KeyField<Col>,
    <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
    DB: Backend,
{
    KeyColumn {
        index,
        name: Col::NAME,
        nullable: <<M as KeyField<Col>>::Value as KeyBind<Col, DB>>::NULLABLE,
        compare: <M as KeyField<Col>>::COMPARE,
    }
}

/// Calls `f` with each lookup column, in field order.
pub(crate) fn for_each_key_column<M, DB>(
    f: impl FnMut(KeyColumn) -> QueryResult<()>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    struct Columns<F>(F, usize);
    impl<M: Model, DB: Backend, F> KeyVisitor<M, DB> for Columns<F>
    where
        F: FnMut(KeyColumn) -> QueryResult<()>,
    {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: KeyField<Col>,
            <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let index = self.1;
            self.1 += 1;
            (self.0)(key_column::<M, Col, DB>(index))
        }
    }
    M::visit_key(&mut Columns(f, 0))
}

/// `k1, (f(k2)), k3 COLLATE "c"`: the key as a unique index or a conflict target lists it.
pub(crate) fn push_key_targets<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, DB>(|column| {
        comma.push(out);
        column.push_target(out)
    })
}

/// Calls `f` with the SQL name of each default column.
pub(crate) fn for_each_value_column<M, DB>(
    f: impl FnMut(&'static str) -> QueryResult<()>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    struct Names<F>(F);
    impl<M: Model, DB: Backend, F> ValueVisitor<M, DB> for Names<F>
    where
        F: FnMut(&'static str) -> QueryResult<()>,
    {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            (self.0)(Col::NAME)
        }
    }
    M::visit_values(&mut Names(f))
}

/// Calls `f` with the SQL name of each default column and whether `values` writes it
/// (`false` for a `None` that means the column's `DEFAULT`).
pub(crate) fn for_each_written_column<M, DB>(
    values: Values<'_, M>,
    f: impl FnMut(&'static str, bool) -> QueryResult<()>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    struct Written<'v, M: Model, F>(Values<'v, M>, F);
    impl<M: Model, DB: Backend, F> ValueVisitor<M, DB> for Written<'_, M, F>
    where
        F: FnMut(&'static str, bool) -> QueryResult<()>,
    {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let written = value_of::<M, Col>(self.0)
                .is_some_and(|value| ValueBind::<Col, DB, _>::written(value).is_some());
            (self.1)(Col::NAME, written)
        }
    }
    M::visit_values(&mut Written(values, f))
}

/// How many default columns `values` writes.
#[cfg(feature = "sqlite")]
pub(crate) fn written_count<M, DB>(values: Values<'_, M>) -> usize
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut count = 0;
    // Counting cannot fail.
    let _ = for_each_written_column::<M, DB>(values, |_, written| {
        count += usize::from(written);
        Ok(())
    });
    count
}

/// Whether an update from `values` writes anything: a field it does not leave to the
/// stored value, or an `on_update` expression.
pub(crate) fn assigns_anything<M, DB>(values: Values<'_, M>) -> bool
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut any = M::SQL_COLUMNS.iter().any(|c| c.on_update.is_some());
    // Looking cannot fail.
    let _ = for_each_written_column::<M, DB>(values, |_, written| {
        any |= written;
        Ok(())
    });
    any
}

/// Which default columns `values` leaves to their `DEFAULT`, one flag per default field:
/// the items of a bulk insert are grouped by it, since each statement lists its columns
/// once for all its rows.
pub(crate) fn defaulted_columns<M, DB>(values: Values<'_, M>) -> Vec<bool>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut defaulted = Vec::new();
    if M::DEFAULTABLE {
        // Looking cannot fail.
        let _ = for_each_written_column::<M, DB>(values, |_, written| {
            defaulted.push(!written);
            Ok(())
        });
    }
    defaulted
}

/// `k1, k2, ..`: the lookup columns.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn push_key_columns<M, DB>(out: &mut AstPass<'_, '_, DB>) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, DB>(|column| {
        comma.push(out);
        out.push_identifier(column.name)
    })
}

/// How many columns an insert writes at most, not counting `on_create` expressions: what
/// a row costs in bind parameters.
pub(crate) fn insert_column_count<M, DB>() -> usize
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut count = 0;
    // Counting cannot fail.
    let _ = for_each_key_column::<M, DB>(|_| {
        count += 1;
        Ok(())
    });
    let _ = for_each_value_column::<M, DB>(|_| {
        count += 1;
        Ok(())
    });
    count
}

/// How an insert writes a default field whose `None` means the column's `DEFAULT`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defaulted {
    /// It leaves the column out: a single-row insert, or a bulk insert whose rows all
    /// leave out the same columns (SQLite has no `DEFAULT` in `VALUES`).
    Omitted,
    /// It lists every column and writes `DEFAULT` (MySQL/MariaDB's multi-row inserts).
    Keyword,
}

/// `k1, .., d1, .., s1, ..`: the columns an insert writes: the lookup's, the defaults' (as
/// `values` and `defaulted` say), then those with an `on_create` expression.
pub(crate) fn push_insert_columns<M, DB>(
    values: Values<'_, M>,
    defaulted: Defaulted,
    out: &mut AstPass<'_, '_, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    for_each_key_column::<M, DB>(|column| {
        comma.push(out);
        out.push_identifier(column.name)
    })?;
    for_each_written_column::<M, DB>(values, |name, written| {
        if written || defaulted == Defaulted::Keyword {
            comma.push(out);
            out.push_identifier(name)?;
        }
        Ok(())
    })?;
    for column in M::SQL_COLUMNS.iter().filter(|c| c.on_create.is_some()) {
        comma.push(out);
        out.push_identifier(column.name)?;
    }
    Ok(())
}

/// `, expr1, expr2`: the `on_create` expressions, in [`push_insert_columns`] order.
pub(crate) fn push_on_create<DB: Backend, M: Model>(out: &mut AstPass<'_, '_, DB>) {
    for expression in M::SQL_COLUMNS.iter().filter_map(|c| c.on_create) {
        out.push_sql(", ");
        out.push_sql(expression);
    }
}

/// How a value's bind parameter is written: as is, or cast to some SQL type
/// (`CAST(? AS <type>)`), per SQL type.
pub(crate) trait BindCast<DB: Backend> {
    /// The type a bind of SQL type `ST` is cast to, if any.
    fn cast<ST>() -> Option<&'static str>
    where
        DB: HasSqlType<ST>;
}

/// Every bind as is.
pub(crate) struct AsIs;

impl<DB: Backend> BindCast<DB> for AsIs {
    fn cast<ST>() -> Option<&'static str>
    where
        DB: HasSqlType<ST>,
    {
        None
    }
}

/// `CAST(` before a bind parameter of `Col` that `C` casts; the type to close it with.
fn open_cast<Col, DB, C>(out: &mut AstPass<'_, '_, DB>) -> Option<&'static str>
where
    Col: Column,
    DB: Backend + HasSqlType<SqlTypeOf<Col>>,
    C: BindCast<DB>,
{
    let cast = C::cast::<SqlTypeOf<Col>>();
    if cast.is_some() {
        out.push_sql("CAST(");
    }
    cast
}

/// ` AS <type>)` after a bind parameter that [`open_cast`] opened.
fn close_cast<DB: Backend>(out: &mut AstPass<'_, '_, DB>, cast: Option<&'static str>) {
    if let Some(sql_type) = cast {
        out.push_sql(" AS ");
        out.push_sql(sql_type);
        out.push_sql(")");
    }
}

/// `$1, $2, ..` for the key's values, in [`push_key_columns`] order.
pub(crate) fn push_key_values<'b, M, DB>(
    key: &'b M::Key,
    out: &mut AstPass<'_, 'b, DB>,
    comma: &mut Separator,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    push_key_values_cast::<M, DB, AsIs>(key, out, comma)
}

/// [`push_key_values`], each bind cast as `C` says.
pub(crate) fn push_key_values_cast<'b, M, DB, C>(
    key: &'b M::Key,
    out: &mut AstPass<'_, 'b, DB>,
    comma: &mut Separator,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
    C: BindCast<DB>,
{
    struct KeyValues<'a, 'o, 'b, M: Model, DB: Backend, C> {
        key: &'b M::Key,
        out: &'a mut AstPass<'o, 'b, DB>,
        comma: &'a mut Separator,
        cast: PhantomData<C>,
    }
    impl<M: Model, DB: Backend, C: BindCast<DB>> KeyVisitor<M, DB> for KeyValues<'_, '_, '_, M, DB, C> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: KeyField<Col>,
            <M as KeyField<Col>>::Value: KeyBind<Col, DB>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            self.comma.push(self.out);
            let cast = open_cast::<Col, DB, C>(self.out);
            <M as KeyField<Col>>::get(self.key).bind_key(self.out)?;
            close_cast(self.out, cast);
            Ok(())
        }
    }
    M::visit_key(&mut KeyValues::<M, DB, C> {
        key,
        out,
        comma,
        cast: PhantomData,
    })
}

/// Where the default columns' values of an insert or an update come from.
pub(crate) enum Values<'a, M: Model> {
    /// The defaults: every field, in an insert or an update.
    Defaults(&'a M::Values),
    /// `update_or_create_with`: each field's change; in an insert, each unchanged field's
    /// default (`None` when every field is changed).
    Changed(&'a M::Changeset, Option<&'a M::Values>),
}

impl<'a, M: Model> Values<'a, M> {
    /// The values a row created from these changes takes: the changes, and for the
    /// fields not changed (as `changed` counted them) `defaults()`, called only then.
    pub(crate) fn for_insert(
        self,
        changed: Changed,
        defaults: impl FnOnce() -> Option<&'a M::Values>,
    ) -> Self {
        match self {
            Values::Changed(changes, _) if !changed.all() => Values::Changed(changes, defaults()),
            values => values,
        }
    }
}

// Not derived: a derive would require `M: Copy`, but only references are copied.
impl<M: Model> Clone for Values<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M: Model> Copy for Values<'_, M> {}

/// The value an update sets a default field to: its change (every field is changed by
/// [`Values::Defaults`]).
fn change_of<M: ValueField<Col>, Col>(changes: Values<'_, M>) -> Option<&M::Value> {
    match changes {
        Values::Defaults(values) => Some(M::get(values)),
        Values::Changed(changes, _) => M::change(changes),
    }
}

/// The value a default field takes in an insert from `values`: its change, or else its
/// default.
fn value_of<M: ValueField<Col>, Col>(values: Values<'_, M>) -> Option<&M::Value> {
    match values {
        Values::Defaults(defaults) => Some(M::get(defaults)),
        Values::Changed(changes, defaults) => M::change(changes).or_else(|| defaults.map(M::get)),
    }
}

/// `$1, $2, .., expr1, ..` for every column of [`push_insert_columns`]: the key's values,
/// each default field's value (or `DEFAULT`, or nothing, as `defaulted` says), then each
/// `on_create` expression.
pub(crate) fn push_insert_values<'b, M, DB>(
    key: &'b M::Key,
    values: Values<'b, M>,
    defaulted: Defaulted,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    let mut comma = Separator::new(", ");
    push_key_values::<M, DB>(key, out, &mut comma)?;
    push_default_values::<M, DB>(values, defaulted, out, &mut comma)?;
    push_on_create::<DB, M>(out);
    Ok(())
}

/// `$1, $2, ..` for each default field's value in `values`, or `DEFAULT`, or nothing, as
/// `defaulted` says.
pub(crate) fn push_default_values<'b, M, DB>(
    values: Values<'b, M>,
    defaulted: Defaulted,
    out: &mut AstPass<'_, 'b, DB>,
    comma: &mut Separator,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    push_default_values_cast::<M, DB, AsIs>(values, defaulted, out, comma)
}

/// [`push_default_values`], each bind cast as `C` says.
pub(crate) fn push_default_values_cast<'b, M, DB, C>(
    values: Values<'b, M>,
    defaulted: Defaulted,
    out: &mut AstPass<'_, 'b, DB>,
    comma: &mut Separator,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
    C: BindCast<DB>,
{
    struct DefaultValues<'a, 'o, 'b, M: Model, DB: Backend, C> {
        values: Values<'b, M>,
        defaulted: Defaulted,
        out: &'a mut AstPass<'o, 'b, DB>,
        comma: &'a mut Separator,
        cast: PhantomData<C>,
    }
    impl<M: Model, DB: Backend, C: BindCast<DB>> ValueVisitor<M, DB>
        for DefaultValues<'_, '_, '_, M, DB, C>
    {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let Some(value) = value_of::<M, Col>(self.values) else {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!("get-or-create: no value to insert into `{}`", Col::NAME).into(),
                ));
            };
            match (ValueBind::<Col, DB, _>::written(value), self.defaulted) {
                (Some(value), _) => {
                    self.comma.push(self.out);
                    let cast = open_cast::<Col, DB, C>(self.out);
                    bind_written::<Col, DB, _>(value, self.out)?;
                    close_cast(self.out, cast);
                    Ok(())
                }
                (None, Defaulted::Keyword) => {
                    self.comma.push(self.out);
                    self.out.push_sql("DEFAULT");
                    Ok(())
                }
                (None, Defaulted::Omitted) => Ok(()),
            }
        }
    }
    M::visit_values(&mut DefaultValues::<M, DB, C> {
        values,
        defaulted,
        out,
        comma,
        cast: PhantomData,
    })
}

/// `d1 = $1, d2 = $2, s1 = expr1`: the fields `changes` writes, then each `on_update`
/// expression. A changed field whose `None` means the column's `DEFAULT` keeps the stored
/// value, as in Diesel's `AsChangeset` (SQLite has no `SET column = DEFAULT`).
pub(crate) fn push_assignments<'b, M, DB>(
    changes: Values<'b, M>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    DB: Backend,
{
    struct Assignments<'a, 'o, 'b, M: Model, DB: Backend> {
        changes: Values<'b, M>,
        out: &'a mut AstPass<'o, 'b, DB>,
        comma: &'a mut Separator,
    }
    impl<M: Model, DB: Backend> ValueVisitor<M, DB> for Assignments<'_, '_, '_, M, DB> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let written = change_of::<M, Col>(self.changes)
                .and_then(|value| ValueBind::<Col, DB, _>::written(value));
            let Some(value) = written else {
                return Ok(());
            };
            self.comma.push(self.out);
            self.out.push_identifier(Col::NAME)?;
            self.out.push_sql(" = ");
            bind_written::<Col, DB, _>(value, self.out)
        }
    }
    let mut comma = Separator::new(", ");
    M::visit_values(&mut Assignments::<M, DB> {
        changes,
        out: &mut *out,
        comma: &mut comma,
    })?;
    for column in M::SQL_COLUMNS {
        if let Some(expression) = column.on_update {
            comma.push(out);
            out.push_identifier(column.name)?;
            out.push_sql(" = ");
            out.push_sql(expression);
        }
    }
    Ok(())
}

/// Which fields `changes` changes, and how many default fields the model has.
pub(crate) fn count_changes<M, DB>(changes: Values<'_, M>) -> Changed
where
    M: Columns<DB>,
    DB: Backend,
{
    struct Count<'c, M: Model> {
        changes: Values<'c, M>,
        counted: Changed,
    }
    impl<M: Model, DB: Backend> ValueVisitor<M, DB> for Count<'_, M> {
        fn visit<Col>(&mut self) -> QueryResult<()>
        where
            Col: Column<SqlType: 'static>,
            M: ValueField<Col>,
            <M as ValueField<Col>>::Value: ValueBind<Col, DB, <M as ValueField<Col>>::Spelled>,
            DB: HasSqlType<SqlTypeOf<Col>>,
        {
            let change = change_of::<M, Col>(self.changes);
            self.counted.fields += 1;
            self.counted.given += usize::from(change.is_some());
            self.counted.written += usize::from(
                change.is_some_and(|value| ValueBind::<Col, DB, _>::written(value).is_some()),
            );
            Ok(())
        }
    }
    let mut count = Count::<M> {
        changes,
        counted: Changed::default(),
    };
    // Counting cannot fail.
    let _ = M::visit_values::<_>(&mut count);
    count.counted
}

/// The result of [`count_changes`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Changed {
    /// How many fields are given a value (`Some`).
    pub(crate) given: usize,
    /// How many of those an update writes (not a `None` that means `DEFAULT`).
    pub(crate) written: usize,
    /// How many default fields the model has.
    pub(crate) fields: usize,
}

impl Changed {
    /// Whether an update would write nothing: it would be a read.
    pub(crate) fn none(self) -> bool {
        self.written == 0
    }

    /// Whether every field is given: creating a row needs no defaults.
    pub(crate) fn all(self) -> bool {
        self.given == self.fields
    }
}

/// What follows a [`SelectByKey`]: nothing, or a locking clause (see `mysql/`).
pub(crate) trait SelectTail: 'static {
    /// The SQL appended to the query.
    const SQL: &'static str;
}

/// A plain read.
pub(crate) struct NoLock;

impl SelectTail for NoLock {
    const SQL: &'static str = "";
}

/// `SELECT <model columns> FROM <table> WHERE <key> LIMIT 2 <tail>`.
///
/// `LIMIT 2` rather than 1 lets us see that several rows match instead of returning an
/// arbitrary one of them.
pub(crate) struct SelectByKey<'a, M: Model + Selectable<DB>, DB: Backend, Tail = NoLock> {
    key: &'a M::Key,
    from: <M::Table as QuerySource>::FromClause,
    selection: M::SelectExpression,
    _marker: PhantomData<fn() -> (DB, Tail)>,
}

impl<'a, M, DB, Tail> SelectByKey<'a, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    pub(crate) fn new(key: &'a M::Key) -> Self {
        SelectByKey {
            key,
            from: M::Table::default().from_clause(),
            selection: M::construct_selection(),
            _marker: PhantomData,
        }
    }
}

impl<M, DB, Tail> QueryId for SelectByKey<'_, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend + 'static,
    Tail: SelectTail,
{
    type QueryId = StatementId<M, DB, Tail>;
    const HAS_STATIC_QUERY_ID: bool = !M::NULLABLE_KEY;
}

impl<M, DB, Tail> Query for SelectByKey<'_, M, DB, Tail>
where
    M: Model + Selectable<DB>,
    DB: Backend,
{
    type SqlType = RowType<M, DB>;
}

impl<M, DB, Tail> QueryFragment<DB> for SelectByKey<'_, M, DB, Tail>
where
    M: Columns<DB> + Selectable<DB>,
    M::SelectExpression: QueryFragment<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend + DieselReserveSpecialization,
    Tail: SelectTail,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("SELECT ");
        self.selection.walk_ast(out.reborrow())?;
        out.push_sql(" FROM ");
        self.from.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        push_key_match::<M, DB>(self.key, &mut out)?;
        out.push_sql(" LIMIT 2");
        out.push_sql(Tail::SQL);
        Ok(())
    }
}

/// `UPDATE <table> SET <changes> WHERE <key> AND <exactly one row matches>`, the head of
/// every backend's update.
///
/// The guard (`(SELECT COUNT(*) FROM (SELECT 1 .. LIMIT 2)) = 1`) keeps a key that
/// matches several rows (a `NULL` key under an index whose `NULL`s are distinct) from
/// changing them all: such a call then finds the rows with a read and reports them.
pub(crate) fn push_update<'b, M, DB>(
    table: &'b <M::Table as QuerySource>::FromClause,
    key: &'b M::Key,
    changes: Values<'b, M>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend,
{
    out.push_sql("UPDATE ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" SET ");
    push_assignments::<M, DB>(changes, out)?;
    out.push_sql(" WHERE ");
    push_key_match::<M, DB>(key, out)?;
    out.push_sql(" AND (SELECT COUNT(*) FROM (SELECT 1 FROM ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" WHERE ");
    push_key_match::<M, DB>(key, out)?;
    out.push_sql(" LIMIT 2) AS __goc_matches) = 1");
    Ok(())
}

/// `INSERT INTO <table> (<insert columns>) VALUES (<values>)`, the head of every
/// backend's single-row insert.
pub(crate) fn push_insert<'b, M, DB>(
    table: &'b <M::Table as QuerySource>::FromClause,
    key: &'b M::Key,
    values: Values<'b, M>,
    out: &mut AstPass<'_, 'b, DB>,
) -> QueryResult<()>
where
    M: Columns<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend,
{
    out.push_sql("INSERT INTO ");
    table.walk_ast(out.reborrow())?;
    out.push_sql(" (");
    push_insert_columns::<M, DB>(values, Defaulted::Omitted, out)?;
    out.push_sql(") VALUES (");
    push_insert_values::<M, DB>(key, values, Defaulted::Omitted, out)?;
    out.push_sql(")");
    Ok(())
}

/// `CREATE UNIQUE INDEX <table>_<columns>_key ON <table> (<key>) [WHERE <filter>]`: an index
/// that backs the key as the model declares it, for the advice of
/// [`Error::NoUniqueIndex`](crate::Error::NoUniqueIndex). Rendered with the backend's own
/// quoting, so it is valid SQL there.
pub(crate) struct CreateUniqueIndex<M: Model> {
    table: <M::Table as QuerySource>::FromClause,
}

impl<M: Model> CreateUniqueIndex<M> {
    pub(crate) fn new() -> Self {
        CreateUniqueIndex {
            table: M::Table::default().from_clause(),
        }
    }
}

impl<M, DB> QueryFragment<DB> for CreateUniqueIndex<M>
where
    M: Columns<DB>,
    <M::Table as QuerySource>::FromClause: QueryFragment<DB>,
    DB: Backend<QueryBuilder: Default> + DieselReserveSpecialization,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // `<table>_<columns>_key`, PostgreSQL's own naming, from the unquoted table name.
        let mut table = <DB::QueryBuilder as Default>::default();
        self.table.to_sql(&mut table, out.backend())?;
        let table = table.finish();
        let table = table.rsplit('.').next().unwrap_or(&table);
        // A key compared through a function or collation, or scoped by a filter, gets a
        // name of its own: `<table>_<column>_key` is already the name of the column's
        // plain unique constraint, which such a table often has too.
        let word = |text: &str| -> String {
            let last = text.rsplit('.').next().unwrap_or(text);
            last.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let mut name: String = table.chars().filter(|c| !matches!(c, '"' | '`')).collect();
        for_each_key_column::<M, DB>(|column| {
            name.push('_');
            if let Compare::Function(function) = column.compare {
                name.push_str(&word(function));
                name.push('_');
            }
            name.push_str(column.name);
            if let Compare::Collate(collation) = column.compare {
                name.push('_');
                name.push_str(&word(collation));
            }
            Ok(())
        })?;
        if M::FILTER.is_some() {
            name.push_str("_partial");
        }
        name.push_str("_key");
        out.push_sql("CREATE UNIQUE INDEX ");
        out.push_identifier(&name)?;
        out.push_sql(" ON ");
        self.table.walk_ast(out.reborrow())?;
        out.push_sql(" (");
        push_key_targets::<M, DB>(&mut out)?;
        out.push_sql(")");
        push_filter::<M, DB>(" WHERE ", &mut out)
    }
}
