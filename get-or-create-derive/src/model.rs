//! The checked description of a model that the generator works from.

use quote::format_ident;
use syn::{Data, DeriveInput, Fields, Ident, Path, Type, Visibility};

use crate::attrs::{self, Compare, Errors, Role};

pub struct Model {
    pub ident: Ident,
    pub vis: Visibility,
    /// The `table!` module, e.g. `users` or `crate::schema::users`.
    pub table: Path,
    pub lookup: Vec<Field>,
    pub defaults: Vec<Field>,
    /// Backends from `#[diesel(check_for_backend(..))]`.
    pub check_for_backend: Vec<Path>,
    /// `#[get_or_create(where = "..")]`: the rows the key is unique among.
    pub filter: Option<syn::LitStr>,
    /// The fields written by an SQL expression (`on_create`, `on_update`).
    pub sql_columns: Vec<SqlField>,
}

/// A field whose value an SQL expression writes.
pub struct SqlField {
    /// The column's identifier inside the `table!` module.
    pub column: Ident,
    pub on_create: Option<syn::LitStr>,
    pub on_update: Option<syn::LitStr>,
}

/// How a field's type is spelled: with its column's nullability, it says what a `None`
/// means (the runtime's `spelled` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spelled {
    Plain,
    /// `Option<T>`
    Optional,
    /// `Option<Option<T>>`
    NestedOptional,
}

impl Spelled {
    /// Reads the spelling of `ty`: only the spelling is seen, so an alias of an `Option`
    /// counts as a plain type.
    fn of(ty: &Type) -> Spelled {
        match option_argument(ty) {
            Some(inner) if option_argument(inner).is_some() => Spelled::NestedOptional,
            Some(_) => Spelled::Optional,
            None => Spelled::Plain,
        }
    }
}

/// `T` in `Option<T>`, `std::option::Option<T>` or `core::option::Option<T>`.
fn option_argument(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let prefix: Vec<String> = prefix.iter().map(|s| s.ident.to_string()).collect();
    let prefixed = matches!(
        prefix.iter().map(String::as_str).collect::<Vec<_>>()[..],
        [] | ["std", "option"] | ["core", "option"]
    );
    if last.ident != "Option" || !prefixed {
        return None;
    }
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.iter().collect::<Vec<_>>()[..] {
        [syn::GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    /// The column's identifier inside the `table!` module.
    pub column: Ident,
    /// Doc comments of the model's field, copied to the generated struct.
    pub docs: Vec<syn::Attribute>,
    /// How a lookup field is compared (always `Equal` for a default field).
    pub compare: Compare,
    /// How the field's type is spelled.
    pub spelled: Spelled,
}

impl Model {
    pub fn from_input(input: &DeriveInput) -> syn::Result<Model> {
        let mut errors = Errors::default();
        let struct_attrs = attrs::parse_struct_attrs(&input.attrs, &mut errors);

        if !input.generics.params.is_empty() {
            errors.push(syn::Error::new_spanned(
                &input.generics,
                "`GetOrCreate` cannot be derived for a generic struct: \
                 a model maps to one table with concrete column types",
            ));
        }

        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => Some(named),
                _ => {
                    errors.push(syn::Error::new(
                        input.ident.span(),
                        "`GetOrCreate` needs a struct with named fields, one per column, \
                         e.g. `struct User { id: i32, #[lookup] email: String }`",
                    ));
                    None
                }
            },
            Data::Enum(data) => {
                errors.push(syn::Error::new(
                    data.enum_token.span,
                    "`GetOrCreate` can only be derived for a struct with named fields, \
                     not an enum",
                ));
                None
            }
            Data::Union(data) => {
                errors.push(syn::Error::new(
                    data.union_token.span,
                    "`GetOrCreate` can only be derived for a struct with named fields, \
                     not a union",
                ));
                None
            }
        };

        let mut lookup = Vec::new();
        let mut defaults = Vec::new();
        let mut sql_columns = Vec::new();
        for field in named.iter().flat_map(|named| &named.named) {
            let field_attrs = attrs::parse_field_attrs(&field.attrs, &mut errors);
            let Some(ident) = &field.ident else {
                continue;
            };
            let column = field_attrs
                .column_name
                .clone()
                .unwrap_or_else(|| ident.clone());
            if field_attrs.on_create.is_some() || field_attrs.on_update.is_some() {
                if let Some((role, span)) = &field_attrs.role {
                    errors.push(syn::Error::new(
                        *span,
                        format!(
                            "a field written by an SQL expression (`on_create`, `on_update`) \
                             takes no value from Rust, so it cannot be `{}` too; keep one",
                            role.attribute()
                        ),
                    ));
                }
                sql_columns.push(SqlField {
                    column,
                    on_create: field_attrs.on_create,
                    on_update: field_attrs.on_update,
                });
                continue;
            }
            let Some((role, _)) = field_attrs.role.clone() else {
                continue;
            };
            let model_field = Field {
                ident: ident.clone(),
                ty: field.ty.clone(),
                spelled: match role {
                    Role::Lookup(_) => Spelled::Plain,
                    Role::Default => Spelled::of(&field.ty),
                },
                column,
                docs: field
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("doc"))
                    .cloned()
                    .collect(),
                compare: match &role {
                    Role::Lookup(compare) => compare.clone(),
                    Role::Default => Compare::Equal,
                },
            };
            match role {
                Role::Lookup(_) => lookup.push(model_field),
                Role::Default => defaults.push(model_field),
            }
        }

        if named.is_some() && lookup.is_empty() {
            errors.push(syn::Error::new(
                input.ident.span(),
                "`GetOrCreate` needs at least one field marked `#[lookup]`: the columns \
                 that identify a row, covered by a unique index, \
                 e.g. `#[lookup] pub email: String`",
            ));
        }
        errors.finish()?;

        let table = struct_attrs
            .table_name
            .unwrap_or_else(|| infer_table_name(&input.ident).into());
        Ok(Model {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            table,
            lookup,
            defaults,
            check_for_backend: struct_attrs.check_for_backend,
            filter: struct_attrs.filter,
            sql_columns,
        })
    }

    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.lookup.iter().chain(&self.defaults)
    }

    /// `<Model>Lookup`
    pub fn lookup_ident(&self) -> Ident {
        format_ident!("{}Lookup", self.ident)
    }

    /// `<Model>Defaults`
    pub fn defaults_ident(&self) -> Ident {
        format_ident!("{}Defaults", self.ident)
    }

    /// `<Model>Changes`
    pub fn changes_ident(&self) -> Ident {
        format_ident!("{}Changes", self.ident)
    }
}

/// Diesel's rule when `table_name` is absent: the struct's name in snake case, plus `s`.
fn infer_table_name(ident: &Ident) -> Ident {
    // `r#Match` infers `matchs`, not `r#_matchs`.
    let name = syn::ext::IdentExt::unraw(ident).to_string();
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake.push('s');
    Ident::new(&snake, ident.span())
}
