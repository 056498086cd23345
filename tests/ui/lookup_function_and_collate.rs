// A lookup field is compared one way: through a function or with a collation.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    topics (id) {
        id -> BigInt,
        name -> Text,
        color -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = topics)]
pub struct Topic {
    pub id: i64,
    #[lookup(function = lower, collate = "NOCASE")]
    pub name: String,
    #[default]
    pub color: String,
}

fn main() {}
