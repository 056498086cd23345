// The model derives `Selectable` and `GetOrCreate` but not `Queryable`: the call says that
// the model must derive `Queryable` and `Selectable`, not which internal tuple does not
// deserialize.
use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
    }
}

#[derive(Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
}

fn main() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    let _ = User::get_or_create(
        &mut conn,
        UserLookup { email: "a@x".into() },
        UserDefaults { name: "A".into() },
    );
}
