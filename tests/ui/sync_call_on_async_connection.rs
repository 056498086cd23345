// The sync trait imported, the call made on a diesel-async connection: the error says to
// import the async trait and `.await` the call.
use diesel::prelude::*;
use diesel_async::AsyncPgConnection;
use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
    }
}

#[derive(Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
}

#[allow(dead_code)]
fn call(conn: &mut AsyncPgConnection) {
    let _ = User::get_or_create(
        conn,
        UserLookup { email: "a@x".into() },
        UserDefaults { name: "A".into() },
    );
}

fn main() {}
