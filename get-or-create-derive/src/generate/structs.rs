//! The public structs of a model `User`: `UserLookup`, `UserDefaults` and `UserChanges`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Field, Model};

pub fn generate(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let lookup = data_struct(
        model,
        &model.lookup_ident(),
        &model.lookup,
        &format!(" The key that identifies one [`{ident}`] row: its fields marked `#[lookup]`."),
    );
    let defaults = data_struct(
        model,
        &model.defaults_ident(),
        &model.defaults,
        &format!(
            " The values a new [`{ident}`] row is created with: its fields marked `#[default]`. \
             They are not written when the row already exists."
        ),
    );
    let changes = changes_struct(model);
    quote! {
        #lookup
        #defaults
        #changes
    }
}

/// A struct with one public field per field of `fields`, with the model's field docs.
fn data_struct(model: &Model, ident: &syn::Ident, fields: &[Field], doc: &str) -> TokenStream {
    let vis = &model.vis;
    let fields = fields.iter().map(|field| {
        let name = &field.ident;
        let ty = &field.ty;
        let docs = &field.docs;
        quote!(#(#docs)* pub #name: #ty,)
    });
    quote! {
        #[doc = #doc]
        #vis struct #ident {
            #(#fields)*
        }
    }
}

/// `<Model>Changes`: one `Option` per default field, `Default`, and its conversion from
/// the defaults (every field changed).
fn changes_struct(model: &Model) -> TokenStream {
    let vis = &model.vis;
    let model_ident = &model.ident;
    let ident = model.changes_ident();
    let defaults_ident = model.defaults_ident();
    let doc = format!(
        " The values `update_or_create_with` sets on a [`{model_ident}`] row: each `Some` field is \
         written whether the row exists or is created; a `None` field keeps the stored value, or \
         takes its default when the row is created."
    );
    let names: Vec<_> = model.defaults.iter().map(|field| &field.ident).collect();
    let fields = model.defaults.iter().map(|field| {
        let name = &field.ident;
        let ty = &field.ty;
        let docs = &field.docs;
        quote!(#(#docs)* pub #name: ::std::option::Option<#ty>,)
    });
    let unused = names.is_empty().then(|| quote!(let _ = defaults;));
    quote! {
        #[doc = #doc]
        #[derive(Default)]
        #vis struct #ident {
            #(#fields)*
        }

        /// Every field changed.
        #[automatically_derived]
        impl ::std::convert::From<#defaults_ident> for #ident {
            fn from(defaults: #defaults_ident) -> Self {
                #unused
                #ident { #(#names: ::std::option::Option::Some(defaults.#names),)* }
            }
        }
    }
}
