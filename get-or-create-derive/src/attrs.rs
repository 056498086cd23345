//! The attribute grammar: what may be written on the struct and its fields, each item
//! kept with its span for error messages.

use proc_macro2::Span;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token};

/// What a field is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `#[lookup]`: part of the key that identifies a row.
    Lookup,
    /// `#[default]`: written only when a row is created.
    Default,
}

impl Role {
    pub fn attribute(self) -> &'static str {
        match self {
            Role::Lookup => "lookup",
            Role::Default => "default",
        }
    }
}

/// The attributes of one field that the derive reads.
#[derive(Default)]
pub struct FieldAttrs {
    pub role: Option<(Role, Span)>,
    pub column_name: Option<Ident>,
}

/// The attributes of the struct that the derive reads.
#[derive(Default)]
pub struct StructAttrs {
    pub table_name: Option<Path>,
    pub check_for_backend: Vec<Path>,
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
                         `#[get_or_create(lookup)]` or `#[get_or_create(default)]`";

pub fn parse_field_attrs(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("lookup") || path.is_ident("default") {
            let role = if path.is_ident("lookup") {
                Role::Lookup
            } else {
                Role::Default
            };
            // Spans name the attribute, `lookup(x)` or `default`, not just its first token.
            if attr.meta.require_path_only().is_err() {
                errors.push(syn::Error::new_spanned(
                    &attr.meta,
                    format!("`#[{}]` takes no arguments; {ROLE_HELP}", role.attribute()),
                ));
            }
            set_role(&mut out, role, path.span(), errors);
        } else if path.is_ident("get_or_create") {
            // A bad option is reported and stepped over, not returned: the options after
            // it are still read, and a `lookup(x)` still counts as a lookup (like
            // `#[lookup(x)]`), so that no "needs at least one lookup" error follows.
            let result = attr.parse_nested_meta(|meta| {
                let role = if meta.path.is_ident("lookup") {
                    Role::Lookup
                } else if meta.path.is_ident("default") {
                    Role::Default
                } else {
                    errors.push(meta.error(format!(
                        "unknown option `{}`; {ROLE_HELP}",
                        path_to_string(&meta.path)
                    )));
                    return skip_option_arguments(meta.input);
                };
                if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
                    errors.push(meta.error(format!(
                        "`{}` takes no arguments; {ROLE_HELP}",
                        role.attribute()
                    )));
                    skip_option_arguments(meta.input)?;
                }
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

fn set_role(out: &mut FieldAttrs, role: Role, span: Span, errors: &mut Errors) {
    match out.role {
        None => out.role = Some((role, span)),
        Some((previous, _)) if previous == role => errors.push(syn::Error::new(
            span,
            format!(
                "the field is already marked `{}`; remove this attribute",
                role.attribute()
            ),
        )),
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

pub fn parse_struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs {
        if attr.path().is_ident("get_or_create") {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[get_or_create(..)]` belongs on fields: \
                 `#[get_or_create(lookup)]` or `#[get_or_create(default)]`",
            ));
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
