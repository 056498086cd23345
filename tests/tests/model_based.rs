//! Property tests against an in-memory model: random sequences of `get_or_create`,
//! `get_or_create_with` and deletes (by another connection) on each backend, each step
//! compared with a `BTreeMap`, and the whole table compared at the end of each case.
//!
//! (Not named `proptest.rs`: the test crate would then shadow the `proptest` crate.)

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::query_builder::{QueryFragment, QueryId, SqlQuery};
use get_or_create_core::GetOrCreate;
use get_or_create_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

for_each_backend!(matches_the_model);

/// Few keys, so that sequences hit, miss and delete the same ones often.
const KEYS: u8 = 6;

#[derive(Clone, Debug)]
enum Op {
    Get { key: u8, name: u8 },
    GetWith { key: u8, name: u8 },
    Delete { key: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..KEYS, any::<u8>()).prop_map(|(key, name)| Op::Get { key, name }),
        3 => (0..KEYS, any::<u8>()).prop_map(|(key, name)| Op::GetWith { key, name }),
        1 => (0..KEYS).prop_map(|key| Op::Delete { key }),
    ]
}

fn email(key: u8) -> String {
    format!("k{key}@example.com")
}

/// What the table should hold: key -> (id, name, karma).
type Model = BTreeMap<String, (i64, String, i32)>;

fn execute<C>(conn: &mut C, sql: String) -> usize
where
    C: Connection,
    SqlQuery: QueryFragment<C::Backend> + QueryId,
{
    diesel::sql_query(sql).execute(conn).expect("execute")
}

/// Checks one call's result against the model and updates it.
fn check_call(
    model: &mut Model,
    key: String,
    name: String,
    (row, created): (User, bool),
    defaults_calls: Option<usize>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&row.email, &key);
    match model.get(&key) {
        Some((id, stored_name, karma)) => {
            prop_assert!(!created, "{} exists", key);
            prop_assert_eq!((row.id, &row.name, row.karma), (*id, stored_name, *karma));
            if let Some(calls) = defaults_calls {
                prop_assert_eq!(calls, 0, "defaults computed on a hit");
            }
        }
        None => {
            prop_assert!(created, "{} is new", key);
            prop_assert_eq!(&row.name, &name);
            prop_assert!(model.values().all(|(id, ..)| *id != row.id), "id reused");
            if let Some(calls) = defaults_calls {
                prop_assert_eq!(calls, 1);
            }
            model.insert(key, (row.id, row.name, row.karma));
        }
    }
    Ok(())
}

fn matches_the_model<D: TestDb>()
where
    SqlQuery: QueryFragment<<D::Conn as Connection>::Backend> + QueryId,
{
    let db = D::create();
    // TestRunner::run takes an `Fn`: the connections are borrowed anew in each case.
    let connections = std::cell::RefCell::new((db.connect(), db.connect()));
    let config = Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        let (conn, other) = &mut *connections.borrow_mut();
        execute(other, "DELETE FROM users".into());
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Get { key, name } => {
                    let (key, name) = (email(key), format!("n{name}"));
                    let lookup = UserLookup { email: key.clone() };
                    let defaults = UserDefaults {
                        name: name.clone(),
                        karma: 1,
                    };
                    let got = User::get_or_create(conn, lookup, defaults)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    check_call(&mut model, key, name, got, None)?;
                }
                Op::GetWith { key, name } => {
                    let (key, name) = (email(key), format!("w{name}"));
                    let lookup = UserLookup { email: key.clone() };
                    let mut calls = 0;
                    let got = User::get_or_create_with(conn, lookup, || {
                        calls += 1;
                        UserDefaults {
                            name: name.clone(),
                            karma: 2,
                        }
                    })
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    check_call(&mut model, key, name, got, Some(calls))?;
                }
                Op::Delete { key } => {
                    let key = email(key);
                    let deleted =
                        execute(other, format!("DELETE FROM users WHERE email = '{key}'"));
                    prop_assert_eq!(deleted, usize::from(model.remove(&key).is_some()));
                }
            }
        }
        let stored: Model = D::users(conn)
            .into_iter()
            .map(|u| (u.email, (u.id, u.name, u.karma)))
            .collect();
        prop_assert_eq!(stored, model);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{}: {failure}", D::NAME);
    }
}
