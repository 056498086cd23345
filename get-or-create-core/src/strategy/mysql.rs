//! MySQL/MariaDB: no `RETURNING` through Diesel, no conflict target in
//! `ON DUPLICATE KEY UPDATE`, and reads that see an old snapshot at InnoDB's default
//! `REPEATABLE READ`.
//!
//! | path | statements |
//! |---|---|
//! | row exists | `SELECT` |
//! | row missing | `SELECT`, `INSERT`, `SELECT` (reads back what the database filled in) |
//! | lost race | `SELECT`, `INSERT` (fails: duplicate key), `SELECT .. LOCK IN SHARE MODE` |
//! | first miss of a model in a process | one more: the unique indexes, from `information_schema` |
//!
//! `get_or_create_many` sends per chunk a read of the stored rows, and when keys are
//! missing, one `INSERT` of them and a read of what it inserted. A lost race fails that
//! insert with a duplicate key; the chunk's missing keys are then asked for again, read
//! with a shared lock.
//!
//! The insert is a plain `INSERT`: a duplicate key fails only that statement on MySQL, not
//! the transaction, and its error names the index that fired, so a clash on another
//! unique index is told apart from a lost race. (`ON DUPLICATE KEY UPDATE` would swallow
//! both alike, and `INSERT IGNORE` would also swallow `NOT NULL` and truncation errors.)
//! After a lost race the winner's row is re-read with a shared lock: a locking read sees
//! the newest committed row even inside a `REPEATABLE READ` transaction whose snapshot
//! predates it, and a shared lock, unlike `FOR UPDATE`, is compatible with the shared lock
//! the failed insert already holds, so several losers do not deadlock each other.
//!
//! MySQL raises no error for a lookup without a unique index; it would silently let
//! concurrent callers insert duplicates. So before the first insert of each model the
//! strategy reads the table's unique indexes and refuses with [`Error::NoUniqueIndex`]
//! when none covers exactly the lookup columns. The answer is kept for the life of the
//! process once positive.

use std::any::TypeId;
use std::cell::LazyCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use diesel::backend::Backend;
use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{QueryResult, Selectable, Table};

use super::bulk::{self, Numbered};
use super::{classify, fetch, load_all, with_retries, BackendErrors, Failure, Strategy};
use crate::model::{Model, ModelSql};
use crate::statement::{
    BulkSyntax, Insert, InsertAll, Item, LockInShareMode, NoLock, NoTail, RowType, SelectByLookup,
    SelectStoredRows, ValuesStatement,
};
use crate::Error;

/// MySQL's limit on bind parameters per statement.
const MAX_BINDS: usize = 65_535;

