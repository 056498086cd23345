//! The flow PostgreSQL and SQLite share: both have `INSERT .. ON CONFLICT DO NOTHING
//! RETURNING`.
//!
//! | path | statements |
//! |---|---|
//! | row exists | `SELECT` |
//! | row missing | `SELECT`, `INSERT .. ON CONFLICT (lookup) DO NOTHING RETURNING ..` |
//! | lost race | the two above, then `SELECT` again |
//!
//! Selecting first means a hit writes nothing: no sequence value is consumed, no row is
//! locked, no transaction id is used. The insert names the lookup columns as its conflict
//! target, so a lost race returns no row instead of raising an error (which on PostgreSQL
//! would abort the caller's transaction and force a savepoint on every call), while any
//! other unique violation is still raised and reported. The final `SELECT` is a new
//! statement, so at PostgreSQL's `READ COMMITTED` it sees the winner's row; at stricter
//! levels the insert itself fails with a serialization failure, which is the caller's cue
//! to retry its transaction.

use std::cell::LazyCell;

use diesel::backend::DieselReserveSpecialization;
use diesel::connection::LoadConnection;
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::QueryFragment;
use diesel::query_source::QuerySource;
use diesel::Selectable;

use super::{fetch, with_retries, BackendErrors, Failure};
use crate::model::ModelSql;
use crate::statement::{Insert, OnConflictDoNothingReturning, RowType, SelectByLookup};
use crate::Error;

pub(crate) fn get_or_create<M, C, F>(
    conn: &mut C,
    lookup: &M::Lookup,
    defaults: F,
) -> Result<(M, bool), Error>
where
    C: LoadConnection,
    C::Backend: BackendErrors
        + DieselReserveSpecialization
        + QueryMetadata<RowType<M, C::Backend>>
        + 'static,
    M: ModelSql<C::Backend>
        + Selectable<C::Backend>
        + FromSqlRow<RowType<M, C::Backend>, C::Backend>,
    M::SelectExpression: QueryFragment<C::Backend>,
    <M::Table as QuerySource>::FromClause: QueryFragment<C::Backend>,
    F: FnOnce() -> M::Defaults,
{
    with_retries(conn, defaults, |conn, defaults| {
        let select = || SelectByLookup::<M, C::Backend>::new(lookup);
        if let Some(row) = fetch(conn, select())? {
            return Ok((row, false));
        }
        let insert = Insert::<M, C::Backend, OnConflictDoNothingReturning>::new(
            lookup,
            LazyCell::force(defaults),
        );
        if let Some(row) = fetch(conn, insert)? {
            return Ok((row, true));
        }
        match fetch(conn, select())? {
            Some(row) => Ok((row, false)),
            None => Err(Failure::Vanished),
        }
    })
}
