//! The hand-written bulk shapes `get_or_create_many` is compared with: plain Diesel (or a
//! query of a few lines where Diesel's DSL has no such statement), each handling keys
//! repeated in the input (one row, created once, for the first of them) and returning every
//! item's row with its created flag in input order, like the library.
//!
//! | backend | shape | statements |
//! |---|---|---|
//! | PostgreSQL | `insert_all+select` | `INSERT .. SELECT FROM unnest($1, $2, $3) ON CONFLICT (email) DO NOTHING RETURNING id`, then `SELECT .. WHERE email = ANY($1)` |
//! | PostgreSQL | `select+insert_missing` | `SELECT .. WHERE email = ANY($1)`, then the insert of the missing keys `RETURNING` their rows (and a `SELECT` of the keys that lost a race) |
//! | PostgreSQL | `insert_all+select, prepared` | `insert_all+select` with its insert kept prepared on the connection, as Diesel keeps statements of a fixed text |
//! | SQLite | `insert_all+select` | `INSERT .. VALUES (..), .. ON CONFLICT (email) DO NOTHING RETURNING id`, then `SELECT .. WHERE email IN (..)` |
//! | SQLite | `select+insert_missing` | `SELECT .. IN (..)`, then the insert of the missing keys `RETURNING` their rows |
//! | MariaDB | `select+insert+select` | `SELECT .. IN (..)`, `INSERT .. VALUES` of the missing keys, `SELECT .. IN (<missing>)` |
//! | MariaDB | `select+insert+last_id` | the same, but the new ids from `LAST_INSERT_ID()` (one multi-row `INSERT` gets consecutive ids when `innodb_autoinc_lock_mode` is 0 or 1) |
//!
//! The `insert_all` shapes consume an id for every item whose key is stored (PostgreSQL
//! evaluates the sequence before it meets the conflict; SQLite does not): the bench reports
//! how many.

use std::collections::HashSet;
use std::marker::PhantomData;

use diesel::pg::Pg as PgBackend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Text};

use crate::schema::users;
use crate::{
    in_input_order, insert_values, is_duplicate, Backend, Mysql, NewRow, Pg, Sqlite, User, NAME,
};

/// A bulk get-or-create: every key's row and whether this call created it, in input order.
pub type BulkFn<C> = fn(&mut C, &[String]) -> Vec<(User, bool)>;

/// Keys per statement of the hand-written shapes (3 binds a row: under SQLite's 32,766).
pub const CHUNK: usize = 10_000;

/// A backend's hand-written bulk shapes.
pub trait Shapes: Backend {
    /// The shapes, by name.
    fn shapes() -> Vec<(&'static str, BulkFn<Self::Conn>)>;
}

/// The distinct keys of `keys` not in `found`, in input order.
fn missing<'k>(keys: &'k [String], found: &[User]) -> Vec<&'k str> {
    let stored: HashSet<&str> = found.iter().map(|u| u.email.as_str()).collect();
    let mut seen = HashSet::new();
    keys.iter()
        .map(String::as_str)
        .filter(|k| !stored.contains(k) && seen.insert(*k))
        .collect()
}

/// Runs `shape` on each chunk of `keys`.
fn chunked<C>(
    conn: &mut C,
    keys: &[String],
    shape: impl Fn(&mut C, &[String]) -> Vec<(User, bool)>,
) -> Vec<(User, bool)> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        out.extend(shape(conn, chunk));
    }
    out
}

/// `fn $name(conn, keys) -> Vec<User>`: `SELECT .. WHERE email = ANY($1)` on PostgreSQL,
/// `.. IN (?, ..)` elsewhere (Diesel's `eq_any`).
macro_rules! select_keys {
    ($name:ident, $conn:ty) => {
        fn $name<K: AsRef<str>>(conn: &mut $conn, keys: &[K]) -> Vec<User> {
            let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
            users::table
                .filter(users::email.eq_any(keys))
                .select(User::as_select())
                .load(conn)
                .expect("select the keys")
        }
    };
}

select_keys!(pg_select_keys, PgConnection);
select_keys!(sqlite_select_keys, SqliteConnection);
select_keys!(mysql_select_keys, MysqlConnection);

