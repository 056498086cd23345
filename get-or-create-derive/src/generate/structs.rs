//! The public structs of a model `User`: `UserLookup`, `UserDefaults` and `UserChanges`
//! (or the names its options give them), with the derives its options ask for.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attrs::Generated;
use crate::model::{Field, Model};

/// The three structs, and `From<Defaults> for Changes`.
pub fn generate(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let lookup = data_struct(
        model,
        Generated::Lookup,
        &model.lookup,
        &format!(" The key that identifies one [`{ident}`] row: its fields marked `#[lookup]`."),
    );
    let defaults = data_struct(
        model,
        Generated::Defaults,
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
fn data_struct(model: &Model, which: Generated, fields: &[Field], doc: &str) -> TokenStream {
    let vis = &model.vis;
    let ident = &model.generated(which).ident;
    let derive = derive_attribute(model, which);
    let fields = fields.iter().map(|field| {
        let name = &field.ident;
        let ty = &field.ty;
        let attrs = field_attrs(field);
        quote!(#attrs pub #name: #ty,)
    });
    quote! {
        #[doc = #doc]
        #derive
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
    // `Default` is the runtime's (`Model::Changeset: Default`); the model has dropped a
    // `Default` from the user's derives, which would not compile twice.
    let derives = &model.generated(Generated::Changes).derives;
    let names: Vec<_> = model.defaults.iter().map(|field| &field.ident).collect();
    let fields = model.defaults.iter().map(|field| {
        let name = &field.ident;
        let ty = &field.ty;
        let attrs = field_attrs(field);
        quote!(#attrs pub #name: ::std::option::Option<#ty>,)
    });
    let unused = names.is_empty().then(|| quote!(let _ = defaults;));
    quote! {
        #[doc = #doc]
        #[derive(Default #(, #derives)*)]
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

/// `#[derive(..)]` with the user's derives for `which`, if there are any.
fn derive_attribute(model: &Model, which: Generated) -> Option<TokenStream> {
    let derives = &model.generated(which).derives;
    (!derives.is_empty()).then(|| quote!(#[derive(#(#derives),*)]))
}

/// The attributes of a field in a generated struct: the model's field docs, then those
/// forwarded by `#[get_or_create(attr(..))]`.
fn field_attrs(field: &Field) -> TokenStream {
    let docs = &field.docs;
    let forward = &field.forward;
    quote!(#(#docs)* #(#[#forward])*)
}
