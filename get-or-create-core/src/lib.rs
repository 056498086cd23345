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
//!
//! // Sync a table with a list: each row set to its item's values, or created.
//! let rows = User::update_or_create_many(
//!     &mut conn,
//!     [("ann@example.com", 5), ("cy@example.com", 1)].map(|(email, karma)| {
//!         (UserLookup { email: email.into() }, UserDefaults { name: "?".into(), karma })
//!     }),
//! )?;
//! assert_eq!((rows[0].0.id, rows[0].0.karma, rows[0].1), (ann.id, 5, false));
//! assert!(rows[1].1);
//! # Ok(())
//! # }
//! ```
//!
//! # What the derive generates
//!
//! For a model `User` it writes, with the model's visibility:
//!
//! - `UserLookup`: one public field per `#[lookup]` field, the key of a row;
//! - `UserDefaults`: one per `#[default]` field, the values a new row is created with;
//! - `UserChanges`: one `Option` per `#[default]` field, the values
//!   [`update_or_create_with`](GetOrCreate::update_or_create_with) sets (it derives
//!   `Default` and converts from `UserDefaults`);
//! - the description of the model the runtime writes its statements from, which gives it
//!   [`GetOrCreate`] (and [`asynchronous::GetOrCreate`]), and compile-time checks that
//!   each field's type fits its column (the error points at the field).
//!
//! Fields with no attribute are left to the database (identity columns, column defaults)
//! and read back. The attributes:
//!
//! | on | attribute | means |
//! |---|---|---|
//! | field | `#[lookup]` | part of the key, compared with `=` (`IS NULL` for an `Option`'s `None` on a nullable column) |
//! | field | `#[lookup(function = lower)]` | compared as `lower(column) = lower(value)`, for a unique index on `lower(column)`; any SQL function name, such as `"app.canon_name"` |
//! | field | `#[lookup(collate = "NOCASE")]` | compared with that collation, for a unique index that uses it |
//! | field | `#[default]` | written only when a row is created; an `Option` on a `NOT NULL` column writes the column's `DEFAULT` for `None` |
//! | field | `#[get_or_create(lookup)]`, `#[get_or_create(default)]` | the same, for a struct that also derives `Default` |
//! | field | `#[get_or_create(on_create = "now()", on_update = "now()")]` | written by an SQL expression when the row is created, updated, or both |
//! | field | `#[get_or_create(attr(serde(rename = "..")))]` | written on the field in the generated structs |
//! | struct | `#[get_or_create(where = "deleted_at IS NULL")]` | the key is unique among these rows only (a partial unique index) |
//! | struct | `#[get_or_create(derive(Debug, Clone), lookup_derive(Hash, Eq, PartialEq))]` | derives on the generated structs (all, or one) |
//! | struct | `#[get_or_create(lookup_struct = UserKey, defaults_struct = .., changes_struct = ..)]` | other names for the generated structs |
//!
//! The derive reads Diesel's `#[diesel(table_name = ..)]`, `#[diesel(column_name = ..)]` and
//! `#[diesel(check_for_backend(..))]`. It refuses a model that reads a joined query
//! (`#[diesel(base_query = ..)]`, `select_expression`, `embed`): derive on a struct of the
//! table's own columns, and load the joined view with the other model. It refuses generic
//! and borrowing structs too: an application with separate `NewUser<'a>` insert forms
//! derives `GetOrCreate` on its owned read model (`Queryable` + `Selectable`, one field per
//! column) and builds `UserLookup` and `UserDefaults` from its borrowed values.
//!
//! # Database defaults
//!
//! As in Diesel's `Insertable`, a `#[default]` field of type `Option<T>` on a `NOT NULL`
//! column writes the column's SQL `DEFAULT` when it is `None`, and its value otherwise. On a
//! nullable column `None` writes `NULL`; to write the `DEFAULT` of a nullable column, spell
//! the field `Option<Option<T>>` (`None` writes `DEFAULT`, `Some(None)` writes `NULL`). In an
//! update (`update_or_create`, [`UserChanges`](GetOrCreate::Changes)) such a `None` keeps
//! the stored value, as Diesel's `AsChangeset` does.
//!
//! # The calls
//!
//! | call | does |
//! |---|---|
//! | [`get_or_create`](GetOrCreate::get_or_create) | the row of a key, created from the defaults if missing |
//! | [`get_or_create_with`](GetOrCreate::get_or_create_with) | the same, defaults computed only when a row is created |
//! | [`get_or_create_many`](GetOrCreate::get_or_create_many) | many keys at once, a fixed number of statements per chunk |
//! | [`update_or_create`](GetOrCreate::update_or_create) | set the defaults on the row of a key, or create it with them |
//! | [`update_or_create_with`](GetOrCreate::update_or_create_with) | set some fields, with values used only when creating |
//! | [`update_or_create_many`](GetOrCreate::update_or_create_many) | `update_or_create` of many keys, a fixed number of statements per chunk |
//! | [`check_schema`](GetOrCreate::check_schema) | whether a unique index backs the key as declared, for start-up and tests |
//!
//! Each returns the row (rows) and whether this call created it, and takes any sync Diesel
//! [`Connection`]. With the feature `async`, [`asynchronous::GetOrCreate`] has the same
//! calls for diesel-async connections: import it instead of this crate's `GetOrCreate`,
//! and `.await` each call.
//!
//! # Guarantees
//!
//! - `created` is `true` for exactly one caller per new row, however many race for it.
//! - A row that exists writes nothing on `get_or_create`: no sequence value, no lock.
//! - The library never opens a transaction, and a lost race never aborts the caller's
//!   transaction. The one savepoint it may send is on PostgreSQL, inside the caller's
//!   transaction, when an insert clashed on a unique index other than the key's and the
//!   clash must be named.
//! - `update_or_create` and `update_or_create_many` set the given values (no
//!   read-modify-write): no update is lost to a concurrent call.
//! - Every failure has its own [`Error`] case: several rows match, another unique
//!   constraint fired, no unique index backs the key, the transaction must be retried.
//!
//! The key needs a unique index (or primary key) that compares it as the model declares
//! it: its columns, each one's `function` or `collate`, and its `where` filter. It is what
//! makes the database, not the library, the judge of a race; the calls check it before
//! they first create a row ([`Error::NoUniqueIndex`] gives the `CREATE UNIQUE INDEX` to
//! run).
//!
//! # Statements per backend
//!
//! Enable the cargo features `postgres`, `sqlite` and/or `mysql`. Each statement whose text
//! depends only on the model is prepared once per connection and reused.
//!
//! | `get_or_create` | PostgreSQL | SQLite | MySQL/MariaDB |
//! |---|---|---|---|
//! | row exists | 1 (`SELECT .. LIMIT 2`) | 1 (`SELECT`) | 1 (`SELECT`) |
//! | row missing | 2 (`SELECT`, `INSERT .. ON CONFLICT DO NOTHING RETURNING`) | 2 (`SELECT`, `INSERT .. ON CONFLICT (key) DO NOTHING RETURNING`) | 3 (`SELECT`, `INSERT`, `SELECT`) |
//! | lost race | 3 | 3 | 3 (the last one `LOCK IN SHARE MODE`) |
//!
//! Each backend's module in the source lists the statements of every call and path, and
//! says why. On PostgreSQL every statement is a single `SELECT`, `INSERT` or `UPDATE` of one
//! table, with no CTE and no correlated subquery: none relies on two reads of a table in
//! different shards sharing a snapshot, so each is a plain router or pushed-down statement
//! on Citus, whose unique indexes include the distribution column (`pg/mod.rs` says more).
//!
//! # Transactions and isolation levels
//!
//! A call runs inside the caller's transaction, if any. Where the database lets a
//! transaction that lost a race go on, the call returns the winner's row: PostgreSQL and
//! MariaDB at `READ COMMITTED`, MariaDB at `REPEATABLE READ` (through a locking read),
//! SQLite in an immediate transaction. Where it does not (PostgreSQL `REPEATABLE READ` and
//! `SERIALIZABLE`, a SQLite deferred transaction that has read, a deadlock), the call
//! returns [`Error::TransactionMustBeRetried`]: roll back and run the whole transaction
//! again, for example with [`retry_transaction`]. Outside a transaction the library retries
//! by itself, at most three attempts ([`Error::RetriesExhausted`]).
//!
//! # `NULL` in a lookup
//!
//! A lookup on a nullable column is an `Option` (a plain type there is a compile error), and
//! its `None` matches `NULL` with `IS NULL`. A unique index treats `NULL`s as distinct
//! unless declared `NULLS NOT DISTINCT` (PostgreSQL 15+), so elsewhere a `NULL` key is not
//! protected against concurrent duplicates; a later call that finds them gets
//! [`Error::MultipleRowsMatch`]. On those databases make the column `NOT NULL` and use a
//! sentinel value for "none".
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "async")]
pub mod asynchronous;
mod blocking;
mod error;
mod model;
mod retry;
mod session;
mod strategy;

// What the backends share; a build without a backend feature has none to share it.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
mod flow;
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mysql"))]
mod sql;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use blocking::{Connection, GetOrCreate};
pub use error::Error;
pub use retry::{retry_transaction, MustRetryTransaction};

/// Derives [`GetOrCreate`](trait@GetOrCreate) (and, with the feature `async`,
/// [`asynchronous::GetOrCreate`]) for a Diesel model; see the [crate docs](crate).
pub use get_or_create_derive::GetOrCreate;

/// What the derive's expansion uses. Not part of the API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::model::*;
    pub use diesel;
}
