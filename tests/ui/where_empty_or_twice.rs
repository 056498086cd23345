// `#[get_or_create(where = "..")]` is the predicate of the partial unique index: not
// empty, not several statements, given once.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    subscribers (id) {
        id -> BigInt,
        email -> Text,
        deleted_at -> Nullable<BigInt>,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = subscribers)]
#[get_or_create(where = "")]
pub struct Empty {
    pub id: i64,
    #[lookup]
    pub email: String,
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = subscribers)]
#[get_or_create(where = "deleted_at IS NULL; DROP TABLE subscribers")]
pub struct Injected {
    pub id: i64,
    #[lookup]
    pub email: String,
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = subscribers)]
#[get_or_create(where = "deleted_at IS NULL", where = "email <> ''")]
pub struct Twice {
    pub id: i64,
    #[lookup]
    pub email: String,
}

fn main() {}
