//! MySQL/MariaDB: no `RETURNING` through Diesel, no conflict target in
//! `ON DUPLICATE KEY UPDATE`, and reads that see an old snapshot at InnoDB's default
//! `REPEATABLE READ`.
//!
//! | path | statements |
//! |---|---|
//! | row exists | `SELECT` |
//! | row missing | `SELECT`, `INSERT`, `SELECT DATABASE(), ..` (reads back what the database filled in) |
//! | lost race, or a clash on another unique index | `SELECT`, `INSERT` (fails: duplicate key), `SELECT .. LOCK IN SHARE MODE` |
//! | first miss of a model in a process, per database | one more: the unique indexes, from `information_schema` |
//!
//! `get_or_create_many` sends per chunk one read of every item with its stored row, in key
//! order, and when keys are missing, one multi-row `INSERT` of them (each once, in key
//! order, so concurrent bulk calls wait for each other rather than deadlock, and InnoDB
//! allocates exactly one `AUTO_INCREMENT` value per row) and a read of what it inserted.
//! A lost race fails that insert with a duplicate key; the chunk's missing keys are then
//! read again with a shared lock, and those still missing answered one by one (a
//! multi-row insert that fails takes back its earlier rows, and callers waiting on them
//! would deadlock).
//!
//! `update_or_create` checks the unique indexes before its `UPDATE`, which could otherwise
//! change several rows. When none can back the key (none at all, or a `function`, `collate`
//! or `where` key), a stored row is still found: read alone, it is updated (a matched count
//! other than 1 is a row deleted meanwhile, or `MultipleRowsMatch`); only creating needs
//! the index.
//!
//! The insert is a plain `INSERT`: a duplicate key fails only that statement on MySQL, not
//! the transaction. The key's row is then read with a shared lock: when the clash was with
//! it, on whichever unique index, it is the answer; when no row of the key is stored, the
//! index the error names tells a different row's clash (a `UniqueViolation`) from a key
//! deleted meanwhile (try again). (`ON DUPLICATE KEY UPDATE` would swallow every clash
//! alike, and `INSERT IGNORE` would also swallow `NOT NULL` and truncation errors.) A
//! locking read sees the newest committed row even inside a `REPEATABLE READ` transaction
//! whose snapshot predates it, and a shared lock, unlike `FOR UPDATE`, is compatible with
//! the shared lock the failed insert already holds, so several losers do not deadlock.

use std::cell::LazyCell;

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::mysql::Mysql;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, HasSqlType, Nullable, Text};
use diesel::Selectable;

mod statements;
mod unique_keys;

use statements::{Insert, InsertRows, LockInShareMode, ReadAll, ReadBack, ReadInserted};
use statements::{Update, UpdateJoin};
use unique_keys::{check_database, is_lost_race, unique_keys_of_lookup};

use crate::flow::bulk::{self, Bulk, ChunkAttempt, ItemByItem, KeyByKey, Numbered};
use crate::flow::{classify, fetch, fetch_as, load_all, retried, Attempt};
use crate::flow::{Dialect, Failure};
use crate::flow::{LazyValues, Stored, ValuesSource};
use crate::model::Model;
use crate::session::Session;
use crate::sql::bulk::NullSafeEq;
use crate::sql::values::{RowList, ValuesStatement};
use crate::sql::{assigns_anything, insert_column_count};
use crate::sql::{count_changes, Changed, NoLock, RowType, SelectByKey, Values};
use crate::strategy::{Item, Strategy};
use crate::Error;

/// MySQL's limit on bind parameters per statement.
const MAX_BINDS: usize = 65_535;

