//! A generated struct cannot take the model's name: the error points at the name, and
//! the struct keeps its default name so that the call below adds no error.

use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
#[get_or_create(lookup_struct = User)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
}

pub fn ann(conn: &mut SqliteConnection) -> (User, bool) {
    let key = UserLookup {
        email: "ann@example.com".into(),
    };
    User::get_or_create(conn, key, UserDefaults {}).unwrap()
}

fn main() {}
