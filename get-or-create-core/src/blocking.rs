//! The calls on sync Diesel connections: [`GetOrCreate`] and the connections it takes.

use diesel::connection::{LoadConnection, TransactionManager};
use diesel::deserialize::FromSqlRow;
use diesel::expression::QueryMetadata;
use diesel::query_builder::{Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::QueryResult;
use std::future::Future;

use crate::model::Model;
use crate::session::{run_now, Session};
use crate::strategy::Strategy;
use crate::Error;

/// A Diesel model whose rows can be got or created by a lookup key, on sync connections.
///
/// `#[derive(GetOrCreate)]` implements it (with the structs named by its associated
/// types); the [crate docs](crate) show how. Every call returns the row and whether this
/// call created it, and takes any [`Connection`]: `PgConnection`, `SqliteConnection`,
/// `MysqlConnection` and r2d2's pooled connections of them, outside or inside a
/// transaction. For diesel-async connections, import
/// [`asynchronous::GetOrCreate`](crate::asynchronous::GetOrCreate) instead (feature
/// `async`): the same calls, as futures.
///
/// Code generic over the model and the connection names both traits:
///
/// ```
/// use get_or_create_core::{Connection, Error, GetOrCreate};
///
/// fn ensure<M: GetOrCreate, C: Connection<M>>(
///     conn: &mut C,
///     lookup: M::Lookup,
///     defaults: M::Defaults,
/// ) -> Result<M, Error> {
///     M::get_or_create(conn, lookup, defaults).map(|(row, _created)| row)
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not derive `GetOrCreate`",
    note = "add `#[derive(GetOrCreate)]` to `{Self}`, with `#[lookup]` on its key fields"
)]
pub trait GetOrCreate: Model {
    /// The generated `<Model>Lookup`: one public field per `#[lookup]` field, the key of
    /// a row.
    type Lookup: Send + Sync;
    /// The generated `<Model>Defaults`: one public field per `#[default]` field, the
    /// values a new row is created with.
    type Defaults: Send + Sync;
    /// The generated `<Model>Changes`: one `Option` per `#[default]` field, the values
    /// [`update_or_create_with`](GetOrCreate::update_or_create_with) sets. Every field
    /// changed is `Changes::from(defaults)`; none is `Changes::default()`.
    type Changes: From<Self::Defaults> + Default + Send + Sync;

    /// Returns the row that `lookup` identifies, creating it from `defaults` when there is
    /// none, and whether this call created it.
    ///
    /// # Errors
    ///
    /// See [`Error`]: each case says when it happens and what to do.
    fn get_or_create<C: Connection<Self>>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> Result<(Self, bool), Error>;