impl<M> Strategy<M> for Mysql
where
    M: Stored<Mysql>,
    Option<M>: Selectable<Mysql>,
    Mysql: Dialect<M>
        + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>
        + QueryMetadata<(
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        )> + QueryMetadata<(BigInt, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
    ReadAllRow<M>: FromSqlRow<
        (
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        ),
        Mysql,
    >,
    (i64, M): FromSqlRow<(BigInt, RowType<M, Mysql>), Mysql>,
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
        let attempt = SelectInsertSelect::<M, _> {
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

    async fn update_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / insert_column_count::<M, Mysql>().max(1);
        bulk::run(session, items, chunk_len, ReadUpdateInsertRead).await
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
        let changes = Values::Changed(changes, None);
        let attempt = UpdateInsertSelect::<M, F> {
            key,
            changes,
            changed: count_changes::<M, Mysql>(changes),
            values: LazyValues::new(create_values),
        };
        retried(session, attempt).await
    }

    async fn check_schema<S>(session: &mut S) -> Result<(), Error>
    where
        S: Session<Backend = Self>,
    {
        unique_keys::check::<M, S>(session)
            .await
            .map(|_| ())
            .map_err(Failure::into_error)
    }
}

/// One attempt of `get_or_create`: read; insert, then read back; after a clash, read the
/// row with a shared lock.
struct SelectInsertSelect<'a, M: Model, V> {
    key: &'a M::Key,
    values: V,
}

impl<M, V, S> Attempt<S> for SelectInsertSelect<'_, M, V>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
    V: ValuesSource<M>,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let key = self.key;
        if let Some(row) = fetch(session, SelectByKey::<M, Mysql>::new(key)).await? {
            return Ok((row, false));
        }
        let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
        let values: &M::Values = self.values.get();
        let insert = Insert::<M>::new(key, Values::Defaults(values));
        match session.execute(insert).await {
            Ok(_) => read_back::<M, S>(session, key).await.map(|row| (row, true)),
            Err(error) => match clash::<M, S>(session, key, error, &lookup_keys).await? {
                Some(row) => Ok((row, false)),
                None => Err(Failure::RowChanged),
            },
        }
    }
}

/// The row this call just inserted, read back with what the database filled in; its
/// database's unique indexes checked if this is the first row of `M` there. A plain read
/// sees our own insert, whatever the isolation level.
async fn read_back<M, S>(session: &mut S, key: &M::Key) -> Result<M, Failure>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
{
    match fetch_as::<M, (Option<String>, M), _, _>(session, ReadBack::<M>::new(key)).await? {
        Some((database, row)) => {
            check_database::<M, S>(session, database.as_deref().unwrap_or_default()).await?;
            Ok(row)
        }
        None => Err(Failure::RowChanged),
    }
}

/// An insert failed with `error`: when it is a duplicate key, reads the key's row with a
/// shared lock. The row when there is one (the clash was with it, on whichever index);
/// `None` when the clash was on the key's own index and the row is gone (try again);
/// otherwise the error, a [`Error::UniqueViolation`] naming the other index.
async fn clash<M, S>(
    session: &mut S,
    key: &M::Key,
    error: DieselError,
    lookup_keys: &[String],
) -> Result<Option<M>, Failure>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M>,
{
    if !is_duplicate(&error) {
        return Err(classify::<M, Mysql>(error));
    }
    let winner = SelectByKey::<M, Mysql, LockInShareMode>::new(key);
    match fetch(session, winner).await? {
        Some(row) => Ok(Some(row)),
        None if is_lost_race(&error, lookup_keys) => Ok(None),
        None => Err(classify::<M, Mysql>(error)),
    }
}

/// Whether an error is a duplicate key.
fn is_duplicate(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// One attempt of `update_or_create`: `UPDATE` (its count of matched rows says whether
/// the row exists: Diesel asks MySQL for found rather than changed rows), else a plain
/// `INSERT`; then read the row back. The unique indexes are checked first, since an
/// `UPDATE` of a lookup without one could change several rows.
struct UpdateInsertSelect<'a, M: Model, F> {
    key: &'a M::Key,
    changes: Values<'a, M>,
    changed: Changed,
    values: LazyValues<F, Option<M::Values>>,
}

