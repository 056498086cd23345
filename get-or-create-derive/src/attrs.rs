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
//! #[get_or_create(attr(serde(rename = "e-mail"), ..))]
//!                                        written on this field in each generated struct
//!                                        that holds it (Lookup, or Defaults and Changes)
//! #[diesel(column_name = ..)]            Diesel's, honoured
//! #[diesel(select_expression = .., select_expression_type = ..)]
//! #[diesel(embed)]                       Diesel's, refused: the field is not a column
//!                                        of the model's own table (or may not be)
//! ```
//!
//! On the struct, inside `#[get_or_create(..)]`, each option at most once:
//!
//! ```text
//! where = "deleted_at IS NULL"           the key is unique among these rows only
//! derive(Debug, Clone, serde::Serialize) derived on all three generated structs
//! lookup_derive(Hash, Eq, PartialEq)     derived on one of them only; also
//!                                        defaults_derive(..), changes_derive(..)
//! lookup_struct = UserKey                the name of `<Model>Lookup`; also
//!                                        defaults_struct = .., changes_struct = ..
//! ```
//!
//! `<Model>Changes` always derives `Default` (the runtime needs it): a `Default` listed
//! for it is dropped, not derived twice. A trait listed twice for one struct is an error.
//!
//! ```text
//! #[diesel(table_name = .., check_for_backend(..))]   Diesel's, honoured
//! #[diesel(base_query = .., base_query_type = ..)]    Diesel's, refused: a joined query
//! ```
//!
//! Every other `#[diesel(..)]` option is Diesel's business and is stepped over unread.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream, Parser};
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
    /// The attribute that gives the role: `lookup` or `default`.
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

/// A `#[diesel(..)]` field option that makes the field something other than a column of
/// the model's own table, which the runtime reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAColumn {
    /// `select_expression = ..` or `select_expression_type = ..`
    SelectExpression,
    /// `embed`
    Embed,
}

/// The attributes of one field that the derive reads.
#[derive(Default)]
pub struct FieldAttrs {
    /// `#[lookup]` or `#[default]`, with the span of the attribute that gave it.
    pub role: Option<(Role, Span)>,
    /// `#[diesel(column_name = ..)]`
    pub column_name: Option<Ident>,
    /// Where `#[default]` itself is written (not `#[get_or_create(default)]`): std's
    /// `derive(Default)` reads it as its own.
    pub short_default: Option<Span>,
    /// `#[get_or_create(on_create = "..")]`: the SQL expression written on insert.
    pub on_create: Option<LitStr>,
    /// `#[get_or_create(on_update = "..")]`: the SQL expression written on update.
    pub on_update: Option<LitStr>,
    /// `#[get_or_create(attr(..))]`: the attributes, written on the field of the
    /// generated structs.
    pub forward: Vec<syn::Meta>,
    /// Where `attr(..)` is written, if it is.
    pub forward_span: Option<Span>,
    /// The first `#[diesel(..)]` option that makes the field no column of the table.
    pub not_a_column: Option<(NotAColumn, Span)>,
}

/// One of the structs generated for a model, as the options that apply to it name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generated {
    /// `<Model>Lookup`
    Lookup,
    /// `<Model>Defaults`
    Defaults,
    /// `<Model>Changes`
    Changes,
}

impl Generated {
    /// The three, in the order they are generated.
    pub const ALL: [Generated; 3] = [Generated::Lookup, Generated::Defaults, Generated::Changes];

    /// The prefix of its options: `lookup` in `lookup_struct` and `lookup_derive`.
    pub fn option_prefix(self) -> &'static str {
        match self {
            Generated::Lookup => "lookup",
            Generated::Defaults => "defaults",
            Generated::Changes => "changes",
        }
    }

    /// What its default name adds to the model's: `Lookup` in `UserLookup`.
    pub fn suffix(self) -> &'static str {
        match self {
            Generated::Lookup => "Lookup",
            Generated::Defaults => "Defaults",
            Generated::Changes => "Changes",
        }
    }

    /// Its index in [`Generated::ALL`] and in the arrays of [`StructAttrs`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The generated struct whose `_struct`/`_derive` options start with `prefix`.
    fn from_option_prefix(prefix: &str) -> Option<Generated> {
        Generated::ALL
            .into_iter()
            .find(|generated| generated.option_prefix() == prefix)
    }
}

