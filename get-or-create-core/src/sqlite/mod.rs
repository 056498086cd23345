//! SQLite: the select-then-insert flow it shares with PostgreSQL
//! (`flow/select_then_insert.rs`), with an insert whose conflict target names the key.
//!
//! | path | `get_or_create`, `get_or_create_with` | `update_or_create` |
//! |---|---|---|
//! | row exists | 1: `SELECT .. LIMIT 2` | 1: `UPDATE .. RETURNING` |
//! | row missing | 2: `SELECT`, `INSERT .. ON CONFLICT (<key>) DO NOTHING RETURNING` | 2: `UPDATE`, `INSERT` |
//! | lost race | 3: the two above, then `SELECT` | 4 |
//!
//! The conflict target names the key as its unique index holds it (expressions,
//! collations, a partial index's `WHERE`), so SQLite itself refuses a key no unique index
//! backs, when the statement is prepared. A clash on another unique index is raised, which
//! leaves a SQLite transaction usable; the `SELECT` that follows returns the key's row if
//! the clash was with it.
//!
//! `get_or_create_many` reads the stored keys of a chunk first (one statement: all
//! stored, done), then inserts the others in one plain multi-row insert that returns the
//! `rowid`s it created, and reads their rows with their `rowid`s: three statements when
//! some keys are new. A stored key is never offered to the insert, so it uses no
//! `AUTOINCREMENT` value and needs no unique index. SQLite runs one writer at a time, so
//! nothing can slip in between the insert's check and its write; a key stored by another
//! connection between the first read and the insert is found by the second. A chunk whose
//! insert clashes on another unique index is answered item by item.
//!
//! Needs SQLite 3.35 or newer for `RETURNING`. Each statement runs on its own outside a
//! transaction, so concurrent writers simply queue on SQLite's write lock (set a
//! `busy_timeout`). Inside a deferred transaction that has already read, SQLite refuses
//! the upgrade to a write with `database is locked` as soon as another connection has
//! written; that is reported as [`Error::TransactionMustBeRetried`] (use
//! `immediate_transaction` to avoid it).

use std::collections::{HashMap, HashSet};

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::Bool;
use diesel::sqlite::Sqlite;

mod statements;

use statements::{ExplainKeyIndex, InsertLast, InsertReturning, InsertRows, ReadKeys};
use statements::{ReadKeysRow, UpdateLast};

use crate::flow::bulk::{self, Bulk, ChunkAttempt, ItemByItem, Numbered};
use crate::flow::select_then_insert::{self, Inserter};
use crate::flow::{classify, fetch_as, load_all, BackendErrors, Dialect, Failure, Named, Stored};
use crate::session::Session;
use crate::sql::bulk::NullSafeEq;
use crate::sql::values::{RowList, ValuesStatement};
use crate::sql::{assigns_anything, insert_column_count};
use crate::sql::{RowType, Values};
use crate::strategy::{Item, Strategy};
use crate::Error;

/// SQLite's default limit on bind parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_BINDS: usize = 32_766;

impl<M> Strategy<M> for Sqlite
where
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(Bool, RowType<M, Sqlite>)> + QueryMetadata<ReadKeysRow<M>>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Sqlite>), Sqlite>,
    (i64, i64, bool, M): FromSqlRow<ReadKeysRow<M>, Sqlite>,
{
    async fn get_or_create<S>(
        session: &mut S,
        key: &M::Key,
        values: M::Values,
    ) -> Result<(M, bool), Error>
    where
        S: Session<Backend = Self>,
    {
        select_then_insert::get_or_create(session, key, move || values).await
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
        select_then_insert::get_or_create(session, key, values).await
    }

    async fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / insert_column_count::<M, Sqlite>().max(1);
        bulk::run(session, items, chunk_len, Chunk(Bulk::GetOrCreate)).await
    }

    async fn update_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        let chunk_len = MAX_BINDS / insert_column_count::<M, Sqlite>().max(1);
        bulk::run(session, items, chunk_len, Chunk(Bulk::UpdateOrCreate)).await
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
        select_then_insert::update_or_create(session, key, changes, create_values).await
    }

    async fn check_schema<S>(session: &mut S) -> Result<(), Error>
    where
        S: Session<Backend = Self>,
    {
        session
            .execute(ExplainKeyIndex::<M>::new())
            .await
            .map(|_| ())
            .map_err(|error| classify::<M, Sqlite>(error).into_error())
    }
}

