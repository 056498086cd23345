//! Rerunning a transaction that lost a conflict with a concurrent one.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::Error;

/// An error that can tell whether the transaction that raised it should be run again.
pub trait MustRetryTransaction {
    /// True when the database rolled the transaction back (or will only let it roll back)
    /// because it lost a conflict with a concurrent one, so that running it again can
    /// succeed: a serialization failure, a deadlock, a stale SQLite snapshot.
    fn must_retry_transaction(&self) -> bool;
}

impl MustRetryTransaction for Error {
    fn must_retry_transaction(&self) -> bool {
        Error::must_retry_transaction(self)
    }
}

impl MustRetryTransaction for DieselError {
    fn must_retry_transaction(&self) -> bool {
        is_lost_conflict(self)
    }
}

/// Whether a Diesel error means "this transaction lost to a concurrent one". Diesel maps
/// PostgreSQL 40001 and MySQL deadlocks (1213) to `SerializationFailure`; PostgreSQL
/// deadlocks (40P01) and SQLite's `SQLITE_BUSY` it leaves `Unknown`, with a message, and
/// so does diesel-async's MySQL connection with deadlocks.
pub(crate) fn is_lost_conflict(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("deadlock detected")
                || message == "database is locked"
                || message.starts_with("Deadlock found when trying to get lock")
        }
        _ => false,
    }
}

/// Runs `transaction` until it succeeds, fails with an error that does not ask for a
/// retry, or has run `max_attempts` times; returns its last result.
///
/// `transaction` must run a whole transaction (begin to commit), since that is what the
/// database asks to be repeated: pass a closure around `conn.transaction(..)`,
/// `conn.build_transaction().serializable().run(..)` (PostgreSQL) or
/// `conn.immediate_transaction(..)` (SQLite). Between attempts it waits a little, longer
/// each time (1 ms, 2 ms, 4 ms, .. up to 64 ms), to let the winner finish. This is also what
/// PostgreSQL-compatible distributed databases such as CockroachDB expect of clients.
///
/// ```
/// use diesel::Connection;
/// use get_or_create_core::{retry_transaction, Error};
///
/// fn transfer<C: Connection>(conn: &mut C) -> Result<u32, Error> {
///     retry_transaction(5, || {
///         conn.transaction::<_, Error, _>(|conn| {
///             // get_or_create calls and other queries on `conn`
///             Ok(42)
///         })
///     })
/// }
/// # let _ = transfer::<diesel::SqliteConnection>;
/// ```
pub fn retry_transaction<T, E, F>(max_attempts: u32, mut transaction: F) -> Result<T, E>
where
    F: FnMut() -> Result<T, E>,
    E: MustRetryTransaction,
{
    let mut attempt = 1;
    loop {
        match transaction() {
            Err(error) if error.must_retry_transaction() && attempt < max_attempts => {
                std::thread::sleep(Duration::from_millis(1 << (attempt - 1).min(6)));
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> DieselError {
        DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new(String::from("could not serialize access")),
        )
    }

    #[test]
    fn reruns_until_success() {
        let mut calls = 0;
        let result = retry_transaction(5, || {
            calls += 1;
            if calls < 3 {
                Err(lost())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.ok(), Some(3));
    }

    #[test]
    fn stops_after_max_attempts() {
        let mut calls = 0;
        let result: Result<(), _> = retry_transaction(3, || {
            calls += 1;
            Err(lost())
        });
        assert!(result.is_err());
        assert_eq!(calls, 3);
    }

    #[test]
    fn does_not_rerun_other_errors() {
        let mut calls = 0;
        let result: Result<(), _> = retry_transaction(3, || {
            calls += 1;
            Err(DieselError::NotFound)
        });
        assert!(matches!(result, Err(DieselError::NotFound)));
        assert_eq!(calls, 1);
    }
}
