//! PostgreSQL: the select-then-insert flow it shares with SQLite
//! (`flow/select_then_insert.rs`), with an insert that never raises on a clash.
//!
//! | path | `get_or_create`, `get_or_create_with` | `update_or_create` |
//! |---|---|---|
//! | row exists | 1: `SELECT .. LIMIT 2` | 1: `UPDATE .. RETURNING` |
//! | row missing | 2: `SELECT`, `INSERT .. ON CONFLICT DO NOTHING RETURNING` | 2: `UPDATE`, `INSERT` |
//! | lost race | 3: the two above, then `SELECT` | 4: the two above, then the `UPDATE` again |
//! | clash with another row on another unique index | 4 (7 inside a transaction): the `INSERT` again without `ON CONFLICT`, in a savepoint inside a transaction, to name the constraint | inside a transaction, on a table with another unique index: the `UPDATE` in a savepoint (2 more), so that its clash leaves the transaction usable |
//! | first insert of a model in a process, per table | two more: the table's oid, and an `EXPLAIN` (see `unique_key.rs`) | |
//!
//! A hit is the cheapest statement there is: a prepared `SELECT` on the key's index, which
//! takes no lock but the table's `AccessShareLock` and writes nothing. (The one-statement
//! alternative, a CTE that inserts only when the lookup finds nothing, costs every hit
//! the `RowExclusiveLock` of a write on the table and all its indexes, and its two reads
//! must share one snapshot, which Citus does not give them.)
//!
//! The insert has no conflict target, so a clash on any unique index does nothing and
//! raises no error: the caller's transaction is never aborted. The `SELECT` that follows
//! returns the key's row whichever index clashed; only when it finds none (the clash was
//! with a different row, or the row was deleted meanwhile) is the insert repeated
//! without `ON CONFLICT`, which names the constraint or creates the row.
//!
//! `get_or_create_many` sends two statements per chunk of 10,000 items ([`InsertMissing`],
//! [`ReadKeys`]), each column one array parameter, and one pair more for the items of a
//! chunk that lost a race.
//!
//! # Citus
//!
//! Every statement is a single `SELECT`, `INSERT` or `UPDATE` on one table, with no CTE
//! and no correlated subquery: none relies on two reads of a table in different shards
//! sharing a snapshot, and all of them are plain router or pushed-down statements on a
//! distributed table whose unique keys include the distribution column (as Citus
//! requires of every unique index). The bulk insert reads the table as an anti-join
//! (`LEFT JOIN .. WHERE .. IS NULL`), which Citus runs shard by shard. The one statement
//! that reads a table twice is `update_or_create`'s `UPDATE`, whose guard counts the key's
//! rows in an uncorrelated subquery: both reads filter on the same key, so on Citus they
//! go to the key's one shard, in one statement there. (Not tested on a Citus cluster.)

use std::collections::{HashMap, HashSet};

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool, Oid, Text};
use diesel::Table;

mod input;
mod statements;
mod unique_key;

use statements::{DoNothing, Insert, InsertMissing, KeyGroups, Raise, ReadKeys, UpdateFromInput};

use crate::flow::bulk::{self, Bulk, ChunkAttempt, ItemByItem, KeyByKey, Numbered};
use crate::flow::select_then_insert::{self, Inserter};
use crate::flow::{classify, load_all, BackendErrors, Dialect, Failure, Named, Stored};
use crate::model::{Columns, Model};
use crate::session::Session;
use crate::sql::bulk::{NullSafeEq, Occurrence};
use crate::sql::returning::UpdateReturning;
use crate::sql::{assigns_anything, insert_column_count, RowType, Values};
use crate::strategy::{Item, Strategy};
use crate::Error;

/// Items per bulk chunk: each column is one array parameter whatever the count, so the
/// limit only bounds the size of one statement and of the locks it holds.
const CHUNK_LEN: usize = 10_000;