/// `update_or_create`'s `UPDATE` of `key` to `changes`, then the key's row read back:
/// `None` when the `UPDATE` matched no row. Several rows of the key (a `NULL` key, or a
/// key no unique index backs) are [`Error::MultipleRowsMatch`], which the read reports.
async fn update_then_read<M, S>(
    session: &mut S,
    key: &M::Key,
    changes: Values<'_, M>,
) -> Result<Option<M>, Failure>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M>,
{
    let update = Update::<M>::new(key, changes);
    let matched = session
        .execute(update)
        .await
        .map_err(classify::<M, Mysql>)?;
    if matched == 0 {
        return Ok(None);
    }
    match fetch(session, SelectByKey::<M, Mysql>::new(key)).await? {
        Some(row) => Ok(Some(row)),
        None => Err(Failure::RowChanged),
    }
}

impl<M, F, S> Attempt<S> for UpdateInsertSelect<'_, M, F>
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
    F: FnOnce() -> Option<M::Values> + Send,
{
    type Output = (M, bool);

    async fn run(&mut self, session: &mut S) -> Result<(M, bool), Failure> {
        let (key, changes) = (self.key, self.changes);
        let select = || SelectByKey::<M, Mysql>::new(key);
        let changed = !self.changed.none();
        let lookup_keys = match unique_keys_of_lookup::<M, S>(session).await {
            Ok(keys) => keys,
            // No unique index the key can use (none at all, or the key is a `function` or
            // `where` key MariaDB cannot index): only creating needs one. A key stored
            // once is updated; several rows are `MultipleRowsMatch`.
            Err(
                failure @ Failure::Fatal(
                    Error::NoUniqueIndex { .. } | Error::KeyNotSupported { .. },
                ),
            ) => {
                return match fetch(session, select()).await? {
                    None => Err(failure),
                    Some(row) if !changed => Ok((row, false)),
                    // Matched no row: deleted since the read, so try again.
                    Some(_) => update_then_read::<M, S>(session, key, changes)
                        .await?
                        .map(|row| (row, false))
                        .ok_or(Failure::RowChanged),
                };
            }
            Err(failure) => return Err(failure),
        };
        if changed {
            if let Some(row) = update_then_read::<M, S>(session, key, changes).await? {
                return Ok((row, false));
            }
        }
        // Unchanged, a stored row is the answer. Changed, a row the `UPDATE` left alone
        // was stored meanwhile (updated in the next attempt), or is one of several
        // (`NULL` keys), which `fetch` reports.
        if !changed || M::NULLABLE_KEY {
            if let Some(row) = fetch(session, select()).await? {
                return if changed {
                    Err(Failure::RowChanged)
                } else {
                    Ok((row, false))
                };
            }
        }
        let insert = Insert::<M>::new(
            key,
            self.changes
                .for_insert(self.changed, || LazyCell::force(&self.values).as_ref()),
        );
        match session.execute(insert).await {
            Ok(_) => read_back::<M, S>(session, key).await.map(|row| (row, true)),
            Err(error) => match clash::<M, S>(session, key, error, &lookup_keys).await? {
                // Stored meanwhile: update it in the next attempt.
                Some(_) if changed => Err(Failure::RowChanged),
                Some(row) => Ok((row, false)),
                None => Err(Failure::RowChanged),
            },
        }
    }
}

/// One attempt of a bulk chunk: read every item with its stored row (in key order), insert
/// the missing keys, each once, in that order, and read what was inserted. After a lost
/// race (or a deadlock), the first read takes a shared lock, which sees the winners' rows
/// (as in a single call), and the items still missing are answered one by one.
struct ReadInsertRead;

/// A row of [`ReadAll`]: the item's position, whether it is the first and whether the
/// last of its key, the database, the stored row if any.
type ReadAllRow<M> = (i64, bool, bool, Option<String>, Option<M>);