    /// Like [`get_or_create`](GetOrCreate::get_or_create), but computes the defaults only
    /// when a row is really inserted: `defaults` is not called when the row exists.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: F,
    ) -> Result<(Self, bool), Error>
    where
        C: Connection<Self>,
        F: FnOnce() -> Self::Defaults + Send;

    /// Gets or creates the row of each `(lookup, defaults)` pair, and says which this
    /// call created; the results are in the order of `items`.
    ///
    /// It sends a fixed number of statements per chunk of items, not per item: on
    /// PostgreSQL two per 10,000 items (an insert of the missing keys, then a read), on
    /// SQLite and MySQL/MariaDB one when every key is stored and three otherwise (a read,
    /// an insert of the missing keys, a read of their rows); an item whose insert met a
    /// clash the read cannot explain, or whose key holds a `NULL`, is answered by the
    /// single call, and so, on MySQL/MariaDB, are the missing items after a lost race.
    ///
    /// The same key twice in `items` gets the same row, created at most once, from the
    /// values of the item whose flag says so: the first of them, unless they leave
    /// different columns to their `DEFAULT` (an `Option` default's `None`), which
    /// PostgreSQL and SQLite insert in separate statements.
    ///
    /// # Errors
    ///
    /// See [`Error`]. A failure leaves the chunks before the failing one stored.
    fn get_or_create_many<C, I>(conn: &mut C, items: I) -> Result<Vec<(Self, bool)>, Error>
    where
        C: Connection<Self>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>;

    /// Sets every default field of the row that `lookup` identifies to `defaults`, or
    /// creates the row with them, and says whether this call created it.
    ///
    /// It never loses an update to a concurrent call and never creates a duplicate: an
    /// `UPDATE` (with `RETURNING` on PostgreSQL and SQLite), then an `INSERT` only when no
    /// row matched (see the README for the statements per backend).
    ///
    /// # Errors
    ///
    /// See [`Error`].
    fn update_or_create<C: Connection<Self>>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> Result<(Self, bool), Error>;

    /// Sets the `Some` fields of `changes` on the row that `lookup` identifies, or creates
    /// the row with them and, for the other fields, `create_defaults()` (Django's
    /// `create_defaults`); says whether this call created it. `create_defaults` is called
    /// only when a row is created and some field is not changed.
    ///
    /// # Errors
    ///
    /// See [`Error`].
    fn update_or_create_with<C, F>(
        conn: &mut C,
        lookup: Self::Lookup,
        changes: Self::Changes,
        create_defaults: F,
    ) -> Result<(Self, bool), Error>
    where
        C: Connection<Self>,
        F: FnOnce() -> Self::Defaults + Send;

    /// Sets every default field of the row of each `(lookup, defaults)` pair to its
    /// `defaults`, or creates the row with them, and says which this call created; the
    /// results are in the order of `items`. The bulk form of
    /// [`update_or_create`](GetOrCreate::update_or_create), for syncing a table with a
    /// list (categories, tags, a feed).
    ///
    /// It sends a fixed number of statements per chunk of items, not per item: on
    /// PostgreSQL one when every key is stored (an `UPDATE .. FROM` the items) and three
    /// otherwise (that update, an insert of the missing keys, a read); on SQLite four (a
    /// check of the key's unique index, the update, the insert, a read); on MySQL/MariaDB
    /// at most four (a read, the update, the insert, a read). Like the single call it
    /// never loses an update to a concurrent call and never creates a duplicate: an item
    /// whose row a concurrent call stored meanwhile is updated by the single call. Stored
    /// keys need no unique index; without one, a key not stored is
    /// [`Error::NoUniqueIndex`] before anything is written.
    ///
    /// The same key twice in `items` behaves as a loop of single calls would leave the
    /// table: the row ends with the values of the key's last item, and is created (when
    /// it was missing) by the first, the only one whose flag says so; every item of the
    /// key returns the final row.
    ///
    /// # Errors
    ///
    /// See [`Error`]. A failure leaves the chunks before the failing one stored.
    fn update_or_create_many<C, I>(conn: &mut C, items: I) -> Result<Vec<(Self, bool)>, Error>
    where
        C: Connection<Self>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>;

    /// Checks, on the database `conn` is connected to, that a unique index backs the key
    /// as the model declares it: its columns, each one's `function` or `collate`, and its
    /// `where` filter. For start-up and tests: the calls check it themselves before they
    /// first create a row.
    ///
    /// # Errors
    ///
    /// [`Error::NoUniqueIndex`] when no index does, with the `CREATE UNIQUE INDEX`
    /// statement to run; [`Error::KeyNotSupported`] when the backend cannot back such a
    /// key (MySQL/MariaDB and a `where` filter), saying what to declare instead.
    fn check_schema<C: Connection<Self>>(conn: &mut C) -> Result<(), Error>;
}

impl<M: Model> GetOrCreate for M {
    type Lookup = M::Key;
    type Defaults = M::Values;
    type Changes = M::Changeset;

    fn get_or_create<C: Connection<M>>(
        conn: &mut C,
        lookup: M::Key,
        defaults: M::Values,
    ) -> Result<(M, bool), Error> {
        let session = &mut conn.session();
        run_now(C::Backend::get_or_create(session, &lookup, defaults))
    }

    fn get_or_create_with<C, F>(
        conn: &mut C,
        lookup: M::Key,
        defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: Connection<M>,
        F: FnOnce() -> M::Values + Send,
    {
        let session = &mut conn.session();
        run_now(C::Backend::get_or_create_with(session, &lookup, defaults))
    }

    fn get_or_create_many<C, I>(conn: &mut C, items: I) -> Result<Vec<(M, bool)>, Error>
    where
        C: Connection<M>,
        I: IntoIterator<Item = (M::Key, M::Values)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        let session = &mut conn.session();
        run_now(C::Backend::get_or_create_many(session, &items))
    }

    fn update_or_create<C: Connection<M>>(
        conn: &mut C,
        lookup: M::Key,
        defaults: M::Values,
    ) -> Result<(M, bool), Error> {
        let changes = M::Changeset::from(defaults);
        let session = &mut conn.session();
        run_now(C::Backend::update_or_create(
            session,
            &lookup,
            &changes,
            || None,
        ))
    }

