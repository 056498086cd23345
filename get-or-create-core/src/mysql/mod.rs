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

use std::cell::LazyCell;

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::mysql::Mysql;
use diesel::sql_types::{BigInt, Bool};

mod statements;
mod unique_keys;

use statements::{Insert, InsertAll, LockInShareMode, SelectStoredRows, Update};
use unique_keys::{is_lost_race, unique_keys_of_lookup};

use crate::flow::bulk::{self, ChunkAttempt, Numbered};
use crate::flow::{
    classify, fetch, load_all, retried, Attempt, Dialect, Failure, LazyValues, Stored,
};
use crate::model::Model;
use crate::session::Session;
use crate::sql::bulk::NullSafeEq;
use crate::sql::values::{insert_column_count, RowList, ValuesStatement};
use crate::sql::Values;
use crate::sql::{count_changes, Changed, NoLock, RowType, SelectByKey};
use crate::strategy::{Item, Strategy};
use crate::Error;

/// MySQL's limit on bind parameters per statement.
const MAX_BINDS: usize = 65_535;

impl<M> Strategy<M> for Mysql
where
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(BigInt, Bool, RowType<M, Mysql>)>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Mysql>), Mysql>,
{
    async fn get_or_create<S>(
        session: &mut S,
        key: &M::Key,
        values: M::Values,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
    {
        Self::get_or_create_with(session, key, move || values).await
    }

    async fn get_or_create_with<S, F>(
        session: &mut S,
        key: &M::Key,
        values: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Values + Send,
    {
        let attempt = SelectInsertSelect::<M, F> {
            key,
            values: LazyValues::new(values),
        };
        retried(session, attempt).await
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / insert_column_count::<M, Mysql>().max(1);
        bulk::run(session, items, chunk_len, ReadInsertRead).await
    }

    async fn update_or_create<S, F>(
        session: &mut S,
        key: &M::Key,
        changes: &M::Changeset,
        create_values: F,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Values> + Send,
    {
        let attempt = UpdateInsertSelect::<M, F> {
            key,
            changes,
            changed: count_changes::<M, Mysql>(changes),
            values: LazyValues::new(create_values),
        };
        retried(session, attempt).await
    }
}

/// One attempt of `get_or_create`: read, insert, read back; after a lost race, read the
/// winner's row with a shared lock.
struct SelectInsertSelect<'a, M: Model, F> {
    key: &'a M::Key,
    values: LazyValues<F, M::Values>,
}

impl<M, F, S> Attempt<S> for SelectInsertSelect<'_, M, F>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M>,
    F: FnOnce() -> M::Values + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let key = self.key;
        if let Some(row) = fetch(session, SelectByKey::<M, Mysql>::new(key)).await? {
            return Ok((row, false));
        }
        let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
        let values: &M::Values = LazyCell::force(&self.values);
        let insert = Insert::<M>::new(key, Values::Defaults(values));
        let failure = match session.execute(insert).await {
            // A plain read sees our own insert, whatever the isolation level.
            Ok(_) => {
                return match fetch(session, SelectByKey::<M, Mysql>::new(key)).await? {
                    Some(row) => Ok((row, true)),
                    None => Err(Failure::RowChanged),
                }
            }
            Err(error) => error,
        };
        if !is_lost_race(&failure, &lookup_keys) {
            return Err(classify::<M, Mysql>(failure));
        }
        let winner = SelectByKey::<M, Mysql, LockInShareMode>::new(key);
        match fetch(session, winner).await? {
            Some(row) => Ok((row, false)),
            None => Err(Failure::RowChanged),
        }
    }
}

/// One attempt of `update_or_create`: `UPDATE` (its count of matched rows says whether
/// the row exists), else a plain `INSERT`; then read the row back. The unique indexes are
/// checked first, since an `UPDATE` of a lookup without one could change several rows.
struct UpdateInsertSelect<'a, M: Model, F> {
    key: &'a M::Key,
    changes: &'a M::Changeset,
    changed: Changed,
    values: LazyValues<F, Option<M::Values>>,
}

impl<M, F, S> Attempt<S> for UpdateInsertSelect<'_, M, F>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let (key, changes) = (self.key, self.changes);
        let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
        let select = || SelectByKey::<M, Mysql>::new(key);
        let changed = !self.changed.none();
        if changed {
            let update = Update::<M>::new(key, changes);
            let matched = session
                .execute(update)
                .await
                .map_err(classify::<M, Mysql>)?;
            if matched > 0 {
                return match fetch(session, select()).await? {
                    Some(row) => Ok((row, false)),
                    None => Err(Failure::RowChanged),
                };
            }
        }
        // Unchanged, a stored row is the answer. Changed, a row the `UPDATE` left
        // alone was stored meanwhile (updated in the next attempt), or is one of
        // several (`NULL` keys), which `fetch` reports.
        if !changed || M::NULLABLE_KEY {
            if let Some(row) = fetch(session, select()).await? {
                return if changed {
                    Err(Failure::RowChanged)
                } else {
                    Ok((row, false))
                };
            }
        }
        let defaults = if self.changed.all() {
            None
        } else {
            LazyCell::force(&self.values).as_ref()
        };
        let insert = Insert::<M>::new(key, Values::Changed(changes, defaults));
        match session.execute(insert).await {
            Ok(_) => match fetch(session, select()).await? {
                Some(row) => Ok((row, true)),
                None => Err(Failure::RowChanged),
            },
            // Lost the race to create it: update the winner's row in the next attempt.
            Err(error) if is_lost_race(&error, &lookup_keys) => Err(Failure::RowChanged),
            Err(error) => Err(classify::<M, Mysql>(error)),
        }
    }
}

/// One attempt of a bulk chunk: read the stored rows; insert the missing keys, if any, and
/// read what was inserted. After a lost race, the first read takes a shared lock, which
/// sees the winners' rows (as in a single call).
struct ReadInsertRead;

impl<M, S> ChunkAttempt<S, M> for ReadInsertRead
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(BigInt, Bool, RowType<M, Mysql>)>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Mysql>), Mysql>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let mut rows = if attempt == 1 {
            let stored = SelectStoredRows::<M, NoLock>::new(batch);
            load_all::<M, Numbered<M>, _, _>(session, stored).await?
        } else {
            let stored = SelectStoredRows::<M, LockInShareMode>::new(batch);
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
        let inserted = SelectStoredRows::<M, NoLock>::new(&missing_items);
        let inserted = load_all::<M, Numbered<M>, _, _>(session, inserted).await?;
        rows.extend(renumber(inserted, &missing));
        Ok(rows)
    }
}

/// The rows of `numbered`, renumbered from positions among `subset` to positions among
/// the attempt's items, where `subset[k]` is the 0-based position of the `k + 1`th.
fn renumber<M>(numbered: Vec<Numbered<M>>, subset: &[usize]) -> Vec<Numbered<M>> {
    numbered
        .into_iter()
        .filter_map(|(number, created, row)| {
            let position = subset.get(usize::try_from(number - 1).ok()?)?;
            Some((i64::try_from(*position).ok()? + 1, created, row))
        })
        .collect()
}

impl NullSafeEq for Mysql {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" <=> ");
}

impl RowList for Mysql {
    const ROWS_AS_UNION: bool = true;
}