impl<M, S> ChunkAttempt<S, M> for ReadInsertRead
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Option<M>: Selectable<Mysql>,
    Mysql: Dialect<M>
        + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>
        + QueryMetadata<(
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        )> + QueryMetadata<(BigInt, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
    ReadAllRow<M>: FromSqlRow<
        (
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        ),
        Mysql,
    >,
    (i64, M): FromSqlRow<(BigInt, RowType<M, Mysql>), Mysql>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let all: Vec<ReadAllRow<M>> = if attempt == 1 {
            let read = ValuesStatement::<M, Mysql, ReadAll<NoLock>>::new(batch);
            load_all::<M, _, _, _>(session, read).await?
        } else {
            let read = ValuesStatement::<M, Mysql, ReadAll<LockInShareMode>>::new(batch);
            load_all::<M, _, _, _>(session, read).await?
        };
        let database = all
            .first()
            .and_then(|(_, _, _, database, _)| database.clone());
        let mut rows = Vec::with_capacity(batch.len());
        // The missing items in key order, and whether each is the first of its key.
        let mut missing: Vec<(usize, bool)> = Vec::new();
        for (number, first, _, _, row) in all {
            match row {
                Some(row) => rows.push((number, false, row)),
                None => {
                    let position = usize::try_from(number - 1).unwrap_or(usize::MAX);
                    missing.push((position, first));
                }
            }
        }
        if missing.is_empty() {
            return Ok(rows);
        }
        let lookup_keys = unique_keys_of_lookup::<M, S>(session).await?;
        check_database::<M, S>(session, database.as_deref().unwrap_or_default()).await?;
        // After a lost race or a deadlock, the missing items go one by one. A multi-row
        // insert that fails on one key takes back the rows it wrote before it, and the
        // callers waiting on those rows' locks then deadlock (each holds the shared lock
        // that the other's insert waits for); under heavy overlap that repeats attempt
        // after attempt. A single row's insert cannot take back another row.
        if attempt > 1 {
            let positions: Vec<usize> = missing.iter().map(|(position, _)| *position).collect();
            rows.extend(
                bulk::one_by_one(session, batch, positions, SingleCall(Bulk::GetOrCreate)).await?,
            );
            return Ok(rows);
        }
        let firsts: Vec<&Item<M>> = missing
            .iter()
            .filter(|(_, first)| *first)
            .filter_map(|(position, _)| batch.get(*position).copied())
            .collect();
        let insert = ValuesStatement::<M, Mysql, InsertRows>::new(&firsts);
        match session.execute(insert).await {
            Ok(_) => {}
            // The missing keys stay unanswered and are asked for again.
            Err(error) if is_lost_race(&error, &lookup_keys) => return Ok(rows),
            // A clash on another unique index names no item: answer them one by one.
            Err(error) if is_duplicate(&error) => {
                let positions: Vec<usize> = missing.iter().map(|(position, _)| *position).collect();
                rows.extend(
                    bulk::one_by_one(session, batch, positions, SingleCall(Bulk::GetOrCreate))
                        .await?,
                );
                return Ok(rows);
            }
            Err(error) => return Err(classify::<M, Mysql>(error)),
        }
        // Every missing key was inserted by us, once: its first item is the creator.
        let missing_items: Vec<&Item<M>> = missing
            .iter()
            .filter_map(|(position, _)| batch.get(*position).copied())
            .collect();
        let read = ValuesStatement::<M, Mysql, ReadInserted>::new(&missing_items);
        let inserted: Vec<(i64, M)> = load_all::<M, _, _, _>(session, read).await?;
        for (number, row) in inserted {
            let Some(&(position, first)) = usize::try_from(number - 1)
                .ok()
                .and_then(|index| missing.get(index))
            else {
                continue;
            };
            rows.push((i64::try_from(position).unwrap_or(i64::MAX) + 1, first, row));
        }
        Ok(rows)
    }
}

/// One attempt of an `update_or_create_many` chunk: read every item with its stored row
/// (in key order); set each stored key to its last item's values ([`UpdateJoin`], whose
/// count of matched rows must be the count of those keys, or a row was deleted meanwhile
/// and the chunk is tried again); insert each missing key once, from its last item; and
/// read every item's row. An insert that clashes (a concurrent caller stored a missing
/// key, or another unique index) inserts nothing: the missing keys then go one at a time
/// ([`KeyByKey`]), as the whole chunk does when it is tried again after a deadlock. Items
/// with a `NULL` in their key are answered by the single call, whose `UPDATE` changes at
/// most one row.
struct ReadUpdateInsertRead;

