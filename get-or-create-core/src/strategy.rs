//! What a backend does for each call, behind one sealed trait.
//!
//! Each backend's folder (`pg/`, `sqlite/`, `mysql/`) implements [`Strategy`] and says
//! which statements it sends on each path and why; what they share is in `flow/`. The
//! strategies are `async` code over a [`Session`], so that sync and async connections run
//! the same statements in the same order (see `session.rs`).

use std::future::Future;

use diesel::backend::Backend;

use crate::model::Model;
use crate::session::Session;
use crate::Error;

/// One `(lookup, defaults)` pair of a bulk call.
pub(crate) type Item<M> = (<M as Model>::Key, <M as Model>::Values);

/// A backend's way of getting or creating rows of `M`, on any [`Session`]: implemented by
/// PostgreSQL, SQLite and MySQL/MariaDB, each in its folder and behind its cargo feature.
///
/// Every future is `Send` (when the session is), so that the async API's are.
pub trait Strategy<M: Model>: Backend {
    /// Returns the row of `M` that `key` identifies, creating it from `values` when
    /// there is none; `true` when this call created it.
    fn get_or_create<S>(
        session: &mut S,
        key: &M::Key,
        values: M::Values,
    ) -> impl Future<Output = Result<(M, bool), Error>> + Send
    where
        S: Session<Backend = Self>;

    /// Like [`get_or_create`](Strategy::get_or_create), but `values` is called only when
    /// a row is really inserted.
    fn get_or_create_with<S, F>(
        session: &mut S,
        key: &M::Key,
        values: F,
    ) -> impl Future<Output = Result<(M, bool), Error>> + Send
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> M::Values + Send;

    /// Gets or creates the row of each `(key, values)` item, with a fixed number of
    /// statements per chunk of items; the results are in the order of `items`.
    fn get_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> impl Future<Output = Result<Vec<(M, bool)>, Error>> + Send
    where
        S: Session<Backend = Self>;

    /// Sets each `(key, values)` item's row to its values, or creates it from them, with a
    /// fixed number of statements per chunk of items; the results are in the order of
    /// `items`.
    fn update_or_create_many<S>(
        session: &mut S,
        items: &[Item<M>],
    ) -> impl Future<Output = Result<Vec<(M, bool)>, Error>> + Send
    where
        S: Session<Backend = Self>;

    /// Sets `changes` on the row of `M` that `key` identifies, or creates it with
    /// `changes` and, for the fields not changed, `create_values()`; `true` when this call
    /// created it. `create_values` is called only when a row is created and some field is
    /// not changed; it may return `None` when every field is changed.
    fn update_or_create<S, F>(
        session: &mut S,
        key: &M::Key,
        changes: &M::Changeset,
        create_values: F,
    ) -> impl Future<Output = Result<(M, bool), Error>> + Send
    where
        S: Session<Backend = Self>,
        F: FnOnce() -> Option<M::Values> + Send;

    /// Checks that a unique index backs `M`'s key as the model declares it, on the
    /// database the session is connected to.
    fn check_schema<S>(session: &mut S) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Session<Backend = Self>;
}
