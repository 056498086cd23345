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
    let changes_ident = format_ident!("{}Changes", ident);

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

    let changes_struct = changes_struct(model, &changes_ident, &defaults_ident);

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
    let lookup_nullable: Vec<_> = model.lookup.iter().map(|f| f.is_option).collect();

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
    // Each insert column with where its value comes from: `lookup` or `defaults`, which are
    // also the positions in an `(lookup, defaults)` item.
    let sourced_fields = || {
        model
            .lookup
            .iter()
            .map(|f| (quote!(lookup), quote!(0), f))
            .chain(
                model
                    .defaults
                    .iter()
                    .map(|f| (quote!(defaults), quote!(1), f)),
            )
    };
    let push_values = |fields: Vec<(TokenStream, &Field)>| {
        let pushes = fields.into_iter().enumerate().map(|(i, (source, field))| {
            let name = &field.ident;
            let column = column(field);
            let separator = (i > 0).then(|| quote!(out.push_sql(", ");));
            quote! {
                #separator
                __goc::push_value::<#column, _, _>(&#source.#name, out.reborrow())?;
            }
        });
        quote!(#(#pushes)*)
    };
    let walk_values = push_values(sourced_fields().map(|(s, _, f)| (s, f)).collect());
    let walk_lookup_values =
        push_values(model.lookup.iter().map(|f| (quote!(lookup), f)).collect());

    let field_names: Vec<_> = model.fields().map(|f| &f.ident).collect();
    let split_columns = sourced_fields().map(|(_, position, field)| {
        let name = &field.ident;
        quote!(#name: items.iter().map(|item| &item.#position.#name).collect())
    });
    let walk_arrays = model.fields().enumerate().map(|(i, field)| {
        let name = &field.ident;
        let column = column(field);
        let separator = (i > 0).then(|| quote!(out.push_sql(", ");));
        quote! {
            #separator
            __goc::push_array::<#column, _, _>(&arrays.#name, out.reborrow())?;
        }
    });

    // The lookup, then each default field's change if any, else its default
    // (`update_or_create`).
    let lookup_pushes = model.lookup.iter().map(|field| {
        let name = &field.ident;
        let column = column(field);
        quote!(__goc::push_value::<#column, _, _>(&lookup.#name, out.reborrow())?;)
    });
    let changed_pushes = model.defaults.iter().map(|field| {
        let name = &field.ident;
        let column = column(field);
        quote! {
            __goc::push_changed_value::<#column, _, _>(
                &changes.#name,
                defaults.map(|defaults| &defaults.#name),
                out.reborrow(),
            )?;
        }
    });
    let walk_changed_values = lookup_pushes
        .chain(changed_pushes)
        .enumerate()
        .map(|(i, push)| {
            let separator = (i > 0).then(|| quote!(out.push_sql(", ");));
            quote!(#separator #push)
        });
    let walk_assignments = model.defaults.iter().map(|field| {
        let name = &field.ident;
        let column = column(field);
        quote!(__goc::push_assignment::<#column, _, _>(&changes.#name, &mut first, out.reborrow())?;)
    });
    let count_changes = model.defaults.iter().map(|field| {
        let name = &field.ident;
        quote!(usize::from(changes.#name.is_some()))
    });

    // A model without `#[default]` fields never reads its (empty) defaults or changes.
    let ignore_empty_defaults = model.defaults.is_empty().then(|| quote!(let _ = defaults;));
    let ignore_empty_changes = model
        .defaults
        .is_empty()
        .then(|| quote!(let _ = (changes, defaults);));
    let ignore_empty_assignments = model.defaults.is_empty().then(|| quote!(let _ = changes;));

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
        #changes_struct

        #[allow(non_local_definitions)]
        const _: () = {
            use ::get_or_create_core::__private as __goc;
            use __goc::diesel;

            impl __goc::Model for #ident {
                type Lookup = #lookup_ident;
                type Defaults = #defaults_ident;
                type Changes = #changes_ident;
                type Table = #table::table;

                const TABLE_NAME: &'static str = #table_name;
                const LOOKUP_COLUMNS: &'static [&'static str] =
                    &[#(<#lookup_columns as diesel::Column>::NAME),*];
                const INSERT_COLUMNS: &'static [&'static str] =
                    &[#(<#insert_columns as diesel::Column>::NAME),*];
                const LOOKUP_NULLABLE: &'static [bool] = &[#(#lookup_nullable),*];

                fn changed_fields(changes: &#changes_ident) -> usize {
                    #ignore_empty_assignments
                    0 #(+ #count_changes)*
                }
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
                    #walk_values
                    Ok(())
                }

                fn walk_changed_values<'__b>(
                    lookup: &'__b #lookup_ident,
                    changes: &'__b #changes_ident,
                    defaults: ::std::option::Option<&'__b #defaults_ident>,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #ignore_empty_changes
                    #(#walk_changed_values)*
                    Ok(())
                }

                fn walk_assignments<'__b>(
                    changes: &'__b #changes_ident,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #ignore_empty_assignments
                    let mut first = true;
                    #(#walk_assignments)*
                    let _ = first;
                    Ok(())
                }

                fn walk_lookup_values<'__b>(
                    lookup: &'__b #lookup_ident,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #walk_lookup_values
                    Ok(())
                }
            }

            /// A chunk of rows, one `Vec` per insert column.
            pub struct __GetOrCreateArrays<'__a> {
                #(#field_names: ::std::vec::Vec<&'__a #insert_types>,)*
            }

            impl<__DB> __goc::ModelArrays<__DB> for #ident
            where
                __DB: diesel::backend::Backend
                    #(+ __goc::BindArray<diesel::dsl::SqlTypeOf<#insert_columns>, #insert_types>)*,
            {
                type Arrays<'__a> = __GetOrCreateArrays<'__a>;

                fn arrays<'__a>(
                    items: &[&'__a (#lookup_ident, #defaults_ident)],
                ) -> __GetOrCreateArrays<'__a> {
                    __GetOrCreateArrays { #(#split_columns,)* }
                }

                fn walk_arrays<'__b>(
                    arrays: &'__b __GetOrCreateArrays<'_>,
                    mut out: diesel::query_builder::AstPass<'_, '__b, __DB>,
                ) -> diesel::QueryResult<()> {
                    #(#walk_arrays)*
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

/// `<Model>Changes`: one `Option` per default field, and its conversion from the defaults.
fn changes_struct(model: &Model, ident: &syn::Ident, defaults_ident: &syn::Ident) -> TokenStream {
    let vis = &model.vis;
    let model_ident = &model.ident;
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
        impl ::std::convert::From<#defaults_ident> for #ident {
            fn from(defaults: #defaults_ident) -> Self {
                #unused
                #ident { #(#names: ::std::option::Option::Some(defaults.#names),)* }
            }
        }
    }
}
