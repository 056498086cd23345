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
    // On error the derive writes nothing but the errors: no half-made impls that would
    // bury them under follow-up errors.
    let calls = expanded
        .into_iter()
        .filter(|tt| matches!(tt, TokenTree::Ident(ident) if ident == "compile_error"))
        .count();
    assert_eq!(calls, errors.len(), "the expansion has more than errors");
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
    assert_eq!(expand_ok(short), expand_ok(namespaced));
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
    let decorated = quote! {
        #[diesel(table_name = users, primary_key(id))]
        #[diesel(treat_none_as_null = true)]
        pub struct User {
            #[diesel(deserialize_as = i64)]
            pub id: i64,
            #[lookup]
            #[diesel(sql_type = diesel::sql_types::Text)]
            pub email: String,
            #[default]
            #[diesel(serialize_as = String, embed)]
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
        let model = crate::model::Model::from_input(&input).expect("accepted");
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
        "unknown option `lookup`; on the struct, the correct form is \
         `#[get_or_create(where = \"deleted_at IS NULL\")]`",
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
            "`where` needs a value; on the struct, the correct form is",
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