/// PostgreSQL's limit on the bind parameters of one statement, which bounds a chunk sent
/// as rows (a model with an array column, see `input.rs`).
const MAX_BINDS: usize = 65_535;

/// The items per chunk of a bulk call: see [`CHUNK_LEN`] and [`MAX_BINDS`].
fn chunk_len<M: Columns<Pg>>() -> usize {
    if input::sent_as_rows::<M>() {
        CHUNK_LEN.min(MAX_BINDS / insert_column_count::<M, Pg>().max(1))
    } else {
        CHUNK_LEN
    }
}

impl<M> Strategy<M> for Pg
where
    M: Stored<Pg> + Model<Table: Table<PrimaryKey: QueryFragment<Pg> + Send>>,
    Pg: Dialect<M>
        + QueryMetadata<(Oid, Bool, RowType<M, Pg>)>
        + QueryMetadata<(BigInt, Text, RowType<M, Pg>)>,
    (u32, bool, M): FromSqlRow<(Oid, Bool, RowType<M, Pg>), Pg>,
    (i64, String, M): FromSqlRow<(BigInt, Text, RowType<M, Pg>), Pg>,
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
        bulk::run(session, items, chunk_len::<M>(), Chunk(Bulk::GetOrCreate)).await
    }

    async fn update_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        S: Session<Backend = Self>,
    {
        bulk::run(
            session,
            items,
            chunk_len::<M>(),
            Chunk(Bulk::UpdateOrCreate),
        )
        .await
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
        unique_key::check::<M, S>(session)
            .await
            .map(|_| ())
            .map_err(Failure::into_error)
    }
}

impl<M> Inserter<M> for Pg
where
    M: Stored<Pg>,
    Pg: Dialect<M> + QueryMetadata<(Oid, Bool, RowType<M, Pg>)>,
    (u32, bool, M): FromSqlRow<(Oid, Bool, RowType<M, Pg>), Pg>,
{
    async fn check_key_index<S>(session: &mut S) -> Result<(), Failure>
    where
        S: Session<Backend = Self>,
    {
        unique_key::check_before_insert::<M, S>(session).await
    }

    async fn insert<S>(
        session: &mut S,
        key: &M::Key,
        values: Values<'_, M>,
    ) -> Result<Option<M>, Failure>
    where
        S: Session<Backend = Self>,
    {
        let insert = Insert::<M, DoNothing>::new(key, values);
        let row: Option<(u32, bool, M)> =
            crate::flow::fetch_as::<M, _, _, _>(session, insert).await?;
        match row {
            Some(row) => created::<M, S>(session, row).await.map(Some),
            None => Ok(None),
        }
    }

    /// Inside the caller's transaction, on a table with a unique index the update could
    /// violate (other than the key's and the primary key), the `UPDATE` runs in a
    /// savepoint: a clash raised there would otherwise abort the transaction. Elsewhere it
    /// is the plain `UPDATE .. RETURNING`.
    async fn update<S>(
        session: &mut S,
        key: &M::Key,
        changes: Values<'_, M>,
    ) -> Result<Option<M>, Failure>
    where
        S: Session<Backend = Self>,
    {
        let update = UpdateReturning::<M, Pg>::new(key, changes);
        let in_transaction = session.in_transaction().map_err(classify::<M, Pg>)?;
        if !in_transaction || !unique_key::has_other_unique_index::<M, S>(session).await? {
            return crate::flow::fetch(session, update).await;
        }
        UPDATE_SAVEPOINT.open::<M, S>(session).await?;
        let outcome = crate::flow::fetch(session, update).await;
        UPDATE_SAVEPOINT
            .close::<M, S>(session, outcome.is_err())
            .await?;
        outcome
    }

    async fn explain_clash<S>(
        session: &mut S,
        key: &M::Key,
        values: Values<'_, M>,
    ) -> Result<Option<M>, Failure>
    where
        S: Session<Backend = Self>,
    {
        // The insert again, raising the clash this time. Inside the caller's transaction
        // a raised error would abort it, so there (and only on this path) it runs in a
        // savepoint.
        let in_transaction = session.in_transaction().map_err(classify::<M, Pg>)?;
        if in_transaction {
            CLASH_SAVEPOINT.open::<M, S>(session).await?;
        }
        let insert = Insert::<M, Raise>::new(key, values);
        let outcome = crate::flow::fetch_as::<M, (u32, bool, M), _, _>(session, insert).await;
        if in_transaction {
            CLASH_SAVEPOINT
                .close::<M, S>(session, outcome.is_err())
                .await?;
        }
        match outcome {
            // The clashing row is gone: this call created the key's row.
            Ok(Some(row)) => created::<M, S>(session, row).await.map(Some),
            Ok(None) => Ok(None),
            // A clash on the key's own index: its row was stored (and is gone again, or
            // the read would have found it): try again.
            Err(Failure::Fatal(Error::UniqueViolation {
                constraint: Some(index),
                ..
            })) if unique_key::is_key_index::<M>(&index) => Ok(None),
            Err(failure) => Err(failure),
        }
    }
}

