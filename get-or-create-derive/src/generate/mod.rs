//! Writes the code for a checked [`Model`]: the model's structs, its description for the
//! runtime, and the compile-time checks of its fields. No SQL: the runtime writes every
//! statement from the description.
//!
//! Everything but the public structs lives inside `const _: () = { .. };`, so that no
//! generated name can clash with the user's, and reaches the runtime through one path,
//! `::get_or_create_core::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use crate::model::{Field, Model, Refused};

mod checks;
mod description;
mod fallback;
mod structs;

/// The expansion of an accepted model.
pub fn generate(model: &Model) -> TokenStream {
    let structs = structs::generate(model);
    let description = description::generate(model);
    let checks = checks::generate(model);
    quote! {
        #structs

        #[allow(non_local_definitions)]
        const _: () = {
            use ::get_or_create_core::__private as __goc;
            use __goc::diesel;

            #description
            #checks
        };
    }
}

/// What a refused model expands to besides its errors: the public structs, with the
/// fields that could be read, and stand-ins for the runtime's traits when the model's
/// shape allows. Call sites that name the structs or call `User::get_or_create` then
/// compile as far as the model lets them, and the errors point at the model only.
pub fn fallback(refused: &Refused) -> TokenStream {
    let structs = structs::generate(&refused.partial);
    let stand_ins = refused.stand_ins.then(|| {
        let stand_ins = fallback::generate(&refused.partial);
        quote! {
            #[allow(non_local_definitions)]
            const _: () = {
                use ::get_or_create_core::__private as __goc;
                use __goc::diesel;

                #stand_ins
            };
        }
    });
    quote! {
        #structs
        #stand_ins
    }
}

/// The column of a field, `table::column`, spanned at the field's column name so that an
/// unknown column is reported there.
fn column(model: &Model, field: &Field) -> TokenStream {
    let table = &model.table;
    let column = &field.column;
    quote_spanned!(column.span()=> #table::#column)
}
