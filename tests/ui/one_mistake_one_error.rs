//! One mistake in a model is one error: the refused derive still declares the model's
//! structs, with the fields it could read, and stand-ins for the runtime's traits, so the
//! calls below add no "cannot find type `UserLookup`" or "no function `get_or_create`".

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

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    #[get_or_create(rename = "nom")]
    pub name: String,
    #[default]
    pub karma: i32,
}

pub fn ann(conn: &mut SqliteConnection) -> (User, bool) {
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

pub fn more_karma() -> UserChanges {
    UserChanges {
        karma: Some(1),
        ..Default::default()
    }
}

fn main() {}
