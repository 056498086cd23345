//! The same calls on diesel-async connections (feature `async`).

use std::future::Future;
use std::time::Duration;

use diesel_async::AsyncConnection;

use crate::retry::MustRetryTransaction;
use crate::session::Nonblocking;
use crate::{Error, GetOrCreate, Strategy};

/// [`GetOrCreate`]'s calls for diesel-async connections, with the same names and the same
/// statements: `AsyncPgConnection`, `AsyncMysqlConnection`,
/// `SyncConnectionWrapper<SqliteConnection>`, and the pooled connections of deadpool and
/// bb8 (through `&mut *pooled`).
///
/// Every model that derives [`GetOrCreate`] has it. Import this trait instead of
/// [`GetOrCreate`] where you use async connections (with both in scope, the calls are
/// ambiguous):
///
/// ```no_run
/// use diesel::prelude::*;
/// use diesel_async::{AsyncConnection, AsyncPgConnection};
/// use get_or_create_core::{AsyncGetOrCreate, GetOrCreate as _};
/// # diesel::table! { tags (id) { id -> BigInt, name -> Text, color -> Text } }
/// # #[derive(Queryable, Selectable, get_or_create_core::GetOrCreate)]
/// # #[diesel(table_name = tags)]
/// # pub struct Tag { pub id: i64, #[lookup] pub name: String, #[default] pub color: String }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = AsyncPgConnection::establish("postgres://localhost/app").await?;
/// let (tag, created) = <Tag as AsyncGetOrCreate>::get_or_create(
///     &mut conn,
///     TagLookup { name: "rust".into() },
///     TagDefaults { color: "orange".into() },
/// )
/// .await?;
/// # Ok(()) }
/// ```
///
/// Futures are `Send` when the connection, the lookup, the defaults (and the closure of
/// `get_or_create_with`) are: they can run on a multi-threaded runtime and in web
/// handlers.
pub trait AsyncGetOrCreate: GetOrCreate {
    /// See [`GetOrCreate::get_or_create`].
    fn get_or_create<C>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> impl Future<Output = Result<(Self, bool), Error>>
    where
        C: AsyncConnection,
        C::Backend: Strategy<Self>,
    {
        async move {
            let session = &mut Nonblocking(conn);
            <C::Backend as Strategy<Self>>::get_or_create(session, &lookup, defaults).await
        }
    }

    /// See [`GetOrCreate::get_or_create_with`].
    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: F,
    ) -> impl Future<Output = Result<(Self, bool), Error>>
    where
        C: AsyncConnection,
        C::Backend: Strategy<Self>,
        F: FnOnce() -> Self::Defaults,
    {
        async move {
            let session = &mut Nonblocking(conn);
            <C::Backend as Strategy<Self>>::get_or_create_with(session, &lookup, defaults).await
        }
    }

    /// See [`GetOrCreate::update_or_create`].
    fn update_or_create<C>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> impl Future<Output = Result<(Self, bool), Error>>
    where
        C: AsyncConnection,
        C::Backend: Strategy<Self>,
        Self::Changes: From<Self::Defaults>,
    {
        let changes = Self::Changes::from(defaults);
        async move {
            let session = &mut Nonblocking(conn);
            let none = || None;
            <C::Backend as Strategy<Self>>::update_or_create(session, &lookup, &changes, none).await
        }
    }

    /// See [`GetOrCreate::update_or_create_with`].
    fn update_or_create_with<C, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        changes: Self::Changes,
        create_defaults: F,
    ) -> impl Future<Output = Result<(Self, bool), Error>>
    where
        C: AsyncConnection,
        C::Backend: Strategy<Self>,
        F: FnOnce() -> Self::Defaults,
    {
        async move {
            let session = &mut Nonblocking(conn);
            let create_defaults = move || Some(create_defaults());
            <C::Backend as Strategy<Self>>::update_or_create(
                session,
                &lookup,
                &changes,
                create_defaults,
            )
            .await
        }
    }

    /// See [`GetOrCreate::get_or_create_many`].
    fn get_or_create_many<C, I>(
        conn: &mut C,
        items: I,
    ) -> impl Future<Output = Result<Vec<(Self, bool)>, Error>>
    where
        C: AsyncConnection,
        C::Backend: Strategy<Self>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        async move {
            let session = &mut Nonblocking(conn);
            <C::Backend as Strategy<Self>>::get_or_create_many(session, &items).await
        }
    }
}

impl<M: GetOrCreate> AsyncGetOrCreate for M {}

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
/// use get_or_create_core::{retry_transaction_async, Error};
///
/// async fn transfer(conn: &mut AsyncPgConnection, note: &str) -> Result<u32, Error> {
///     retry_transaction_async(conn, 5, async |conn| {
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
pub fn retry_transaction_async<'c, C, T, E, F>(
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

/// The closure of [`retry_transaction_async`] as a function returning a nameable future,
/// so that its future can be required to be `Send`: `AsyncFnMut`'s own future type is not
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
