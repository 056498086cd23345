//! A model that reads a joined query (`HasQuery` with a `base_query`, like crates.io's
//! `User`) is refused at compile time: the runtime reads and writes the model's own
//! table only, and would fail at run time with `missing FROM-clause entry`.

use diesel::prelude::*;
use get_or_create_core::GetOrCreate;

diesel::table! {
    users (id) {
        id -> Integer,
        gh_id -> Integer,
        name -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_github (account_id) {
        account_id -> Integer,
        login -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(users, oauth_github);

#[derive(HasQuery, GetOrCreate)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
#[diesel(base_query = users::table.inner_join(
    oauth_github::table.on(users::gh_id.eq(oauth_github::account_id))
))]
pub struct User {
    pub id: i32,
    #[lookup]
    pub gh_id: i32,
    #[default]
    pub name: Option<String>,
    #[diesel(select_expression = oauth_github::login)]
    pub gh_login: String,
}

fn main() {}
