//! The `#[derive(GetOrCreate)]` macro. Use it through `get-or-create-core`, which
//! re-exports it beside the trait it implements and documents both.
//!
//! The expansion runs in three steps: `attrs.rs` parses the attributes, `model.rs` checks
//! them and builds a description of the model, `generate/` writes the code (one file per
//! generated item: the structs, the description the runtime reads, the field checks).
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod attrs;
mod generate;
mod model;

/// Derives `get_or_create_core::GetOrCreate` for a Diesel model.
///
/// Mark the fields that identify a row with `#[lookup]` (at least one) and the fields
/// written only when a row is created with `#[default]` (or `#[get_or_create(lookup)]` and
/// `#[get_or_create(default)]`). It generates `<Model>Lookup` and `<Model>Defaults` with
/// one public field each, and `<Model>Changes` with one `Option` per default field; the
/// struct's `#[get_or_create(..)]` may rename them and add derives (see `attrs.rs` for the
/// whole grammar). See the `get-or-create-core` crate docs for a full example.
#[proc_macro_derive(GetOrCreate, attributes(lookup, default, get_or_create))]
pub fn derive_get_or_create(input: TokenStream) -> TokenStream {
    expand(input.into()).into()
}

/// The derive on `proc_macro2` tokens, so that tests can run it in-process.
///
/// A refused model expands to its errors and a fallback (see [`generate::fallback`]), so
/// that one mistake in the model is one error, not one more at every use of its structs.
fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    match model::Model::from_input(&input) {
        Ok(model) => generate::generate(&model),
        Err(refused) => {
            let mut expanded = refused.errors.to_compile_error();
            expanded.extend(generate::fallback(&refused));
            expanded
        }
    }
}

#[cfg(test)]
mod tests;
