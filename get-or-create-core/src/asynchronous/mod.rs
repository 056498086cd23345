//! The calls on diesel-async connections (feature `async`): import this module's
//! [`GetOrCreate`] (the derive and the trait, one name) instead of the crate root's, and
//! `.await` each call.
//!
//! ```no_run
//! use diesel::prelude::*;
//! use diesel_async::{AsyncConnection, AsyncPgConnection};
//! use get_or_create_core::asynchronous::GetOrCreate;
//!
//! diesel::table! {
//!     tags (id) {
//!         id -> BigInt,
//!         name -> Text,
//!         color -> Text,
//!     }
//! }
//!
//! #[derive(Queryable, Selectable, GetOrCreate)]
//! #[diesel(table_name = tags)]
//! pub struct Tag {
//!     pub id: i64,
//!     #[lookup]
//!     pub name: String,
//!     #[default]
//!     pub color: String,
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = AsyncPgConnection::establish("postgres://localhost/app").await?;
//! let (tag, created) = Tag::get_or_create(
//!     &mut conn,
//!     TagLookup { name: "rust".into() },
//!     TagDefaults { color: "orange".into() },
//! )
//! .await?;
//! # Ok(()) }
//! ```
//!
//! The calls send the same statements as the sync ones and keep the same guarantees.
//! Their futures are `Send`, also in code generic over the model and the connection, so
//! they run in `tokio::spawn` and in web handlers.

use std::future::Future;
use std::time::Duration;

use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncConnectionCore, TransactionManager};
use futures_util::TryStreamExt;

use crate::model::Model;
use crate::retry::MustRetryTransaction;
use crate::session::Session;
use crate::strategy::Strategy;
use crate::Error;

/// Derives [`GetOrCreate`](trait@GetOrCreate) (and the sync trait of the crate root) for a
/// Diesel model; see the [crate docs](crate).
pub use get_or_create_derive::GetOrCreate;

/// A Diesel model whose rows can be got or created by a lookup key, on diesel-async
/// connections: the calls of the sync [`GetOrCreate`](crate::GetOrCreate), as `Send`
/// futures.
///
/// `#[derive(GetOrCreate)]` implements it; see the [module docs](self). Each call's `V`
/// is [`Connection`]'s `Via` (owned or [`Shared`]), inferred from the connection. Code
/// generic over the model and the connection names both traits, and its futures are
/// `Send`:
///
/// ```no_run
/// use get_or_create_core::asynchronous::{Connection, GetOrCreate};
/// use get_or_create_core::Error;
///
/// async fn ensure<M: GetOrCreate, C: Connection<M>>(
///     conn: &mut C,
///     lookup: M::Lookup,
///     defaults: M::Defaults,
/// ) -> Result<M, Error> {
///     M::get_or_create(conn, lookup, defaults).await.map(|(row, _created)| row)
/// }
///
/// fn spawnable<M: GetOrCreate, C: Connection<M>>(conn: &mut C, lookup: M::Lookup, defaults: M::Defaults) {
///     fn assert_send<T: Send>(_: T) {}
///     assert_send(ensure::<M, C>(conn, lookup, defaults));
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not derive `GetOrCreate`",
    note = "add `#[derive(GetOrCreate)]` to `{Self}`, with `#[lookup]` on its key fields"
)]
pub trait GetOrCreate: Model {
    /// The generated `<Model>Lookup`; see [`crate::GetOrCreate::Lookup`].
    type Lookup: Send + Sync;
    /// The generated `<Model>Defaults`; see [`crate::GetOrCreate::Defaults`].
    type Defaults: Send + Sync;
    /// The generated `<Model>Changes`; see [`crate::GetOrCreate::Changes`].
    type Changes: From<Self::Defaults> + Default + Send + Sync;

    /// See [`crate::GetOrCreate::get_or_create`].
    fn get_or_create<C: Connection<Self, V>, V>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> impl Future<Output = Result<(Self, bool), Error>> + Send;

