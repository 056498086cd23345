//! Races on real connections: many threads, each with a connection of its own, get or
//! create the same keys of `users`, and the checks of what they got against what the
//! database holds afterwards.
//!
//! A thread never panics while the others may be waiting for it at a barrier: every call
//! is recorded, errors and wrong rows included, and judged once all threads are done.

use std::collections::{BTreeMap, HashMap};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use diesel::result::Error as DieselError;
use get_or_create_core::Error;
use rand::seq::SliceRandom;

use crate::{TestDb, User};

/// In which order the threads walk the keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Each thread its own random order: collisions happen by chance.
    Shuffled,
    /// The same order in every thread, and all threads wait for each other before every
    /// key: each key is contested by every thread at the same instant (the worst case).
    Lockstep,
}

/// The shape of a race.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Threads, each with its own connection.
    pub threads: usize,
    /// Keys per pass.
    pub keys: usize,
    /// Passes; each pass races for new keys in the same table.
    pub passes: usize,
    /// How the threads walk the keys.
    pub order: Order,
}

impl Load {
    /// The email of key `key` of pass `pass`.
    pub fn email(pass: usize, key: usize) -> String {
        format!("p{pass}-user{key}@example.com")
    }

    /// How many distinct keys the race touches.
    pub fn total_keys(&self) -> usize {
        self.keys * self.passes
    }
}

/// What one call returned: the row's id and whether it was created, or the kind of its
/// error (see [`kind`]).
#[derive(Clone, Debug)]
pub struct Call {
    /// The key asked for.
    pub email: String,
    /// `(id, created)`, or the error's kind.
    pub outcome: Result<(i64, bool), String>,
}

/// Everything the threads of a race got.
#[derive(Debug)]
pub struct Report {
    /// Every call of every thread.
    pub calls: Vec<Call>,
    /// Wall time from the first call to the last.
    pub elapsed: Duration,
}

/// A short, stable name for the kind of an error, to count errors by kind.
pub fn kind(error: &Error) -> String {
    match error {
        Error::MultipleRowsMatch { .. } => "MultipleRowsMatch".into(),
        Error::UniqueViolation { .. } => "UniqueViolation".into(),
        Error::NoUniqueIndex { .. } => "NoUniqueIndex".into(),
        Error::TransactionMustBeRetried { .. } => "TransactionMustBeRetried".into(),
        Error::RetriesExhausted { .. } => "RetriesExhausted".into(),
        Error::Database(error) => format!("Database({})", diesel_kind(error)),
        other => format!("unknown error case: {other}"),
    }
}

/// The kind of a Diesel error and the start of its message.
pub fn diesel_kind(error: &DieselError) -> String {
    match error {
        DieselError::DatabaseError(kind, info) => {
            let message: String = info.message().chars().take(60).collect();
            format!("{kind:?}: {message}")
        }
        other => other.to_string(),
    }
}

