//! Expansion snapshots and error messages of the derive, run in-process.
//!
//! The snapshots in `snapshots/` are the expansion pretty-printed; review a changed one
//! by eye before accepting it (`INSTA_UPDATE=always cargo test -p get-or-create-derive`).
//! Where errors point is checked by the trybuild cases in `tests/ui/`, since spans carry
//! no location in-process.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;

use crate::expand;

/// Expands a model that must be accepted, pretty-printed for a snapshot.
fn expand_ok(input: TokenStream) -> String {
    let expanded = expand(input);
    let errors = compile_errors(&expanded);
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}");
    let file: syn::File = syn::parse2(expanded).expect("the expansion is valid Rust");
    prettyplease::unparse(&file)
}

/// The messages of the `compile_error!`s in an expansion, in order.
fn compile_errors(tokens: &TokenStream) -> Vec<String> {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut messages = Vec::new();
    for window in tokens.windows(3) {
        if let [TokenTree::Ident(ident), TokenTree::Punct(bang), TokenTree::Group(group)] = window {
            if ident == "compile_error" && bang.as_char() == '!' {
                let message: syn::LitStr =
                    syn::parse2(group.stream()).expect("compile_error! takes a string literal");
                messages.push(message.value());
            }
        }
    }
    messages
}

/// Expands a model that must be refused and returns its error messages.
#[track_caller]
fn expand_err(input: TokenStream) -> Vec<String> {
    let expanded = expand(input);
    let errors = compile_errors(&expanded);
    assert!(
        !errors.is_empty(),
        "expected errors, got an expansion:\n{expanded}"
    );
    let calls = expanded
        .clone()
        .into_iter()
        .filter(|tt| matches!(tt, TokenTree::Ident(ident) if ident == "compile_error"))
        .count();
    assert_eq!(
        calls,
        errors.len(),
        "every error is a top-level `compile_error!`"
    );
    // Beside the errors, the fallback declares the structs (and stand-in impls), but
    // nothing that names a column or checks a field type: nothing that could add errors
    // of its own on top of the model's.
    let text = expanded.to_string();
    for absent in ["KeyField", "ValueField", "__field_types_fit_their_columns"] {
        assert!(
            !text.contains(absent),
            "the fallback has `{absent}`:\n{text}"
        );
    }
    errors
}

/// Asserts that there is exactly one error, and that it contains `expected`.
#[track_caller]
fn assert_one_error(input: TokenStream, expected: &str) {
    let errors = expand_err(input);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    assert!(
        errors[0].contains(expected),
        "the error {:?} does not contain {expected:?}",
        errors[0]
    );
}

// ---------------------------------------------------------------------------------------
// Expansions
// ---------------------------------------------------------------------------------------

#[test]
fn expands_the_issue_example() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Debug, Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            /// The user's address.
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
            #[default]
            pub karma: i32,
        }
    }));
}

#[test]
fn expands_a_composite_lookup() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = memberships)]
        pub struct Membership {
            pub id: i64,
            #[lookup]
            pub org: String,
            #[lookup]
            pub member: String,
            #[default]
            pub role: String,
        }
    }));
}

#[test]
fn expands_an_optional_lookup_field() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = tags)]
        pub struct Tag {
            pub id: i64,
            #[lookup]
            pub label: Option<String>,
            #[default]
            pub color: String,
        }
    }));
}

#[test]
fn expands_a_renamed_column() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = accounts)]
        pub struct Account {
            pub id: i64,
            #[lookup]
            #[diesel(column_name = email)]
            pub address: String,
            #[diesel(column_name = "handle")]
            #[default]
            pub nick: String,
        }
    }));
}

#[test]
fn expands_the_namespaced_attributes() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Default, Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            #[get_or_create(lookup)]
            pub email: String,
            #[get_or_create(default)]
            pub name: String,
            #[get_or_create(default)]
            pub karma: i32,
        }
    }));
}

#[test]
fn expands_the_namespaced_attributes_like_the_short_ones() {
    let short = quote! {
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    };
    let namespaced = quote! {
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            #[get_or_create(lookup)]
            pub email: String,
            #[get_or_create(default)]
            pub name: String,
        }
    };
    // The same, but for the hint that `#[default]` clashes with `derive(Default)`, which
    // only the short form needs.
    let (short, namespaced) = (expand_ok(short), expand_ok(namespaced));
    let probe = "        {\n            #[allow(unused_imports)]\n            use __goc::{ShortDefaultClash as _, ShortDefaultFine as _};\n            (&&__goc::DefaultProbe::<User>::new()).short_default();\n        }\n";
    assert!(short.contains(probe), "{short}");
    assert_eq!(short.replace(probe, ""), namespaced);
}

