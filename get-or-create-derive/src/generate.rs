//! Writes the code for a checked [`Model`].
//!
//! Everything but the two public structs lives inside `const _: () = { .. };`, so that no
//! generated name can clash with the user's, and reaches the runtime through one path,
//! `::get_or_create_core::__private`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::model::{Field, Model};

pub fn generate(model: &Model) -> TokenStream {
    let ident = &model.ident;
    let table = &model.table;
    let lookup_ident = format_ident!("{}Lookup", ident);
    let defaults_ident = format_ident!("{}Defaults", ident);

    let lookup_struct = data_struct(
        model,
        &lookup_ident,
        &model.lookup,
        &format!(" The key that identifies one [`{ident}`] row: its fields marked `#[lookup]`."),
    );
    let defaults_struct = data_struct(
        model,
        &defaults_ident,
        &model.defaults,
        &format!(
            " The values a new [`{ident}`] row is created with: its fields marked `#[default]`. \
             They are not written when the row already exists."
        ),
    );

    let table_name = table
        .segments
        .last()
        .map(|segment| segment.ident.to_string())
        .unwrap_or_default();
    let column = |field: &Field| {
        let column = &field.column;
        quote_spanned!(field.column.span()=> #table::#column)
    };
    let lookup_columns: Vec<_> = model.lookup.iter().map(column).collect();
    let insert_columns: Vec<_> = model.fields().map(column).collect();
    let insert_types: Vec<_> = model.fields().map(|f| &f.ty).collect();
    let nullable_lookup = model.lookup.iter().any(|f| f.is_option);

    let walk_lookup = model.lookup.iter().enumerate().map(|(i, field)| {
        let name = &field.ident;
        let column = column(field);
        let push = if field.is_option {
            quote!(__goc::push_eq_or_is_null)
        } else {
            quote!(__goc::push_eq)
        };
        let separator = (i > 0).then(|| quote!(out.push_sql(" AND ");));
        quote! {
            #separator
            #push::<#column, _, _>(&lookup.#name, out.reborrow())?;
        }
    });
    let walk_values = model
        .lookup
        .iter()
        .map(|f| (quote!(lookup), f))
        .chain(model.defaults.iter().map(|f| (quote!(defaults), f)))
        .enumerate()
        .map(|(i, (source, field))| {
            let name = &field.ident;
            let column = column(field);
            let separator = (i > 0).then(|| quote!(out.push_sql(", ");));
            quote! {
                #separator
                __goc::push_value::<#column, _, _>(&#source.#name, out.reborrow())?;
            }
        });

    // A model without `#[default]` fields never reads its (empty) defaults.
    let ignore_empty_defaults = model.defaults.is_empty().then(|| quote!(let _ = defaults;));

    let type_checks = model.fields().map(|field| {
        let ty = &field.ty;
        let column = column(field);
        let per_backend = model.check_for_backend.iter().map(|backend| {
            quote_spanned!(ty.span()=> __goc::assert_binds_on::<#ty, #column, #backend>();)
        });
        quote_spanned! {ty.span()=>
            __goc::assert_fits_column::<#ty, #column>();
            #(#per_backend)*
        }
    });

    quote! {
        #lookup_struct
        #defaults_struct

        #[allow(non_local_definitions)]
        const _: () = {
            use ::get_or_create_core::__private as __goc;
            use __goc::diesel;

            impl __goc::Model for #ident {
                type Lookup = #lookup_ident;
                type Defaults = #defaults_ident;
                type Table = #table::table;

                const TABLE_NAME: &'static str = #table_name;
                const LOOKUP_COLUMNS: &'static [&'static str] =
                    &[#(<#lookup_columns as diesel::Column>::NAME),*];
                const INSERT_COLUMNS: &'static [&'static str] =
                    &[#(<#insert_columns as diesel::Column>::NAME),*];
                const NULLABLE_LOOKUP: bool = #nullable_lookup;
            }

            impl ::get_or_create_core::GetOrCreate for #ident {}

            impl<__DB> __goc::ModelSql<__DB> for #ident
            where
                __DB: diesel::backend::Backend
                    #(+ diesel::sql_types::HasSqlType<diesel::dsl::SqlTypeOf<#insert_columns>>)*,
                #(#insert_types: diesel::serialize::ToSql<diesel::dsl::SqlTypeOf<#insert_columns>, __DB>,)*
            {
                fn walk_lookup<'__b>(
                    lookup: &'__b #lookup_ident,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #(#walk_lookup)*
                    Ok(())
                }

                fn walk_insert_values<'__b>(
                    lookup: &'__b #lookup_ident,
                    defaults: &'__b #defaults_ident,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #ignore_empty_defaults
                    #(#walk_values)*
                    Ok(())
                }
            }

            // Never called: compiling it proves that each field fits its column, with
            // errors pointing at the field's type.
            #[allow(dead_code)]
            fn __field_types_fit_their_columns() {
                #(#type_checks)*
            }
        };
    }
}

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
