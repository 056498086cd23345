//! Race-safe `get_or_create` for [Diesel](https://diesel.rs) models on PostgreSQL, SQLite
//! and MySQL/MariaDB.
//!
//! Derive [`GetOrCreate`] on a model, mark the fields that identify a row with `#[lookup]`
//! and the fields that are written only when a row is created with `#[default]`:
//!
#![cfg_attr(feature = "sqlite", doc = "```")]
#![cfg_attr(not(feature = "sqlite"), doc = "```ignore")]
//! use diesel::prelude::*;
//! use get_or_create_core::GetOrCreate;
//!
//! diesel::table! {
//!     users (id) {
//!         id -> Integer,
//!         email -> Text,
//!         name -> Text,
//!         karma -> Integer,
//!     }
//! }
//!
//! #[derive(Debug, Queryable, Selectable, GetOrCreate)]
//! #[diesel(table_name = users)]
//! pub struct User {
//!     pub id: i32,
//!     #[lookup]
//!     pub email: String,
//!     #[default]
//!     pub name: String,
//!     #[default]
//!     pub karma: i32,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! diesel::sql_query(
//!     "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE,
//!                          name TEXT NOT NULL, karma INTEGER NOT NULL)",
//! )
//! .execute(&mut conn)?;
//!
//! let (ann, created) = User::get_or_create(
//!     &mut conn,
//!     UserLookup { email: "ann@example.com".into() },
//!     UserDefaults { name: "Ann".into(), karma: 0 },
//! )?;
//! assert!(created);
//!
//! // Defaults that are costly to compute: the closure runs only if a row is created.
//! let (again, created) = User::get_or_create_with(
//!     &mut conn,
//!     UserLookup { email: "ann@example.com".into() },
//!     || unreachable!("the row exists, so no defaults are needed"),
//! )?;
//! assert!(!created);
//! assert_eq!(again.id, ann.id);
//!
//! // Many rows at once, with a few statements per chunk of thousands: one result per item,
//! // in order; the same key twice gets the same row.
//! let rows = User::get_or_create_many(
//!     &mut conn,
//!     ["bob@example.com", "ann@example.com", "bob@example.com"].map(|email| {
//!         (UserLookup { email: email.into() }, UserDefaults { name: "?".into(), karma: 0 })
//!     }),
//! )?;
//! let created: Vec<bool> = rows.iter().map(|(_, created)| *created).collect();
//! assert_eq!(created, [true, false, false]);
//! assert_eq!(rows[1].0.id, ann.id);
//! assert_eq!(rows[0].0.id, rows[2].0.id);
//! # Ok(())
//! # }
//! ```
//!
//! # What the derive generates
//!
//! For a model `User` it writes `UserLookup`, with one public field per `#[lookup]` field,
//! and `UserDefaults`, with one per `#[default]` field, both with the model's visibility.
//! Fields with neither attribute are left to the database (identity columns, column
//! defaults) and read back. `#[get_or_create(lookup)]` and `#[get_or_create(default)]` are
//! the same attributes, for structs that also derive `Default` (whose `#[default]` clashes).
//! The derive reads Diesel's `#[diesel(table_name = ..)]`, `#[diesel(column_name = ..)]` and
//! `#[diesel(check_for_backend(..))]`.
//!
//! # Guarantees
//!
//! - `created` is `true` for exactly one caller per new row, however many race for it.
//! - A row that exists costs one `SELECT` and writes nothing: no sequence value, no lock.
//! - The library never opens a transaction or a savepoint, and a lost race never aborts
//!   the caller's transaction.
//! - Every failure has its own [`Error`] case: several rows match, another unique
//!   constraint fired, no unique index covers the lookup, the transaction must be retried.
//!
//! The lookup columns need a unique index (or primary key) on exactly those columns: it is
//! what makes the database, not the library, the judge of a race.
//!
//! # Backends
//!
//! Enable the cargo features `postgres`, `sqlite` and/or `mysql`. The per-backend
//! statements are described in the README and in the source of [`Strategy`]'s impls.
//!
//! # `NULL` in a lookup
//!
//! A lookup field of type `Option<T>` matches `NULL` with `IS NULL`. A unique index treats
//! `NULL`s as distinct unless declared `NULLS NOT DISTINCT` (PostgreSQL 15+), so elsewhere a
//! `NULL` key is not protected against concurrent duplicates; a later call that finds them
//! gets [`Error::MultipleRowsMatch`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "async")]
mod asynchronous;
mod error;
mod model;
mod retry;
mod session;
// Without a backend feature nothing sends the statements; that is a valid (if useless)
// build, not a reason to warn.
#[cfg_attr(
    not(any(feature = "postgres", feature = "sqlite", feature = "mysql")),
    allow(dead_code, unused_imports)
)]
mod statement;
#[cfg_attr(
    not(any(feature = "postgres", feature = "sqlite", feature = "mysql")),
    allow(dead_code, unused_imports)
)]
mod strategy;