impl<M> Inserter<M> for Sqlite
where
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(Bool, RowType<M, Sqlite>)>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Sqlite>), Sqlite>,
{
    /// The insert's conflict target refuses a key no unique index backs.
    async fn check_key_index<S>(_session: &mut S) -> Result<(), Failure>
    where
        S: Session<Backend = Self>,
    {
        Ok(())
    }

    async fn insert<S>(
        session: &mut S,
        key: &M::Key,
        values: Values<'_, M>,
    ) -> Result<Option<M>, Failure>
    where
        S: Session<Backend = Self>,
    {
        let insert = InsertReturning::<M>::new(key, values);
        match fetch_as::<M, (bool, M), _, _>(session, insert).await? {
            Some((true, row)) => Ok(Some(row)),
            Some((false, _)) => Err(Failure::Fatal(Error::CreatedOutsideFilter {
                table: M::table_name(),
                filter: M::FILTER.unwrap_or_default(),
            })),
            None => Ok(None),
        }
    }

    /// SQLite's insert returns nothing only for a clash with the key's own index, whose
    /// row the read that follows finds, unless it was deleted meanwhile: try again.
    async fn explain_clash<S>(
        _session: &mut S,
        _key: &M::Key,
        _values: Values<'_, M>,
    ) -> Result<Option<M>, Failure>
    where
        S: Session<Backend = Self>,
    {
        Ok(None)
    }
}

/// One attempt of a bulk chunk of `get_or_create_many` or `update_or_create_many`.
///
/// `get_or_create_many` first reads the stored keys ([`ReadKeys`], see [`read_stored`]);
/// `update_or_create_many` first checks the key's unique index ([`ExplainKeyIndex`]) and
/// sets each stored row to its last item's values ([`UpdateLast`]). Then, for the other
/// items, [`InsertRows`] (for `update_or_create_many` [`InsertLast`], each key from its
/// last item), once per set of columns the items leave to their `DEFAULT` (usually once),
/// and [`ReadKeys`]. An item's row is created by this call when an insert returned its
/// `rowid` and the item is the first of that insert's items with that row. The items of
/// an insert that clashed on another unique index (which fails the whole statement),
/// those with a `NULL` in their key, and for `update_or_create_many` those whose row
/// holds another item's values than its last's (see [`bulk::settle`]) are answered by
/// the single call.
struct Chunk(Bulk);