/// A row this call inserted: checked against the key's filter, and its table's unique
/// indexes checked if this is the first row of `M` in that table.
async fn created<M, S>(
    session: &mut S,
    (table, in_filter, row): (u32, bool, M),
) -> Result<M, Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    unique_key::check_table::<M, S>(session, table).await?;
    if !in_filter {
        return Err(outside_filter::<M>());
    }
    Ok(row)
}

/// [`Error::CreatedOutsideFilter`] for `M`.
fn outside_filter<M: Stored<Pg>>() -> Failure {
    Failure::Fatal(Error::CreatedOutsideFilter {
        table: M::table_name(),
        filter: M::FILTER.unwrap_or_default(),
    })
}

async fn execute<M, S>(session: &mut S, sql: &'static str) -> Result<(), Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    session
        .execute(diesel::sql_query(sql))
        .await
        .map(|_| ())
        .map_err(classify::<M, Pg>)
}

/// A savepoint around one statement that may raise inside the caller's transaction, where
/// the error would otherwise abort that transaction: its three statements.
struct Savepoint {
    open: &'static str,
    rollback: &'static str,
    release: &'static str,
}

/// Around `update_or_create`'s `UPDATE` (a clash on another unique index).
const UPDATE_SAVEPOINT: Savepoint = Savepoint {
    open: "SAVEPOINT __goc_update",
    rollback: "ROLLBACK TO SAVEPOINT __goc_update",
    release: "RELEASE SAVEPOINT __goc_update",
};

/// Around the insert that raises a clash to name its index.
const CLASH_SAVEPOINT: Savepoint = Savepoint {
    open: "SAVEPOINT __goc_clash",
    rollback: "ROLLBACK TO SAVEPOINT __goc_clash",
    release: "RELEASE SAVEPOINT __goc_clash",
};

impl Savepoint {
    async fn open<M, S>(&self, session: &mut S) -> Result<(), Failure>
    where
        M: Stored<Pg>,
        S: Session<Backend = Pg>,
    {
        execute::<M, S>(session, self.open).await
    }

    /// After its statement: rolled back to first when the statement `failed`, so that the
    /// transaction stays usable; then released.
    async fn close<M, S>(&self, session: &mut S, failed: bool) -> Result<(), Failure>
    where
        M: Stored<Pg>,
        S: Session<Backend = Pg>,
    {
        if failed {
            execute::<M, S>(session, self.rollback).await?;
        }
        execute::<M, S>(session, self.release).await
    }
}

