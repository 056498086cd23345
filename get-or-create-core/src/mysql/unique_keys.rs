//! Which unique indexes back a model's lookup, read from `information_schema`.
//!
//! MySQL raises no error for a lookup without a unique index; it would silently let
//! concurrent callers insert duplicates. So before the first insert of each model the
//! strategy reads the table's unique indexes and refuses with [`Error::NoUniqueIndex`]
//! when none covers exactly the lookup columns.
//!
//! The answer is kept per model and database for the life of the process, once positive.
//! The first insert of a model is checked before it is sent; the read that follows every
//! insert names the database (`DATABASE()`), and a database not checked yet (the same
//! model used on several) is checked then.
//!
//! MySQL/MariaDB have no partial indexes, and compare a key by its column's collation: a
//! key with a `where` filter, a `collate` or a `function` is refused with
//! [`Error::KeyNotSupported`], which says what to declare instead.
//!
//! [`Error::NoUniqueIndex`]: crate::Error::NoUniqueIndex
//! [`Error::KeyNotSupported`]: crate::Error::KeyNotSupported

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use diesel::backend::Backend;
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Nullable, Text};
use diesel::{QueryResult, Table};

use crate::flow::{classify, no_unique_index, BackendErrors, Failure, Named, Stored};
use crate::model::Compare;
use crate::session::Session;
use crate::sql::for_each_key_column;
use crate::Error;

/// Whether a failed insert lost a race: a duplicate of one of the lookup's unique indexes.
pub(crate) fn is_lost_race(error: &DieselError, lookup_keys: &[String]) -> bool {
    duplicate_key(error).is_some_and(|key| lookup_keys.iter().any(|index| same_key(index, &key)))
}

impl BackendErrors for Mysql {
    /// "Duplicate entry '..' for key 'name'" (MariaDB) or "for key 'table.name'" (MySQL 8).
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String> {
        quoted_after(info.message(), "for key '").map(str::to_owned)
    }
}

/// The key a duplicate-key error names.
fn duplicate_key(error: &DieselError) -> Option<String> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Mysql::unique_constraint(info.as_ref())
        }
        _ => None,
    }
}

/// The part of a database message that follows `prefix`, up to the closing quote.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let start = message.find(prefix)? + prefix.len();
    let rest = &message[start..];
    Some(&rest[..rest.rfind('\'')?])
}

/// Whether the key named in an error message is the index `name`.
fn same_key(name: &str, reported: &str) -> bool {
    reported == name
        || reported
            .split_once('.')
            .is_some_and(|(_, index)| index == name)
}

/// Per model type and database: the names of the unique indexes whose columns are exactly
/// the lookup columns. Only non-empty answers are kept, so adding a missing index needs no
/// restart.
type Checked = HashMap<TypeId, HashMap<String, Arc<[String]>>>;
static UNIQUE_KEYS: LazyLock<Mutex<Checked>> = LazyLock::new(Default::default);

fn cache() -> std::sync::MutexGuard<'static, Checked> {
    UNIQUE_KEYS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The names of the unique indexes whose columns are exactly `M`'s lookup columns, in
/// some database `M` was checked in; checked now when `M` has been checked nowhere. A
/// [`Failure`] when there is none.
pub(crate) async fn unique_keys_of_lookup<M, S>(session: &mut S) -> Result<Arc<[String]>, Failure>
where
    M: Stored<Mysql>,
    S: Session<Backend = Mysql>,
{
    let known = cache()
        .get(&TypeId::of::<M>())
        .and_then(|databases| databases.values().next().cloned());
    match known {
        Some(keys) => Ok(keys),
        None => check::<M, S>(session).await,
    }
}

/// After an insert into `database`: checks the key's index there if not yet done.
pub(crate) async fn check_database<M, S>(session: &mut S, database: &str) -> Result<(), Failure>
where
    M: Stored<Mysql>,
    S: Session<Backend = Mysql>,
{
    let known = cache()
        .get(&TypeId::of::<M>())
        .is_some_and(|databases| databases.contains_key(database));
    if known {
        return Ok(());
    }
    check::<M, S>(session).await.map(|_| ())
}

