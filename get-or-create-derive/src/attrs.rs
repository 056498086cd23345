//! The attribute grammar: what may be written on the struct and its fields, each item
//! kept with its span for error messages.
//!
//! On a field:
//!
//! ```text
//! #[lookup]                              part of the key
//! #[lookup(function = lower)]            compared as lower(column) = lower(value)
//! #[lookup(collate = "NOCASE")]          compared with that collation
//! #[default]                             written only when a row is created
//! #[get_or_create(lookup(..))]           the same, for structs that also derive Default
//! #[get_or_create(default)]
//! #[get_or_create(on_create = "now()")]  written by this SQL expression when a row is
//! #[get_or_create(on_update = "now()")]  created, or updated (either or both)
//! #[diesel(column_name = ..)]            Diesel's, honoured
//! ```
//!
//! On the struct:
//!
//! ```text
//! #[get_or_create(where = "deleted_at IS NULL")]   the key is unique among these rows only
//! #[diesel(table_name = .., check_for_backend(..))]   Diesel's, honoured
//! ```

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token};

/// What a field is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `#[lookup]`: part of the key that identifies a row, compared as `compare` says.
    Lookup(Compare),
    /// `#[default]`: written only when a row is created.
    Default,
}

impl Role {
    pub fn attribute(&self) -> &'static str {
        match self {
            Role::Lookup(_) => "lookup",
            Role::Default => "default",
        }
    }
}

/// How a lookup field is compared with the stored rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Compare {
    /// `column = value`
    #[default]
    Equal,
    /// `function(column) = function(value)`: the SQL name of the function.
    Function(String),
    /// `column COLLATE "collation" = value`: the collation's name.
    Collate(String),
}

/// The attributes of one field that the derive reads.
#[derive(Default)]
pub struct FieldAttrs {
    pub role: Option<(Role, Span)>,
    pub column_name: Option<Ident>,
    /// `#[get_or_create(on_create = "..")]`: the SQL expression written on insert.
    pub on_create: Option<LitStr>,
    /// `#[get_or_create(on_update = "..")]`: the SQL expression written on update.
    pub on_update: Option<LitStr>,
}

/// The attributes of the struct that the derive reads.
#[derive(Default)]
pub struct StructAttrs {
    pub table_name: Option<Path>,
    pub check_for_backend: Vec<Path>,
    /// `#[get_or_create(where = "..")]`: the predicate of the partial unique index.
    pub filter: Option<LitStr>,
}

/// Collects every error instead of stopping at the first, so that the user sees all of
/// them in one build.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

const ROLE_HELP: &str = "the correct form is `#[lookup]`, `#[default]`, \
                         `#[get_or_create(lookup)]`, `#[get_or_create(default)]` or \
                         `#[get_or_create(on_create = \"now()\", on_update = \"now()\")]`";

const KEY_HELP: &str = "the correct form is `#[lookup(function = lower)]` (compared as \
                        `lower(column) = lower(value)`) or `#[lookup(collate = \"NOCASE\")]`";