/// Runs a race: `prepare` on each thread's new connection, then `call` for every key of
/// every pass. The threads start each pass together.
pub fn run<D, P, F>(db: &D, load: Load, prepare: P, call: F) -> Report
where
    D: TestDb,
    P: Fn(&mut D::Conn) + Sync,
    F: Fn(&mut D::Conn, &str) -> Result<(User, bool), Error> + Sync,
{
    let barrier = Barrier::new(load.threads);
    let (prepare, call) = (&prepare, &call);
    let started = std::sync::OnceLock::new();
    let per_thread: Vec<Vec<Call>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..load.threads)
            .map(|_| {
                let (barrier, started) = (&barrier, &started);
                scope.spawn(move || {
                    let mut conn = db.connect();
                    prepare(&mut conn);
                    let mut calls = Vec::with_capacity(load.total_keys());
                    for pass in 0..load.passes {
                        let mut keys: Vec<usize> = (0..load.keys).collect();
                        if load.order == Order::Shuffled {
                            keys.shuffle(&mut rand::rng());
                        }
                        barrier.wait();
                        started.get_or_init(Instant::now);
                        for key in keys {
                            if load.order == Order::Lockstep {
                                barrier.wait();
                            }
                            let email = Load::email(pass, key);
                            let outcome = match call(&mut conn, &email) {
                                Ok((row, _)) if row.email != email => {
                                    Err(format!("wrong row: {} for {email}", row.email))
                                }
                                Ok((row, created)) => Ok((row.id, created)),
                                Err(error) => Err(kind(&error)),
                            };
                            calls.push(Call { email, outcome });
                        }
                    }
                    calls
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a racing thread panicked"))
            .collect()
    });
    let elapsed = started.get().map_or(Duration::ZERO, Instant::elapsed);
    Report {
        calls: per_thread.into_iter().flatten().collect(),
        elapsed,
    }
}

/// What the callers of one key got.
#[derive(Debug, Default)]
struct KeyCalls {
    ids: Vec<i64>,
    created: usize,
    calls: usize,
}

impl Report {
    /// The errors, counted by kind.
    pub fn errors(&self) -> BTreeMap<String, usize> {
        let mut errors = BTreeMap::new();
        for call in &self.calls {
            if let Err(kind) = &call.outcome {
                *errors.entry(kind.clone()).or_default() += 1;
            }
        }
        errors
    }

    /// How many calls reported `created`.
    pub fn created(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| matches!(c.outcome, Ok((_, true))))
            .count()
    }

    /// A one-line summary, printed by the tests (`--nocapture`) to measure.
    pub fn summary(&self, backend: &str, what: &str) -> String {
        let calls = self.calls.len();
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{backend} {what}: {calls} calls in {secs:.2} s ({:.0} calls/s), created {}, errors {:?}",
            calls as f64 / secs.max(1e-9),
            self.created(),
            self.errors()
        )
    }

    fn per_key(&self) -> HashMap<&str, KeyCalls> {
        let mut per_key: HashMap<&str, KeyCalls> = HashMap::new();
        for call in &self.calls {
            let entry = per_key.entry(call.email.as_str()).or_default();
            entry.calls += 1;
            if let Ok((id, created)) = call.outcome {
                entry.ids.push(id);
                entry.created += usize::from(created);
            }
        }
        per_key
    }

    /// The strict check of a race that must not fail: no error at all, every key created
    /// by exactly one caller, every caller of a key given the same row, and the table
    /// holding exactly one row per key, the one the callers got.
    pub fn assert_exact<D: TestDb>(&self, db: &D, load: Load) {
        let errors = self.errors();
        assert!(errors.is_empty(), "{}: errors: {errors:?}", D::NAME);
        let per_key = self.per_key();
        assert_eq!(per_key.len(), load.total_keys(), "{}: keys called", D::NAME);
        for (email, got) in &per_key {
            assert_eq!(got.calls, load.threads, "{}: calls of {email}", D::NAME);
            assert_eq!(
                got.created,
                1,
                "{}: {email} reported created {} times",
                D::NAME,
                got.created
            );
            assert!(
                got.ids.iter().all(|id| *id == got.ids[0]),
                "{}: callers of {email} got different rows: {:?}",
                D::NAME,
                got.ids
            );
        }
        let stored = D::users(&mut db.connect());
        assert_eq!(
            stored.len(),
            load.total_keys(),
            "{}: one row per key",
            D::NAME
        );
        for user in stored {
            let got = per_key
                .get(user.email.as_str())
                .unwrap_or_else(|| panic!("{}: unexpected row {user:?}", D::NAME));
            assert_eq!(
                got.ids[0],
                user.id,
                "{}: {} is another row",
                D::NAME,
                user.email
            );
        }
    }

    /// The check of a race in which some calls may fail with an error that `allowed`
    /// accepts (a transaction that must be retried): every other call got the right row,
    /// and the table agrees with the calls that succeeded. A key has a row exactly when
    /// one successful call created it; every successful caller of a key got that row; a
    /// key without a row had no successful caller.
    pub fn assert_consistent<D: TestDb>(&self, db: &D, allowed: impl Fn(&str) -> bool) {
        let unexpected: Vec<_> = self
            .errors()
            .into_iter()
            .filter(|(kind, _)| !allowed(kind))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{}: unexpected errors: {unexpected:?}",
            D::NAME
        );
        let per_key = self.per_key();
        let stored = D::users(&mut db.connect());
        let mut rows: HashMap<&str, Vec<i64>> = HashMap::new();
        for user in &stored {
            rows.entry(user.email.as_str()).or_default().push(user.id);
        }
        for (email, got) in &per_key {
            match rows.get(email).map(Vec::as_slice) {
                None => assert!(
                    got.ids.is_empty(),
                    "{}: {email} has no row, yet callers got {:?}",
                    D::NAME,
                    got.ids
                ),
                Some([id]) => {
                    assert_eq!(
                        got.created,
                        1,
                        "{}: {email}: creators among the successful calls",
                        D::NAME
                    );
                    assert!(
                        got.ids.iter().all(|got| got == id),
                        "{}: callers of {email} got {:?}, the row is {id}",
                        D::NAME,
                        got.ids
                    );
                }
                Some(ids) => panic!("{}: {email} has several rows: {ids:?}", D::NAME),
            }
        }
        assert!(
            rows.keys().all(|email| per_key.contains_key(email)),
            "{}: rows for keys nobody asked for",
            D::NAME
        );
    }
}
