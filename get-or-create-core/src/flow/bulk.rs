//! The driver every backend's `get_or_create_many` runs: chunking, placing each returned
//! row in the result slot of the item it answers, and the bounded retry of the items a
//! concurrent writer made us miss.
//!
//! A backend supplies one [`ChunkAttempt`]: the statements for the items of a chunk still
//! unanswered, returning the rows it found or created, numbered by their position among
//! those items.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::ops::Range;

use super::{multiple_rows_match, Attempts, Failure, Named};
use crate::model::{Columns, Model};
use crate::session::Session;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use crate::sql::assigns_anything;
use crate::sql::{defaulted_columns, key_has_null, Values};
use crate::strategy::Item;
use crate::Error;

/// A row a bulk statement returned: the 1-based position of its item among the items the
/// statement was given, whether the statement created it, and the row.
pub(crate) type Numbered<M> = (i64, bool, M);

/// Which bulk call a chunk belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bulk {
    /// `get_or_create_many`: a stored row is the answer.
    GetOrCreate,
    /// `update_or_create_many`: a stored row is set to the item's values.
    UpdateOrCreate,
}

/// One attempt at the unanswered items of a chunk.
pub(crate) trait ChunkAttempt<S: Session, M: Model>: Send {
    /// Runs the backend's statements for `batch`; `attempt` counts from 1.
    fn run(
        &mut self,
        session: &mut S,
        batch: &[&Item<M>],
        attempt: u32,
    ) -> impl Future<Output = Result<Vec<Numbered<M>>, Failure>> + Send;
}

/// A backend's single call, for the items of a chunk answered one by one.
pub(crate) trait ItemByItem<S: Session, M: Model>: Send {
    /// Gets or creates the row of one item.
    fn run(
        &mut self,
        session: &mut S,
        key: &M::Key,
        values: &M::Values,
    ) -> impl Future<Output = Result<(M, bool), Error>> + Send;
}

/// The items of `batch` at `positions`, answered one by one with the single call: for a
/// chunk whose insert clashed on another unique index (which names no item), so that
/// every item gets its row, or the call stops at the first item whose row collides with a
/// different row. The items before it stay stored.
pub(crate) async fn one_by_one<S, M, A>(
    session: &mut S,
    batch: &[&Item<M>],
    positions: impl IntoIterator<Item = usize>,
    mut single: A,
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session,
    M: Model,
    A: ItemByItem<S, M>,
{
    let mut rows = Vec::new();
    for position in positions {
        let Some((key, values)) = batch.get(position).map(|item| (&item.0, &item.1)) else {
            continue;
        };
        let (row, created) = single
            .run(session, key, values)
            .await
            .map_err(Failure::Fatal)?;
        rows.push((
            i64::try_from(position).unwrap_or(i64::MAX) + 1,
            created,
            row,
        ));
    }
    Ok(rows)
}

/// An item of an `update_or_create_many` chunk with the row its statements left it: the
/// item's number (from 1) and created flag, the row, and the row's identity.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) type Answer<M, Id> = (Numbered<M>, Id);

/// For `update_or_create_many`: the answers of a chunk, once every row holds the values
/// of the last of its items that writes any. `writer` names, per row identity, the item
/// (by number) whose values this call's bulk statements left in the row; a row this call
/// did not write (a concurrent caller stored it after the update) has none.
///
/// The statements take each key's last item by comparing the items' keys, which on a
/// column whose own collation ignores case (not declared on the lookup) can see two
/// spellings of one stored key as two keys; the identities the rows came back with tell.
/// Each row whose writer is not its last item goes [`KeyByKey`], and so do the items at
/// `reread` (by number), whose answer a later statement of the call made stale.
/// `single` makes the single call of either kind.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) async fn settle<S, M, A, Id>(
    session: &mut S,
    batch: &[&Item<M>],
    answers: Vec<Answer<M, Id>>,
    writer: &HashMap<Id, i64>,
    reread: &HashSet<i64>,
    single: impl Fn(Bulk) -> A,
) -> Result<Vec<Numbered<M>>, Failure>
where
    S: Session,
    M: Columns<S::Backend>,
    A: ItemByItem<S, M>,
    Id: Eq + Hash + Clone,
{
    let writes = |number: i64| {
        usize::try_from(number - 1)
            .ok()
            .and_then(|i| batch.get(i))
            .is_some_and(|item| assigns_anything::<M, S::Backend>(Values::Defaults(&item.1)))
    };
    // Per row: its first item, and its last item that writes any.
    let mut span: HashMap<Id, (i64, Option<i64>)> = HashMap::new();
    for ((number, _, _), identity) in &answers {
        let (first, last) = span.entry(identity.clone()).or_insert((*number, None));
        *first = (*first).min(*number);
        if writes(*number) {
            *last = Some(last.map_or(*number, |last| last.max(*number)));
        }
    }
    span.retain(|identity, (_, last)| last.is_some() && writer.get(identity) != last.as_ref());
    let position = |number: i64| usize::try_from(number - 1).ok();
    let mut rows = Vec::with_capacity(answers.len());
    let mut keys = KeyByKey::default();
    for ((number, created, row), identity) in answers {
        let rewrite = span.get(&identity).copied();
        let (Some(item), true) = (
            position(number),
            rewrite.is_some() || reread.contains(&number),
        ) else {
            rows.push((number, created, row));
            continue;
        };
        if created {
            keys.created.insert(item);
        }
        match rewrite {
            Some((first, Some(last))) if last == number => {
                keys.lasts.push(item);
                keys.first_of.insert(item, position(first).unwrap_or(item));
            }
            _ => keys.others.push(item),
        }
    }
    keys.others.sort_unstable();
    rows.extend(keys.run(session, batch, single).await?);
    Ok(rows)
}