    /// See [`crate::GetOrCreate::get_or_create_with`].
    fn get_or_create_with<C, V, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: F,
    ) -> impl Future<Output = Result<(Self, bool), Error>> + Send
    where
        C: Connection<Self, V>,
        F: FnOnce() -> Self::Defaults + Send;

    /// See [`crate::GetOrCreate::get_or_create_many`].
    fn get_or_create_many<C, V, I>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = Result<Vec<(Self, bool)>, Error>> + Send
    where
        C: Connection<Self, V>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>;

    /// See [`crate::GetOrCreate::update_or_create`].
    fn update_or_create<C: Connection<Self, V>, V>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> impl Future<Output = Result<(Self, bool), Error>> + Send;

    /// See [`crate::GetOrCreate::update_or_create_with`].
    fn update_or_create_with<C, V, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        changes: Self::Changes,
        create_defaults: F,
    ) -> impl Future<Output = Result<(Self, bool), Error>> + Send
    where
        C: Connection<Self, V>,
        F: FnOnce() -> Self::Defaults + Send;

    /// See [`crate::GetOrCreate::update_or_create_many`].
    fn update_or_create_many<C, V, I>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = Result<Vec<(Self, bool)>, Error>> + Send
    where
        C: Connection<Self, V>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>;

    /// See [`crate::GetOrCreate::check_schema`].
    fn check_schema<C: Connection<Self, V>, V>(
        conn: &mut C,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

impl<M: Model> GetOrCreate for M {
    type Lookup = M::Key;
    type Defaults = M::Values;
    type Changes = M::Changeset;

    async fn get_or_create<C: Connection<M, V>, V>(
        conn: &mut C,
        lookup: M::Key,
        defaults: M::Values,
    ) -> Result<(M, bool), Error> {
        let session = &mut conn.session();
        C::Backend::get_or_create(session, &lookup, defaults).await
    }

    async fn get_or_create_with<C, V, F>(
        conn: &mut C,
        lookup: M::Key,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: Connection<M, V>,
        F: FnOnce() -> M::Values + Send,
    {
        let session = &mut conn.session();
        C::Backend::get_or_create_with(session, &lookup, defaults).await
    }

    fn get_or_create_many<C, V, I>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = Result<Vec<(M, bool)>, Error>> + Send
    where
        C: Connection<M, V>,
        I: IntoIterator<Item = (M::Key, M::Values)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        async move {
            let session = &mut conn.session();
            C::Backend::get_or_create_many(session, &items).await
        }
    }

    fn update_or_create<C: Connection<M, V>, V>(
        conn: &mut C,
        lookup: M::Key,
        defaults: M::Values,
    ) -> impl Future<Output = Result<(M, bool), Error>> + Send {
        let changes = M::Changeset::from(defaults);
        async move {
            let session = &mut conn.session();
            C::Backend::update_or_create(session, &lookup, &changes, || None).await
        }
    }

    async fn update_or_create_with<C, V, F>(
        conn: &mut C,
        lookup: M::Key,
        changes: M::Changeset,
        create_defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: Connection<M, V>,
        F: FnOnce() -> M::Values + Send,
    {
        let session = &mut conn.session();
        let create_defaults = move || Some(create_defaults());
        C::Backend::update_or_create(session, &lookup, &changes, create_defaults).await
    }

    fn update_or_create_many<C, V, I>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = Result<Vec<(M, bool)>, Error>> + Send
    where
        C: Connection<M, V>,
        I: IntoIterator<Item = (M::Key, M::Values)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        async move {
            let session = &mut conn.session();
            C::Backend::update_or_create_many(session, &items).await
        }
    }

    async fn check_schema<C: Connection<M, V>, V>(conn: &mut C) -> Result<(), Error> {
        let session = &mut conn.session();
        C::Backend::check_schema(session).await
    }
}

/// A diesel-async connection the calls of model `M` can run on: `AsyncPgConnection`,
/// `AsyncMysqlConnection`, `SyncConnectionWrapper<SqliteConnection>`, the pooled
/// connections of deadpool and bb8, and a shared `&AsyncPgConnection` (pipelined), whose
/// backend is enabled in get-or-create-core's features and can read `M`'s rows.
/// Implemented by the library only; name it in the bounds of generic code.
///
/// `Via` tells an owned connection ([`Owned`], the default: what `Connection<M>` means)
/// from a shared one ([`Shared`]); the calls infer it from the connection's type, so
/// only code generic over shared connections writes it.
#[diagnostic::on_unimplemented(
    message = "the async calls of `{M}` cannot run on `{Self}`",
    label = "`{M}`'s rows cannot be read or written through this connection",
    note = "`{M}` must derive `Queryable` and `Selectable` with the same \
            `#[diesel(table_name = ..)]` as `GetOrCreate`, and each of its fields must fit \
            its column (an error on a field of `{M}` says which does not)",
    note = "the async calls take a diesel-async connection (`AsyncPgConnection`, \
            `AsyncMysqlConnection`, `SyncConnectionWrapper<..>`, deadpool or bb8 pooled, or \
            a shared `&AsyncPgConnection`) whose backend is enabled in get-or-create-core's \
            features (`postgres`, `sqlite`, `mysql`)",
    note = "for a sync Diesel connection, import `get_or_create_core::GetOrCreate` instead of \
            `get_or_create_core::asynchronous::GetOrCreate`"
)]
pub trait Connection<M: Model, Via = Owned>: sealed::Connection<M, Via> {}