/// One attempt of a bulk chunk of `get_or_create_many` or `update_or_create_many`.
///
/// `update_or_create_many` first sets each stored key to its last item's values
/// ([`UpdateFromInput`]), which answers those items. Then, for the items still to answer,
/// [`InsertMissing`] (once per set of columns the items leave to their `DEFAULT`, usually
/// once) and [`ReadKeys`]. An item's row is created by this call when an insert returned
/// its identity and the item is the first of that insert's items with that row. An item
/// left without a row (its key holds a `NULL`; its insert met a clash the read cannot
/// explain; for `update_or_create_many`, its row was stored by a concurrent caller after
/// the update) is answered by the single call; a row left with another item's values than
/// its last's is written again (see [`bulk::settle`]). After a deadlock,
/// `update_or_create_many`'s chunk goes one key at a time ([`KeyGroups`], [`KeyByKey`]).
struct Chunk(Bulk);

/// A bulk call on a key no unique index backs (`failure`, its [`Error::NoUniqueIndex`]):
/// the rows of the items at `positions`, read, as [`bulk::all_stored`] takes them; before
/// `update_or_create_many` writes anything.
async fn stored_without_index<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: &[usize],
    failure: Failure,
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session<Backend = Pg>,
    M: Stored<Pg> + Model<Table: Table<PrimaryKey: QueryFragment<Pg> + Send>>,
    Pg: Dialect<M> + QueryMetadata<(BigInt, Text, RowType<M, Pg>)>,
    (i64, String, M): FromSqlRow<(BigInt, Text, RowType<M, Pg>), Pg>,
{
    let items: Vec<&Item<M>> = positions.iter().map(|&i| batch[i]).collect();
    let read: Vec<(i64, String, M)> =
        load_all::<M, _, _, _>(session, ReadKeys::<M>::new(&items)).await?;
    bulk::all_stored(read, positions, failure)
}

