//! The one error type of `get_or_create`.

use std::fmt;

use diesel::result::Error as DieselError;

/// What can go wrong in a `get_or_create` call.
///
/// Every case that comes from the database keeps the original
/// [`diesel::result::Error`] as its [`source`](std::error::Error::source), so nothing the
/// database said is lost.
///
/// # Example
///
/// ```
/// use get_or_create_core::Error;
///
/// fn explain(error: &Error) -> &'static str {
///     match error {
///         Error::MultipleRowsMatch { .. } => "add a unique index on the lookup columns",
///         Error::UniqueViolation { .. } => "another unique column clashes with an existing row",
///         Error::NoUniqueIndex { .. } => "create the unique index the error names",
///         Error::TransactionMustBeRetried { .. } => "roll back and run the transaction again",
///         Error::RetriesExhausted { .. } => "the row kept changing under us; try again later",
///         Error::Database(_) => "some other database error",
///         _ => "a case added in a later version",
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The lookup matched more than one row, so there is no single row to return.
    ///
    /// Happens when no unique index backs the key (a lookup never needs one: only
    /// creating does), or when a lookup value is `NULL` and the unique index treats
    /// `NULL`s as distinct (the default everywhere but PostgreSQL's `NULLS NOT DISTINCT`).
    ///
    /// What to do: declare a unique index that backs the key (see
    /// [`NoUniqueIndex`](Error::NoUniqueIndex)), clean up the duplicate rows, and on
    /// PostgreSQL 15+ declare nullable lookup columns `NULLS NOT DISTINCT`.
    #[non_exhaustive]
    MultipleRowsMatch {
        /// The table, as the database names it (schema-qualified when the `table!` names a
        /// schema).
        table: String,
        /// The SQL names of the lookup columns.
        columns: &'static [&'static str],
    },

    /// Creating (or, in `update_or_create`, changing) the row collided with a different
    /// row on a unique index: another unique column, such as a `#[default] username` that
    /// another row already has. (A collision with the very row the lookup names, on any
    /// unique index, is no error: that row is returned.)
    ///
    /// The caller's transaction is still usable afterwards, on every backend: the library
    /// runs the insert so that a collision does not abort it.
    ///
    /// What to do: choose other defaults, or make that column part of the lookup.
    #[non_exhaustive]
    UniqueViolation {
        /// What the database names the constraint by: the constraint name on PostgreSQL, the
        /// key name on MySQL/MariaDB, the column list (`table.column, ..`) on SQLite.
        /// `None` when the database did not say.
        constraint: Option<String>,
        /// The database's error.
        source: DieselError,
    },

    /// No unique index backs the key as declared (its columns, its `function` or
    /// `collate`, its `where` filter), so the database cannot keep two concurrent callers
    /// from creating the same row twice.
    ///
    /// Only creating a row needs the index: a row that exists is found (and updated)
    /// whatever indexes the table has; a bulk call returns this before it writes any row
    /// of the chunk that holds the key to create. Detected before the first row of the model is written (SQLite
    /// refuses the insert's `ON CONFLICT` target; PostgreSQL and MySQL/MariaDB are asked
    /// once per table and process, and every table the model is later written to is
    /// checked as well), and by `check_schema` at start-up.
    ///
    /// What to do: run the statement in `create_index`, valid SQL for the backend that
    /// raised the error.
    #[non_exhaustive]
    NoUniqueIndex {
        /// The table, as the database names it (schema-qualified when the `table!` names a
        /// schema).
        table: String,
        /// The SQL names of the lookup columns.
        columns: &'static [&'static str],
        /// A `CREATE UNIQUE INDEX` statement that backs the key, for this backend.
        create_index: String,
        /// The database's error, where it raised one.
        source: Option<DieselError>,
    },

    /// The row this call created is not among the rows its key is unique in: the model's
    /// `#[get_or_create(where = ..)]` filter does not hold for it (say `gh_id > 0`, and a
    /// lookup of `gh_id = -1`). No later lookup could find it, so every call would create
    /// another.
    ///
    /// The row is written: inside a transaction, roll it back. What to do: call with a key
    /// the filter holds for, or give the row defaults that make it hold.
    #[non_exhaustive]
    CreatedOutsideFilter {
        /// The table, as the database names it.
        table: String,
        /// The filter, as the model declares it.
        filter: &'static str,
    },

    /// The backend cannot back the key as the model declares it: MySQL/MariaDB have no
    /// partial indexes (`where`) and compare by the column's own collation (`collate`).
    /// Detected before anything is written.
    ///
    /// What to do: see `reason`, which names what to declare instead.
    #[non_exhaustive]
    KeyNotSupported {
        /// The table, as the database names it.
        table: String,
        /// Why, and what to declare instead.
        reason: String,
    },

    /// The caller's transaction lost a conflict with a concurrent one and the database has
    /// already rolled it back (or will only let it roll back): a serialization failure
    /// (PostgreSQL `40001`, at `REPEATABLE READ` or `SERIALIZABLE`), a deadlock (MariaDB
    /// `1213`, PostgreSQL `40P01`), or a stale SQLite snapshot (`database is locked` inside a
    /// deferred transaction).
    ///
    /// Only returned when the call ran inside a transaction, where repeating a single
    /// statement would be wrong. Outside a transaction the library retries by itself.
    ///
    /// What to do: roll back and run the whole transaction again.
    #[non_exhaustive]
    TransactionMustBeRetried {
        /// The database's error.
        source: DieselError,
    },

    /// Outside a transaction, the call was repeated the given number of times and every
    /// attempt lost a race (a deadlock, a serialization failure, or a row that was deleted
    /// between the failed insert and the re-read). On SQLite, "database is locked" counts
    /// as a lost race, so a `busy_timeout` too short for the write load ends here after
    /// three waits.
    ///
    /// What to do: usually nothing but trying again later; a constant stream of this error
    /// means another process deletes and recreates the same rows in a tight loop.
    #[non_exhaustive]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt, if it ended in one.
        source: Option<DieselError>,
    },

    /// Any other database error (a connection failure, a `NOT NULL` or `CHECK` violation
    /// in the defaults, a type mismatch, ..), unchanged.
    Database(DieselError),
}