pub fn parse_field_attrs(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("lookup") {
            let compare = match &attr.meta {
                syn::Meta::Path(_) => Compare::Equal,
                syn::Meta::List(_) => {
                    let mut compare = Compare::Equal;
                    let result =
                        attr.parse_nested_meta(|meta| parse_compare(&meta, &mut compare, errors));
                    if let Err(error) = result {
                        errors.push(error);
                    }
                    compare
                }
                syn::Meta::NameValue(_) => {
                    errors.push(syn::Error::new_spanned(
                        &attr.meta,
                        format!("`#[lookup]` takes no value; {ROLE_HELP}, or {KEY_HELP}"),
                    ));
                    Compare::Equal
                }
            };
            set_role(&mut out, Role::Lookup(compare), path.span(), errors);
        } else if path.is_ident("default") {
            // Spans name the attribute, `default(x)` or `default`, not just its first token.
            if attr.meta.require_path_only().is_err() {
                errors.push(syn::Error::new_spanned(
                    &attr.meta,
                    format!("`#[default]` takes no arguments; {ROLE_HELP}"),
                ));
            }
            set_role(&mut out, Role::Default, path.span(), errors);
        } else if path.is_ident("get_or_create") {
            // A bad option is reported and stepped over, not returned: the options after
            // it are still read, and a `lookup(x)` still counts as a lookup (like
            // `#[lookup(x)]`), so that no "needs at least one lookup" error follows.
            let result = attr.parse_nested_meta(|meta| {
                let role = if meta.path.is_ident("lookup") {
                    let mut compare = Compare::Equal;
                    if meta.input.peek(syn::token::Paren) {
                        meta.parse_nested_meta(|key| parse_compare(&key, &mut compare, errors))?;
                    } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                        errors.push(meta.error(format!("`lookup` takes no value; {KEY_HELP}")));
                        skip_option_arguments(meta.input)?;
                    }
                    Role::Lookup(compare)
                } else if meta.path.is_ident("on_create") || meta.path.is_ident("on_update") {
                    let expression = parse_sql_expression(&meta, errors)?;
                    let slot = if meta.path.is_ident("on_create") {
                        &mut out.on_create
                    } else {
                        &mut out.on_update
                    };
                    if slot.is_some() {
                        errors.push(meta.error(format!(
                            "`{}` is given twice; keep one",
                            path_to_string(&meta.path)
                        )));
                    }
                    *slot = expression;
                    return Ok(());
                } else if meta.path.is_ident("default") {
                    if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                        errors
                            .push(meta.error(format!("`default` takes no arguments; {ROLE_HELP}")));
                        skip_option_arguments(meta.input)?;
                    }
                    Role::Default
                } else {
                    errors.push(meta.error(format!(
                        "unknown option `{}`; {ROLE_HELP}",
                        path_to_string(&meta.path)
                    )));
                    return skip_option_arguments(meta.input);
                };
                set_role(&mut out, role, meta.path.span(), errors);
                Ok(())
            });
            if let Err(error) = result {
                errors.push(error);
            }
        } else if path.is_ident("diesel") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("column_name") {
                    out.column_name = Some(parse_ident_or_str(meta.value()?)?);
                    Ok(())
                } else {
                    skip_option_arguments(meta.input)
                }
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
    }
    out
}

/// `on_create = "now()"`: an SQL expression, as a string.
fn parse_sql_expression(
    meta: &ParseNestedMeta,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let name = path_to_string(&meta.path);
    if !meta.input.peek(Token![=]) {
        errors.push(meta.error(format!(
            "`{name}` needs an SQL expression, as in `#[get_or_create({name} = \"now()\")]`"
        )));
        skip_option_arguments(meta.input)?;
        return Ok(None);
    }
    if !meta.input.peek2(LitStr) {
        errors.push(meta.error(format!(
            "`{name}` takes the SQL expression as a string, as in \
             `#[get_or_create({name} = \"now()\")]`"
        )));
        skip_option_arguments(meta.input)?;
        return Ok(None);
    }
    let input = meta.value()?;
    let expression: LitStr = input.parse()?;
    if expression.value().trim().is_empty() {
        errors.push(syn::Error::new(
            expression.span(),
            format!("`{name}` needs an SQL expression, as in `{name} = \"now()\"`"),
        ));
        return Ok(None);
    }
    Ok(Some(expression))
}

/// One option of `#[lookup(..)]`: `function = ..` or `collate = ..`.
fn parse_compare(
    meta: &ParseNestedMeta,
    compare: &mut Compare,
    errors: &mut Errors,
) -> syn::Result<()> {
    let (name, is_function) = if meta.path.is_ident("function") {
        ("function", true)
    } else if meta.path.is_ident("collate") {
        ("collate", false)
    } else {
        errors.push(meta.error(format!(
            "unknown lookup option `{}`; {KEY_HELP}",
            path_to_string(&meta.path)
        )));
        return skip_option_arguments(meta.input);
    };
    if !meta.input.peek(Token![=]) {
        errors.push(meta.error(format!("`{name}` needs a value; {KEY_HELP}")));
        return skip_option_arguments(meta.input);
    }
    let input = meta.value()?;
    let (text, span) = if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        (lit.value(), lit.span())
    } else {
        let path: Path = input.parse()?;
        (path_to_string(&path).replace("::", "."), path.span())
    };
    let parsed = if is_function {
        valid_function_name(&text).then(|| Compare::Function(text.clone()))
    } else {
        valid_collation_name(&text).then(|| Compare::Collate(text.clone()))
    };
    match (parsed, &*compare) {
        (None, _) if is_function => errors.push(syn::Error::new(
            span,
            format!(
                "`{text}` is not the name of an SQL function: write only its name, as in \
                 `#[lookup(function = lower)]` or `#[lookup(function = \"app.canon_name\")]`; \
                 the runtime writes `name(column) = name(value)`"
            ),
        )),
        (None, _) => errors.push(syn::Error::new(
            span,
            format!(
                "`{text}` is not the name of a collation: write it as in \
                 `#[lookup(collate = \"NOCASE\")]`"
            ),
        )),
        (Some(_), Compare::Function(_) | Compare::Collate(_)) => errors.push(syn::Error::new(
            span,
            format!(
                "a lookup field is compared one way: give `function` or `collate`, not both; \
                 {KEY_HELP}"
            ),
        )),
        (Some(parsed), Compare::Equal) => *compare = parsed,
    }
    Ok(())
}

