//! What the backends' `get_or_create_many` share: chunking, matching each returned row to
//! the item it answers, and the bounded retry of the items a concurrent writer made us
//! miss.

use diesel::connection::LoadConnection;

use super::{transaction_depth, Failure, MAX_ATTEMPTS};
use crate::model::Model;
use crate::statement::Item;
use crate::Error;

/// A row a bulk statement returned: the 1-based position of its item among the items the
/// statement was given, whether the statement created it, and the row.
pub(crate) type Numbered<M> = (i64, bool, M);

/// Gets or creates the rows of `items`, `chunk_len` at a time. For each chunk, `attempt`
/// runs the backend's statements for the items still unanswered and returns the rows it
/// found or created, numbered by their position in the slice it was given.
///
/// An item left unanswered lost a race in a way its backend cannot resolve within the same
/// statement (its row was committed after the statement's snapshot, or deleted
/// meanwhile): it is asked for again, at most [`MAX_ATTEMPTS`] times in all, as single
/// calls are.
pub(crate) fn get_or_create_many<M, C>(
    conn: &mut C,
    items: &[Item<M>],
    chunk_len: usize,
    mut attempt: impl FnMut(&mut C, &[&Item<M>], u32) -> Result<Vec<Numbered<M>>, Failure>,
) -> Result<Vec<(M, bool)>, Error>
where
    M: Model,
    C: LoadConnection,
{
    let in_transaction = transaction_depth(conn)?.is_some();
    let mut results: Vec<Option<(M, bool)>> = items.iter().map(|_| None).collect();
    let indices: Vec<usize> = (0..items.len()).collect();
    for chunk in indices.chunks(chunk_len.max(1)) {
        let mut pending = chunk.to_vec();
        let mut last_error = None;
        for number in 1..=MAX_ATTEMPTS {
            let batch: Vec<&Item<M>> = pending.iter().map(|&i| &items[i]).collect();
            match attempt(conn, &batch, number) {
                Ok(rows) => place(rows, &pending, &mut results)?,
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::LostConflict(source)) if in_transaction => {
                    return Err(Error::TransactionMustBeRetried { source })
                }
                Err(Failure::LostConflict(source)) => last_error = Some(source),
                Err(Failure::Vanished) => last_error = None,
            }
            pending.retain(|&i| results[i].is_none());
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return Err(Error::RetriesExhausted {
                attempts: MAX_ATTEMPTS,
                source: last_error,
            });
        }
    }
    // Every chunk ended with nothing pending: each result is there.
    Ok(results.into_iter().flatten().collect())
}

/// Puts each row in the result slot of its item. Two rows for one item mean that its
/// lookup is not unique.
fn place<M: Model>(
    rows: Vec<Numbered<M>>,
    pending: &[usize],
    results: &mut [Option<(M, bool)>],
) -> Result<(), Error> {
    for (number, created, row) in rows {
        let slot = usize::try_from(number - 1)
            .ok()
            .and_then(|position| pending.get(position))
            .map(|&index| &mut results[index]);
        match slot {
            Some(slot @ None) => *slot = Some((row, created)),
            Some(Some(_)) => {
                return Err(Error::MultipleRowsMatch {
                    table: M::TABLE_NAME,
                    columns: M::LOOKUP_COLUMNS,
                })
            }
            None => {
                return Err(Error::Database(
                    diesel::result::Error::DeserializationError(
                        format!(
                            "get_or_create_many: a row came back for item {number}, of {}",
                            pending.len()
                        )
                        .into(),
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The rows of `numbered`, renumbered from positions among `subset` to positions among
/// the attempt's items, where `subset[k]` is the 0-based position of the `k + 1`th.
pub(crate) fn renumber<M>(numbered: Vec<Numbered<M>>, subset: &[usize]) -> Vec<Numbered<M>> {
    numbered
        .into_iter()
        .filter_map(|(number, created, row)| {
            let position = subset.get(usize::try_from(number - 1).ok()?)?;
            Some((i64::try_from(*position).ok()? + 1, created, row))
        })
        .collect()
}
