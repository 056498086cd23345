// `#[lookup(..)]` takes `function = ..` or `collate = ..`, each with a value.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    topics (id) {
        id -> BigInt,
        name -> Text,
        slug -> Text,
        color -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = topics)]
pub struct Topic {
    pub id: i64,
    #[lookup(case_insensitive)]
    pub name: String,
    #[lookup(collate)]
    pub slug: String,
    #[default]
    pub color: String,
}

fn main() {}
