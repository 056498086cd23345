//! Whether a unique index backs a model's key, asked of PostgreSQL itself.
//!
//! The insert has no conflict target (a clash on any index must not abort the caller's
//! transaction), so it does not refuse a key without a unique index: this module does.
//! It asks PostgreSQL to infer the index an `ON CONFLICT (<key>) WHERE <filter>` target
//! would use ([`ExplainKeyIndex`]), which honours expressions, collations and partial
//! indexes exactly as PostgreSQL does.
//!
//! The answer is kept per model and table (by the table's oid) for the life of the
//! process, once positive. The first insert of a model is checked before it is sent; an
//! insert that lands in a table not checked yet (the same model on another schema or
//! database) is checked right after, from the oid its `RETURNING` names.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use diesel::pg::Pg;
use diesel::result::Error as DieselError;

use super::statements::{ExplainKeyIndex, OtherUniqueIndexes, TableOid};
use crate::flow::{classify, Failure, Named, Stored};
use crate::session::Session;

/// Per model type and table oid: the unique indexes found to back the key there.
type Checked = HashMap<TypeId, HashMap<u32, Vec<String>>>;
static CHECKED: LazyLock<Mutex<Checked>> = LazyLock::new(Default::default);

fn checked() -> std::sync::MutexGuard<'static, Checked> {
    CHECKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per model type: whether its table has a unique index other than the key's and the
/// primary key.
static OTHER_UNIQUE: LazyLock<Mutex<HashMap<TypeId, bool>>> = LazyLock::new(Default::default);

/// Whether `M`'s table has a unique index, other than the key's and its primary key, that
/// an update of the default columns could violate. Asked once per model and process
/// (with the key's own indexes found first, if they are not known yet).
pub(crate) async fn has_other_unique_index<M, S>(session: &mut S) -> Result<bool, Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    let known = OTHER_UNIQUE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&TypeId::of::<M>())
        .copied();
    if let Some(known) = known {
        return Ok(known);
    }
    let checked_indexes = checked()
        .get(&TypeId::of::<M>())
        .and_then(|tables| tables.values().next().cloned());
    let key_indexes = match checked_indexes {
        Some(indexes) => indexes,
        // No index backs the key: every unique index is another.
        None => check::<M, S>(session).await.unwrap_or_default(),
    };
    let query = OtherUniqueIndexes {
        table: M::table_sql(),
        key_indexes,
    };
    let others: Vec<bool> = session
        .load::<bool, _, _>(query)
        .await
        .map_err(classify::<M, Pg>)?;
    let others = others.first().copied().unwrap_or(true);
    OTHER_UNIQUE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(TypeId::of::<M>(), others);
    Ok(others)
}

/// Whether `index` backs `M`'s key in some table it was checked in: a clash on it is a
/// clash with the key's row.
pub(crate) fn is_key_index<M: 'static>(index: &str) -> bool {
    checked()
        .get(&TypeId::of::<M>())
        .is_some_and(|tables| tables.values().flatten().any(|name| name == index))
}

/// Before an insert: checks the key's index unless some table of `M` has been checked.
pub(crate) async fn check_before_insert<M, S>(session: &mut S) -> Result<(), Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    if checked().contains_key(&TypeId::of::<M>()) {
        return Ok(());
    }
    check::<M, S>(session).await.map(|_| ())
}

/// After an insert into the table `oid`: checks the key's index there if not yet done.
pub(crate) async fn check_table<M, S>(session: &mut S, oid: u32) -> Result<(), Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    let known = checked()
        .get(&TypeId::of::<M>())
        .is_some_and(|tables| tables.contains_key(&oid));
    if known {
        return Ok(());
    }
    check::<M, S>(session).await.map(|_| ())
}

/// Checks that a unique index backs `M`'s key in the table the session resolves, and
/// returns the indexes that do. Inside the caller's transaction it runs in a savepoint,
/// so that a refusal does not abort the transaction (once per model and table).
pub(crate) async fn check<M, S>(session: &mut S) -> Result<Vec<String>, Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    let in_transaction = session.in_transaction().map_err(classify::<M, Pg>)?;
    if in_transaction {
        execute::<M, S>(session, "SAVEPOINT __goc_check").await?;
    }
    let outcome = explain::<M, S>(session).await;
    if in_transaction {
        let end = match outcome {
            Ok(_) => "RELEASE SAVEPOINT __goc_check",
            Err(_) => "ROLLBACK TO SAVEPOINT __goc_check; RELEASE SAVEPOINT __goc_check",
        };
        for statement in end.split("; ") {
            execute::<M, S>(session, statement).await?;
        }
    }
    let (oid, indexes) = outcome?;
    checked()
        .entry(TypeId::of::<M>())
        .or_default()
        .insert(oid, indexes.clone());
    Ok(indexes)
}

/// The table's oid, and the unique indexes PostgreSQL infers for the key.
async fn explain<M, S>(session: &mut S) -> Result<(u32, Vec<String>), Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    let name = M::table_sql();
    let oids: Vec<u32> = session
        .load::<u32, _, _>(TableOid { name })
        .await
        .map_err(classify::<M, Pg>)?;
    // A key no unique index backs fails here with 42P10, which `classify` reports as
    // `NoUniqueIndex`.
    let plan: Vec<String> = session
        .load::<String, _, _>(ExplainKeyIndex::<M>::new())
        .await
        .map_err(classify::<M, Pg>)?;
    const ARBITERS: &str = "Conflict Arbiter Indexes: ";
    let indexes = plan
        .iter()
        .find_map(|line| line.trim().strip_prefix(ARBITERS))
        .unwrap_or_default()
        .split(", ")
        .map(str::to_owned)
        .collect();
    Ok((oids.first().copied().unwrap_or_default(), indexes))
}

async fn execute<M, S>(session: &mut S, sql: &'static str) -> Result<(), Failure>
where
    M: Stored<Pg>,
    S: Session<Backend = Pg>,
{
    session
        .execute(diesel::sql_query(sql))
        .await
        .map(|_| ())
        .map_err(|error: DieselError| classify::<M, Pg>(error))
}
