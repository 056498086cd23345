//! The README's example on an in-memory SQLite database: `cargo run --example quickstart`.

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

#[derive(Debug, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
    #[default]
    pub karma: i32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = SqliteConnection::establish(":memory:")?;
    diesel::sql_query(
        "CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            karma INTEGER NOT NULL
        )",
    )
    .execute(&mut conn)?;

    let (ann, created) = User::get_or_create(
        &mut conn,
        UserLookup {
            email: "ann@example.com".into(),
        },
        UserDefaults {
            name: "Ann".into(),
            karma: 0,
        },
    )?;
    println!("{ann:?} created={created}");

    // The same key again: the row is found, and the defaults closure never runs.
    let (again, created) = User::get_or_create_with(
        &mut conn,
        UserLookup {
            email: "ann@example.com".into(),
        },
        || UserDefaults {
            name: "not used".into(),
            karma: 99,
        },
    )?;
    println!("{again:?} created={created}");
    assert_eq!(ann.id, again.id);
    Ok(())
}