impl<M, S> ChunkAttempt<S, M> for ReadUpdateInsertRead
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Option<M>: Selectable<Mysql>,
    Mysql: Dialect<M>
        + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>
        + QueryMetadata<(
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        )> + QueryMetadata<(BigInt, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
    ReadAllRow<M>: FromSqlRow<
        (
            BigInt,
            Bool,
            Bool,
            Nullable<Text>,
            RowType<Option<M>, Mysql>,
        ),
        Mysql,
    >,
    (i64, M): FromSqlRow<(BigInt, RowType<M, Mysql>), Mysql>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let (plain, one_by_one) = bulk::split_null_keys::<M, Mysql>(batch);
        let mut rows = Vec::with_capacity(batch.len());
        if !plain.is_empty() {
            let items: Vec<&Item<M>> = plain.iter().map(|&i| batch[i]).collect();
            let read = ValuesStatement::<M, Mysql, ReadAll<NoLock>>::new(&items);
            let all: Vec<ReadAllRow<M>> = load_all::<M, _, _, _>(session, read).await?;
            let database = all
                .first()
                .and_then(|(_, _, _, database, _)| database.clone());
            // Several rows of one key (no unique index backs it): the driver reports
            // `MultipleRowsMatch`, before anything is written. (An item's rows come
            // together: the read is in key order, then item order.)
            if all.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                let found = all.into_iter().filter_map(|(number, _, _, _, row)| {
                    Some((bulk::renumber_one(number, &plain)?, false, row?))
                });
                return Ok(found.collect());
            }
            // After a deadlock, a lost race or a row deleted under the update, the keys go
            // one at a time: bulk statements whose key sets overlap can deadlock again on
            // InnoDB's gap locks, attempt after attempt, and a single row's cannot.
            if attempt > 1 {
                let items = all.iter().filter_map(|(number, first, _, _, _)| {
                    let position = *plain.get(usize::try_from(number - 1).ok()?)?;
                    Some((position, *first))
                });
                let keys = key_by_key(items);
                rows = keys.run(session, batch, SingleCall).await?;
                rows.extend(
                    bulk::one_by_one(session, batch, one_by_one, SingleCall(Bulk::UpdateOrCreate))
                        .await?,
                );
                return Ok(rows);
            }
            // Positions in `batch`: the last item of each stored key; each missing item,
            // whether it is the first and whether the last of its key.
            let mut stored_last = Vec::new();
            let mut missing: Vec<(usize, bool, bool)> = Vec::new();
            for (number, first, last, _, row) in all {
                let Some(&position) = usize::try_from(number - 1).ok().and_then(|i| plain.get(i))
                else {
                    continue;
                };
                match row {
                    Some(_) if last => stored_last.push(position),
                    Some(_) => {}
                    None => missing.push((position, first, last)),
                }
            }
            // A missing key needs a unique index that MariaDB can use: checked before the
            // update writes anything.
            if !missing.is_empty() {
                unique_keys_of_lookup::<M, S>(session).await?;
                check_database::<M, S>(session, database.as_deref().unwrap_or_default()).await?;
            }
            stored_last.sort_unstable();
            for group in bulk::group_by_defaulted::<M, Mysql>(batch, &stored_last) {
                let items: Vec<&Item<M>> = group.iter().map(|&i| batch[i]).collect();
                if !items
                    .first()
                    .is_some_and(|first| assigns_anything::<M, Mysql>(Values::Defaults(&first.1)))
                {
                    continue;
                }
                let update = ValuesStatement::<M, Mysql, UpdateJoin>::new(&items);
                let matched = session
                    .execute(update)
                    .await
                    .map_err(classify::<M, Mysql>)?;
                if matched < items.len() {
                    return Err(Failure::RowChanged);
                }
            }
            let mut created = vec![false; batch.len()];
            let mut by_key = None;
            if !missing.is_empty() {
                let lasts: Vec<&Item<M>> = missing
                    .iter()
                    .filter(|(_, _, last)| *last)
                    .map(|&(position, _, _)| batch[position])
                    .collect();
                let insert = ValuesStatement::<M, Mysql, InsertRows>::new(&lasts);
                match session.execute(insert).await {
                    // Every missing key was inserted by us, once: its first item is the
                    // creator.
                    Ok(_) => {
                        for &(position, first, _) in &missing {
                            created[position] = first;
                        }
                    }
                    // A concurrent caller stored a missing key (a lost race), or the
                    // insert clashed on another unique index, which names no item. The
                    // insert wrote nothing, and the stored keys are updated: the missing
                    // keys go one at a time, each still written once.
                    Err(error) if is_duplicate(&error) => {
                        let items = missing
                            .iter()
                            .map(|&(position, first, _)| (position, first));
                        by_key = Some(key_by_key(items));
                    }
                    Err(error) => return Err(classify::<M, Mysql>(error)),
                }
            }
            let mut answered_apart = one_by_one.clone();
            if by_key.is_some() {
                answered_apart.extend(missing.iter().map(|&(position, _, _)| position));
            }
            answered_apart.sort_unstable();
            let read_back: Vec<usize> = plain
                .iter()
                .copied()
                .filter(|position| answered_apart.binary_search(position).is_err())
                .collect();
            if !read_back.is_empty() {
                let items: Vec<&Item<M>> = read_back.iter().map(|&i| batch[i]).collect();
                let read = ValuesStatement::<M, Mysql, ReadInserted>::new(&items);
                let read: Vec<(i64, M)> = load_all::<M, _, _, _>(session, read).await?;
                let read = read.into_iter().filter_map(|(number, row)| {
                    let position = *read_back.get(usize::try_from(number - 1).ok()?)?;
                    Some((number, created[position], row))
                });
                rows = bulk::renumber(read.collect(), &read_back);
            }
            if let Some(by_key) = by_key {
                rows.extend(by_key.run(session, batch, SingleCall).await?);
            }
        }
        let single = SingleCall(Bulk::UpdateOrCreate);
        rows.extend(bulk::one_by_one(session, batch, one_by_one, single).await?);
        Ok(rows)
    }
}