/// `lower`, `app.canon_name`: identifiers joined by dots.
fn valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A collation's name: written as a quoted identifier, so anything but a quote.
fn valid_collation_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['"', '`', '\''])
}

fn set_role(out: &mut FieldAttrs, role: Role, span: Span, errors: &mut Errors) {
    match &out.role {
        None => out.role = Some((role, span)),
        Some((previous, _)) if previous.attribute() == role.attribute() => {
            errors.push(syn::Error::new(
                span,
                format!(
                    "the field is already marked `{}`; remove this attribute",
                    role.attribute()
                ),
            ))
        }
        Some((previous, _)) => errors.push(syn::Error::new(
            span,
            format!(
                "a field cannot be both `{}` and `{}`: a lookup field is always written \
                 when a row is created; keep one of the two",
                previous.attribute(),
                role.attribute()
            ),
        )),
    }
}

const STRUCT_HELP: &str = "on the struct, the correct form is \
                           `#[get_or_create(where = \"deleted_at IS NULL\")]` (the predicate of \
                           the partial unique index that backs the key); `lookup` and `default` \
                           belong on fields";

pub fn parse_struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("get_or_create") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("where") {
                    if !meta.input.peek(Token![=]) {
                        errors.push(meta.error(format!("`where` needs a value; {STRUCT_HELP}")));
                        return skip_option_arguments(meta.input);
                    }
                    let predicate: LitStr = meta.value()?.parse()?;
                    let sql = predicate.value();
                    if sql.trim().is_empty() || sql.contains(';') {
                        errors.push(syn::Error::new(
                            predicate.span(),
                            "`where` takes the predicate of the partial unique index as SQL, \
                             e.g. `#[get_or_create(where = \"deleted_at IS NULL\")]`",
                        ));
                    } else if out.filter.replace(predicate).is_some() {
                        errors.push(meta.error("`where` is given twice; keep one"));
                    }
                    Ok(())
                } else {
                    errors.push(meta.error(format!(
                        "unknown option `{}`; {STRUCT_HELP}",
                        path_to_string(&meta.path)
                    )));
                    skip_option_arguments(meta.input)
                }
            });
            if let Err(error) = result {
                errors.push(error);
            }
        } else if attr.path().is_ident("diesel") {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("table_name") {
                    out.table_name = Some(meta.value()?.parse()?);
                    Ok(())
                } else if meta.path.is_ident("check_for_backend") {
                    meta.parse_nested_meta(|backend| {
                        if backend.path.is_ident("disable") {
                            // `check_for_backend(disable = true)`: Diesel's own opt-out.
                            let _: syn::LitBool = backend.value()?.parse()?;
                            out.check_for_backend.clear();
                        } else {
                            out.check_for_backend.push(backend.path);
                        }
                        Ok(())
                    })
                } else {
                    skip_option_arguments(meta.input)
                }
            });
            if let Err(error) = result {
                errors.push(error);
            }
        }
    }
    out
}

/// Steps over the arguments of an option, `= expr` or `(..)`: those of a `#[diesel(..)]`
/// option this derive does not use (Diesel checks them), or of a bad option already
/// reported.
fn skip_option_arguments(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<syn::Expr>()?;
    } else if !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

/// `column_name = foo` or `column_name = "foo"`.
fn parse_ident_or_str(input: ParseStream) -> syn::Result<Ident> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        lit.parse_with(syn::ext::IdentExt::parse_any).map_err(|_| {
            syn::Error::new(
                lit.span(),
                "`column_name` names a column of the `table!` module, \
                 e.g. `#[diesel(column_name = email)]`",
            )
        })
    } else {
        input.call(syn::ext::IdentExt::parse_any)
    }
}

pub fn path_to_string(path: &Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