impl<M> Strategy<M> for Mysql
where
    M: ModelSql<Mysql> + Selectable<Mysql> + FromSqlRow<RowType<M, Mysql>, Mysql>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Mysql>), Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Mysql: QueryMetadata<RowType<M, Mysql>> + QueryMetadata<(BigInt, Bool, RowType<M, Mysql>)>,
{
    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
        F: FnOnce() -> M::Defaults,
    {
        with_retries(conn, defaults, |conn, defaults| {
            if let Some(row) = fetch(conn, SelectByLookup::<M, Mysql>::new(lookup))? {
                return Ok((row, false));
            }
            let lookup_keys = unique_keys_of_lookup::<M, C>(conn)?;
            let insert = Insert::<M, Mysql, NoTail>::new(lookup, LazyCell::force(defaults));
            let failure = match conn.execute_returning_count(&insert) {
                // A plain read sees our own insert, whatever the isolation level.
                Ok(_) => {
                    return match fetch(conn, SelectByLookup::<M, Mysql>::new(lookup))? {
                        Some(row) => Ok((row, true)),
                        None => Err(Failure::Vanished),
                    }
                }
                Err(error) => error,
            };
            if !is_lost_race(&failure, &lookup_keys) {
                return Err(classify::<M, Mysql>(failure));
            }
            let winner = SelectByLookup::<M, Mysql, LockInShareMode>::new(lookup);
            match fetch(conn, winner)? {
                Some(row) => Ok((row, false)),
                None => Err(Failure::Vanished),
            }
        })
    }

    fn get_or_create_many<C>(
        conn: &mut C,
        items: &[(M::Lookup, M::Defaults)],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        C: LoadConnection<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / M::INSERT_COLUMNS.len().max(1);
        bulk::get_or_create_many(conn, items, chunk_len, |conn, batch, attempt| {
            // After a lost race, a locking read sees the winners' rows (see above).
            let mut rows = if attempt == 1 {
                load_all::<M, Numbered<M>, _, _>(
                    conn,
                    SelectStoredRows::<M, Mysql, NoLock>::new(batch),
                )?
            } else {
                let stored = SelectStoredRows::<M, Mysql, LockInShareMode>::new(batch);
                load_all::<M, Numbered<M>, _, _>(conn, stored)?
            };
            let mut found = vec![false; batch.len()];
            for (number, created, _) in &mut rows {
                *created = false;
                if let Some(flag) = usize::try_from(*number - 1)
                    .ok()
                    .and_then(|i| found.get_mut(i))
                {
                    *flag = true;
                }
            }
            let missing: Vec<usize> = (0..batch.len()).filter(|&i| !found[i]).collect();
            if missing.is_empty() {
                return Ok(rows);
            }
            let lookup_keys = unique_keys_of_lookup::<M, C>(conn)?;
            let missing_items: Vec<&Item<M>> = missing.iter().map(|&i| batch[i]).collect();
            let insert = ValuesStatement::<M, Mysql, InsertAll>::new(&missing_items);
            match conn.execute_returning_count(&insert) {
                Ok(_) => {}
                // The missing keys stay unanswered and are asked for again.
                Err(error) if is_lost_race(&error, &lookup_keys) => return Ok(rows),
                Err(error) => return Err(classify::<M, Mysql>(error)),
            }
            // Every missing key was inserted by us, once: the first of each key is created.
            let inserted = SelectStoredRows::<M, Mysql, NoLock>::new(&missing_items);
            let inserted = load_all::<M, Numbered<M>, _, _>(conn, inserted)?;
            rows.extend(bulk::renumber(inserted, &missing));
            Ok(rows)
        })
    }
}

/// Whether a failed insert lost a race: a duplicate of one of the lookup's unique indexes.
fn is_lost_race(error: &DieselError, lookup_keys: &[String]) -> bool {
    duplicate_key(error).is_some_and(|key| lookup_keys.iter().any(|index| same_key(index, &key)))
}

impl BulkSyntax for Mysql {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" <=> ");
    const ROWS_AS_UNION: bool = true;
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

/// Per model type: the names of the unique indexes whose columns are exactly the lookup
/// columns. Only non-empty answers are kept, so adding a missing index needs no restart.
static UNIQUE_KEYS: LazyLock<Mutex<HashMap<TypeId, Arc<[String]>>>> =
    LazyLock::new(Default::default);

fn unique_keys_of_lookup<M, C>(conn: &mut C) -> Result<Arc<[String]>, Failure>
where
    M: Model,
    C: LoadConnection<Backend = Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    let cache = || UNIQUE_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(keys) = cache().get(&TypeId::of::<M>()) {
        return Ok(Arc::clone(keys));
    }
    let classify = classify::<M, Mysql>;
    let (schema, table) = table_name::<M::Table>().map_err(classify)?;
    let query = UniqueIndexColumns { schema, table };
    let rows: Vec<(String, String)> = diesel::RunQueryDsl::load(query, conn).map_err(classify)?;

    let mut lookup: Vec<&str> = M::LOOKUP_COLUMNS.to_vec();
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
    if matching.is_empty() {
        return Err(Failure::Fatal(Error::NoUniqueIndex {
            table: M::TABLE_NAME,
            columns: M::LOOKUP_COLUMNS,
            source: None,
        }));
    }
    let keys: Arc<[String]> = matching.into();
    cache().insert(TypeId::of::<M>(), Arc::clone(&keys));
    Ok(keys)
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

/// `(index name, column name)` of every unique index of a table, ordered by index and
/// position.
struct UniqueIndexColumns {
    schema: Option<String>,
    table: String,
}

impl QueryId for UniqueIndexColumns {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn> diesel::RunQueryDsl<Conn> for UniqueIndexColumns {}

impl Query for UniqueIndexColumns {
    type SqlType = (Text, Text);
}

impl QueryFragment<Mysql> for UniqueIndexColumns {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(
            "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
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
