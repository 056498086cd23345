//! What `update_or_create_many` is compared with: a loop of the library's single
//! `update_or_create` over the same items (one commit per statement that writes, or all in
//! one transaction), and the hand-written upserts below. Each
//! hand-written shape, like the library, leaves a key repeated in the input with the values
//! of its last item, says "created" on the first item of a key it created only, and returns
//! every item's (final) row in input order.
//!
//! | backend | shape | statements |
//! |---|---|---|
//! | PostgreSQL | `insert_on_conflict_update` | `INSERT .. SELECT DISTINCT ON (email) .. FROM unnest($1, $2, $3) WITH ORDINALITY .. ORDER BY email, ord DESC ON CONFLICT (email) DO UPDATE SET .. RETURNING id, email, name, karma, xmax = 0` |
//! | PostgreSQL | `update+insert_missing` | the keys deduplicated in Rust (last values win); `UPDATE users .. FROM unnest($1, $2, $3) .. RETURNING`; `INSERT .. SELECT FROM unnest(<missing>) ON CONFLICT (email) DO NOTHING RETURNING` (a key that lost a race is updated again) |
//! | SQLite | `insert_on_conflict_update` | deduplicated in Rust; `BEGIN IMMEDIATE`; `SELECT MAX(id)`; `INSERT .. VALUES (..), .. ON CONFLICT (email) DO UPDATE SET .. RETURNING ..`; `COMMIT` (created: a returned id above the old maximum) |
//! | MariaDB | `insert_on_duplicate_update+read` | deduplicated in Rust; `SELECT LAST_INSERT_ID(0)`; `INSERT .. VALUES (..), .. ON DUPLICATE KEY UPDATE name = VALUES(name), ..`; `SELECT .., LAST_INSERT_ID() .. WHERE email IN (..)` (created: an id in the block of consecutive ids the insert took, as `innodb_autoinc_lock_mode` 0 or 1 gives) |
//!
//! Ways to tell an insert from an update that each shape relies on and the library does
//! not: PostgreSQL's `xmax = 0` (an implementation detail, not a documented interface),
//! SQLite's ids growing (an `AUTOINCREMENT` or rowid key, read inside one write
//! transaction), MariaDB's consecutive `AUTO_INCREMENT` block (`innodb_autoinc_lock_mode`
//! 0 or 1). The upserts also take an id value for every item whose key is stored
//! (PostgreSQL evaluates the sequence before it meets the conflict; InnoDB reserves one per
//! row of the statement): the bench counts them.

use std::collections::{HashMap, HashSet};

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel::upsert::excluded;

use crate::bulk::{half_existing, PgArray, PgArrays};
use crate::schema::users;
use crate::{Backend, Mysql, Pg, Sqlite, SyncItem, User};

/// An `update_or_create_many`: every item's final row and whether this call created it, in
/// input order. Takes the items by value, as the library does (its caller's copy is made
/// outside the timing).
pub type SyncFn<C> = fn(&mut C, Vec<SyncItem>) -> Vec<(User, bool)>;

/// Distinct items per statement of the SQLite and MariaDB shapes (3 binds a row: under
/// SQLite's 32,766).
pub const CHUNK: usize = 10_000;

/// A backend's hand-written `update_or_create_many` shapes.
pub trait UpsertShapes: Backend {
    /// The shapes, by name.
    fn upsert_shapes() -> Vec<(&'static str, SyncFn<Self::Conn>)>;
}

/// The name of [`loop_of_singles`] in reports.
pub const LOOP: &str = "loop of update_or_create";

/// The library's single `update_or_create`, once per item, in input order.
pub fn loop_of_singles<B: Backend>(conn: &mut B::Conn, items: Vec<SyncItem>) -> Vec<(User, bool)> {
    items
        .into_iter()
        .map(|item| B::update_or_create(conn, item))
        .collect()
}

/// The name of [`loop_in_transaction`] in reports.
pub const LOOP_TX: &str = "loop of update_or_create, one transaction";

/// [`loop_of_singles`] inside one transaction (Diesel's `transaction`): one commit for the
/// whole loop instead of one per statement that writes, as an importer that wants all or
/// nothing would call it.
pub fn loop_in_transaction<B: Backend>(
    conn: &mut B::Conn,
    items: Vec<SyncItem>,
) -> Vec<(User, bool)> {
    conn.transaction(|conn| QueryResult::Ok(loop_of_singles::<B>(conn, items)))
        .expect("the loop's transaction")
}

/// `n` items: the keys of [`half_existing`] (every other one stored by `reset(conn, n /
/// 2)`), each with values no stored row holds (`reset` stores `name = NAME, karma = 0`),
/// so that every stored row really changes.
pub fn sync_items(n: usize) -> Vec<SyncItem> {
    half_existing(n)
        .into_iter()
        .enumerate()
        .map(|(i, key)| SyncItem {
            key,
            name: format!("Synced {i}"),
            karma: i32::try_from(i).expect("small") + 1,
        })
        .collect()
}

/// The last item of each distinct key (its values win), in key order (the order in which
/// the hand-written statements take the rows' locks).
fn last_of_each(items: &[SyncItem]) -> Vec<&SyncItem> {
    let mut last: HashMap<&str, &SyncItem> = HashMap::with_capacity(items.len());
    for item in items {
        last.insert(&item.key, item);
    }
    let mut out: Vec<&SyncItem> = last.into_values().collect();
    out.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Every item's row from `rows` (by key, with whether this call created it), in input
/// order; "created" only on the first item of a key.
fn in_input_order(items: &[SyncItem], rows: HashMap<String, (User, bool)>) -> Vec<(User, bool)> {
    let mut seen = HashSet::with_capacity(items.len());
    items
        .iter()
        .map(|item| {
            let (row, created) = rows.get(&item.key).expect("every key has a row");
            (row.clone(), *created && seen.insert(item.key.as_str()))
        })
        .collect()
}

/// The three columns of `items` as arrays.
fn pg_arrays<'a>(items: impl Iterator<Item = &'a SyncItem> + Clone) -> Vec<PgArray<'a>> {
    vec![
        PgArray::Texts(items.clone().map(|i| i.key.as_str()).collect()),
        PgArray::Texts(items.clone().map(|i| i.name.as_str()).collect()),
        PgArray::Ints(items.map(|i| i.karma).collect()),
    ]
}