/// Reads the unique indexes of `M`'s table and returns those whose columns are exactly
/// the lookup columns; refuses a key MySQL cannot back.
pub(crate) async fn check<M, S>(session: &mut S) -> Result<Arc<[String]>, Failure>
where
    M: Stored<Mysql>,
    S: Session<Backend = Mysql>,
{
    not_supported::<M>()?;
    let classify = classify::<M, Mysql>;
    let (schema, table) = table_name::<M::Table>().map_err(classify)?;
    let query = UniqueIndexColumns { schema, table };
    let rows: Vec<(String, String, String)> = session.load(query).await.map_err(classify)?;
    let database = rows.first().map(|(database, _, _)| database.clone());
    let rows: Vec<(String, String)> = rows.into_iter().map(|(_, i, c)| (i, c)).collect();

    let mut lookup: Vec<&str> = M::KEY_COLUMNS.to_vec();
    lookup.sort_unstable();
    let mut matching = Vec::new();
    // Rows come ordered by index name; gather each index's columns and compare as sets.
    let mut rest = rows.as_slice();
    while let Some((index, _)) = rest.first() {
        let len = rest.iter().take_while(|(i, _)| i == index).count();
        let mut columns: Vec<&str> = rest[..len].iter().map(|(_, c)| c.as_str()).collect();
        columns.sort_unstable();
        if columns
            .iter()
            .map(|c| c.to_lowercase())
            .eq(lookup.iter().map(|c| c.to_lowercase()))
        {
            matching.push(index.clone());
        }
        rest = &rest[len..];
    }
    let (Some(database), false) = (database, matching.is_empty()) else {
        return Err(Failure::Fatal(no_unique_index::<M, Mysql>(None)));
    };
    let keys: Arc<[String]> = matching.into();
    cache()
        .entry(TypeId::of::<M>())
        .or_default()
        .insert(database, Arc::clone(&keys));
    Ok(keys)
}

/// Refuses, with what to declare instead, a key MySQL/MariaDB cannot back with an index.
fn not_supported<M: Stored<Mysql>>() -> Result<(), Failure> {
    let mut reason = None;
    if let Some(filter) = M::FILTER {
        reason = Some(format!(
            "MySQL/MariaDB have no partial indexes, so no index can back a key scoped by \
             `where = \"{filter}\"`; make the key unique over all rows instead (for soft \
             deletes, set the key of a deleted row to NULL in a nullable column, whose NULLs a \
             unique index lets repeat) and drop `where` from the model"
        ));
    }
    let _ = for_each_key_column::<M, Mysql>(|column| {
        match column.compare {
            Compare::Equal => {}
            Compare::Collate(collation) => {
                reason.get_or_insert(format!(
                    "MySQL/MariaDB compare a key by its column's collation: declare `{}` with \
                     `COLLATE {collation}` and drop `collate` from the lookup",
                    column.name
                ));
            }
            Compare::Function(function) => {
                reason.get_or_insert(format!(
                    "MySQL/MariaDB cannot back a key on `{function}({})` with an index the \
                     library can check: for a case-insensitive key, give `{}` a `_ci` \
                     collation (the default) and drop `function` from the lookup",
                    column.name, column.name
                ));
            }
        }
        Ok(())
    });
    match reason {
        Some(reason) => Err(Failure::Fatal(Error::KeyNotSupported {
            table: M::table_name(),
            reason,
        })),
        None => Ok(()),
    }
}

/// The schema (if the `table!` names one) and name of a table, as MySQL spells them.
fn table_name<T: Table + Default>() -> QueryResult<(Option<String>, String)>
where
    T::FromClause: QueryFragment<Mysql>,
{
    let mut sql = <Mysql as Backend>::QueryBuilder::default();
    T::default().from_clause().to_sql(&mut sql, &Mysql)?;
    let mut parts = split_quoted_identifiers(&sql.finish());
    let table = parts.pop().unwrap_or_default();
    Ok((parts.pop(), table))
}

/// "`a`.`b``c`" -> ["a", "b`c"].
fn split_quoted_identifiers(sql: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('`', true) if chars.peek() == Some(&'`') => {
                chars.next();
                current.push('`');
            }
            ('`', _) => quoted = !quoted,
            ('.', false) => parts.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// `(database, index name, column name)` of every unique index of a table, ordered by
/// index and position.
struct UniqueIndexColumns {
    schema: Option<String>,
    table: String,
}

impl QueryId for UniqueIndexColumns {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for UniqueIndexColumns {
    /// The database, the index, a column of the index.
    type SqlType = (Text, Text, Text);
}

impl QueryFragment<Mysql> for UniqueIndexColumns {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(
            "SELECT TABLE_SCHEMA, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = COALESCE(",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.schema)?;
        out.push_sql(", DATABASE()) AND TABLE_NAME = ");
        out.push_bind_param::<Text, _>(&self.table)?;
        out.push_sql(" AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_identifiers() {
        assert_eq!(split_quoted_identifiers("`users`"), ["users"]);
        assert_eq!(split_quoted_identifiers("`app`.`a.b``c`"), ["app", "a.b`c"]);
    }

    #[test]
    fn quoted_after_takes_the_last_quote() {
        let message = "Duplicate entry 'a'b' for key 'users.name_key'";
        assert_eq!(quoted_after(message, "for key '"), Some("users.name_key"));
        assert_eq!(quoted_after("no key here", "for key '"), None);
    }

    #[test]
    fn matches_mysql_8_and_mariadb_key_names() {
        assert!(same_key("users_email", "users_email"));
        assert!(same_key("users_email", "users.users_email"));
        assert!(!same_key("users_email", "users.users_name"));
    }
}
