// `function` names an SQL function; the runtime writes `name(column) = name(value)`.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    instances (id) {
        id -> BigInt,
        domain -> Text,
        software -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = instances)]
pub struct Instance {
    pub id: i64,
    #[lookup(function = "lower(domain)")]
    pub domain: String,
    #[default]
    pub software: String,
}

fn main() {}