/// A row and the flag a PostgreSQL statement returned beside it.
type FlaggedRow = (i64, String, String, i32, bool);

/// One statement: `INSERT .. SELECT DISTINCT ON (email) .. FROM unnest(..) WITH ORDINALITY
/// .. ORDER BY email, ord DESC ON CONFLICT (email) DO UPDATE SET .. RETURNING .., xmax = 0`.
/// `DISTINCT ON` keeps each key's last item (a statement may not update one row twice);
/// `ORDER BY email` takes the locks in key order; `xmax = 0` holds for a row the statement
/// inserted, not for one it updated.
fn pg_insert_on_conflict_update(
    conn: &mut PgConnection,
    items: Vec<SyncItem>,
) -> Vec<(User, bool)> {
    let upsert = PgArrays::<(BigInt, Text, Text, Integer, Bool)>::new(
        &[
            "INSERT INTO users (email, name, karma) \
             SELECT DISTINCT ON (email) email, name, karma \
             FROM unnest(",
            ", ",
            ", ",
            ") WITH ORDINALITY AS i (email, name, karma, ord) \
             ORDER BY email, ord DESC \
             ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, karma = EXCLUDED.karma \
             RETURNING id, email, name, karma, xmax = 0",
        ],
        pg_arrays(items.iter()),
    );
    let rows: Vec<FlaggedRow> = upsert.load(conn).expect("insert .. on conflict do update");
    let rows = rows
        .into_iter()
        .map(|(id, email, name, karma, created)| {
            (
                email.clone(),
                (
                    User {
                        id,
                        email,
                        name,
                        karma,
                    },
                    created,
                ),
            )
        })
        .collect();
    in_input_order(&items, rows)
}

/// Deduplicated in Rust; `UPDATE users SET .. FROM unnest(..) .. RETURNING`, then the keys
/// it did not find: `INSERT .. SELECT FROM unnest(..) ON CONFLICT (email) DO NOTHING
/// RETURNING`; a key another writer stored in between is updated again. No id value is
/// taken for a stored key.
fn pg_update_insert_missing(conn: &mut PgConnection, items: Vec<SyncItem>) -> Vec<(User, bool)> {
    let mut pending = last_of_each(&items);
    let mut rows: HashMap<String, (User, bool)> = HashMap::with_capacity(pending.len());
    while !pending.is_empty() {
        let update = PgArrays::<(BigInt, Text, Text, Integer)>::new(
            &[
                "UPDATE users SET name = i.name, karma = i.karma FROM unnest(",
                ", ",
                ", ",
                ") AS i (email, name, karma) WHERE users.email = i.email \
                 RETURNING users.id, users.email, users.name, users.karma",
            ],
            pg_arrays(pending.iter().copied()),
        );
        let updated: Vec<User> = update.load(conn).expect("update .. from unnest");
        rows.extend(updated.into_iter().map(|u| (u.email.clone(), (u, false))));
        pending.retain(|item| !rows.contains_key(&item.key));
        if pending.is_empty() {
            break;
        }
        let insert = PgArrays::<(BigInt, Text, Text, Integer)>::new(
            &[
                "INSERT INTO users (email, name, karma) SELECT * FROM unnest(",
                ", ",
                ", ",
                ") ON CONFLICT (email) DO NOTHING RETURNING id, email, name, karma",
            ],
            pg_arrays(pending.iter().copied()),
        );
        let inserted: Vec<User> = insert.load(conn).expect("insert the missing keys");
        rows.extend(inserted.into_iter().map(|u| (u.email.clone(), (u, true))));
        // Left: keys stored by another writer between the two statements.
        pending.retain(|item| !rows.contains_key(&item.key));
    }
    in_input_order(&items, rows)
}