impl<M: Model, Via, C: sealed::Connection<M, Via>> Connection<M, Via> for C {}

/// [`Connection`]'s `Via` for a connection the call borrows mutably: a diesel-async
/// `AsyncConnection` (a pooled one too). The call reads its transaction status from it.
#[derive(Debug)]
pub enum Owned {}

/// [`Connection`]'s `Via` for a shared `&AsyncPgConnection`, on which diesel-async
/// pipelines the statements of concurrent futures: write `&mut &conn` where an owned
/// connection takes `&mut conn`.
///
/// A shared connection does not tell whether it is in a transaction, so the calls take
/// it to be in autocommit, as a pipelined connection normally is: run calls that belong
/// to a transaction on the `&mut AsyncPgConnection` that `transaction` hands out, where
/// they see its status.
///
/// ```no_run
/// # use diesel::prelude::*;
/// # diesel::table! { tags (id) { id -> BigInt, name -> Text, color -> Text } }
/// # #[derive(Queryable, Selectable, GetOrCreate)]
/// # #[diesel(table_name = tags)]
/// # pub struct Tag { pub id: i64, #[lookup] pub name: String, #[default] pub color: String }
/// use diesel_async::AsyncPgConnection;
/// use get_or_create_core::asynchronous::GetOrCreate;
///
/// use futures_util::future::try_join;
///
/// // Two calls on one connection at once: diesel-async pipelines their statements. (A
/// // future borrows its `&mut &conn`: write the calls inside the join, as here.)
/// async fn two_at_once(conn: &AsyncPgConnection) -> Result<(), get_or_create_core::Error> {
///     let ((rust, _), (sql, _)) = try_join(
///         Tag::get_or_create(
///             &mut &*conn,
///             TagLookup { name: "rust".into() },
///             TagDefaults { color: "orange".into() },
///         ),
///         Tag::get_or_create(
///             &mut &*conn,
///             TagLookup { name: "sql".into() },
///             TagDefaults { color: "blue".into() },
///         ),
///     )
///     .await?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub enum Shared {}

pub(crate) mod sealed {
    use super::*;

    /// What [`Connection`](super::Connection) is made of; out of users' reach.
    pub trait Connection<M: Model, Via>: Send {
        /// The connection's backend, with its strategy for `M`.
        type Backend: Strategy<M>;

        /// The connection as the strategies see it.
        fn session(&mut self) -> impl Session<Backend = Self::Backend> + '_;
    }

    #[diagnostic::do_not_recommend]
    impl<M, C> Connection<M, Owned> for C
    where
        M: Model,
        C: AsyncConnection + Send,
        C::Backend: Strategy<M>,
    {
        type Backend = C::Backend;

        fn session(&mut self) -> impl Session<Backend = C::Backend> + '_ {
            Nonblocking(self, |conn: &mut C| {
                let status = C::TransactionManager::transaction_manager_status_mut(conn);
                Ok(status.transaction_depth()?.is_some())
            })
        }
    }

    #[cfg(feature = "postgres")]
    #[diagnostic::do_not_recommend]
    impl<M> Connection<M, Shared> for &diesel_async::AsyncPgConnection
    where
        M: Model,
        diesel::pg::Pg: Strategy<M>,
    {
        type Backend = diesel::pg::Pg;

        fn session(&mut self) -> impl Session<Backend = diesel::pg::Pg> + '_ {
            Nonblocking(self, |_: &mut Self| Ok(false))
        }
    }
}

