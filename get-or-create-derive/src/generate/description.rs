//! The model's description for the runtime: typed data, no SQL (see the runtime's
//! `model` module for what each item means).
//!
//! - `Model`: the structs and the table;
//! - per lookup field a `KeyField<column>`, per default field a `ValueField<column>`:
//!   where the field's value is;
//! - `Columns<DB>`: the fields in order, as visitor calls, and what binding them on a
//!   backend requires.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::column;
use crate::attrs::Compare;
use crate::model::{Model, Spelled};

pub fn generate(model: &Model) -> TokenStream {
    let model_impl = model_impl(model);
    let fields = field_impls(model);
    let columns = columns_impl(model);
    quote! {
        #model_impl
        #(#fields)*
        #columns
    }
}

fn model_impl(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let table = &model.table;
    let (lookup, defaults, changes) = (
        model.lookup_ident(),
        model.defaults_ident(),
        model.changes_ident(),
    );
    let key_columns: Vec<_> = model.lookup.iter().map(|f| column(model, f)).collect();
    let filter = optional_str(model.filter.as_ref());
    let defaultable = model.defaults.iter().map(|field| {
        let (column, spelled) = (column(model, field), spelled(field.spelled));
        quote!(__goc::defaultable::<#column, #spelled>())
    });
    let sql_columns = model.sql_columns.iter().map(|field| {
        let name = &field.column;
        let column = quote_spanned!(name.span()=> #table::#name);
        let (on_create, on_update) = (
            optional_str(field.on_create.as_ref()),
            optional_str(field.on_update.as_ref()),
        );
        quote! {
            __goc::SqlColumn {
                name: <#column as diesel::Column>::NAME,
                on_create: #on_create,
                on_update: #on_update,
            }
        }
    });
    let sql_types: Vec<_> = model
        .fields()
        .map(|f| {
            let column = column(model, f);
            quote!(diesel::dsl::SqlTypeOf<#column>)
        })
        .collect();
    quote! {
        #[automatically_derived]
        impl __goc::Model for #ident {
            type Key = #lookup;
            type Values = #defaults;
            type Changeset = #changes;
            type Table = #table::table;

            const KEY_COLUMNS: &'static [&'static str] =
                &[#(<#key_columns as diesel::Column>::NAME),*];
            const NULLABLE_KEY: bool = false #(|| __goc::nullable::<#key_columns>())*;
            const FILTER: ::std::option::Option<&'static str> = #filter;
            const DEFAULTABLE: bool = false #(|| #defaultable)*;
            const SQL_COLUMNS: &'static [__goc::SqlColumn] = &[#(#sql_columns),*];

            fn has_array_column() -> bool {
                // Concrete types here: each probe picks `IsArray` for an array type.
                use __goc::{IsArray as _, IsNotArray as _};
                false #(|| (&&__goc::ArrayProbe::<#sql_types>::new()).is_array())*
            }
        }
    }
}

/// `Some("..")` or `None`.
fn optional_str(text: Option<&syn::LitStr>) -> TokenStream {
    match text {
        Some(text) => quote!(::std::option::Option::Some(#text)),
        None => quote!(::std::option::Option::None),
    }
}

/// The runtime's marker of a spelling.
pub(super) fn spelled(spelled: Spelled) -> TokenStream {
    match spelled {
        Spelled::Plain => quote!(__goc::spelled::Plain),
        Spelled::Optional => quote!(__goc::spelled::Optional),
        Spelled::NestedOptional => quote!(__goc::spelled::NestedOptional),
    }
}

fn field_impls(model: &Model) -> Vec<TokenStream> {
    let ident = &model.ident;
    let (lookup, defaults, changes) = (
        model.lookup_ident(),
        model.defaults_ident(),
        model.changes_ident(),
    );
    let keys = model.lookup.iter().map(|field| {
        let (name, ty, column) = (&field.ident, &field.ty, column(model, field));
        let compare = match &field.compare {
            Compare::Equal => quote!(__goc::Compare::Equal),
            Compare::Function(function) => quote!(__goc::Compare::Function(#function)),
            Compare::Collate(collation) => quote!(__goc::Compare::Collate(#collation)),
        };
        quote! {
            #[automatically_derived]
            impl __goc::KeyField<#column> for #ident {
                type Value = #ty;
                const COMPARE: __goc::Compare = #compare;

                fn get(key: &#lookup) -> &#ty {
                    &key.#name
                }
            }
        }
    });
    let values = model.defaults.iter().map(|field| {
        let (name, ty, column) = (&field.ident, &field.ty, column(model, field));
        let spelled = spelled(field.spelled);
        quote! {
            #[automatically_derived]
            impl __goc::ValueField<#column> for #ident {
                type Value = #ty;
                type Spelled = #spelled;

                fn get(values: &#defaults) -> &#ty {
                    &values.#name
                }

                fn change(changes: &#changes) -> ::std::option::Option<&#ty> {
                    changes.#name.as_ref()
                }
            }
        }
    });
    keys.chain(values).collect()
}

fn columns_impl(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let columns: Vec<_> = model.fields().map(|f| column(model, f)).collect();
    let key_bounds = model.lookup.iter().map(|field| {
        let (ty, column) = (&field.ty, column(model, field));
        quote!(#ty: __goc::KeyBind<#column, __DB>,)
    });
    let value_bounds = model.defaults.iter().map(|field| {
        let (ty, column, spelled) = (&field.ty, column(model, field), spelled(field.spelled));
        quote!(#ty: __goc::ValueBind<#column, __DB, #spelled>,)
    });
    let visit = |fields: &[crate::model::Field]| {
        let calls = fields.iter().map(|field| {
            let column = column(model, field);
            quote!(visitor.visit::<#column>()?;)
        });
        quote!(#(#calls)* ::std::result::Result::Ok(()))
    };
    let (visit_key, visit_values) = (visit(&model.lookup), visit(&model.defaults));
    quote! {
        #[automatically_derived]
        impl<__DB> __goc::Columns<__DB> for #ident
        where
            __DB: diesel::backend::Backend
                #(+ diesel::sql_types::HasSqlType<diesel::dsl::SqlTypeOf<#columns>>)*,
            #(#key_bounds)*
            #(#value_bounds)*
        {
            fn visit_key<__V: __goc::KeyVisitor<Self, __DB>>(
                visitor: &mut __V,
            ) -> diesel::QueryResult<()> {
                #visit_key
            }

            fn visit_values<__V: __goc::ValueVisitor<Self, __DB>>(
                visitor: &mut __V,
            ) -> diesel::QueryResult<()> {
                #visit_values
            }
        }
    }
}
