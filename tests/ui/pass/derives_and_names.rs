//! The generated structs take the derives and names the model's options give them, and
//! forward field attributes; renaming `UserChanges` frees the name for the user's own
//! `AsChangeset` struct.

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
#[get_or_create(derive(Debug, Clone, PartialEq, Default))]
#[get_or_create(lookup_derive(Eq, Hash), lookup_struct = UserKey)]
#[get_or_create(defaults_struct = NewUserFields, changes_struct = UserPatch)]
pub struct User {
    pub id: i64,
    #[lookup]
    #[get_or_create(attr(doc = " The address, as typed."))]
    pub email: String,
    #[default]
    pub name: String,
    #[default]
    #[get_or_create(attr(allow(dead_code)))]
    pub karma: i32,
}

/// The user's own changeset, which `UserChanges` would have collided with.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub karma: i32,
}

#[allow(dead_code)]
fn ann(conn: &mut SqliteConnection) -> (User, bool) {
    let key = UserKey {
        email: "ann@example.com".into(),
    };
    let keys: std::collections::HashSet<UserKey> = [key.clone()].into_iter().collect();
    assert!(keys.contains(&key));
    let defaults = NewUserFields::default();
    let patch = UserPatch::from(defaults.clone());
    assert_eq!(patch, UserPatch::from(defaults.clone()));
    User::update_or_create_with(conn, key, patch, || defaults).unwrap()
}

fn main() {}
