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
    #[get_or_create(lookup)]
    pub email: String,
    #[get_or_create(unknown)]
    pub name: String,
    #[get_or_create(default)]
    pub karma: i32,
}

fn main() {}
