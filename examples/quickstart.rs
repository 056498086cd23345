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

    // Many at once: one result per item, in order; the repeated key gets the same row.
    let people = ["bob@example.com", "ann@example.com", "bob@example.com"].map(|email| {
        let lookup = UserLookup {
            email: email.into(),
        };
        let defaults = UserDefaults {
            name: "New".into(),
            karma: 0,
        };
        (lookup, defaults)
    });
    for (user, created) in User::get_or_create_many(&mut conn, people)? {
        println!("{user:?} created={created}");
    }

    // Set a field on the stored row (or create it): Django's update_or_create.
    let changes = UserChanges {
        karma: Some(10),
        ..Default::default()
    };
    let lookup = UserLookup {
        email: "ann@example.com".into(),
    };
    let (ann, created) =
        User::update_or_create_with(&mut conn, lookup, changes, || UserDefaults {
            name: "Ann".into(),
            karma: 0,
        })?;
    println!("{ann:?} created={created}");
    assert_eq!((ann.name.as_str(), ann.karma, created), ("Ann", 10, false));
    Ok(())
}