/// The attributes of the struct that the derive reads.
#[derive(Default)]
pub struct StructAttrs {
    /// `#[diesel(table_name = ..)]`
    pub table_name: Option<Path>,
    /// `#[diesel(check_for_backend(..))]`, emptied by `check_for_backend(disable = true)`.
    pub check_for_backend: Vec<Path>,
    /// `#[get_or_create(where = "..")]`: the predicate of the partial unique index.
    pub filter: Option<LitStr>,
    /// `#[get_or_create(derive(..))]`: derived on every generated struct.
    pub derive: Vec<Path>,
    /// `lookup_derive(..)`, `defaults_derive(..)`, `changes_derive(..)`, indexed by
    /// [`Generated::index`].
    pub derive_on: [Vec<Path>; 3],
    /// `lookup_struct = ..`, `defaults_struct = ..`, `changes_struct = ..`, indexed by
    /// [`Generated::index`].
    pub rename: [Option<Ident>; 3],
    /// `#[diesel(base_query = ..)]` or `base_query_type`: the first one's span.
    pub base_query: Option<Span>,
    /// Whether a `#[diesel(..)]` on the struct could not be read to its end, so that
    /// `table_name` may have been missed.
    pub diesel_unreadable: bool,
}

/// Collects every error instead of stopping at the first, so that the user sees all of
/// them in one build.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error to those already collected.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The collected errors, if any, as one `syn::Error`.
    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

const ROLE_HELP: &str = "the correct form is `#[lookup]`, `#[default]`, \
                         `#[get_or_create(lookup)]`, `#[get_or_create(default)]` or \
                         `#[get_or_create(on_create = \"now()\", on_update = \"now()\")]`";

const FORWARD_HELP: &str = "`#[get_or_create(attr(..))]` writes attributes on the field of the \
                            generated structs, e.g. \
                            `#[get_or_create(attr(serde(rename = \"e-mail\")))]`";

const KEY_HELP: &str = "the correct form is `#[lookup(function = lower)]` (compared as \
                        `lower(column) = lower(value)`) or `#[lookup(collate = \"NOCASE\")]`";

/// Reads the attributes of one field, reporting what is wrong in `errors`.
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
            out.short_default = Some(attr.span());
        } else if path.is_ident("get_or_create") {
            // A bad option is reported and stepped over, not returned: the options after
            // it are still read, and a `lookup(x)` still counts as a lookup (like
            // `#[lookup(x)]`), so that no "needs at least one lookup" error follows.
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("attr") {
                    return parse_forwarded(&meta, &mut out, errors);
                }
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
                        "unknown option `{}`; {ROLE_HELP}; {FORWARD_HELP}",
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
                    return Ok(());
                }
                let not_a_column = if meta.path.is_ident("select_expression")
                    || meta.path.is_ident("select_expression_type")
                {
                    Some(NotAColumn::SelectExpression)
                } else if meta.path.is_ident("embed") {
                    Some(NotAColumn::Embed)
                } else {
                    None
                };
                if let Some(kind) = not_a_column {
                    // The first one is enough: the model checks it and reports one error.
                    out.not_a_column.get_or_insert((kind, meta.path.span()));
                }
                skip_option_arguments(meta.input)
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

