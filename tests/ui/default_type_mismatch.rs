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
    pub name: String,
    #[default]
    pub karma: String,
}

fn main() {}