/// Items one key at a time, from their read: each item's position in the chunk and
/// whether it is the first of its key. Which items share a key is the database's answer:
/// the read comes in key order, each key's items together from the first.
fn key_by_key(items: impl IntoIterator<Item = (usize, bool)>) -> KeyByKey {
    let mut key = 0;
    let items = items.into_iter().map(|(position, is_first)| {
        key += usize::from(is_first);
        (position, key)
    });
    KeyByKey::from_keys(items.collect::<Vec<_>>())
}

/// The single call, for the items of a chunk answered one by one.
struct SingleCall(Bulk);

impl<M, S> ItemByItem<S, M> for SingleCall
where
    S: Session<Backend = Mysql>,
    M: Stored<Mysql>,
    Mysql: Dialect<M> + QueryMetadata<(Nullable<Text>, RowType<M, Mysql>)>,
    (Option<String>, M): FromSqlRow<(Nullable<Text>, RowType<M, Mysql>), Mysql>,
{
    async fn run(
        &mut self,
        session: &mut S,
        key: &M::Key,
        values: &M::Values,
    ) -> Result<(M, bool), Error> {
        match self.0 {
            Bulk::GetOrCreate => retried(session, SelectInsertSelect::<M, _> { key, values }).await,
            Bulk::UpdateOrCreate => {
                let changes = Values::Defaults(values);
                let attempt = UpdateInsertSelect::<M, _> {
                    key,
                    changes,
                    changed: count_changes::<M, Mysql>(changes),
                    values: LazyValues::new(|| None),
                };
                retried(session, attempt).await
            }
        }
    }
}

impl NullSafeEq for Mysql {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" <=> ");
}

impl RowList for Mysql {
    const ROWS_AS_UNION: bool = true;

    /// A binary value (`BINARY`, `VARBINARY`, `BLOB`): diesel-async's driver sends its
    /// bytes as a string, and a `UNION ALL` column of strings is text in the connection's
    /// character set: a key whose bytes are not UTF-8 never matched its stored row, and
    /// such a value could not be written through the relation ("Incorrect string value").
    fn binary_input<ST>() -> bool
    where
        Self: HasSqlType<ST>,
    {
        matches!(
            <Mysql as HasSqlType<ST>>::metadata(&mut ()),
            diesel::mysql::MysqlType::Blob
        )
    }
}
