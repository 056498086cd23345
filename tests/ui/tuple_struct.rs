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

#[derive(Queryable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User(
    pub i64,
    #[lookup] pub String,
    #[default] pub String,
    #[default] pub i32,
);

fn main() {}