/// One PostgreSQL statement of fixed text with array parameters, kept prepared on the
/// connection (`cache`) or planned for its values at each execution.
pub struct PgArrays<'a, ST> {
    /// The SQL around the parameters: one piece more than `binds`.
    parts: &'static [&'static str],
    binds: Vec<PgArray<'a>>,
    cache: bool,
    _row: PhantomData<ST>,
}

/// An array parameter.
pub enum PgArray<'a> {
    /// `text[]`
    Texts(Vec<&'a str>),
    /// `int4[]`
    Ints(Vec<i32>),
}

impl<'a, ST> PgArrays<'a, ST> {
    /// The statement `parts[0] binds[0] parts[1] ..`, planned for its values at each
    /// execution (not kept prepared).
    pub fn new(parts: &'static [&'static str], binds: Vec<PgArray<'a>>) -> Self {
        assert_eq!(
            parts.len(),
            binds.len() + 1,
            "one piece of SQL more than binds"
        );
        PgArrays {
            parts,
            binds,
            cache: false,
            _row: PhantomData,
        }
    }
}

impl<ST> QueryId for PgArrays<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: 'static> Query for PgArrays<'_, ST> {
    type SqlType = ST;
}

impl<ST> QueryFragment<PgBackend> for PgArrays<'_, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, PgBackend>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(self.parts[0]);
        for (bind, part) in self.binds.iter().zip(&self.parts[1..]) {
            match bind {
                PgArray::Texts(values) => out.push_bind_param::<Array<Text>, _>(values)?,
                PgArray::Ints(values) => out.push_bind_param::<Array<Integer>, _>(values)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<ST> RunQueryDsl<PgConnection> for PgArrays<'_, ST> {}

/// The insert columns of `keys` as three arrays.
fn pg_insert_arrays<'a>(keys: &[&'a str]) -> Vec<PgArray<'a>> {
    vec![
        PgArray::Texts(keys.to_vec()),
        PgArray::Texts(vec![NAME; keys.len()]),
        PgArray::Ints(vec![0; keys.len()]),
    ]
}

/// `INSERT .. SELECT FROM unnest(..) ON CONFLICT (email) DO NOTHING RETURNING id`
fn pg_insert_all(conn: &mut PgConnection, keys: &[String], cache: bool) -> Vec<(User, bool)> {
    chunked(conn, keys, |conn, keys| {
        let all: Vec<&str> = keys.iter().map(String::as_str).collect();
        let insert = PgArrays::<BigInt> {
            parts: &[
                "INSERT INTO users (email, name, karma) SELECT * FROM unnest(",
                ", ",
                ", ",
                ") ON CONFLICT (email) DO NOTHING RETURNING id",
            ],
            binds: pg_insert_arrays(&all),
            cache,
            _row: PhantomData,
        };
        let created: HashSet<i64> = insert
            .load::<i64>(conn)
            .expect("insert all")
            .into_iter()
            .collect();
        let rows = pg_select_keys(conn, keys);
        in_input_order(keys, rows, &created)
    })
}

fn pg_insert_all_select(conn: &mut PgConnection, keys: &[String]) -> Vec<(User, bool)> {
    pg_insert_all(conn, keys, false)
}

fn pg_insert_all_select_prepared(conn: &mut PgConnection, keys: &[String]) -> Vec<(User, bool)> {
    pg_insert_all(conn, keys, true)
}

/// `SELECT .. = ANY($1)`, then `INSERT .. SELECT FROM unnest(<missing>) ON CONFLICT (email)
/// DO NOTHING RETURNING <row>`, then (only after a lost race) a `SELECT` of the rest.
fn pg_select_insert_missing(conn: &mut PgConnection, keys: &[String]) -> Vec<(User, bool)> {
    chunked(conn, keys, |conn, keys| {
        let mut rows = pg_select_keys(conn, keys);
        let missing = missing(keys, &rows);
        let mut created = HashSet::new();
        if !missing.is_empty() {
            let insert = PgArrays::<(BigInt, Text, Text, Integer)> {
                parts: &[
                    "INSERT INTO users (email, name, karma) SELECT * FROM unnest(",
                    ", ",
                    ", ",
                    ") ON CONFLICT (email) DO NOTHING RETURNING id, email, name, karma",
                ],
                binds: pg_insert_arrays(&missing),
                cache: false,
                _row: PhantomData,
            };
            let inserted: Vec<User> = insert.load(conn).expect("insert the missing keys");
            created.extend(inserted.iter().map(|u| u.id));
            if inserted.len() < missing.len() {
                let lost: Vec<&str> = {
                    let new: HashSet<&str> = inserted.iter().map(|u| u.email.as_str()).collect();
                    missing.into_iter().filter(|k| !new.contains(k)).collect()
                };
                rows.extend(pg_select_keys(conn, &lost));
            }
            rows.extend(inserted);
        }
        in_input_order(keys, rows, &created)
    })
}