impl<M, S> ChunkAttempt<S, M> for Chunk
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(Bool, RowType<M, Sqlite>)> + QueryMetadata<ReadKeysRow<M>>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Sqlite>), Sqlite>,
    (i64, i64, bool, M): FromSqlRow<ReadKeysRow<M>, Sqlite>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        _attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let (plain, mut one_by_one) = bulk::split_null_keys::<M, Sqlite>(batch);
        // `get_or_create_many` reads the stored keys first and inserts only the others: a
        // stored key costs no insert and no `AUTOINCREMENT` value (SQLite's counter
        // advances for a row that `DO NOTHING` skips), and needs no unique index.
        let (mut rows, plain) = match self.0 {
            Bulk::GetOrCreate => read_stored(session, batch, plain).await?,
            Bulk::UpdateOrCreate => (Vec::new(), plain),
        };
        // Whether the items' keys may be created. `update_or_create_many` checks for the
        // key's unique index before its update: without one, it writes only when every
        // key has its one row (a key not stored needs the index, and the insert's
        // conflict target would fail only after the update had written).
        let mut create = true;
        if self.0 == Bulk::UpdateOrCreate && !plain.is_empty() {
            if let Err(error) = session.execute(ExplainKeyIndex::<M>::new()).await {
                let failure = classify::<M, Sqlite>(error);
                if !matches!(failure, Failure::Fatal(Error::NoUniqueIndex { .. })) {
                    return Err(failure);
                }
                let read = read_keys(session, batch, &plain).await?;
                let found = bulk::all_stored(read, &plain, failure)?;
                if found.len() > plain.len() {
                    return Ok(found);
                }
                create = false;
            }
        }
        let groups = bulk::group_by_defaulted::<M, Sqlite>(batch, &plain);
        let mut group_of = vec![0; batch.len()];
        for (number, group) in groups.iter().enumerate() {
            for &position in group {
                group_of[position] = number;
            }
        }
        // For `update_or_create_many`: which group's statement last wrote each row. The
        // update writes each stored row from its last item in the group; the insert, each
        // new key from the group's last item of its first spelling (see `bulk::settle`).
        let mut written_by: HashMap<i64, usize> = HashMap::new();
        if self.0 == Bulk::UpdateOrCreate {
            for (number, group) in groups.iter().enumerate() {
                let items: Vec<&Item<M>> = group.iter().map(|&i| batch[i]).collect();
                if items
                    .first()
                    .is_some_and(|first| assigns_anything::<M, Sqlite>(Values::Defaults(&first.1)))
                {
                    let update = ValuesStatement::<M, Sqlite, UpdateLast>::new(&items);
                    let rowids: Vec<i64> = load_all::<M, _, _, _>(session, update).await?;
                    written_by.extend(rowids.into_iter().map(|rowid| (rowid, number)));
                }
            }
        }
        let mut inserted: HashMap<i64, usize> = HashMap::new();
        let mut read_back = Vec::with_capacity(plain.len());
        for (number, group) in groups.into_iter().enumerate() {
            if !create {
                read_back.extend(group);
                continue;
            }
            let items: Vec<&Item<M>> = group.iter().map(|&i| batch[i]).collect();
            let inserted_rows = match self.0 {
                Bulk::GetOrCreate => {
                    let insert = ValuesStatement::<M, Sqlite, InsertRows>::new(&items);
                    load_all::<M, _, _, _>(session, insert).await
                }
                Bulk::UpdateOrCreate => {
                    let insert = ValuesStatement::<M, Sqlite, InsertLast>::new(&items);
                    load_all::<M, _, _, _>(session, insert).await
                }
            };
            let rows: Vec<(i64, bool)> = match inserted_rows {
                // A clash on another unique index fails the whole statement, naming no
                // item: these items are answered one by one, each with its row or error.
                Err(Failure::Fatal(Error::UniqueViolation { .. })) => {
                    one_by_one.extend(group);
                    continue;
                }
                rows => rows?,
            };
            if rows.iter().any(|(_, in_filter)| !in_filter) {
                return Err(Failure::Fatal(Error::CreatedOutsideFilter {
                    table: M::table_name(),
                    filter: M::FILTER.unwrap_or_default(),
                }));
            }
            inserted.extend(rows.into_iter().map(|(rowid, _)| (rowid, number)));
            read_back.extend(group);
        }
        written_by.extend(inserted.iter().map(|(&rowid, &group)| (rowid, group)));
        if !read_back.is_empty() {
            read_back.sort_unstable();
            let items: Vec<&Item<M>> = read_back.iter().map(|&i| batch[i]).collect();
            let read = ValuesStatement::<M, Sqlite, ReadKeys>::new(&items);
            let read: Vec<(i64, i64, bool, M)> = load_all::<M, _, _, _>(session, read).await?;
            let position = |number: i64| read_back.get(usize::try_from(number - 1).ok()?).copied();
            let group = |number: i64| group_of.get(position(number)?).copied();
            if self.0 == Bulk::GetOrCreate {
                let read = read
                    .into_iter()
                    .map(|(number, rowid, _, row)| (number, rowid, row));
                let read = bulk::first_of_each_row(read.collect(), &inserted, group);
                rows.extend(bulk::renumber(read, &read_back));
            } else {
                // Per row, the item whose values it holds: the writing group's last item of
                // the row (for an insert, of the spelling it stored).
                let mut writer: HashMap<i64, i64> = HashMap::new();
                let mut identities = Vec::with_capacity(read.len());
                let mut read_rows = Vec::with_capacity(read.len());
                for (number, rowid, as_spelled, row) in read {
                    let writes = position(number).is_some_and(|p| {
                        written_by.get(&rowid) == Some(&group_of[p])
                            && (as_spelled || !inserted.contains_key(&rowid))
                    });
                    if let (true, Some(chunk_number)) =
                        (writes, bulk::renumber_one(number, &read_back))
                    {
                        let entry = writer.entry(rowid).or_insert(chunk_number);
                        *entry = (*entry).max(chunk_number);
                    }
                    identities.push(rowid);
                    read_rows.push((number, rowid, row));
                }
                let answers = bulk::first_of_each_row(read_rows, &inserted, group)
                    .into_iter()
                    .zip(identities)
                    .filter_map(|((number, created, row), rowid)| {
                        Some((
                            (bulk::renumber_one(number, &read_back)?, created, row),
                            rowid,
                        ))
                    })
                    .collect();
                // Every answer comes from the read, after the call's last write.
                let reread = HashSet::new();
                let settled = bulk::settle(session, batch, answers, &writer, &reread, SingleCall);
                rows.extend(settled.await?);
            }
            one_by_one.extend(bulk::unanswered(&rows, read_back));
        }
        one_by_one.sort_unstable();
        rows.extend(bulk::one_by_one(session, batch, one_by_one, SingleCall(self.0)).await?);
        Ok(rows)
    }
}

