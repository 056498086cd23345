//! PostgreSQL.
//!
//! | path | `get_or_create` | `get_or_create_with` |
//! |---|---|---|
//! | row exists | 1: [`SelectOrInsert`] | 1: `SELECT` |
//! | row missing | 1: [`SelectOrInsert`] | 2: `SELECT`, `INSERT .. ON CONFLICT DO NOTHING RETURNING` |
//! | lost race | 2: [`SelectOrInsert`], `SELECT` | 3 (see `returning.rs`) |
//!
//! With the defaults in hand, one statement looks up and, only when nothing is found,
//! inserts. Lazy defaults cannot be sent before we know they are needed, so
//! `get_or_create_with` takes the select-first flow PostgreSQL shares with SQLite.
//! `get_or_create_many` sends one [`UnnestGetOrCreate`] per chunk of 10,000 items, and one
//! more for the items of a chunk that lost a race.

use std::cell::LazyCell;

use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::result::DatabaseErrorInformation;
use diesel::sql_types::{BigInt, Bool};
use diesel::Selectable;

use super::bulk::{self, Numbered};
use super::{fetch, fetch_as, load_all, returning, with_retries, Failure};
use super::{BackendErrors, Strategy};
use crate::model::{ModelArrays, ModelSql};
use crate::statement::{BulkSyntax, RowType, SelectByLookup, SelectOrInsert, UnnestGetOrCreate};
use crate::Error;

/// Items per [`UnnestGetOrCreate`]: each column is one array parameter whatever the count,
/// so the limit only bounds the size of one statement and of the locks it holds.
const CHUNK_LEN: usize = 10_000;

impl<M> Strategy<M> for Pg
where
    M: ModelSql<Pg> + ModelArrays<Pg> + Selectable<Pg> + FromSqlRow<RowType<M, Pg>, Pg>,
    (bool, M): FromSqlRow<(Bool, RowType<M, Pg>), Pg>,
    Numbered<M>: FromSqlRow<(BigInt, Bool, RowType<M, Pg>), Pg>,
    M::SelectExpression: QueryFragment<Pg>,
    <M::Table as QuerySource>::FromClause: QueryFragment<Pg>,
    Pg: QueryMetadata<RowType<M, Pg>>
        + QueryMetadata<(Bool, RowType<M, Pg>)>
        + QueryMetadata<(BigInt, Bool, RowType<M, Pg>)>,
{
    fn get_or_create<C>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: M::Defaults,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
    {
        with_retries(
            conn,
            || defaults,
            |conn, defaults| {
                let statement = SelectOrInsert::<M, Pg>::new(lookup, LazyCell::force(defaults));
                if let Some(found) = fetch_as::<M, (bool, M), _, _>(conn, statement)? {
                    let (created, row) = found;
                    return Ok((row, created));
                }
                // Committed after our snapshot: a new statement sees it.
                match fetch(conn, SelectByLookup::<M, Pg>::new(lookup))? {
                    Some(row) => Ok((row, false)),
                    None => Err(Failure::Vanished),
                }
            },
        )
    }

    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: &M::Lookup,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: LoadConnection<Backend = Self>,
        F: FnOnce() -> M::Defaults,
    {
        returning::get_or_create(conn, lookup, defaults)
    }

    fn get_or_create_many<C>(
        conn: &mut C,
        items: &[(M::Lookup, M::Defaults)],
    ) -> Result<Vec<(M, bool)>, Error>
    where
        C: LoadConnection<Backend = Self>,
    {
        bulk::get_or_create_many(conn, items, CHUNK_LEN, |conn, batch, _| {
            load_all::<M, Numbered<M>, _, _>(conn, UnnestGetOrCreate::<M, Pg>::new(batch))
        })
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

impl BulkSyntax for Pg {
    const NULL_SAFE_EQ: Option<&'static str> = None;
}
