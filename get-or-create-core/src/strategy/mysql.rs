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
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::query_source::QuerySource;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{QueryResult, Selectable, Table};

use super::bulk::{self, BulkResults, Chunk, Numbered};
use super::{
    classify, defaults_for_insert, fetch, load_all, Attempts, BackendErrors, Failure, LazyDefaults,
    Strategy,
};
use crate::model::{Model, ModelSql};
use crate::session::Session;
use crate::statement::{
    BulkSyntax, Insert, InsertAll, InsertValues, Item, LockInShareMode, NoLock, NoTail, RowType,
    SelectByLookup, SelectStoredRows, UpdateByLookup, ValuesStatement,
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
    async fn get_or_create_with<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Defaults,
    {
        let mut attempts = Attempts::new(session)?;
        let mut defaults = LazyDefaults::new(defaults);
        loop {
            match select_insert_select(session, lookup, &mut defaults).await {
                Ok(found) => return Ok(found),
                Err(failure) => attempts.failed(failure)?,
            }
        }
    }

    async fn update_or_create<S, F>(
        session: &mut S,
        lookup: &M::Lookup,
        changes: &M::Changes,
        create_defaults: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Defaults>,
    {
        let mut attempts = Attempts::new(session)?;
        let mut defaults = LazyDefaults::new(create_defaults);
        loop {
            match update_insert_select(session, lookup, changes, &mut defaults).await {
                Ok(found) => return Ok(found),
                Err(failure) => attempts.failed(failure)?,
            }
        }
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let mut results = BulkResults::new(items.len());
        for positions in results.chunks(MAX_BINDS / M::INSERT_COLUMNS.len().max(1)) {
            let mut chunk = Chunk::start(positions, session)?;
            while let Some(batch) = chunk.batch::<M>(items) {
                let first_attempt = chunk.attempt_number() == 1;
                let outcome = read_insert_read(session, &batch, first_attempt).await;
                chunk.record(outcome, &mut results)?;
            }
        }
        Ok(results.finish())
    }
}

/// One attempt of a single call.
async fn select_insert_select<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    defaults: &mut LazyDefaults<F, M::Defaults>,
) -> Result<(M, bool), Failure>
where
    S: Session<Backend = Mysql>,
    M: ModelSql<Mysql> + Selectable<Mysql> + FromSqlRow<RowType<M, Mysql>, Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Mysql: QueryMetadata<RowType<M, Mysql>>,
    F: FnOnce() -> M::Defaults,
{
    if let Some(row) = fetch(session, SelectByLookup::<M, Mysql>::new(lookup)).await? {
        return Ok((row, false));
    }
    let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
    let defaults: &M::Defaults = LazyCell::force(defaults);
    let insert = Insert::<M, Mysql, NoTail>::new(lookup, defaults);
    let failure = match session.execute(insert).await {
        // A plain read sees our own insert, whatever the isolation level.
        Ok(_) => {
            return match fetch(session, SelectByLookup::<M, Mysql>::new(lookup)).await? {
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
    match fetch(session, winner).await? {
        Some(row) => Ok((row, false)),
        None => Err(Failure::Vanished),
    }
}

/// One attempt of `update_or_create`: `UPDATE` (its count of matched rows says whether
/// the row exists: Diesel asks MySQL for found rather than changed rows), else a plain
/// `INSERT`; then read the row back. The unique indexes are checked first, since an
/// `UPDATE` of a lookup without one could change several rows.
async fn update_insert_select<M, S, F>(
    session: &mut S,
    lookup: &M::Lookup,
    changes: &M::Changes,
    defaults: &mut LazyDefaults<F, Option<M::Defaults>>,
) -> Result<(M, bool), Failure>
where
    S: Session<Backend = Mysql>,
    M: ModelSql<Mysql> + Selectable<Mysql> + FromSqlRow<RowType<M, Mysql>, Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Mysql: QueryMetadata<RowType<M, Mysql>>,
    F: FnOnce() -> Option<M::Defaults>,
{
    let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
    let select = || SelectByLookup::<M, Mysql>::new(lookup);
    let changed = M::changed_fields(changes) > 0;
    if changed {
        let update = UpdateByLookup::<M, Mysql, NoTail>::new(lookup, changes);
        let matched = session
            .execute(update)
            .await
            .map_err(classify::<M, Mysql>)?;
        if matched > 0 {
            return match fetch(session, select()).await? {
                Some(row) => Ok((row, false)),
                None => Err(Failure::Vanished),
            };
        }
    }
    // Unchanged, a stored row is the answer. Changed, a row the `UPDATE` left alone was
    // stored meanwhile (updated in the next attempt), or is one of several (`NULL` keys),
    // which `fetch` reports.
    if !changed || M::NULLABLE_LOOKUP {
        if let Some(row) = fetch(session, select()).await? {
            return if changed {
                Err(Failure::Vanished)
            } else {
                Ok((row, false))
            };
        }
    }
    let defaults = defaults_for_insert::<M, F>(changes, defaults);
    let insert = Insert::<M, Mysql, NoTail>::of(lookup, InsertValues::Changed(changes, defaults));
    match session.execute(insert).await {
        Ok(_) => match fetch(session, select()).await? {
            Some(row) => Ok((row, true)),
            None => Err(Failure::Vanished),
        },
        // Lost the race to create it: update the winner's row in the next attempt.
        Err(error) if is_lost_race(&error, &lookup_keys) => Err(Failure::Vanished),
        Err(error) => Err(classify::<M, Mysql>(error)),
    }
}

/// One attempt of a bulk chunk: read the stored rows; insert the missing keys, if any, and
/// read what was inserted. After a lost race, the first read takes a shared lock, which
/// sees the winners' rows (as in a single call).
async fn read_insert_read<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
    first_attempt: bool,
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session<Backend = Mysql>,
    M: ModelSql<Mysql> + Selectable<Mysql>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Mysql>), Mysql>,
    M::SelectExpression: QueryFragment<Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
    Mysql: QueryMetadata<(BigInt, Bool, RowType<M, Mysql>)>,
{
    let mut rows = if first_attempt {
        let stored = SelectStoredRows::<M, Mysql, NoLock>::new(batch);
        load_all::<M, Numbered<M>, _, _>(session, stored).await?
    } else {
        let stored = SelectStoredRows::<M, Mysql, LockInShareMode>::new(batch);
        load_all::<M, Numbered<M>, _, _>(session, stored).await?
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
    let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
    let missing_items: Vec<&Item<M>> = missing.iter().map(|&i| batch[i]).collect();
    let insert = ValuesStatement::<M, Mysql, InsertAll>::new(&missing_items);
    match session.execute(insert).await {
        Ok(_) => {}
        // The missing keys stay unanswered and are asked for again.
        Err(error) if is_lost_race(&error, &lookup_keys) => return Ok(rows),
        Err(error) => return Err(classify::<M, Mysql>(error)),
    }
    // Every missing key was inserted by us, once: the first of each key is created.
    let inserted = SelectStoredRows::<M, Mysql, NoLock>::new(&missing_items);
    let inserted = load_all::<M, Numbered<M>, _, _>(session, inserted).await?;
    rows.extend(bulk::renumber(inserted, &missing));
    Ok(rows)
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

async fn unique_keys_of_lookup<M, S>(session: &mut S) -> Result<Arc<[String]>, Failure>
where
    M: Model,
    S: Session<Backend = Mysql>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Mysql>,
{
    let cache = || UNIQUE_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(keys) = cache().get(&TypeId::of::<M>()) {
        return Ok(Arc::clone(keys));
    }
    let classify = classify::<M, Mysql>;
    let (schema, table) = table_name::<M::Table>().map_err(classify)?;
    let query = UniqueIndexColumns { schema, table };
    let rows: Vec<(String, String)> = session.load(query).await.map_err(classify)?;

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