#[test]
fn expands_with_an_inferred_table_name() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        pub struct UserProfile {
            pub id: i64,
            #[lookup]
            pub handle: String,
        }
    }));
}

#[test]
fn expands_check_for_backend() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        #[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    }));
}

#[test]
fn check_for_backend_disable_turns_the_backend_checks_off() {
    let expanded = expand_ok(quote! {
        #[diesel(table_name = users)]
        #[diesel(check_for_backend(diesel::pg::Pg), check_for_backend(disable = true))]
        pub struct User {
            #[lookup]
            pub email: String,
        }
    });
    assert!(expanded.contains("assert_fits_column"));
    assert!(!expanded.contains("assert_binds_on"), "{expanded}");
}

#[test]
fn expands_a_model_without_defaults() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            pub name: String,
        }
    }));
}

#[test]
fn expands_a_pub_crate_model() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        pub(crate) struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    }));
}

#[test]
fn expands_a_table_path() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = crate::schema::users)]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    }));
}

#[test]
fn ignores_diesel_options_it_does_not_use() {
    let plain = quote! {
        #[diesel(table_name = users)]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    };
    // Values of every shape Diesel takes: types whose `<..>` hold commas, expressions,
    // literals, lists, bare flags.
    let decorated = quote! {
        #[diesel(table_name = users, primary_key(id, email))]
        #[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
        #[diesel(belongs_to(Org, foreign_key = org_id), aggregate, not_sized)]
        #[diesel(sql_type = diesel::sql_types::Record<(Integer, Text)>)]
        #[diesel(mysql_type(name = "Long"), postgres_type(name = "user_t", schema = "app"))]
        pub struct User {
            #[diesel(deserialize_as = std::collections::HashMap<i64, String>)]
            pub id: i64,
            #[lookup]
            #[diesel(sql_type = Nullable<Text>, skip_insertion, skip_update)]
            pub email: String,
            #[default]
            #[diesel(serialize_as = Result<String, ()>, treat_none_as_null = true)]
            pub name: String,
        }
    };
    assert_eq!(expand_ok(plain), expand_ok(decorated));
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn refuses_a_model_without_lookup_fields() {
    assert_one_error(
        quote! {
            #[diesel(table_name = users)]
            pub struct User {
                pub id: i64,
                #[default]
                pub email: String,
            }
        },
        "`GetOrCreate` needs at least one field marked `#[lookup]`",
    );
}

#[test]
fn refuses_a_field_marked_both_lookup_and_default() {
    let message = "a field cannot be both `lookup` and `default`";
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                #[default]
                pub email: String,
            }
        },
        message,
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[get_or_create(lookup, default)]
                pub email: String,
            }
        },
        message,
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub id: i64,
                #[default]
                #[get_or_create(lookup)]
                pub email: String,
            }
        },
        "a field cannot be both `default` and `lookup`",
    );
}

#[test]
fn refuses_a_role_given_twice() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                #[get_or_create(lookup)]
                pub email: String,
            }
        },
        "the field is already marked `lookup`",
    );
}

#[test]
fn refuses_arguments_to_lookup_and_default() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup(x)]
                pub email: String,
            }
        },
        "unknown lookup option `x`; the correct form is `#[lookup(function = lower)]`",
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup = 1]
                pub email: String,
            }
        },
        "`#[lookup]` takes no value",
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub email: String,
                #[default(0)]
                pub karma: i32,
            }
        },
        "`#[default]` takes no arguments",
    );
}

#[test]
fn expands_database_defaults_and_sql_expressions() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = tags)]
        pub struct Tag {
            pub id: i32,
            #[lookup]
            pub name: String,
            /// `None` writes the column's `DEFAULT` on a `NOT NULL` column.
            #[default]
            pub deleted: Option<bool>,
            #[default]
            pub color: std::option::Option<Option<String>>,
            #[get_or_create(on_create = "now()")]
            pub created_at: i64,
            #[get_or_create(on_create = "now()", on_update = "now()")]
            #[diesel(column_name = touched)]
            pub updated_at: i64,
        }
    }));
}

