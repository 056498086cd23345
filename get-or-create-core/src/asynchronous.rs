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
/// `transaction` while it fails with an error that asks for a retry, at most
/// `max_attempts` times, waiting 1 ms, 2 ms, 4 ms, .. up to 64 ms between attempts (on the
/// tokio timer).
///
/// ```no_run
/// use diesel_async::{AsyncConnection, AsyncPgConnection};
/// use get_or_create_core::{retry_transaction_async, Error};
///
/// async fn transfer(conn: &mut AsyncPgConnection) -> Result<u32, Error> {
///     retry_transaction_async(5, async || {
///         conn.transaction::<_, Error, _>(async |conn| {
///             // get_or_create calls and other queries on `conn`
///             Ok(42)
///         })
///         .await
///     })
///     .await
/// }
/// ```
pub async fn retry_transaction_async<T, E, F>(max_attempts: u32, mut transaction: F) -> Result<T, E>
where
    F: AsyncFnMut() -> Result<T, E>,
    E: MustRetryTransaction,
{
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(error) if error.must_retry_transaction() && attempt < max_attempts => {
                tokio::time::sleep(Duration::from_millis(1 << (attempt - 1).min(6))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}
