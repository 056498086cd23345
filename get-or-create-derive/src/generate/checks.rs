//! Compile-time checks of each field's type against its column, spanned at the field's
//! type so that rustc underlines the field, in the runtime's words.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::column;
use super::description::spelled;
use crate::model::Model;

pub fn generate(model: &Model) -> TokenStream {
    let checks = model.fields().map(|field| {
        let ty = &field.ty;
        let column = column(model, field);
        let spelled = spelled(field.spelled);
        let per_backend = model.check_for_backend.iter().map(|backend| {
            quote_spanned! {ty.span()=>
                __goc::assert_binds_on::<#ty, #column, #backend, #spelled>();
            }
        });
        quote_spanned! {ty.span()=>
            __goc::assert_fits_column::<#ty, #column, #spelled>();
            #(#per_backend)*
        }
    });
    quote! {
        // Never called: compiling it proves that each field fits its column, with errors
        // pointing at the field's type.
        #[allow(dead_code)]
        fn __field_types_fit_their_columns() {
            #(#checks)*
        }
    }
}
