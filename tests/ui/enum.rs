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
pub enum User {
    Active {
        #[lookup]
        email: String,
    },
    Banned,
}

fn main() {}