impl Shapes for Pg {
    fn shapes() -> Vec<(&'static str, BulkFn<PgConnection>)> {
        vec![
            ("insert_all+select", pg_insert_all_select),
            ("select+insert_missing", pg_select_insert_missing),
            ("insert_all+select, prepared", pg_insert_all_select_prepared),
        ]
    }
}

fn insert_rows<'a>(keys: &[&'a str]) -> Vec<NewRow<'a>> {
    keys.iter().map(|k| insert_values(k)).collect()
}

/// `INSERT .. VALUES (..), .. ON CONFLICT (email) DO NOTHING RETURNING id`, then
/// `SELECT .. IN (..)`.
fn sqlite_insert_all_select(conn: &mut SqliteConnection, keys: &[String]) -> Vec<(User, bool)> {
    chunked(conn, keys, |conn, keys| {
        let all: Vec<&str> = keys.iter().map(String::as_str).collect();
        let created: HashSet<i64> = diesel::insert_into(users::table)
            .values(insert_rows(&all))
            .on_conflict(users::email)
            .do_nothing()
            .returning(users::id)
            .get_results::<i64>(conn)
            .expect("insert all")
            .into_iter()
            .collect();
        let rows = sqlite_select_keys(conn, keys);
        in_input_order(keys, rows, &created)
    })
}

/// `SELECT .. IN (..)`, then `INSERT .. VALUES <missing> ON CONFLICT (email) DO NOTHING
/// RETURNING <row>` (SQLite runs one writer at a time, but another connection may write
/// between the two: then a `SELECT` of the rest).
fn sqlite_select_insert_missing(conn: &mut SqliteConnection, keys: &[String]) -> Vec<(User, bool)> {
    chunked(conn, keys, |conn, keys| {
        let mut rows = sqlite_select_keys(conn, keys);
        let missing = missing(keys, &rows);
        let mut created = HashSet::new();
        if !missing.is_empty() {
            let inserted: Vec<User> = diesel::insert_into(users::table)
                .values(insert_rows(&missing))
                .on_conflict(users::email)
                .do_nothing()
                .returning(User::as_returning())
                .get_results(conn)
                .expect("insert the missing keys");
            created.extend(inserted.iter().map(|u| u.id));
            if inserted.len() < missing.len() {
                let new: HashSet<&str> = inserted.iter().map(|u| u.email.as_str()).collect();
                let lost: Vec<&str> = missing.into_iter().filter(|k| !new.contains(k)).collect();
                rows.extend(sqlite_select_keys(conn, &lost));
            }
            rows.extend(inserted);
        }
        in_input_order(keys, rows, &created)
    })
}

impl Shapes for Sqlite {
    fn shapes() -> Vec<(&'static str, BulkFn<SqliteConnection>)> {
        vec![
            ("insert_all+select", sqlite_insert_all_select),
            ("select+insert_missing", sqlite_select_insert_missing),
        ]
    }
}

/// How a MariaDB shape reads the rows it inserted.
#[derive(Clone, Copy)]
enum ReadInserted {
    /// `SELECT .. IN (<missing>)`
    Select,
    /// `SELECT LAST_INSERT_ID()`: the first of consecutive ids, in insert order.
    LastInsertId,
}