impl<M, S> ChunkAttempt<S, M> for Chunk
where
    S: Session<Backend = Pg>,
    M: Stored<Pg> + Model<Table: Table<PrimaryKey: QueryFragment<Pg> + Send>>,
    Pg: Dialect<M>
        + QueryMetadata<(Oid, Bool, RowType<M, Pg>)>
        + QueryMetadata<(BigInt, Text, RowType<M, Pg>)>,
    (u32, bool, M): FromSqlRow<(Oid, Bool, RowType<M, Pg>), Pg>,
    (i64, String, M): FromSqlRow<(BigInt, Text, RowType<M, Pg>), Pg>,
{
    async fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        attempt: u32,
    ) -> Result<Vec<Numbered<M>>, Failure> {
        let (mut pending, _) = bulk::split_null_keys::<M, Pg>(batch);
        let mut rows = Vec::with_capacity(batch.len());
        // `update_or_create_many` after a deadlock: its `UPDATE .. FROM` locks rows in the
        // order of the plan, not of the keys (a hash join on a small table meets them in
        // the heap's order, which updates change), so overlapping calls can deadlock
        // again. The keys go one at a time.
        if attempt > 1 && self.0 == Bulk::UpdateOrCreate && !pending.is_empty() {
            rows = key_by_key::<M, S>(session, batch, &pending).await?;
            pending.clear();
        }
        // Whether the items' keys may be created: not without a unique index.
        let mut create = true;
        if !pending.is_empty() {
            match unique_key::check_before_insert::<M, S>(session).await {
                Ok(()) => {}
                // Only creating needs the unique index: the stored keys are still found,
                // and `update_or_create_many` updates them once it knows that every key
                // has its one row (else nothing is written).
                Err(failure @ Failure::Fatal(Error::NoUniqueIndex { .. })) => {
                    let found =
                        stored_without_index::<M, S>(session, batch, &pending, failure).await?;
                    if self.0 == Bulk::GetOrCreate || found.len() > pending.len() {
                        rows.extend(found);
                        pending.clear();
                    }
                    create = false;
                }
                Err(failure) => return Err(failure),
            }
        }
        // For `update_or_create_many`: each item's answer with its row's identity, and the
        // item whose values each row holds (see `bulk::settle`).
        let mut answers = Vec::new();
        let mut writer: HashMap<String, i64> = HashMap::new();
        // The items answered by an `UPDATE` whose row a later one (of another set of
        // defaulted columns) wrote again: their answer is stale.
        let mut reread = HashSet::new();
        if self.0 == Bulk::UpdateOrCreate && !pending.is_empty() {
            let mut answered_by: HashMap<String, Vec<i64>> = HashMap::new();
            for group in bulk::group_by_defaulted::<M, Pg>(batch, &pending) {
                let items: Vec<&Item<M>> = group.iter().map(|&i| batch[i]).collect();
                if !items
                    .first()
                    .is_some_and(|first| assigns_anything::<M, Pg>(Values::Defaults(&first.1)))
                {
                    continue;
                }
                let update = UpdateFromInput::<M>::new(&items);
                let stored: Vec<(i64, String, M)> = load_all::<M, _, _, _>(session, update).await?;
                for (number, identity, row) in stored {
                    let Some(number) = bulk::renumber_one(number, &group) else {
                        continue;
                    };
                    writer.insert(identity.clone(), number);
                    let earlier = answered_by.entry(identity.clone()).or_default();
                    reread.extend(earlier.drain(..));
                    earlier.push(number);
                    answers.push(((number, false, row), identity));
                }
            }
            let answered: HashSet<i64> =
                answers.iter().map(|((number, _, _), _)| *number).collect();
            pending.retain(|&i| !answered.contains(&(i64::try_from(i).unwrap_or(i64::MAX) + 1)));
        }
        if !pending.is_empty() {
            let occurrence = match self.0 {
                Bulk::GetOrCreate => Occurrence::First,
                Bulk::UpdateOrCreate => Occurrence::Last,
            };
            for (number, created, inserted_by_group, identity, row) in
                insert_missing_then_read::<M, S>(session, batch, &pending, occurrence, create)
                    .await?
            {
                if self.0 == Bulk::GetOrCreate {
                    rows.push((number, created, row));
                    continue;
                }
                // The insert of a group writes each new key from the group's last item
                // of that key (the anti-join sorts in the column's collation).
                if inserted_by_group {
                    let entry = writer.entry(identity.clone()).or_insert(number);
                    *entry = (*entry).max(number);
                }
                answers.push(((number, created, row), identity));
            }
        }
        let settled = bulk::settle(session, batch, answers, &writer, &reread, SingleCall);
        rows.extend(settled.await?);
        let unanswered = bulk::unanswered(&rows, 0..batch.len());
        rows.extend(bulk::one_by_one(session, batch, unanswered, SingleCall(self.0)).await?);
        Ok(rows)
    }
}

/// `update_or_create_many`'s items at `positions` one key at a time ([`KeyByKey`]), their
/// keys named by [`KeyGroups`].
async fn key_by_key<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: &[usize],
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session<Backend = Pg>,
    M: Stored<Pg> + Model<Table: Table<PrimaryKey: QueryFragment<Pg> + Send>>,
    Pg: Dialect<M> + QueryMetadata<(Oid, Bool, RowType<M, Pg>)>,
    (u32, bool, M): FromSqlRow<(Oid, Bool, RowType<M, Pg>), Pg>,
{
    let items: Vec<&Item<M>> = positions.iter().map(|&i| batch[i]).collect();
    let keys: Vec<(i64, String)> =
        load_all::<M, _, _, _>(session, KeyGroups::<M>::new(&items)).await?;
    // An item with several rows (no unique index) is named once.
    let mut seen = HashSet::new();
    let keys = keys.into_iter().filter_map(|(number, key)| {
        let position = *positions.get(usize::try_from(number - 1).ok()?)?;
        seen.insert(position).then_some((position, key))
    });
    let keys = KeyByKey::from_keys(keys.collect::<Vec<_>>());
    keys.run(session, batch, SingleCall).await
}