/// `attr(..)` in a field's `#[get_or_create(..)]`: the attributes to forward, each a
/// [`syn::Meta`] (`serde(rename = "e-mail")`, `doc = ".."`).
fn parse_forwarded(
    meta: &ParseNestedMeta,
    out: &mut FieldAttrs,
    errors: &mut Errors,
) -> syn::Result<()> {
    let span = meta.path.span();
    if out.forward_span.replace(span).is_some() {
        errors.push(
            meta.error(
                "`attr` is given twice on this field; list every attribute in one `attr(..)`",
            ),
        );
        return skip_option_arguments(meta.input);
    }
    if !meta.input.peek(syn::token::Paren) {
        errors.push(meta.error(format!(
            "`attr` takes the attributes to write, in parentheses; {FORWARD_HELP}"
        )));
        return skip_option_arguments(meta.input);
    }
    match parse_parenthesized_list(meta.input, syn::Meta::parse) {
        Ok(forwarded) => out.forward.extend(forwarded),
        Err(error) => errors.push(syn::Error::new(
            error.span(),
            format!(
                "`attr(..)` lists attributes as they are written inside `#[..]`; {FORWARD_HELP}"
            ),
        )),
    }
    Ok(())
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

const STRUCT_HELP: &str = "on the struct, the options are `where = \"deleted_at IS NULL\"` \
                           (the predicate of the partial unique index that backs the key), \
                           `derive(..)`, `lookup_derive(..)`, `defaults_derive(..)`, \
                           `changes_derive(..)`, `lookup_struct = ..`, `defaults_struct = ..` \
                           and `changes_struct = ..`; `lookup` and `default` belong on fields";

/// Reads the attributes of the struct, reporting what is wrong in `errors`.
pub fn parse_struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    // The options already given, across every `#[get_or_create(..)]` of the struct.
    let mut given: Vec<String> = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("get_or_create") {
            let result = attr.parse_nested_meta(|meta| {
                let name = path_to_string(&meta.path);
                let known = name == "where" || name == "derive" || struct_option(&name).is_some();
                if !known {
                    errors.push(meta.error(format!("unknown option `{name}`; {STRUCT_HELP}")));
                    return skip_option_arguments(meta.input);
                }
                if given.contains(&name) {
                    let fix = if name.ends_with("derive") {
                        format!("list every trait in one `{name}(..)`")
                    } else {
                        "keep one".to_owned()
                    };
                    errors.push(meta.error(format!("`{name}` is given twice; {fix}")));
                    return skip_option_arguments(meta.input);
                }
                given.push(name.clone());
                match struct_option(&name) {
                    Some((generated, StructOption::Derive)) => {
                        out.derive_on[generated.index()] = parse_derive_list(&meta, &name, errors)?;
                    }
                    Some((generated, StructOption::Name)) => {
                        out.rename[generated.index()] = parse_struct_name(&meta, &name, errors)?;
                    }
                    None if name == "derive" => {
                        out.derive = parse_derive_list(&meta, &name, errors)?;
                    }
                    None => parse_filter(&meta, &mut out, errors)?,
                }
                Ok(())
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
                    if meta.path.is_ident("base_query") || meta.path.is_ident("base_query_type") {
                        out.base_query.get_or_insert(meta.path.span());
                    }
                    skip_option_arguments(meta.input)
                }
            });
            if let Err(error) = result {
                out.diesel_unreadable = true;
                errors.push(error);
            }
        }
    }
    out
}

/// What a `<struct>_..` option of the struct sets.
enum StructOption {
    /// `lookup_derive(..)`
    Derive,
    /// `lookup_struct = ..`
    Name,
}

/// `lookup_derive`, `changes_struct`, ..: the struct it is about and what it sets.
fn struct_option(name: &str) -> Option<(Generated, StructOption)> {
    let (prefix, option) = name.split_once('_')?;
    let option = match option {
        "derive" => StructOption::Derive,
        "struct" => StructOption::Name,
        _ => return None,
    };
    Some((Generated::from_option_prefix(prefix)?, option))
}