#[cfg(feature = "async")]
pub use asynchronous::{retry_transaction_async, AsyncGetOrCreate};
pub use error::Error;
pub use retry::{retry_transaction, MustRetryTransaction};
pub use session::Session;
pub use strategy::Strategy;

/// Derives [`GetOrCreate`](trait@GetOrCreate) for a Diesel model; see the
/// [crate docs](crate).
pub use get_or_create_derive::GetOrCreate;

use diesel::connection::LoadConnection;

use session::{run_now, Blocking};

/// A Diesel model whose rows can be got or created by a lookup key.
///
/// Implement it with `#[derive(GetOrCreate)]`; the [crate docs](crate) show how.
pub trait GetOrCreate: model::Model {
    /// Returns the row that `lookup` identifies, creating it from `defaults` when there is
    /// none, and whether this call created it.
    ///
    /// Works with any connection whose backend has a [`Strategy`]: `PgConnection`,
    /// `SqliteConnection`, `MysqlConnection`, and r2d2's pooled connections of them, both
    /// outside and inside a transaction.
    ///
    /// # Errors
    ///
    /// See [`Error`]: each case says when it happens and what to do.
    fn get_or_create<C>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> Result<(Self, bool), Error>
    where
        C: LoadConnection,
        C::Backend: Strategy<Self>,
    {
        let session = &mut Blocking(conn);
        run_now(<C::Backend as Strategy<Self>>::get_or_create(
            session, &lookup, defaults,
        ))
    }

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
        C: LoadConnection,
        C::Backend: Strategy<Self>,
        F: FnOnce() -> Self::Defaults,
    {
        let session = &mut Blocking(conn);
        run_now(<C::Backend as Strategy<Self>>::get_or_create_with(
            session, &lookup, defaults,
        ))
    }

    /// Sets every default field of the row that `lookup` identifies to `defaults`, or
    /// creates the row with them, and says whether this call created it.
    ///
    /// It never loses an update to a concurrent call and never creates a duplicate. On
    /// PostgreSQL it is one statement; elsewhere `UPDATE`, then `INSERT` only when no row
    /// matched (see the README for the statements per backend).
    ///
    /// # Errors
    ///
    /// See [`Error`].
    fn update_or_create<C>(
        conn: &mut C,
        lookup: Self::Lookup,
        defaults: Self::Defaults,
    ) -> Result<(Self, bool), Error>
    where
        C: LoadConnection,
        C::Backend: Strategy<Self>,
        Self::Changes: From<Self::Defaults>,
    {
        let changes = Self::Changes::from(defaults);
        let session = &mut Blocking(conn);
        let none = || None;
        run_now(<C::Backend as Strategy<Self>>::update_or_create(
            session, &lookup, &changes, none,
        ))
    }

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
        C: LoadConnection,
        C::Backend: Strategy<Self>,
        F: FnOnce() -> Self::Defaults,
    {
        let session = &mut Blocking(conn);
        let create_defaults = move || Some(create_defaults());
        run_now(<C::Backend as Strategy<Self>>::update_or_create(
            session,
            &lookup,
            &changes,
            create_defaults,
        ))
    }

    /// Gets or creates the row of each `(lookup, defaults)` pair, and says which this
    /// call created; the results are in the order of `items`.
    ///
    /// It sends a fixed number of statements per chunk of items, not per item: on
    /// PostgreSQL one per 10,000 items, on SQLite two, on MySQL/MariaDB at most three, and
    /// one more for the items of a chunk that lost a race. The same key twice in `items`
    /// gets the same row, created at most once (with the defaults of its first
    /// occurrence).
    ///
    /// The [crate docs](crate) show it in use.
    ///
    /// # Errors
    ///
    /// See [`Error`]. A failure leaves the chunks before the failing one stored.
    fn get_or_create_many<C, I>(conn: &mut C, items: I) -> Result<Vec<(Self, bool)>, Error>
    where
        C: LoadConnection,
        C::Backend: Strategy<Self>,
        I: IntoIterator<Item = (Self::Lookup, Self::Defaults)>,
    {
        let items: Vec<_> = items.into_iter().collect();
        let session = &mut Blocking(conn);
        run_now(<C::Backend as Strategy<Self>>::get_or_create_many(
            session, &items,
        ))
    }
}

/// What the derive's expansion uses. Not part of the API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::model::*;
    pub use diesel;
}