/// A diesel-async connection as a [`Session`], with how to read its transaction status.
struct Nonblocking<'c, C, S>(&'c mut C, S);

impl<C, S> Session for Nonblocking<'_, C, S>
where
    C: AsyncConnectionCore + Send,
    S: FnMut(&mut C) -> QueryResult<bool> + Send,
{
    type Backend = C::Backend;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        (self.1)(self.0)
    }

    async fn load<T, Q, R>(&mut self, query: Q) -> QueryResult<R>
    where
        Q: Query + QueryFragment<Self::Backend> + QueryId + Send,
        T: FromSqlRow<Q::SqlType, Self::Backend>,
        R: Default + Extend<T> + Send,
        Self::Backend: QueryMetadata<Q::SqlType>,
    {
        self.0
            .load(query)
            .await?
            .try_fold(R::default(), |mut rows, row| {
                let row = T::build_from_row(&row).map_err(DieselError::DeserializationError);
                std::future::ready(row.map(|row| {
                    rows.extend(Some(row));
                    rows
                }))
            })
            .await
    }

    async fn execute<Q>(&mut self, statement: Q) -> QueryResult<usize>
    where
        Q: QueryFragment<Self::Backend> + QueryId + Send,
    {
        self.0.execute_returning_count(statement).await
    }
}

/// [`retry_transaction`](crate::retry_transaction) for async transactions: reruns
/// `transaction` on `conn` while it fails with an error that asks for a retry, at most
/// `max_attempts` times, waiting 1 ms, 2 ms, 4 ms, .. up to 64 ms between attempts (on the
/// tokio timer).
///
/// `transaction` gets the connection as its argument, like diesel-async's own
/// `transaction`, and its future must be `Send`: so the returned future is `Send` too, and
/// runs in `tokio::spawn` and in web handlers.
///
/// ```no_run
/// use diesel_async::{AsyncConnection, AsyncPgConnection};
/// use get_or_create_core::asynchronous::retry_transaction;
/// use get_or_create_core::Error;
///
/// async fn transfer(conn: &mut AsyncPgConnection, note: &str) -> Result<u32, Error> {
///     retry_transaction(conn, 5, async |conn| {
///         conn.transaction::<_, Error, _>(async |conn| {
///             // get_or_create calls and other queries on `conn`, using `note`
///             Ok(42)
///         })
///         .await
///     })
///     .await
/// }
/// # fn assert_send<T: Send>(_: T) {}
/// # fn spawnable(conn: &mut AsyncPgConnection) { assert_send(transfer(conn, "")) }
/// ```
// Not an `async fn`: the `+ Send` of the signature, checked here under the bounds, is
// what makes the future `Send` at the caller.
#[allow(clippy::manual_async_fn)]
pub fn retry_transaction<'c, C, T, E, F>(
    conn: &'c mut C,
    max_attempts: u32,
    mut transaction: F,
) -> impl Future<Output = Result<T, E>> + Send + 'c
where
    C: Send,
    T: Send,
    E: MustRetryTransaction + Send,
    F: for<'r> AsyncFnMut(&'r mut C) -> Result<T, E>
        + for<'r> TransactionFn<&'r mut C, Result<T, E>, Future: Send>
        + Send
        + 'c,
{
    async move {
        let mut attempt = 1;
        loop {
            match transaction(&mut *conn).await {
                Err(error) if error.must_retry_transaction() && attempt < max_attempts => {
                    tokio::time::sleep(Duration::from_millis(1 << (attempt - 1).min(6))).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// The closure of [`retry_transaction`] as a function returning a nameable future, so
/// that its future can be required to be `Send`: `AsyncFnMut`'s own future type is not
/// nameable on stable Rust, and without the bound rustc cannot prove the retry loop's
/// future `Send` (it fails with "implementation of `Send` is not general enough"). The
/// same device as diesel-async's `AsyncFunc`. Implemented for every such closure.
pub trait TransactionFn<A, R>: FnMut(A) -> <Self as TransactionFn<A, R>>::Future {
    /// The closure's future.
    type Future: Future<Output = R>;
}

impl<A, R, F, Fut> TransactionFn<A, R> for F
where
    F: FnMut(A) -> Fut,
    Fut: Future<Output = R>,
{
    type Future = Fut;
}
