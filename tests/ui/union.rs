use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        karma -> Integer,
    }
}

#[derive(GetOrCreate)]
pub union User {
    pub id: i64,
    pub karma: i32,
}

fn main() {}