impl Error {
    /// Whether the caller should roll back and run its transaction again.
    ///
    /// True for [`Error::TransactionMustBeRetried`], and for a wrapped [`Error::Database`]
    /// serialization failure or deadlock, so that a retry loop around a transaction (see
    /// [`retry_transaction`](crate::retry_transaction)) treats the library's statements
    /// and the caller's own alike.
    ///
    /// ```
    /// use diesel::result::{DatabaseErrorKind, Error as DieselError};
    /// use get_or_create_core::Error;
    ///
    /// let lost = DieselError::DatabaseError(
    ///     DatabaseErrorKind::SerializationFailure,
    ///     Box::new(String::from("could not serialize access")),
    /// );
    /// assert!(Error::from(lost).must_retry_transaction());
    /// assert!(!Error::from(DieselError::NotFound).must_retry_transaction());
    /// ```
    pub fn must_retry_transaction(&self) -> bool {
        match self {
            Error::TransactionMustBeRetried { .. } => true,
            Error::Database(error) => crate::retry::is_lost_conflict(error),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MultipleRowsMatch { table, columns } => write!(
                f,
                "several rows of `{table}` match the lookup on ({}); \
                 declare a unique index on exactly these columns",
                columns.join(", ")
            ),
            Error::UniqueViolation { constraint, source } => match constraint {
                Some(name) => write!(
                    f,
                    "creating the row violated unique constraint `{name}`, \
                     which is not the lookup's: {source}"
                ),
                None => write!(
                    f,
                    "creating the row violated a unique constraint \
                     that is not the lookup's: {source}"
                ),
            },
            Error::NoUniqueIndex {
                table,
                columns,
                create_index,
                ..
            } => write!(
                f,
                "no unique index of `{table}` backs the lookup on ({}); without one, \
                 concurrent calls can create duplicates: add `{create_index}`",
                columns.join(", "),
            ),
            Error::CreatedOutsideFilter { table, filter } => write!(
                f,
                "the row created in `{table}` does not satisfy the key's filter `{filter}`, \
                 so no lookup would find it again; call with a key the filter holds for \
                 (inside a transaction, roll the row back)"
            ),
            Error::KeyNotSupported { table, reason } => {
                write!(f, "the key of `{table}` cannot be served here: {reason}")
            }
            Error::TransactionMustBeRetried { source } => write!(
                f,
                "the transaction lost a conflict with a concurrent one and must be \
                 rolled back and run again: {source}"
            ),
            Error::RetriesExhausted { attempts, source } => {
                write!(f, "gave up after {attempts} attempts that each lost a race")?;
                match source {
                    Some(source) => write!(f, ": {source}"),
                    None => Ok(()),
                }
            }
            Error::Database(source) => write!(f, "database error: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::UniqueViolation { source, .. }
            | Error::TransactionMustBeRetried { source }
            | Error::Database(source) => Some(source),
            Error::NoUniqueIndex { source, .. } | Error::RetriesExhausted { source, .. } => {
                source.as_ref().map(|e| e as _)
            }
            Error::MultipleRowsMatch { .. }
            | Error::CreatedOutsideFilter { .. }
            | Error::KeyNotSupported { .. } => None,
        }
    }
}

/// Wraps any Diesel error as [`Error::Database`], so that `Error` can be the error type of
/// a `conn.transaction(..)` closure that calls `get_or_create` and other Diesel queries.
impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        Error::Database(error)
    }
}
