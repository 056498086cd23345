//! What the backends' `get_or_create_many` share: chunking, matching each returned row to
//! the item it answers, and the bounded retry of the items a concurrent writer made us
//! miss.
//!
//! A backend's bulk call reads:
//!
//! ```text
//! let mut results = BulkResults::new(items.len());
//! for positions in results.chunks(chunk_len) {
//!     let mut chunk = Chunk::start(positions, session)?;
//!     while let Some(batch) = chunk.batch(items) {
//!         let outcome = attempt(session, &batch, chunk.attempt_number()).await;
//!         chunk.record(outcome, &mut results)?;
//!     }
//! }
//! Ok(results.finish())
//! ```
//!
//! where `attempt` runs the backend's statements for the items still unanswered and
//! returns the rows it found or created, numbered by their position in `batch`.

use std::ops::Range;

use super::{Attempts, Failure};
use crate::model::Model;
use crate::session::Session;
use crate::statement::Item;
use crate::Error;

/// A row a bulk statement returned: the 1-based position of its item among the items the
/// statement was given, whether the statement created it, and the row.
pub(crate) type Numbered<M> = (i64, bool, M);

/// The answers of a bulk call so far, by input position.
pub(crate) struct BulkResults<M> {
    rows: Vec<Option<(M, bool)>>,
}

impl<M: Model> BulkResults<M> {
    pub(crate) fn new(len: usize) -> Self {
        BulkResults {
            rows: (0..len).map(|_| None).collect(),
        }
    }

    /// The input positions of each chunk of at most `chunk_len` items.
    pub(crate) fn chunks(&self, chunk_len: usize) -> impl Iterator<Item = Range<usize>> {
        let (len, step) = (self.rows.len(), chunk_len.max(1));
        (0..len)
            .step_by(step)
            .map(move |start| start..len.min(start + step))
    }

    /// Every item is answered once every chunk has finished without error.
    pub(crate) fn finish(self) -> Vec<(M, bool)> {
        self.rows.into_iter().flatten().collect()
    }
}

/// One chunk's items still unanswered, and its attempts.
pub(crate) struct Chunk {
    pending: Vec<usize>,
    attempts: Attempts,
}

impl Chunk {
    pub(crate) fn start(
        positions: Range<usize>,
        session: &mut impl Session,
    ) -> Result<Self, Error> {
        Ok(Chunk {
            pending: positions.collect(),
            attempts: Attempts::new(session)?,
        })
    }

    /// The items to ask for in the next attempt, or `None` when all are answered.
    pub(crate) fn batch<'i, M: Model>(&self, items: &'i [Item<M>]) -> Option<Vec<&'i Item<M>>> {
        (!self.pending.is_empty()).then(|| self.pending.iter().map(|&i| &items[i]).collect())
    }

    /// Which attempt comes next, from 1.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
    pub(crate) fn attempt_number(&self) -> u32 {
        self.attempts.next_number()
    }

    /// Places the rows of an attempt; items left unanswered count it as failed, to be
    /// retried while attempts remain.
    pub(crate) fn record<M: Model>(
        &mut self,
        outcome: Result<Vec<Numbered<M>>, Failure>,
        results: &mut BulkResults<M>,
    ) -> Result<(), Error> {
        match outcome {
            Ok(rows) => {
                place(rows, &self.pending, &mut results.rows)?;
                self.pending.retain(|&i| results.rows[i].is_none());
                if self.pending.is_empty() {
                    Ok(())
                } else {
                    self.attempts.failed(Failure::Vanished)
                }
            }
            Err(failure) => self.attempts.failed(failure),
        }
    }
}

/// Puts each row in the result slot of its item. Two rows for one item mean that its
/// lookup is not unique.
fn place<M: Model>(
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
            Some(Some(_)) => {
                return Err(Error::MultipleRowsMatch {
                    table: M::TABLE_NAME,
                    columns: M::LOOKUP_COLUMNS,
                })
            }
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

/// The rows of `numbered`, renumbered from positions among `subset` to positions among
/// the attempt's items, where `subset[k]` is the 0-based position of the `k + 1`th.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))] // MySQL only
pub(crate) fn renumber<M>(numbered: Vec<Numbered<M>>, subset: &[usize]) -> Vec<Numbered<M>> {
    numbered
        .into_iter()
        .filter_map(|(number, created, row)| {
            let position = subset.get(usize::try_from(number - 1).ok()?)?;
            Some((i64::try_from(*position).ok()? + 1, created, row))
        })
        .collect()
}