/// `update_or_create_many`'s items with the single calls, each key written once, from
/// its last item, as the bulk statements would: the last item of each key by
/// `update_or_create`, then the others by `get_or_create`, which read the row. A key's
/// first item gets the created flag. For a chunk whose bulk statements deadlocked or lost
/// a race (overlapping bulk writes can do so again, attempt after attempt, and a single
/// row's statements cannot), and for the rows [`settle`] writes again.
#[derive(Default)]
pub(crate) struct KeyByKey {
    /// The last item of each key, by position in the chunk.
    lasts: Vec<usize>,
    /// The other items.
    others: Vec<usize>,
    /// A key's first item, by the key's last.
    first_of: HashMap<usize, usize>,
    /// The items the chunk's bulk statements already created the row of.
    created: HashSet<usize>,
}

impl KeyByKey {
    /// The items, by position in the chunk, each with its key as the database compares it
    /// (any value that is equal for the items of one key).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn from_keys<K: Eq + Hash>(items: impl IntoIterator<Item = (usize, K)>) -> Self {
        let mut span: HashMap<K, (usize, usize)> = HashMap::new();
        let mut positions = Vec::new();
        for (position, key) in items {
            let (first, last) = span.entry(key).or_insert((position, position));
            *first = (*first).min(position);
            *last = (*last).max(position);
            positions.push(position);
        }
        let first_of: HashMap<usize, usize> = span.into_values().map(|(f, l)| (l, f)).collect();
        let (mut lasts, mut others): (Vec<usize>, Vec<usize>) = positions
            .into_iter()
            .partition(|p| first_of.contains_key(p));
        lasts.sort_unstable();
        others.sort_unstable();
        KeyByKey {
            lasts,
            others,
            first_of,
            created: HashSet::new(),
        }
    }

    /// Runs the single calls that `single` makes.
    pub(crate) async fn run<S, M, A>(
        mut self,
        session: &mut S,
        batch: &[&Item<M>],
        single: impl Fn(Bulk) -> A,
    ) -> Result<Vec<Numbered<M>>, Failure>
    where
        S: Session,
        M: Model,
        A: ItemByItem<S, M>,
    {
        let mut rows = one_by_one(session, batch, self.lasts, single(Bulk::UpdateOrCreate)).await?;
        for (number, created, _) in &rows {
            let position = usize::try_from(*number - 1).unwrap_or(usize::MAX);
            if *created {
                let first = self.first_of.get(&position).copied().unwrap_or(position);
                self.created.insert(first);
            }
        }
        rows.extend(one_by_one(session, batch, self.others, single(Bulk::GetOrCreate)).await?);
        for (number, created, _) in &mut rows {
            *created =
                usize::try_from(*number - 1).is_ok_and(|position| self.created.contains(&position));
        }
        Ok(rows)
    }
}

