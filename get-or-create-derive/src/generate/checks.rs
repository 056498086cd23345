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
        let sql_type = quote_spanned!(ty.span()=> diesel::dsl::SqlTypeOf<#column>);
        let key = model.lookup.iter().any(|f| f.ident == field.ident).then(
            || quote_spanned!(ty.span()=> __goc::assert_key_fits_column::<#ty, #sql_type>();),
        );
        quote_spanned! {ty.span()=>
            #key
            __goc::assert_fits_column::<#ty, #sql_type, #spelled>();
            #(#per_backend)*
        }
    });
    // `#[default]` on a struct that derives `Default`: std's derive refuses it as its own
    // attribute, and cannot be told otherwise; a warning at the attribute says what to
    // write instead. (Only a type that implements `Default` picks the deprecated method.)
    let ident = &model.ident;
    let default_clash = model.short_default.map(|span| {
        quote_spanned! {span=>
            {
                #[allow(unused_imports)]
                use __goc::{ShortDefaultClash as _, ShortDefaultFine as _};
                (&&__goc::DefaultProbe::<#ident>::new()).short_default();
            }
        }
    });
    quote! {
        // Never called: compiling it proves that each field fits its column, with errors
        // pointing at the field's type.
        #[allow(dead_code)]
        fn __field_types_fit_their_columns() {
            #(#checks)*
            #default_clash
        }
    }
}