/// `where = ".."`
fn parse_filter(
    meta: &ParseNestedMeta,
    out: &mut StructAttrs,
    errors: &mut Errors,
) -> syn::Result<()> {
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
    } else {
        out.filter = Some(predicate);
    }
    Ok(())
}

/// `derive(Debug, serde::Serialize)`: the paths of the traits to derive. An unreadable
/// list is reported and counts as empty.
fn parse_derive_list(
    meta: &ParseNestedMeta,
    name: &str,
    errors: &mut Errors,
) -> syn::Result<Vec<Path>> {
    let help = format!("`{name}(..)` lists the traits to derive, e.g. `{name}(Debug, Clone)`");
    if !meta.input.peek(syn::token::Paren) {
        errors.push(meta.error(format!("`{name}` takes a list of traits; {help}")));
        skip_option_arguments(meta.input)?;
        return Ok(Vec::new());
    }
    match parse_parenthesized_list(meta.input, Path::parse_mod_style) {
        Ok(paths) => Ok(paths.into_iter().collect()),
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format!("expected the path of a trait; {help}"),
            ));
            Ok(Vec::new())
        }
    }
}

/// `lookup_struct = UserKey`: the generated struct's name. A bad one is reported and
/// counts as not given, so that the struct keeps its default name.
fn parse_struct_name(
    meta: &ParseNestedMeta,
    name: &str,
    errors: &mut Errors,
) -> syn::Result<Option<Ident>> {
    let help = format!("`{name}` takes the name of the generated struct, e.g. `{name} = UserKey`");
    if !meta.input.peek(Token![=]) {
        errors.push(meta.error(format!("`{name}` needs a value; {help}")));
        skip_option_arguments(meta.input)?;
        return Ok(None);
    }
    let value = meta.value()?;
    let fork = value.fork();
    if let Ok(ident) = fork.parse::<Ident>() {
        if ends_option(&fork) {
            value.advance_to(&fork);
            return Ok(Some(ident));
        }
    }
    errors.push(syn::Error::new(
        value.span(),
        format!("expected an identifier; {help}"),
    ));
    skip_value(value)?;
    Ok(None)
}

/// `(a, b, ..)`, each item read by `item`. A bad list is taken whole from `input` and its
/// error returned, so that the caller may report it and go on with the next option.
fn parse_parenthesized_list<T>(
    input: ParseStream,
    item: fn(ParseStream) -> syn::Result<T>,
) -> syn::Result<Vec<T>> {
    let group: proc_macro2::Group = input.parse()?;
    let list = |input: ParseStream| input.parse_terminated(item, Token![,]);
    Ok(list.parse2(group.stream())?.into_iter().collect())
}

/// Steps over the arguments of an option, `= value` or `(..)`: those of a `#[diesel(..)]`
/// option this derive does not use (Diesel checks them), or of a bad option already
/// reported.
fn skip_option_arguments(input: ParseStream) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        skip_value(input)
    } else if !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<proc_macro2::Group>().map(drop)
    } else {
        Ok(())
    }
}

/// Steps over the value of an option, up to the `,` after it. Diesel's values are types
/// (`sql_type = Nullable<Text>`, whose `<..>` may hold commas), expressions
/// (`base_query = users::table.inner_join(..)`) or literals: each is tried as a whole, and
/// anything else is stepped over token by token up to the next `,` (Diesel reports it).
fn skip_value(input: ParseStream) -> syn::Result<()> {
    let fork = input.fork();
    if fork.parse::<syn::Type>().is_ok() && ends_option(&fork) {
        input.advance_to(&fork);
        return Ok(());
    }
    let fork = input.fork();
    if fork.parse::<syn::Expr>().is_ok() && ends_option(&fork) {
        input.advance_to(&fork);
        return Ok(());
    }
    input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((token, next)) = rest.token_tree() {
            if matches!(&token, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    })
}

/// Whether `input` is at the end of an option: at a `,` or at the end of the list.
fn ends_option(input: ParseStream) -> bool {
    input.is_empty() || input.peek(Token![,])
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
