//! Expansion snapshots and error messages of the derive, run in-process.

use quote::quote;

use crate::expand;

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

#[test]
fn expands_the_issue_example() {
    let expanded = expand(quote! {
        #[derive(Debug, Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            /// The user's address.
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
            #[default]
            pub karma: i32,
        }
    });
    insta::assert_snapshot!(pretty(expanded));
}