/// `SELECT .. IN (..)`; `INSERT .. VALUES` of the missing keys; their rows read back as
/// `read` says. A lost race (a duplicate key) starts the chunk again.
fn mysql_shape(
    conn: &mut MysqlConnection,
    keys: &[String],
    read: ReadInserted,
) -> Vec<(User, bool)> {
    chunked(conn, keys, |conn, keys| loop {
        let mut rows = mysql_select_keys(conn, keys);
        let missing = missing(keys, &rows);
        if missing.is_empty() {
            return in_input_order(keys, rows, &HashSet::new());
        }
        let inserted: QueryResult<Vec<User>> = diesel::insert_into(users::table)
            .values(insert_rows(&missing))
            .execute(conn)
            .and_then(|_| match read {
                ReadInserted::Select => Ok(mysql_select_keys(conn, &missing)),
                ReadInserted::LastInsertId => {
                    let first: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
                        "CAST(LAST_INSERT_ID() AS SIGNED)",
                    ))
                    .get_result(conn)?;
                    Ok(missing
                        .iter()
                        .zip(first..)
                        .map(|(key, id)| User {
                            id,
                            email: (*key).to_owned(),
                            name: NAME.to_owned(),
                            karma: 0,
                        })
                        .collect())
                }
            });
        match inserted {
            Ok(inserted) => {
                let created = inserted.iter().map(|u| u.id).collect();
                rows.extend(inserted);
                return in_input_order(keys, rows, &created);
            }
            Err(error) if is_duplicate(&error) => continue,
            Err(error) => panic!("insert the missing keys: {error}"),
        }
    })
}

fn mysql_select_insert_select(conn: &mut MysqlConnection, keys: &[String]) -> Vec<(User, bool)> {
    mysql_shape(conn, keys, ReadInserted::Select)
}

fn mysql_select_insert_last_id(conn: &mut MysqlConnection, keys: &[String]) -> Vec<(User, bool)> {
    mysql_shape(conn, keys, ReadInserted::LastInsertId)
}

impl Shapes for Mysql {
    fn shapes() -> Vec<(&'static str, BulkFn<MysqlConnection>)> {
        vec![
            ("select+insert+select", mysql_select_insert_select),
            ("select+insert+last_id", mysql_select_insert_last_id),
        ]
    }
}

/// `n` keys, every other one among the `n / 2` rows that `reset(conn, n / 2)` puts in.
pub fn half_existing(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                crate::existing_key(i / 2)
            } else {
                crate::existing_key(n / 2 + i / 2)
            }
        })
        .collect()
}

/// Runs the library and every shape on the same tricky input (half the keys stored, some
/// keys repeated, the repeats before and after their first occurrence) from the same
/// table, and checks that they agree: same rows (ids included) and same created flags, in
/// input order. Panics otherwise.
pub fn check_shapes<B: Shapes>(conn: &mut B::Conn) {
    let stored = 20;
    let mut keys = half_existing(2 * stored);
    keys.extend([
        keys[1].clone(),
        keys[0].clone(),
        keys[3].clone(),
        "new-twice@example.com".to_owned(),
        "new-twice@example.com".to_owned(),
    ]);
    keys.insert(0, keys[5].clone());
    B::reset(conn, stored);
    let expected = B::get_or_create_many(conn, &keys);
    let created = expected.iter().filter(|(_, c)| *c).count();
    assert_eq!(
        created,
        stored + 1,
        "{}: library: each new key once",
        B::NAME
    );
    let flags = |results: &[(User, bool)]| -> Vec<(String, bool)> {
        results.iter().map(|(u, c)| (u.email.clone(), *c)).collect()
    };
    for (name, shape) in B::shapes() {
        B::reset(conn, stored);
        let got = shape(conn, &keys);
        // Ids may differ (insert order, ids a shape burnt): compare keys and flags, and
        // check the rows against the table.
        assert_eq!(
            flags(&got),
            flags(&expected),
            "{}: {name} differs from the library",
            B::NAME
        );
        let stored_rows = stored_rows_of::<B>(conn, &keys);
        for (row, _) in &got {
            assert!(
                stored_rows.contains(row),
                "{}: {name} returned {row:?}, not stored",
                B::NAME
            );
        }
    }
}

/// The stored rows of `keys`, read with the library's own bulk call (every key exists by
/// then, so it creates nothing).
fn stored_rows_of<B: Shapes>(conn: &mut B::Conn, keys: &[String]) -> Vec<User> {
    let results = B::get_or_create_many(conn, keys);
    assert!(results.iter().all(|(_, created)| !created));
    results.into_iter().map(|(u, _)| u).collect()
}
