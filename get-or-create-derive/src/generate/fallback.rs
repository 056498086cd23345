//! Stand-ins for the runtime's traits, for a model the derive refused (see
//! [`super::fallback`]).
//!
//! They only have to compile, never to run: the errors emitted beside them stop the build.
//! So they name no column and no field type, which is what may be wrong with the model;
//! they only say that the model is one, with its structs and its table, so that
//! `User::get_or_create(..)` resolves and type-checks its arguments against the structs.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Model;

pub fn generate(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let table = &model.table;
    let (lookup, defaults, changes) = (
        model.lookup_ident(),
        model.defaults_ident(),
        model.changes_ident(),
    );
    quote! {
        #[automatically_derived]
        impl __goc::Model for #ident {
            type Key = #lookup;
            type Values = #defaults;
            type Changeset = #changes;
            type Table = #table::table;

            const KEY_COLUMNS: &'static [&'static str] = &[];
            const NULLABLE_KEY: bool = false;
            const FILTER: ::std::option::Option<&'static str> = ::std::option::Option::None;
            const DEFAULTABLE: bool = false;
            const SQL_COLUMNS: &'static [__goc::SqlColumn] = &[];

            fn has_array_column() -> bool {
                false
            }
        }

        #[automatically_derived]
        impl<__DB: diesel::backend::Backend> __goc::Columns<__DB> for #ident {
            fn visit_key<__V: __goc::KeyVisitor<Self, __DB>>(
                _: &mut __V,
            ) -> diesel::QueryResult<()> {
                ::std::result::Result::Ok(())
            }

            fn visit_values<__V: __goc::ValueVisitor<Self, __DB>>(
                _: &mut __V,
            ) -> diesel::QueryResult<()> {
                ::std::result::Result::Ok(())
            }
        }
    }
}