/// The rows of the items at `positions` in `batch` whose key is stored (numbered by their
/// position in the chunk, none created), and the positions of the others.
async fn read_stored<S, M>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: Vec<usize>,
) -> Result<(Vec<Numbered<M>>, Vec<usize>), Failure>
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<ReadKeysRow<M>>,
    (i64, i64, bool, M): FromSqlRow<ReadKeysRow<M>, Sqlite>,
{
    if positions.is_empty() {
        return Ok((Vec::new(), positions));
    }
    let read = read_keys(session, batch, &positions).await?;
    Ok(bulk::found_rows(read, &positions))
}

/// The stored rows of the items at `positions` in `batch`, as [`ReadKeys`] finds them:
/// each with the item's number among them and the row's `rowid`.
async fn read_keys<S, M>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: &[usize],
) -> Result<Vec<(i64, i64, M)>, Failure>
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<ReadKeysRow<M>>,
    (i64, i64, bool, M): FromSqlRow<ReadKeysRow<M>, Sqlite>,
{
    let items: Vec<&Item<M>> = positions.iter().map(|&i| batch[i]).collect();
    let read = ValuesStatement::<M, Sqlite, ReadKeys>::new(&items);
    let read: Vec<(i64, i64, bool, M)> = load_all::<M, _, _, _>(session, read).await?;
    Ok(read
        .into_iter()
        .map(|(number, rowid, _, row)| (number, rowid, row))
        .collect())
}

/// The single call, for the items of a chunk answered one by one.
struct SingleCall(Bulk);

impl<M, S> ItemByItem<S, M> for SingleCall
where
    S: Session<Backend = Sqlite>,
    M: Stored<Sqlite>,
    Sqlite: Dialect<M> + QueryMetadata<(Bool, RowType<M, Sqlite>)>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Sqlite>), Sqlite>,
{
    async fn run(
        &mut self,
        session: &mut S,
        key: &M::Key,
        values: &M::Values,
    ) -> Result<(M, bool), Error> {
        match self.0 {
            Bulk::GetOrCreate => select_then_insert::get_or_create_item(session, key, values).await,
            Bulk::UpdateOrCreate => {
                select_then_insert::update_or_create_item(session, key, values).await
            }
        }
    }
}

impl BackendErrors for Sqlite {
    /// "UNIQUE constraint failed: users.name": SQLite names the columns.
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String> {
        let (_, columns) = info.message().split_once(": ")?;
        Some(columns.to_owned())
    }

    fn is_missing_unique_index(info: &dyn DatabaseErrorInformation) -> bool {
        info.message()
            .contains("does not match any PRIMARY KEY or UNIQUE constraint")
    }
}

impl NullSafeEq for Sqlite {
    const NULL_SAFE_EQ: Option<&'static str> = Some(" IS ");
}

impl RowList for Sqlite {
    const ROWS_AS_UNION: bool = false;
}
