//! `#[default]` is also the attribute of `derive(Default)`; the namespaced form lets a
//! model derive both.

use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        karma -> Integer,
    }
}

#[derive(Debug, Default, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[get_or_create(lookup)]
    pub email: String,
    #[get_or_create(default)]
    pub name: String,
    #[get_or_create(default)]
    pub karma: i32,
}

#[allow(dead_code)]
fn ann(conn: &mut SqliteConnection) -> (User, bool) {
    User::get_or_create(
        conn,
        UserLookup {
            email: "ann@example.com".into(),
        },
        UserDefaults {
            name: "Ann".into(),
            karma: 0,
        },
    )
    .unwrap()
}

fn main() {
    let _ = User::default();
}