#[test]
fn reads_how_a_field_type_is_spelled() {
    use crate::model::Spelled;
    let spelled = |ty: TokenStream| {
        let input = quote! {
            struct T { #[lookup] id: i32, #[default] f: #ty }
        };
        let input: syn::DeriveInput = syn::parse2(input).expect("valid input");
        let Ok(model) = crate::model::Model::from_input(&input) else {
            panic!("refused: {}", quote!(#input));
        };
        model.defaults[0].spelled
    };
    assert_eq!(spelled(quote!(bool)), Spelled::Plain);
    assert_eq!(spelled(quote!(Option<bool>)), Spelled::Optional);
    assert_eq!(
        spelled(quote!(::std::option::Option<bool>)),
        Spelled::Optional
    );
    assert_eq!(
        spelled(quote!(core::option::Option<bool>)),
        Spelled::Optional
    );
    assert_eq!(
        spelled(quote!(Option<Option<i32>>)),
        Spelled::NestedOptional
    );
    assert_eq!(spelled(quote!(my::Option<bool>)), Spelled::Plain);
    assert_eq!(spelled(quote!(Vec<Option<String>>)), Spelled::Plain);
}

#[test]
fn refuses_an_sql_expression_on_a_lookup_or_default_field() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub id: i64,
                #[default]
                #[get_or_create(on_create = "now()")]
                pub created_at: i64,
            }
        },
        "a field written by an SQL expression (`on_create`, `on_update`) takes no value \
         from Rust, so it cannot be `default` too; keep one",
    );
}

#[test]
fn refuses_an_sql_expression_that_is_not_a_string() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub id: i64,
                #[get_or_create(on_create = now)]
                pub created_at: i64,
            }
        },
        "`on_create` takes the SQL expression as a string, as in \
         `#[get_or_create(on_create = \"now()\")]`",
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub id: i64,
                #[get_or_create(on_update = "  ")]
                pub updated_at: i64,
            }
        },
        "`on_update` needs an SQL expression",
    );
}

#[test]
fn refuses_an_unknown_get_or_create_option() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub id: i64,
                #[get_or_create(unknown)]
                pub email: String,
            }
        },
        "unknown option `unknown`; the correct form is `#[lookup]`, `#[default]`, \
         `#[get_or_create(lookup)]`, `#[get_or_create(default)]` or \
         `#[get_or_create(on_create = \"now()\", on_update = \"now()\")]`",
    );
    // The options after an unknown one are still read: `lookup` counts, so no
    // "needs at least one lookup" error follows.
    assert_one_error(
        quote! {
            pub struct User {
                #[get_or_create(unknown(1, 2), lookup)]
                pub email: String,
            }
        },
        "unknown option `unknown`",
    );
}

#[test]
fn refuses_arguments_inside_get_or_create() {
    assert_one_error(
        quote! {
            pub struct User {
                #[get_or_create(lookup(x))]
                pub email: String,
            }
        },
        "unknown lookup option `x`",
    );
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub email: String,
                #[get_or_create(default = 1)]
                pub karma: i32,
            }
        },
        "`default` takes no arguments",
    );
}

#[test]
fn refuses_field_options_on_the_struct() {
    assert_one_error(
        quote! {
            #[get_or_create(lookup)]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        },
        "unknown option `lookup`; on the struct, the options are \
         `where = \"deleted_at IS NULL\"`",
    );
}

#[test]
fn expands_a_key_compared_through_a_function_and_a_collation() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = instances)]
        pub struct Instance {
            pub id: i32,
            #[lookup(function = lower)]
            pub domain: String,
            #[get_or_create(lookup(collate = "NOCASE"))]
            pub region: String,
            #[default]
            pub software: Option<String>,
        }
    }));
}

#[test]
fn expands_a_key_scoped_to_a_partial_index() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        #[get_or_create(where = "gh_id > 0")]
        pub struct User {
            pub id: i32,
            #[lookup]
            pub gh_id: i32,
            #[default]
            pub gh_login: String,
        }
    }));
}

