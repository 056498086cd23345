// A lookup on a nullable column must be an `Option` (its `None` is matched with
// `IS NULL`): a plain `String` on a `Nullable<Text>` column is refused at the field,
// although Diesel would write a `String` to that column. The error must name the field
// and say what to write instead.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    codes (id) {
        id -> BigInt,
        code -> Nullable<Text>,
        label -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = codes)]
pub struct Coded {
    pub id: i64,
    #[lookup]
    pub code: String,
    #[default]
    pub label: String,
}

fn main() {}