impl UpsertShapes for Pg {
    fn upsert_shapes() -> Vec<(&'static str, SyncFn<PgConnection>)> {
        vec![
            ("insert_on_conflict_update", pg_insert_on_conflict_update),
            ("update+insert_missing", pg_update_insert_missing),
        ]
    }
}

/// The values of the new row of `item`.
type NewRow<'a> = (
    diesel::dsl::Eq<users::email, &'a str>,
    diesel::dsl::Eq<users::name, &'a str>,
    diesel::dsl::Eq<users::karma, i32>,
);

fn new_rows<'a>(items: &[&'a SyncItem]) -> Vec<NewRow<'a>> {
    items
        .iter()
        .map(|i| {
            (
                users::email.eq(i.key.as_str()),
                users::name.eq(i.name.as_str()),
                users::karma.eq(i.karma),
            )
        })
        .collect()
}

/// Deduplicated in Rust; in one write transaction (`BEGIN IMMEDIATE`): `SELECT MAX(id)`,
/// then `INSERT .. VALUES (..), .. ON CONFLICT (email) DO UPDATE SET .. RETURNING ..`. A
/// returned id above the old maximum is a row the insert created (SQLite gives a new row
/// a rowid above every stored one with `AUTOINCREMENT`, and above the largest without it).
fn sqlite_insert_on_conflict_update(
    conn: &mut SqliteConnection,
    items: Vec<SyncItem>,
) -> Vec<(User, bool)> {
    let last = last_of_each(&items);
    let rows = conn
        .immediate_transaction(|conn| {
            let before: i64 =
                diesel::select(sql::<BigInt>("(SELECT COALESCE(MAX(id), 0) FROM users)"))
                    .get_result(conn)?;
            let mut rows = HashMap::with_capacity(last.len());
            for chunk in last.chunks(CHUNK) {
                let returned: Vec<User> = diesel::insert_into(users::table)
                    .values(new_rows(chunk))
                    .on_conflict(users::email)
                    .do_update()
                    .set((
                        users::name.eq(excluded(users::name)),
                        users::karma.eq(excluded(users::karma)),
                    ))
                    .returning(User::as_returning())
                    .get_results(conn)?;
                rows.extend(returned.into_iter().map(|u| {
                    let created = u.id > before;
                    (u.email.clone(), (u, created))
                }));
            }
            QueryResult::Ok(rows)
        })
        .expect("insert .. on conflict do update");
    in_input_order(&items, rows)
}

impl UpsertShapes for Sqlite {
    fn upsert_shapes() -> Vec<(&'static str, SyncFn<SqliteConnection>)> {
        vec![(
            "insert_on_conflict_update",
            sqlite_insert_on_conflict_update,
        )]
    }
}

/// Deduplicated in Rust; per chunk: `SELECT LAST_INSERT_ID(0)` (so that a chunk that
/// inserts nothing does not see an older id), `INSERT .. VALUES (..), .. ON DUPLICATE KEY
/// UPDATE name = VALUES(name), karma = VALUES(karma)`, then `SELECT id, email, name,
/// karma, LAST_INSERT_ID() FROM users WHERE email IN (..)`. With `innodb_autoinc_lock_mode`
/// 0 or 1 the statement's new rows have ids in one block of consecutive values reserved for
/// it, one per row of the statement, starting at or below `LAST_INSERT_ID()`; a stored row
/// has an id outside it.
fn mysql_insert_on_duplicate_update_read(
    conn: &mut MysqlConnection,
    items: Vec<SyncItem>,
) -> Vec<(User, bool)> {
    let last = last_of_each(&items);
    let mut rows = HashMap::with_capacity(last.len());
    for chunk in last.chunks(CHUNK) {
        diesel::select(sql::<BigInt>("CAST(LAST_INSERT_ID(0) AS SIGNED)"))
            .get_result::<i64>(conn)
            .expect("reset LAST_INSERT_ID()");
        diesel::insert_into(users::table)
            .values(new_rows(chunk))
            .on_conflict(diesel::dsl::DuplicatedKeys)
            .do_update()
            // Diesel's `excluded` is PostgreSQL's and SQLite's; MariaDB says `VALUES(..)`.
            .set((
                users::name.eq(sql::<Text>("VALUES(name)")),
                users::karma.eq(sql::<Integer>("VALUES(karma)")),
            ))
            .execute(conn)
            .expect("insert .. on duplicate key update");
        let keys: Vec<&str> = chunk.iter().map(|i| i.key.as_str()).collect();
        let read: Vec<(User, i64)> = users::table
            .filter(users::email.eq_any(keys))
            .select((
                User::as_select(),
                sql::<BigInt>("CAST(LAST_INSERT_ID() AS SIGNED)"),
            ))
            .load(conn)
            .expect("read the rows back");
        let block = i64::try_from(chunk.len()).expect("small");
        rows.extend(read.into_iter().map(|(u, first)| {
            let created = first > 0 && u.id >= first && u.id < first + block;
            (u.email.clone(), (u, created))
        }));
    }
    in_input_order(&items, rows)
}