/// [`InsertMissing`] for the items of `batch` at `positions` (per set of columns they
/// leave to their `DEFAULT`; unless not to `create`), then [`ReadKeys`]: each item's
/// stored row, numbered by its
/// position in `batch` (from 1), whether this call created it from this item, whether
/// the insert of this item's group wrote it, and its identity.
async fn insert_missing_then_read<M, S>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: &[usize],
    occurrence: Occurrence,
    create: bool,
) -> Result<Vec<(i64, bool, bool, String, M)>, Failure>
where
    S: Session<Backend = Pg>,
    M: Stored<Pg> + Model<Table: Table<PrimaryKey: QueryFragment<Pg> + Send>>,
    Pg: Dialect<M> + QueryMetadata<(BigInt, Text, RowType<M, Pg>)>,
    (i64, String, M): FromSqlRow<(BigInt, Text, RowType<M, Pg>), Pg>,
{
    let mut group_of = vec![0; batch.len()];
    let mut inserted: HashMap<String, usize> = HashMap::new();
    let groups = match create {
        true => bulk::group_by_defaulted::<M, Pg>(batch, positions),
        false => Vec::new(),
    };
    for (number, group) in groups.into_iter().enumerate() {
        let items: Vec<&Item<M>> = group.iter().map(|&i| batch[i]).collect();
        let insert = InsertMissing::<M>::new(&items, occurrence);
        let rows: Vec<(u32, String, bool)> = load_all::<M, _, _, _>(session, insert).await?;
        if let Some((table, _, _)) = rows.first() {
            unique_key::check_table::<M, S>(session, *table).await?;
        }
        if rows.iter().any(|(_, _, in_filter)| !in_filter) {
            return Err(outside_filter::<M>());
        }
        inserted.extend(rows.into_iter().map(|(_, identity, _)| (identity, number)));
        for position in group {
            group_of[position] = number;
        }
    }
    let items: Vec<&Item<M>> = positions.iter().map(|&i| batch[i]).collect();
    let read: Vec<(i64, String, M)> =
        load_all::<M, _, _, _>(session, ReadKeys::<M>::new(&items)).await?;
    let group = |number: i64| {
        let position = positions.get(usize::try_from(number - 1).ok()?)?;
        group_of.get(*position).copied()
    };
    let written: Vec<(bool, String)> = read
        .iter()
        .map(|(number, identity, _)| {
            let by_group = inserted
                .get(identity)
                .is_some_and(|&g| group(*number) == Some(g));
            (by_group, identity.clone())
        })
        .collect();
    // `first_of_each_row` keeps the order of the rows it is given.
    let rows = bulk::first_of_each_row(read, &inserted, group);
    Ok(rows
        .into_iter()
        .zip(written)
        .filter_map(|((number, created, row), (by_group, identity))| {
            let position = positions.get(usize::try_from(number - 1).ok()?)?;
            Some((
                i64::try_from(*position).ok()? + 1,
                created,
                by_group,
                identity,
                row,
            ))
        })
        .collect())
}

/// The single call, for the items of a chunk answered one by one.
struct SingleCall(Bulk);

impl<M, S> ItemByItem<S, M> for SingleCall
where
    S: Session<Backend = Pg>,
    M: Stored<Pg>,
    Pg: Dialect<M> + QueryMetadata<(Oid, Bool, RowType<M, Pg>)>,
    (u32, bool, M): FromSqlRow<(Oid, Bool, RowType<M, Pg>), Pg>,
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

impl BackendErrors for Pg {
    fn unique_constraint(info: &dyn DatabaseErrorInformation) -> Option<String> {
        info.constraint_name().map(str::to_owned)
    }

    /// SQLSTATE 42P10, which Diesel does not expose: only its (English) message.
    fn is_missing_unique_index(info: &dyn DatabaseErrorInformation) -> bool {
        info.message()
            .starts_with("there is no unique or exclusion constraint")
    }
}

impl NullSafeEq for Pg {
    const NULL_SAFE_EQ: Option<&'static str> = None;
}