#[test]
fn accepts_a_schema_qualified_function_as_a_path_or_a_string() {
    for function in [quote!(app::canon_name), quote!("app.canon_name")] {
        let expanded = expand(quote! {
            #[diesel(table_name = crates)]
            pub struct Crate {
                pub id: i32,
                #[lookup(function = #function)]
                pub name: String,
            }
        })
        .to_string();
        assert!(
            expanded.contains(r#"Compare :: Function ("app.canon_name")"#),
            "{expanded}"
        );
    }
}

#[test]
fn refuses_a_malformed_key_comparison() {
    let cases = [
        (
            quote!(#[lookup(function)]),
            "`function` needs a value; the correct form is `#[lookup(function = lower)]`",
        ),
        (
            quote!(#[lookup(function = "lower(x)")]),
            "`lower(x)` is not the name of an SQL function: write only its name",
        ),
        (
            quote!(#[lookup(collate = "a\"b")]),
            "is not the name of a collation",
        ),
        (
            quote!(#[lookup(function = lower, collate = "C")]),
            "a lookup field is compared one way: give `function` or `collate`, not both",
        ),
        (
            quote!(#[lookup(case = insensitive)]),
            "unknown lookup option `case`",
        ),
    ];
    for (attribute, expected) in cases {
        assert_one_error(
            quote! {
                pub struct Host {
                    #attribute
                    pub name: String,
                }
            },
            expected,
        );
    }
}

#[test]
fn refuses_a_malformed_where_filter() {
    for (attribute, expected) in [
        (
            quote!(#[get_or_create(where)]),
            "`where` needs a value; on the struct, the options are",
        ),
        (
            quote!(#[get_or_create(where = "")]),
            "`where` takes the predicate of the partial unique index as SQL",
        ),
        (
            quote!(#[get_or_create(where = "a; DROP TABLE b")]),
            "`where` takes the predicate of the partial unique index as SQL",
        ),
    ] {
        assert_one_error(
            quote! {
                #attribute
                pub struct User {
                    #[lookup]
                    pub gh_id: i32,
                }
            },
            expected,
        );
    }
}

#[test]
fn refuses_an_enum() {
    assert_one_error(
        quote! {
            pub enum User {
                Admin { #[lookup] email: String },
            }
        },
        "`GetOrCreate` can only be derived for a struct with named fields, not an enum",
    );
}

#[test]
fn refuses_a_union() {
    assert_one_error(
        quote! {
            pub union User {
                id: i64,
                karma: i32,
            }
        },
        "`GetOrCreate` can only be derived for a struct with named fields, not a union",
    );
}

#[test]
fn refuses_a_tuple_struct() {
    assert_one_error(
        quote! {
            pub struct User(#[lookup] pub String, #[default] pub i32);
        },
        "`GetOrCreate` needs a struct with named fields",
    );
}

#[test]
fn refuses_a_unit_struct() {
    assert_one_error(
        quote! {
            pub struct User;
        },
        "`GetOrCreate` needs a struct with named fields",
    );
}

#[test]
fn refuses_a_generic_struct() {
    let message = "`GetOrCreate` cannot be derived for a generic struct";
    assert_one_error(
        quote! {
            pub struct User<T> {
                #[lookup]
                pub email: T,
            }
        },
        message,
    );
    assert_one_error(
        quote! {
            pub struct User<'a> {
                #[lookup]
                pub email: &'a str,
            }
        },
        message,
    );
    assert_one_error(
        quote! {
            pub struct User<const N: usize> {
                #[lookup]
                pub email: [u8; N],
            }
        },
        message,
    );
}

#[test]
fn reports_every_error_at_once() {
    let errors = expand_err(quote! {
        #[get_or_create(lookup)]
        pub struct User<T> {
            #[lookup(x)]
            pub id: i64,
            #[get_or_create(unknown)]
            pub email: T,
            #[lookup]
            #[default]
            pub name: String,
            #[default = 1]
            pub karma: i32,
        }
    });
    let expected = [
        "unknown option `lookup`; on the struct",
        "`GetOrCreate` cannot be derived for a generic struct",
        "unknown lookup option `x`",
        "unknown option `unknown`",
        "a field cannot be both `lookup` and `default`",
        "`#[default]` takes no arguments",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(
            error.contains(expected),
            "{error:?} should contain {expected:?}"
        );
    }
}

#[test]
fn reports_field_errors_of_a_model_without_lookup_fields() {
    let errors = expand_err(quote! {
        pub struct User {
            #[get_or_create(lokup)]
            pub email: String,
        }
    });
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("unknown option `lokup`"), "{errors:#?}");
    assert!(
        errors[1].contains("at least one field marked `#[lookup]`"),
        "{errors:#?}"
    );
}

#[test]
fn refuses_a_column_name_that_is_no_identifier() {
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                #[diesel(column_name = "e-mail")]
                pub email: String,
            }
        },
        "`column_name` names a column of the `table!` module",
    );
}

#[test]
fn infers_the_table_name_of_a_raw_identifier() {
    let expanded = expand_ok(quote! {
        struct r#Match {
            id: i64,
            #[lookup]
            code: String,
        }
    });
    assert!(
        expanded.contains("type Table = matchs::table;"),
        "{expanded}"
    );
}

// ---------------------------------------------------------------------------------------
// Derives and names of the generated structs
// ---------------------------------------------------------------------------------------

/// The struct named `name` in an expansion.
#[track_caller]
fn find_struct(expanded: &str, name: &str) -> syn::ItemStruct {
    let file: syn::File = syn::parse_str(expanded).expect("the expansion is valid Rust");
    file.items
        .into_iter()
        .find_map(|item| match item {
            syn::Item::Struct(item) if item.ident == name => Some(item),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no struct `{name}` in:\n{expanded}"))
}

/// The derives of a struct, as written, in order.
fn derives_of(item: &syn::ItemStruct) -> Vec<String> {
    let mut derives = Vec::new();
    for attr in item.attrs.iter().filter(|a| a.path().is_ident("derive")) {
        attr.parse_nested_meta(|meta| {
            derives.push(crate::attrs::path_to_string(&meta.path));
            Ok(())
        })
        .unwrap();
    }
    derives
}

#[test]
fn expands_derives_and_names_of_the_generated_structs() {
    insta::assert_snapshot!(expand_ok(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        #[get_or_create(derive(Debug, Clone, serde::Deserialize))]
        #[get_or_create(lookup_derive(Hash, Eq, PartialEq), changes_derive(PartialEq))]
        #[get_or_create(
            lookup_struct = UserKey,
            defaults_struct = NewUserFields,
            changes_struct = UserPatch,
        )]
        pub struct User {
            pub id: i64,
            #[lookup]
            #[get_or_create(attr(serde(rename = "e-mail")))]
            pub email: String,
            #[get_or_create(default, attr(serde(default), doc = " Shown to others."))]
            pub name: String,
        }
    }));
}

#[test]
fn derives_land_on_the_structs_they_name() {
    let expanded = expand_ok(quote! {
        #[diesel(table_name = users)]
        #[get_or_create(derive(Debug, ::serde::Serialize), lookup_derive(Hash))]
        #[get_or_create(defaults_derive(Clone), changes_derive(Eq))]
        pub struct User {
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    });
    let derives = |name| derives_of(&find_struct(&expanded, name));
    assert_eq!(derives("UserLookup"), ["Debug", "serde::Serialize", "Hash"]);
    assert_eq!(
        derives("UserDefaults"),
        ["Debug", "serde::Serialize", "Clone"]
    );
    assert_eq!(
        derives("UserChanges"),
        ["Default", "Debug", "serde::Serialize", "Eq"]
    );
}

#[test]
fn a_listed_default_is_derived_once_on_changes() {
    // `Changes` always derives `Default`, which the runtime needs: one the user lists is
    // dropped there (a second derive would not compile), and kept on the other structs.
    for (option, on_lookup) in [
        (quote!(derive(Default, Debug)), true),
        (quote!(derive(Debug, std::default::Default)), true),
        (quote!(derive(Debug), changes_derive(Default)), false),
    ] {
        let expanded = expand_ok(quote! {
            #[get_or_create(#option)]
            pub struct User {
                #[lookup]
                pub email: String,
                #[default]
                pub name: String,
            }
        });
        let changes = derives_of(&find_struct(&expanded, "UserChanges"));
        assert_eq!(changes, ["Default", "Debug"], "{option}");
        let lookup = derives_of(&find_struct(&expanded, "UserLookup"));
        assert_eq!(lookup.iter().any(|d| d.ends_with("Default")), on_lookup);
    }
}

#[test]
fn the_chosen_names_are_used_everywhere() {
    let expanded = expand_ok(quote! {
        #[diesel(table_name = users)]
        #[get_or_create(lookup_struct = UserKey, changes_struct = UserPatch)]
        pub struct User {
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    });
    for expected in [
        "pub struct UserKey",
        "pub struct UserDefaults",
        "pub struct UserPatch",
        "type Key = UserKey;",
        "type Values = UserDefaults;",
        "type Changeset = UserPatch;",
        "impl ::std::convert::From<UserDefaults> for UserPatch",
        "fn get(key: &UserKey)",
        "fn change(changes: &UserPatch)",
    ] {
        assert!(
            expanded.contains(expected),
            "no {expected:?} in:\n{expanded}"
        );
    }
    for default_name in ["UserLookup", "UserChanges"] {
        assert!(!expanded.contains(default_name), "{expanded}");
    }
}

#[test]
fn a_rename_may_take_a_name_another_struct_gives_up() {
    let expanded = expand_ok(quote! {
        #[get_or_create(lookup_struct = UserDefaults, defaults_struct = UserFields)]
        pub struct User {
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    });
    assert!(expanded.contains("type Key = UserDefaults;"), "{expanded}");
    assert!(expanded.contains("type Values = UserFields;"), "{expanded}");
}

/// A model with `options` in its `#[get_or_create(..)]`.
fn with_struct_options(options: TokenStream) -> TokenStream {
    quote! {
        #[get_or_create(#options)]
        pub struct User {
            #[lookup]
            pub email: String,
            #[default]
            pub name: String,
        }
    }
}

#[test]
fn refuses_a_malformed_struct_option() {
    let cases = [
        (
            quote!(lookup_structs = UserKey),
            "unknown option `lookup_structs`; on the struct, the options are",
        ),
        (
            quote!(serde(rename_all = "camelCase")),
            "unknown option `serde`; on the struct, the options are",
        ),
        (
            quote!(derive = Debug),
            "`derive` takes a list of traits; `derive(..)` lists the traits to derive, \
             e.g. `derive(Debug, Clone)`",
        ),
        (
            quote!(lookup_derive(Hash<T>)),
            "expected the path of a trait; `lookup_derive(..)` lists the traits to derive",
        ),
        (
            quote!(lookup_struct),
            "`lookup_struct` needs a value; `lookup_struct` takes the name of the generated \
             struct, e.g. `lookup_struct = UserKey`",
        ),
        (
            quote!(changes_struct = "UserPatch"),
            "expected an identifier; `changes_struct` takes the name of the generated struct",
        ),
        (
            quote!(defaults_struct = a::B),
            "expected an identifier; `defaults_struct` takes the name of the generated struct",
        ),
    ];
    for (options, expected) in cases {
        assert_one_error(with_struct_options(options), expected);
    }
}

#[test]
fn refuses_a_struct_option_given_twice() {
    let cases = [
        (
            quote!(derive(Debug), derive(Clone)),
            "`derive` is given twice; list every trait in one `derive(..)`",
        ),
        (
            quote!(lookup_derive(Hash), lookup_derive(Eq)),
            "`lookup_derive` is given twice; list every trait in one `lookup_derive(..)`",
        ),
        (
            quote!(lookup_struct = A, lookup_struct = B),
            "`lookup_struct` is given twice; keep one",
        ),
        (
            quote!(where = "a", where = "b"),
            "`where` is given twice; keep one",
        ),
    ];
    for (options, expected) in cases {
        assert_one_error(with_struct_options(options), expected);
    }
    // Across attributes too.
    assert_one_error(
        quote! {
            #[get_or_create(changes_struct = A)]
            #[get_or_create(changes_struct = B)]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        },
        "`changes_struct` is given twice; keep one",
    );
}

#[test]
fn refuses_a_trait_derived_twice() {
    let cases = [
        (
            quote!(derive(Debug, Clone, Debug)),
            "`Debug` is listed twice in `derive(..)`; list it once",
        ),
        (
            quote!(changes_derive(Eq, ::Eq)),
            "`Eq` is listed twice in `changes_derive(..)`; list it once",
        ),
        (
            quote!(derive(Hash), lookup_derive(Eq, Hash)),
            "`Hash` is already derived on every generated struct by `derive(..)`; remove it \
             from `lookup_derive(..)`",
        ),
    ];
    for (options, expected) in cases {
        assert_one_error(with_struct_options(options), expected);
    }
}

#[test]
fn refuses_a_name_the_model_or_another_struct_has() {
    let cases = [
        (
            quote!(lookup_struct = User),
            "`lookup_struct = User` is the name of the model itself; name the generated \
             struct something else, or remove `lookup_struct` to keep `UserLookup`",
        ),
        (
            quote!(changes_struct = r#User),
            "`changes_struct = r#User` is the name of the model itself",
        ),
        (
            quote!(lookup_struct = UserDefaults),
            "`lookup_struct = UserDefaults` is also the name of the generated defaults \
             struct; give each generated struct its own name",
        ),
        (
            quote!(changes_struct = UserLookup),
            "`changes_struct = UserLookup` is also the name of the generated lookup struct",
        ),
        (
            quote!(lookup_struct = Key, defaults_struct = Key),
            "`defaults_struct = Key` is also the name of the generated lookup struct",
        ),
    ];
    for (options, expected) in cases {
        assert_one_error(with_struct_options(options), expected);
    }
}

#[test]
fn refuses_a_malformed_forwarded_attribute() {
    let cases = [
        (
            quote!(#[get_or_create(lookup, attr)]),
            "`attr` takes the attributes to write, in parentheses; \
             `#[get_or_create(attr(..))]` writes attributes on the field",
        ),
        (
            quote!(#[get_or_create(lookup, attr(serde(rename = "a")), attr(doc = "b"))]),
            "`attr` is given twice on this field; list every attribute in one `attr(..)`",
        ),
        (
            quote!(#[get_or_create(lookup, attr(#[serde]))]),
            "`attr(..)` lists attributes as they are written inside `#[..]`",
        ),
    ];
    for (attribute, expected) in cases {
        assert_one_error(
            quote! {
                pub struct User {
                    #attribute
                    pub email: String,
                }
            },
            expected,
        );
    }
    assert_one_error(
        quote! {
            pub struct User {
                #[lookup]
                pub email: String,
                #[get_or_create(attr(serde(skip)))]
                pub name: String,
            }
        },
        "`attr(..)` writes attributes on the field in the generated structs, but this field \
         is in none of them: mark it `#[lookup]` or `#[default]`, or remove `attr(..)`",
    );
}

#[test]
fn the_unknown_field_option_error_mentions_attr() {
    assert_one_error(
        quote! {
            pub struct User {
                #[get_or_create(lookup, serde(rename = "e-mail"))]
                pub email: String,
            }
        },
        "`#[get_or_create(attr(..))]` writes attributes on the field of the generated structs",
    );
}

// ---------------------------------------------------------------------------------------
// Fallback: a refused model still declares its structs
// ---------------------------------------------------------------------------------------

/// Expands a model that must be refused: its error messages, and the rest of the
/// expansion pretty-printed.
#[track_caller]
fn expand_refused(input: TokenStream) -> (Vec<String>, String) {
    let errors = expand_err(input.clone());
    let file: syn::File = syn::parse2(expand(input)).expect("the fallback is valid Rust");
    (errors, prettyplease::unparse(&file))
}

#[test]
fn falls_back_to_the_structs_and_stand_ins() {
    let (errors, expanded) = expand_refused(quote! {
        #[derive(Queryable, Selectable, GetOrCreate)]
        #[diesel(table_name = users)]
        #[get_or_create(derive(Debug), changes_struct = UserPatch)]
        pub struct User {
            pub id: i64,
            #[lookup]
            pub email: String,
            #[default]
            #[get_or_create(rename = "nom")]
            pub name: String,
            #[default]
            #[diesel(column_name = "no-such-column")]
            pub karma: i32,
        }
    });
    assert_eq!(errors.len(), 2, "{errors:#?}");
    insta::assert_snapshot!(expanded);
}

#[test]
fn falls_back_for_every_kind_of_error() {
    // Each refused model still declares `UserLookup` with `email`: the call sites that
    // name it compile.
    let models = [
        // No lookup field left: an empty key.
        quote! {
            pub struct User {
                #[get_or_create(lokup)]
                pub email: String,
            }
        },
        // A bad struct option.
        quote! {
            #[get_or_create(derive = Debug)]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        },
        // A joined model.
        quote! {
            #[diesel(base_query = users::table.inner_join(orgs::table))]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        },
    ];
    let with_email = [false, true, true];
    for (model, with_email) in models.into_iter().zip(with_email) {
        let (_, expanded) = expand_refused(model.clone());
        let lookup = find_struct(&expanded, "UserLookup");
        assert_eq!(lookup.fields.len(), usize::from(with_email), "{model}");
        find_struct(&expanded, "UserDefaults");
        find_struct(&expanded, "UserChanges");
        assert!(
            expanded.contains("impl __goc::Model for User"),
            "{expanded}"
        );
    }
}

#[test]
fn a_refused_rename_falls_back_to_the_default_name() {
    let (_, expanded) = expand_refused(quote! {
        #[get_or_create(lookup_struct = User, defaults_struct = UserFields)]
        pub struct User {
            #[lookup]
            pub email: String,
        }
    });
    find_struct(&expanded, "UserLookup");
    find_struct(&expanded, "UserFields");
    assert!(expanded.contains("type Key = UserLookup;"), "{expanded}");
}

#[test]
fn falls_back_to_empty_structs_without_stand_ins_for_an_unusable_shape() {
    let shapes = [
        quote!(
            pub enum User {
                A,
            }
        ),
        quote!(
            pub struct User(#[lookup] pub String);
        ),
        quote!(
            pub struct User<T> {
                #[lookup]
                pub email: T,
            }
        ),
        // `table_name` cannot be read, so the table the stand-ins would name is unknown.
        quote!(
            #[diesel(table_name = 1)]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        ),
    ];
    let fields = [0, 0, 0, 1];
    for (shape, fields) in shapes.into_iter().zip(fields) {
        let (_, expanded) = expand_refused(shape.clone());
        for name in ["UserLookup", "UserDefaults", "UserChanges"] {
            let item = find_struct(&expanded, name);
            let expected = if name == "UserLookup" { fields } else { 0 };
            assert_eq!(item.fields.len(), expected, "{name} of {shape}");
        }
        assert!(!expanded.contains("__goc"), "{expanded}");
    }
}

// ---------------------------------------------------------------------------------------
// Joined models
// ---------------------------------------------------------------------------------------

const JOINED_FIX: &str = "derive `GetOrCreate` on a plain `Queryable + Selectable` struct of \
                          the table's own columns, and load the joined view with this model \
                          (`HasQuery`)";

#[test]
fn refuses_a_model_with_a_base_query() {
    // Like crates.io's `User`, which joins `oauth_github`.
    let errors = expand_err(quote! {
        #[derive(Clone, Debug, Queryable, Selectable, HasQuery, GetOrCreate)]
        #[diesel(
            table_name = users,
            check_for_backend(diesel::pg::Pg),
            base_query = users::table.left_join(
                oauth_github::table.on(users::gh_id.eq(oauth_github::account_id.nullable()))
            ),
            base_query_type = diesel::dsl::LeftJoinOn<
                users::table,
                oauth_github::table,
                diesel::dsl::Eq<users::gh_id, diesel::dsl::Nullable<oauth_github::account_id>>,
            >,
        )]
        pub struct User {
            pub id: i32,
            #[lookup]
            pub gh_id: i32,
            #[default]
            pub name: Option<String>,
            #[diesel(
                select_expression = oauth_github::login.nullable().assume_not_null(),
                select_expression_type = diesel::dsl::AssumeNotNull<
                    diesel::dsl::Nullable<oauth_github::login>,
                >,
            )]
            pub gh_login: String,
            #[diesel(embed)]
            pub avatar: Avatar,
        }
    });
    // One mistake, one error: the fix is one, whichever attribute shows the join.
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("`base_query` makes `User` read a joined query"),
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("missing FROM-clause entry"),
        "{errors:#?}"
    );
    assert!(errors[0].ends_with(JOINED_FIX), "{errors:#?}");
    // `base_query_type` alone says the same.
    assert_one_error(
        quote! {
            #[diesel(base_query_type = diesel::dsl::InnerJoin<users::table, orgs::table>)]
            pub struct User {
                #[lookup]
                pub email: String,
            }
        },
        "`base_query` makes `User` read a joined query",
    );
}

#[test]
fn refuses_a_field_that_is_no_column_of_the_table() {
    for (attribute, expected) in [
        (
            quote!(#[diesel(select_expression = orgs::name)]),
            "`select_expression` makes `org_name` an expression, not a column of the model's \
             table, so the model reads a joined or computed query",
        ),
        (
            quote!(#[diesel(select_expression_type = Nullable<orgs::name>)]),
            "`select_expression` makes `org_name` an expression",
        ),
        (
            quote!(#[diesel(embed)]),
            "`embed` reads `org_name` through another `Selectable` struct, whose columns may \
             be of another table",
        ),
    ] {
        let errors = expand_err(quote! {
            #[diesel(table_name = users)]
            pub struct User {
                #[lookup]
                pub email: String,
                #attribute
                pub org_name: String,
                #[diesel(embed)]
                pub org: Org,
            }
        });
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].contains(expected), "{errors:#?}");
        assert!(errors[0].contains(JOINED_FIX), "{errors:#?}");
    }
}
