//! The checked description of a model that the generator works from.

use quote::format_ident;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, Path, Type, Visibility};

use crate::attrs::{self, path_to_string, Compare, Errors, Generated, NotAColumn, Role};

/// A model the derive accepts: everything the generator needs, checked.
pub struct Model {
    /// The model's name, `User`.
    pub ident: Ident,
    /// The model's visibility, given to the generated structs.
    pub vis: Visibility,
    /// The `table!` module, e.g. `users` or `crate::schema::users`.
    pub table: Path,
    /// The `#[lookup]` fields, in order.
    pub lookup: Vec<Field>,
    /// The `#[default]` fields, in order.
    pub defaults: Vec<Field>,
    /// Backends from `#[diesel(check_for_backend(..))]`.
    pub check_for_backend: Vec<Path>,
    /// `#[get_or_create(where = "..")]`: the rows the key is unique among.
    pub filter: Option<syn::LitStr>,
    /// The fields written by an SQL expression (`on_create`, `on_update`).
    pub sql_columns: Vec<SqlField>,
    /// The generated structs, indexed by [`Generated::index`].
    pub structs: [Struct; 3],
    /// The first `#[default]` written as such, which clashes with `derive(Default)`.
    pub short_default: Option<proc_macro2::Span>,
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

/// One generated struct: its name and the derives the user asked for.
pub struct Struct {
    /// `UserLookup`, or the name given by `lookup_struct = ..`.
    pub ident: Ident,
    /// From `derive(..)` and `lookup_derive(..)`, each once; for `<Model>Changes`, without
    /// `Default`, which it always derives.
    pub derives: Vec<Path>,
}

/// A `#[lookup]` or `#[default]` field of the model.
pub struct Field {
    /// The field's name, the same in the generated structs.
    pub ident: Ident,
    /// The field's type.
    pub ty: Type,
    /// The column's identifier inside the `table!` module.
    pub column: Ident,
    /// Doc comments of the model's field, copied to the generated struct.
    pub docs: Vec<syn::Attribute>,
    /// `#[get_or_create(attr(..))]`: attributes written on the field in the generated
    /// structs.
    pub forward: Vec<syn::Meta>,
    /// How a lookup field is compared (always `Equal` for a default field).
    pub compare: Compare,
    /// How the field's type is spelled.
    pub spelled: Spelled,
}

/// A model the derive refuses: the errors, and the model as far as it could be read, from
/// which the derive still declares the generated structs (see `generate::fallback`).
pub struct Refused {
    /// Every error found.
    pub errors: syn::Error,
    /// The structs' names and derives, and the fields whose attributes could be read;
    /// no fields when the input is not a non-generic struct with named fields.
    pub partial: Model,
    /// Whether `partial` names a real struct and its table, so that stand-in impls of the
    /// runtime's traits for it compile: it is a struct with named fields, not generic,
    /// and its `#[diesel(..)]` attributes could be read.
    pub stand_ins: bool,
}

impl Model {
    /// Checks the input of the derive and describes the model, or says all that is wrong.
    ///
    /// A refused model is boxed: it is the rare case, and a `Model` is large.
    pub fn from_input(input: &DeriveInput) -> Result<Model, Box<Refused>> {
        let mut errors = Errors::default();
        let struct_attrs = attrs::parse_struct_attrs(&input.attrs, &mut errors);

        let generic = !input.generics.params.is_empty();
        if generic {
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
        let mut short_default = None;
        // The first attribute that makes the model read more than its table's columns:
        // one error for the model, since the fix (derive on another struct) is one.
        let mut reads_elsewhere = struct_attrs
            .base_query
            .map(|span| syn::Error::new(span, joined_message(&input.ident)));
        for field in named.iter().flat_map(|named| &named.named) {
            let field_attrs = attrs::parse_field_attrs(&field.attrs, &mut errors);
            short_default = short_default.or(field_attrs.short_default);
            let Some(ident) = &field.ident else { continue };
            if let (None, Some((kind, span))) = (&reads_elsewhere, field_attrs.not_a_column) {
                reads_elsewhere = Some(syn::Error::new(span, not_a_column_message(ident, kind)));
            }
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
                if let Some(span) = field_attrs.forward_span {
                    errors.push(syn::Error::new(
                        span,
                        "`attr(..)` writes attributes on the field in the generated structs, \
                         but this field is in none of them: mark it `#[lookup]` or \
                         `#[default]`, or remove `attr(..)`",
                    ));
                }
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
                forward: field_attrs.forward,
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
        if let Some(error) = reads_elsewhere {
            errors.push(error);
        }

        if named.is_some() && lookup.is_empty() {
            errors.push(syn::Error::new(
                input.ident.span(),
                "`GetOrCreate` needs at least one field marked `#[lookup]`: the columns \
                 that identify a row, covered by a unique index, \
                 e.g. `#[lookup] pub email: String`",
            ));
        }
        let structs = generated_structs(&input.ident, &struct_attrs, &mut errors);

        let table = struct_attrs
            .table_name
            .unwrap_or_else(|| infer_table_name(&input.ident).into());
        let mut model = Model {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            table,
            lookup,
            defaults,
            check_for_backend: struct_attrs.check_for_backend,
            filter: struct_attrs.filter,
            sql_columns,
            structs,
            short_default,
        };
        match errors.finish() {
            Ok(()) => Ok(model),
            Err(errors) => {
                // The fields of a generic struct may name its parameters, which the
                // generated structs do not have.
                if generic {
                    model.lookup.clear();
                    model.defaults.clear();
                }
                Err(Box::new(Refused {
                    errors,
                    partial: model,
                    stand_ins: named.is_some() && !generic && !struct_attrs.diesel_unreadable,
                }))
            }
        }
    }

    /// The lookup fields, then the default fields.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.lookup.iter().chain(&self.defaults)
    }

    /// The generated struct `which`.
    pub fn generated(&self, which: Generated) -> &Struct {
        &self.structs[which.index()]
    }

    /// `<Model>Lookup`, or the name given by `lookup_struct = ..`.
    pub fn lookup_ident(&self) -> Ident {
        self.generated(Generated::Lookup).ident.clone()
    }

    /// `<Model>Defaults`, or the name given by `defaults_struct = ..`.
    pub fn defaults_ident(&self) -> Ident {
        self.generated(Generated::Defaults).ident.clone()
    }

    /// `<Model>Changes`, or the name given by `changes_struct = ..`.
    pub fn changes_ident(&self) -> Ident {
        self.generated(Generated::Changes).ident.clone()
    }
}

/// What to do instead of deriving `GetOrCreate` on a model that reads a joined query.
const JOINED_FIX: &str = "derive `GetOrCreate` on a plain `Queryable + Selectable` struct of \
                          the table's own columns, and load the joined view with this model \
                          (`HasQuery`)";

fn joined_message(model: &Ident) -> String {
    format!(
        "`base_query` makes `{model}` read a joined query, but `GetOrCreate` reads and writes \
         rows of the model's table alone: its statements would fail at run time with errors \
         such as `missing FROM-clause entry`; {JOINED_FIX}"
    )
}

fn not_a_column_message(field: &Ident, kind: NotAColumn) -> String {
    match kind {
        NotAColumn::SelectExpression => format!(
            "`select_expression` makes `{field}` an expression, not a column of the model's \
             table, so the model reads a joined or computed query; `GetOrCreate` reads and \
             writes rows of the model's table alone, and its statements would fail at run \
             time with errors such as `missing FROM-clause entry`; {JOINED_FIX}"
        ),
        NotAColumn::Embed => format!(
            "`embed` reads `{field}` through another `Selectable` struct, whose columns may be \
             of another table; `GetOrCreate` reads and writes rows of the model's table \
             alone, and its statements would fail at run time with errors such as `missing \
             FROM-clause entry`; {JOINED_FIX} (an embedded struct of this same table: write \
             its fields in the model)"
        ),
    }
}

/// The names and derives of the generated structs, from the struct's options.
fn generated_structs(
    model: &Ident,
    attrs: &attrs::StructAttrs,
    errors: &mut Errors,
) -> [Struct; 3] {
    let names = struct_names(model, attrs, errors);
    let everywhere = distinct(&attrs.derive, "derive", errors);
    let mut names = names.into_iter();
    Generated::ALL.map(|which| {
        let option = format!("{}_derive", which.option_prefix());
        let mut derives = everywhere.clone();
        for path in distinct(&attrs.derive_on[which.index()], &option, errors) {
            if everywhere.iter().any(|p| same_path(p, &path)) {
                errors.push(syn::Error::new_spanned(
                    &path,
                    format!(
                        "`{}` is already derived on every generated struct by `derive(..)`; \
                         remove it from `{option}(..)`",
                        path_to_string(&path)
                    ),
                ));
            } else {
                derives.push(path);
            }
        }
        if which == Generated::Changes {
            // The runtime needs `Changes: Default`, so it is always derived; a second
            // `derive(Default)` would not compile.
            derives.retain(|path| !is_default(path));
        }
        Struct {
            ident: names.next().expect("one name per generated struct"),
            derives,
        }
    })
}

/// The name of each generated struct, in [`Generated::ALL`] order. A bad rename is
/// reported and replaced by the default name, so that the fallback still declares the
/// struct under a name.
///
/// A rename must differ from the model's name, from the names of the structs before it,
/// and from the default names of the structs after it that keep theirs: two renames that
/// clash are reported at the second.
fn struct_names(model: &Ident, attrs: &attrs::StructAttrs, errors: &mut Errors) -> [Ident; 3] {
    let default_name = |which: Generated| format_ident!("{}{}", model, which.suffix());
    let mut names: Vec<(Ident, Generated)> = Vec::with_capacity(3);
    for which in Generated::ALL {
        let Some(rename) = &attrs.rename[which.index()] else {
            names.push((default_name(which), which));
            continue;
        };
        let option = format!("{}_struct", which.option_prefix());
        let text = rename.unraw().to_string();
        let kept_later = Generated::ALL[which.index() + 1..]
            .iter()
            .filter(|later| attrs.rename[later.index()].is_none())
            .map(|&later| (default_name(later), later));
        let clash = names
            .iter()
            .cloned()
            .chain(kept_later)
            .find(|(name, _)| name.unraw() == text);
        let problem = if model.unraw() == text {
            Some(format!(
                "`{option} = {rename}` is the name of the model itself; name the generated \
                 struct something else, or remove `{option}` to keep `{}`",
                default_name(which)
            ))
        } else {
            clash.map(|(_, other)| {
                format!(
                    "`{option} = {rename}` is also the name of the generated {} struct; give \
                     each generated struct its own name",
                    other.option_prefix()
                )
            })
        };
        let name = match problem {
            Some(message) => {
                errors.push(syn::Error::new(rename.span(), message));
                default_name(which)
            }
            None => rename.clone(),
        };
        names.push((name, which));
    }
    let names: Vec<Ident> = names.into_iter().map(|(name, _)| name).collect();
    names.try_into().expect("one name per generated struct")
}

/// The paths of a derive list, each once: a repeated one is reported.
fn distinct(paths: &[Path], option: &str, errors: &mut Errors) -> Vec<Path> {
    let mut out: Vec<Path> = Vec::with_capacity(paths.len());
    for path in paths {
        if out.iter().any(|p| same_path(p, path)) {
            errors.push(syn::Error::new_spanned(
                path,
                format!(
                    "`{}` is listed twice in `{option}(..)`; list it once",
                    path_to_string(path)
                ),
            ));
        } else {
            out.push(path.clone());
        }
    }
    out
}

/// `Debug` and `::Debug` are the same path; `Debug` and `std::fmt::Debug` are not, as far
/// as a macro can tell (rustc reports conflicting impls for those).
fn same_path(a: &Path, b: &Path) -> bool {
    path_to_string(a) == path_to_string(b)
}

/// `Default`, `std::default::Default`, `core::default::Default`.
fn is_default(path: &Path) -> bool {
    path.segments
        .last()
        .is_some_and(|segment| segment.ident == "Default")
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