/// The positions among `positions` of the items `rows` does not answer.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn unanswered<M>(
    rows: &[Numbered<M>],
    positions: impl IntoIterator<Item = usize>,
) -> Vec<usize> {
    let answered: HashSet<i64> = rows.iter().map(|(number, _, _)| *number).collect();
    positions
        .into_iter()
        .filter(|&i| !answered.contains(&(i64::try_from(i).unwrap_or(i64::MAX) + 1)))
        .collect()
}

/// The positions in `batch` of the items whose key holds no `NULL`, and of those whose key
/// does. A unique index that treats `NULL`s as distinct cannot stop a multi-row insert
/// from creating two rows for two items with a `NULL` key: those are answered one by one,
/// where the second finds the first's row.
pub(crate) fn split_null_keys<M, DB>(batch: &[&Item<M>]) -> (Vec<usize>, Vec<usize>)
where
    M: Columns<DB>,
    DB: diesel::backend::Backend,
{
    if !M::NULLABLE_KEY {
        return ((0..batch.len()).collect(), Vec::new());
    }
    (0..batch.len()).partition(|&i| !key_has_null::<M, DB>(&batch[i].0))
}

/// `positions` in `batch` grouped by which columns their items leave to their `DEFAULT`
/// (see [`defaulted_columns`]), each group in input order: one insert per group, since a
/// statement lists its columns once for all its rows. One group when the model has no
/// such field.
pub(crate) fn group_by_defaulted<M, DB>(batch: &[&Item<M>], positions: &[usize]) -> Vec<Vec<usize>>
where
    M: Columns<DB>,
    DB: diesel::backend::Backend,
{
    if positions.is_empty() {
        return Vec::new();
    }
    if !M::DEFAULTABLE {
        return vec![positions.to_vec()];
    }
    let mut groups: Vec<(Vec<bool>, Vec<usize>)> = Vec::new();
    for &position in positions {
        let defaulted = defaulted_columns::<M, DB>(Values::Defaults(&batch[position].1));
        match groups.iter_mut().find(|(columns, _)| *columns == defaulted) {
            Some((_, group)) => group.push(position),
            None => groups.push((defaulted, vec![position])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// Marks each row created when an insert of its group returned its identity and its item
/// is the first (lowest position) of that group's items that share the row: the row was
/// made from that item's values. `group_of` gives the group of an item by its number.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn first_of_each_row<M, Id>(
    rows: Vec<(i64, Id, M)>,
    inserted: &HashMap<Id, usize>,
    group_of: impl Fn(i64) -> Option<usize>,
) -> Vec<Numbered<M>>
where
    Id: Eq + Hash,
{
    let mut first: HashMap<&Id, i64> = HashMap::new();
    for (number, identity, _) in &rows {
        let Some(group) = inserted.get(identity) else {
            continue;
        };
        if group_of(*number) == Some(*group) {
            let entry = first.entry(identity).or_insert(*number);
            *entry = (*entry).min(*number);
        }
    }
    let created: Vec<bool> = rows
        .iter()
        .map(|(number, identity, _)| first.get(identity) == Some(number))
        .collect();
    rows.into_iter()
        .zip(created)
        .map(|((number, _, row), created)| (number, created, row))
        .collect()
}

/// What a read of the items at `positions` found, as `(number among them, identity, row)`:
/// those rows numbered by their position in the chunk, none created, and the positions of
/// the items it found no row for. (An item with several rows keeps them all; the driver
/// reports [`Error::MultipleRowsMatch`].)
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn found_rows<M, Id>(
    read: Vec<(i64, Id, M)>,
    positions: &[usize],
) -> (Vec<Numbered<M>>, Vec<usize>) {
    let found: HashSet<i64> = read.iter().map(|(number, _, _)| *number).collect();
    let missing = (1..)
        .zip(positions)
        .filter(|(number, _)| !found.contains(number))
        .map(|(_, &position)| position)
        .collect();
    let rows = read
        .into_iter()
        .map(|(number, _, row)| (number, false, row))
        .collect();
    (renumber(rows, positions), missing)
}

/// What a read of the items at `positions` found on a key no unique index backs
/// (`failure`, its [`Error::NoUniqueIndex`]): the rows, numbered by their position in
/// the chunk, when every key is stored; several rows of one key come back as they are,
/// for the driver to report [`Error::MultipleRowsMatch`]; a key not stored (and none
/// with several rows) is `failure`, since creating its row needs the index.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn all_stored<M, Id>(
    read: Vec<(i64, Id, M)>,
    positions: &[usize],
    failure: Failure,
) -> Result<Vec<Numbered<M>>, Failure> {
    let (rows, missing) = found_rows(read, positions);
    let several = rows.len() + missing.len() > positions.len();
    if !missing.is_empty() && !several {
        return Err(failure);
    }
    Ok(rows)
}

/// The number (from 1) of an item among `subset`, numbered again by the position in the
/// chunk that `subset` names.
pub(crate) fn renumber_one(number: i64, subset: &[usize]) -> Option<i64> {
    let position = subset.get(usize::try_from(number - 1).ok()?)?;
    i64::try_from(*position).ok()?.checked_add(1)
}

/// Rows numbered by their position among `subset` (from 1), numbered again by the
/// position in the chunk that `subset` names.
pub(crate) fn renumber<M>(rows: Vec<Numbered<M>>, subset: &[usize]) -> Vec<Numbered<M>> {
    rows.into_iter()
        .filter_map(|(number, created, row)| Some((renumber_one(number, subset)?, created, row)))
        .collect()
}

/// Gets or creates the row of every item, `chunk_len` items at a time, with `attempt`;
/// the results are in the order of `items`.
pub(crate) async fn run<S, M, A>(
    session: &mut S,
    items: &[Item<M>],
    chunk_len: usize,
    mut attempt: A,
) -> Result<Vec<(M, bool)>, Error>
where
    S: Session,
    M: Named<S::Backend>,
    A: ChunkAttempt<S, M>,
{
    let mut results: Vec<Option<(M, bool)>> = (0..items.len()).map(|_| None).collect();
    for positions in chunks(items.len(), chunk_len) {
        let mut pending: Vec<usize> = positions.collect();
        let mut attempts = Attempts::new(session)?;
        while !pending.is_empty() {
            let batch: Vec<&Item<M>> = pending.iter().map(|&i| &items[i]).collect();
            let outcome = attempt.run(session, &batch, attempts.next_number()).await;
            drop(batch);
            match outcome {
                Ok(rows) => {
                    place::<M, S::Backend>(rows, &pending, &mut results)?;
                    let before = pending.len();
                    pending.retain(|&i| results[i].is_none());
                    // Items left over lost a race for their key to a concurrent caller.
                    // An attempt that answered others made progress and is not counted
                    // (each attempt answers at least one item, or counts): under heavy
                    // overlap a chunk may lose several races in a row without failing.
                    if !pending.is_empty() && pending.len() == before {
                        attempts.failed(Failure::RowChanged)?;
                    }
                }
                Err(failure) => attempts.failed(failure)?,
            }
        }
    }
    // Every item is answered once every chunk has finished without error.
    Ok(results.into_iter().flatten().collect())
}

/// The input positions of each chunk of at most `chunk_len` items.
fn chunks(len: usize, chunk_len: usize) -> impl Iterator<Item = Range<usize>> {
    let step = chunk_len.max(1);
    (0..len)
        .step_by(step)
        .map(move |start| start..len.min(start + step))
}

/// Puts each row in the result slot of its item. Two rows for one item mean that its
/// lookup is not unique.
fn place<M: Named<DB>, DB: diesel::backend::Backend>(
    rows: Vec<Numbered<M>>,
    pending: &[usize],
    results: &mut [Option<(M, bool)>],
) -> Result<(), Error> {
    for (number, created, row) in rows {
        let index = usize::try_from(number - 1)
            .ok()
            .and_then(|position| pending.get(position));
        match index.map(|&index| &mut results[index]) {
            Some(slot @ None) => *slot = Some((row, created)),
            Some(Some(_)) => return Err(multiple_rows_match::<M, DB>()),
            None => {
                let message = format!(
                    "get_or_create_many: a row came back for item {number} of {}",
                    pending.len()
                );
                return Err(Error::Database(
                    diesel::result::Error::DeserializationError(message.into()),
                ));
            }
        }
    }
    Ok(())
}