    fn update_or_create_with<C, F>(
        conn: &mut C,
        lookup: M::Key,
        changes: M::Changeset,
        create_defaults: F,
    ) -> Result<(M, bool), Error>
    where
        C: Connection<M>,
        F: FnOnce() -> M::Values + Send,
    {
        let session = &mut conn.session();
        let create_defaults = move || Some(create_defaults());
        run_now(C::Backend::update_or_create(
            session,
            &lookup,
            &changes,
            create_defaults,
        ))
    }

    fn update_or_create_many<C, I>(conn: &mut C, items: I) -> Result<Vec<(M, bool)>, Error>
    where
        C: Connection<M>,
        I: IntoIterator<Item = (M::Key, M::Values)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        let session = &mut conn.session();
        run_now(C::Backend::update_or_create_many(session, &items))
    }

    fn check_schema<C: Connection<M>>(conn: &mut C) -> Result<(), Error> {
        let session = &mut conn.session();
        run_now(C::Backend::check_schema(session))
    }
}

/// A sync connection the calls of model `M` can run on: every Diesel connection whose
/// backend is enabled in get-or-create-core's features (`postgres`, `sqlite`, `mysql`)
/// and can read `M`'s rows (`Queryable` and `Selectable`), including r2d2's pooled
/// connections. Implemented by the library only; name it in the bounds of generic code.
#[diagnostic::on_unimplemented(
    message = "the calls of `{M}` cannot run on `{Self}`",
    label = "`{M}`'s rows cannot be read or written through this connection",
    note = "`{M}` must derive `Queryable` and `Selectable` with the same \
            `#[diesel(table_name = ..)]` as `GetOrCreate`, and each of its fields must fit \
            its column (an error on a field of `{M}` says which does not)",
    note = "the sync calls take a Diesel connection (`PgConnection`, `SqliteConnection`, \
            `MysqlConnection`, r2d2 pooled) whose backend is enabled in get-or-create-core's \
            features (`postgres`, `sqlite`, `mysql`)",
    note = "for a diesel-async connection, import `get_or_create_core::asynchronous::GetOrCreate` \
            instead of `get_or_create_core::GetOrCreate`, and `.await` the call"
)]
pub trait Connection<M: Model>: sealed::Connection<M> {}

impl<M: Model, C: sealed::Connection<M>> Connection<M> for C {}

pub(crate) mod sealed {
    use super::*;

    /// What [`Connection`](super::Connection) is made of; out of users' reach.
    pub trait Connection<M: Model>: Send {
        /// The connection's backend, with its strategy for `M`.
        type Backend: Strategy<M>;

        /// The connection as the strategies see it.
        fn session(&mut self) -> impl Session<Backend = Self::Backend> + '_;
    }

    #[diagnostic::do_not_recommend]
    impl<M, C> Connection<M> for C
    where
        M: Model,
        C: LoadConnection + Send,
        C::Backend: Strategy<M>,
    {
        type Backend = C::Backend;

        fn session(&mut self) -> impl Session<Backend = C::Backend> + '_ {
            Blocking(self)
        }
    }
}

/// A sync Diesel connection as a [`Session`].
struct Blocking<'c, C>(&'c mut C);

impl<C: LoadConnection + Send> Session for Blocking<'_, C> {
    type Backend = C::Backend;

    fn in_transaction(&mut self) -> QueryResult<bool> {
        let status = C::TransactionManager::transaction_manager_status_mut(self.0);
        Ok(status.transaction_depth()?.is_some())
    }

    fn load<T, Q, R>(&mut self, query: Q) -> impl Future<Output = QueryResult<R>> + Send
    where
        Q: Query + QueryFragment<Self::Backend> + QueryId + Send,
        T: FromSqlRow<Q::SqlType, Self::Backend>,
        R: Default + Extend<T> + Send,
        Self::Backend: QueryMetadata<Q::SqlType>,
    {
        // The work is done here, not in the future: a sync connection never waits, and
        // its cursor need not be `Send`.
        let rows = (|| {
            // Reading every row steps the statement to its end: on SQLite a `RETURNING`
            // statement left unfinished would keep its write open and block WAL
            // checkpoints.
            let mut rows = R::default();
            for row in self.0.load(query)? {
                let row = T::build_from_row(&row?).map_err(DieselError::DeserializationError)?;
                rows.extend(Some(row));
            }
            Ok(rows)
        })();
        std::future::ready(rows)
    }

    fn execute<Q>(&mut self, statement: Q) -> impl Future<Output = QueryResult<usize>> + Send
    where
        Q: QueryFragment<Self::Backend> + QueryId + Send,
    {
        std::future::ready(self.0.execute_returning_count(&statement))
    }
}