impl UpsertShapes for Mysql {
    fn upsert_shapes() -> Vec<(&'static str, SyncFn<MysqlConnection>)> {
        vec![(
            "insert_on_duplicate_update+read",
            mysql_insert_on_duplicate_update_read,
        )]
    }
}

/// Checks one call's answer against its items: one row per item, in input order, holding
/// the values of its key's last item (with `final_rows`: the bulk calls return every item
/// the key's final row) or its own values (a loop of single calls, where an item's answer
/// is the row as that call left it); "created" once per key that `stored` does not hold,
/// on its first item.
pub fn check_answer(
    side: &str,
    results: &[(User, bool)],
    items: &[SyncItem],
    stored: &HashSet<&str>,
    final_rows: bool,
) {
    assert_eq!(results.len(), items.len(), "{side}: one answer per item");
    let mut last: HashMap<&str, &SyncItem> = HashMap::new();
    for item in items {
        last.insert(&item.key, item);
    }
    let mut seen = HashSet::new();
    for ((row, created), item) in results.iter().zip(items) {
        assert_eq!(row.email, item.key, "{side}: answers come in input order");
        let want = if final_rows {
            last[item.key.as_str()]
        } else {
            item
        };
        assert_eq!(
            (&row.name, row.karma),
            (&want.name, want.karma),
            "{side}: {}: the values of the key's last item",
            item.key
        );
        let first = seen.insert(item.key.as_str());
        assert_eq!(
            *created,
            first && !stored.contains(item.key.as_str()),
            "{side}: {}: created on the first item of a new key only",
            item.key
        );
    }
}

/// Runs the library, the loop of single calls and every shape on the same tricky input
/// (half the keys stored, keys repeated with other values, repeats before and after their
/// first occurrence) from the same table, and checks that each answers as
/// [`check_answer`] says and leaves the same rows. Panics otherwise.
pub fn check_upsert_shapes<B: UpsertShapes>(conn: &mut B::Conn) {
    let stored = 20;
    let mut items = sync_items(2 * stored);
    let again = |item: &SyncItem, karma: i32| SyncItem {
        key: item.key.clone(),
        name: format!("again {karma}"),
        karma,
    };
    let twice = |karma| SyncItem {
        key: "new-twice@example.com".to_owned(),
        name: format!("twice {karma}"),
        karma,
    };
    items.extend([
        again(&items[1], 101),
        again(&items[0], 102),
        again(&items[3], 103),
        twice(104),
        twice(105),
        again(&items[0], 106),
    ]);
    items.insert(0, again(&items[5], 107));
    let stored_keys: Vec<String> = (0..stored).map(crate::existing_key).collect();
    let stored_keys: HashSet<&str> = stored_keys.iter().map(String::as_str).collect();
    let mut sides: Vec<(&'static str, SyncFn<B::Conn>)> = vec![
        ("update_or_create_many", |c, items| {
            B::update_or_create_many(c, items)
        }),
        (LOOP, loop_of_singles::<B>),
        (LOOP_TX, loop_in_transaction::<B>),
    ];
    sides.extend(B::upsert_shapes());
    let mut table = None;
    for (name, side) in sides {
        B::reset(conn, stored);
        let got = side(conn, items.clone());
        let side_name = format!("{}: {name}", B::NAME);
        let is_loop = name == LOOP || name == LOOP_TX;
        check_answer(&side_name, &got, &items, &stored_keys, !is_loop);
        // The rows of every key (all stored by now) as the library reads them.
        let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        let mut rows: Vec<(String, String, i32)> = B::get_or_create_many(conn, &keys)
            .into_iter()
            .map(|(u, created)| {
                assert!(!created);
                (u.email, u.name, u.karma)
            })
            .collect();
        rows.sort();
        rows.dedup();
        assert_eq!(
            B::count(conn),
            i64::try_from(rows.len()).expect("small"),
            "{}: {name}: one row per key",
            B::NAME
        );
        match &table {
            None => table = Some(rows),
            Some(expected) => assert_eq!(
                &rows,
                expected,
                "{}: {name} leaves other rows than the library",
                B::NAME
            ),
        }
    }
}
