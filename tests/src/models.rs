//! Real models, for `tests/models.rs`: database defaults, SQL expressions and the column
//! types Diesel maps, as tables of our own created next to the harness's tables in each
//! test's isolated database.
//!
//! | table | backends | what it holds |
//! |---|---|---|
//! | `flags` | all | `#[default]` fields whose `None` writes the column's `DEFAULT` or `NULL` |
//! | `stamps` | all | `on_create` / `on_update` SQL expressions: `CURRENT_TIMESTAMP`, `revision + 1` |
//! | `numbers` | all | `i16`, `i32`, `i64` (a composite key), `bool`, `f32`, `f64`, `BigDecimal` |
//! | `moments` | all | chrono `NaiveDate` (the key), `NaiveDateTime`, `NaiveTime`; time `Date`, `PrimitiveDateTime` |
//! | `blobs` | all | `Vec<u8>` (the key, one of them empty), `serde_json::Value` as `Json` |
//! | `moods` | all | an enum of diesel-derive-enum, a `String` newtype and a `Uuid`-in-bytes newtype, together the key |
//! | `zoned_sqlite` | SQLite | chrono `DateTime<Utc>` (the key) and time `OffsetDateTime` as `TimestamptzSqlite` |
//! | `zoned_mysql` | MySQL/MariaDB | time `OffsetDateTime` (the key) as `DATETIME(6)` |
//! | `pg_tagged` | PostgreSQL | arrays as defaults: `text[]`, `text[]` with `NULL`s, a nullable `text[]`, an `int[]` with a `DEFAULT` |
//! | `pg_array_keys` | PostgreSQL | arrays as the key; an array of a native enum |
//! | `pg_types` | PostgreSQL | `uuid`, `inet`, `jsonb`, `timestamptz` (the key), `cidr`, `json`, `numeric`, a native enum; `now()` and `gen_random_uuid()` |
//!
//! What Diesel cannot map on a backend is left out there: `uuid::Uuid`, `inet`/`cidr`,
//! `jsonb` and arrays exist on PostgreSQL only (`moods.uid` stores a UUID as 16 bytes on
//! every backend instead); chrono's `DateTime<Utc>` has no MySQL mapping in Diesel 2.3
//! (time's `OffsetDateTime` does); SQLite stores `Numeric` as a double, so the decimals
//! used are exact binary fractions.

use std::fmt::Debug;
use std::future::Future;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Binary, Text};
use diesel_async::SimpleAsyncConnection;
use get_or_create_core::asynchronous::Connection as AsyncGocConnection;
use get_or_create_core::{Connection as GocConnection, GetOrCreate};
use ipnetwork::IpNetwork;
use serde_json::{json, Value};

use crate::asynchronous::AsyncTestDb;
#[cfg(feature = "mysql")]
use crate::MysqlDb;
use crate::{PgDb, SqliteDb, TestDb};

/// The SQL types of our own: what `diesel print-schema` writes for a PostgreSQL enum.
pub mod sql_types {
    /// [`Mood`](super::Mood)'s SQL type: PostgreSQL's `CREATE TYPE mood AS ENUM (..)`, a
    /// MySQL `ENUM(..)` column, SQLite `TEXT`.
    #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
    #[diesel(postgres_type(name = "mood"))]
    #[diesel(mysql_type(name = "Enum"))]
    #[diesel(sqlite_type(name = "Text"))]
    pub struct MoodMapping;
}

// diesel-derive-enum writes its MySQL and SQLite impls for `<Enum>Mapping` in scope, and its
// PostgreSQL impls for the `ExistingTypePath`: both name the one SQL type above.
use self::sql_types::MoodMapping;

/// An enum stored as PostgreSQL's native enum `mood`, a MySQL `ENUM`, SQLite text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel_derive_enum::DbEnum)]
#[ExistingTypePath = "crate::models::sql_types::MoodMapping"]
pub enum Mood {
    Happy,
    Sad,
    SoSo,
}

impl Mood {
    /// The `i`th mood, round and round.
    pub fn nth(i: usize) -> Mood {
        [Mood::Happy, Mood::Sad, Mood::SoSo][i % 3]
    }
}

/// A newtype over `Text` with its own `ToSql` / `FromSql`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Email(pub String);

impl<DB: Backend> ToSql<Text, DB> for Email
where
    String: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        <String as ToSql<Text, DB>>::to_sql(&self.0, out)
    }
}

impl<DB: Backend> FromSql<Text, DB> for Email
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        <String as FromSql<Text, DB>>::from_sql(bytes).map(Email)
    }
}

/// A UUID stored as 16 bytes (`BYTEA`, `BLOB`, `BINARY(16)`): a newtype over `Binary`,
/// usable on every backend (Diesel maps `uuid::Uuid` itself on PostgreSQL only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = Binary)]
pub struct Uid(pub uuid::Uuid);

impl<DB: Backend> ToSql<Binary, DB> for Uid
where
    [u8]: ToSql<Binary, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        <[u8] as ToSql<Binary, DB>>::to_sql(&self.0.as_bytes()[..], out)
    }
}

impl<DB: Backend> FromSql<Binary, DB> for Uid
where
    Vec<u8>: FromSql<Binary, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let bytes = <Vec<u8> as FromSql<Binary, DB>>::from_sql(bytes)?;
        Ok(Uid(uuid::Uuid::from_slice(&bytes)?))
    }
}

pub mod schema {
    diesel::table! {
        flags (id) {
            id -> BigInt,
            name -> Text,
            deleted -> Bool,
            color -> Text,
            note -> Nullable<Text>,
            tint -> Nullable<Text>,
            score -> Integer,
            label -> Text,
        }
    }

    diesel::table! {
        stamps (id) {
            id -> BigInt,
            code -> Text,
            body -> Text,
            kind -> Text,
            created_at -> Timestamp,
            updated_at -> Timestamp,
            revision -> Integer,
            touched -> Integer,
        }
    }

    diesel::table! {
        numbers (id) {
            id -> BigInt,
            small -> SmallInt,
            medium -> Integer,
            big -> BigInt,
            flag -> Bool,
            ratio -> Float,
            score -> Double,
            amount -> Numeric,
            maybe_big -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        moments (id) {
            id -> BigInt,
            day -> Date,
            happened -> Timestamp,
            clock -> Time,
            t_day -> Date,
            t_happened -> Timestamp,
            maybe_day -> Nullable<Date>,
        }
    }

    diesel::table! {
        blobs (id) {
            id -> BigInt,
            data -> Binary,
            doc -> Json,
            maybe_data -> Nullable<Binary>,
            maybe_doc -> Nullable<Json>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        use crate::models::sql_types::MoodMapping;

        moods (id) {
            id -> BigInt,
            mood -> MoodMapping,
            email -> Text,
            uid -> Binary,
            alt -> Nullable<MoodMapping>,
            backup -> Nullable<Text>,
            note -> Text,
        }
    }

    diesel::table! {
        zoned_sqlite (id) {
            id -> BigInt,
            happened -> TimestamptzSqlite,
            t_happened -> TimestamptzSqlite,
            maybe -> Nullable<TimestamptzSqlite>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        use diesel::mysql::sql_types::Datetime;

        zoned_mysql (id) {
            id -> BigInt,
            happened -> Datetime,
            t_happened -> Datetime,
            maybe -> Nullable<Datetime>,
        }
    }

    diesel::table! {
        pg_tagged (id) {
            id -> BigInt,
            name -> Text,
            tags -> Array<Text>,
            opt_tags -> Array<Nullable<Text>>,
            maybe_tags -> Nullable<Array<Text>>,
            nums -> Array<Integer>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        use crate::models::sql_types::MoodMapping;

        pg_array_keys (id) {
            id -> BigInt,
            tags -> Array<Text>,
            opt_tags -> Array<Nullable<Text>>,
            label -> Text,
            moods -> Array<MoodMapping>,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        use crate::models::sql_types::MoodMapping;

        pg_types (id) {
            id -> BigInt,
            uid -> Uuid,
            addr -> Inet,
            doc -> Jsonb,
            happened -> Timestamptz,
            net -> Cidr,
            t_happened -> Timestamptz,
            raw -> Json,
            amount -> Numeric,
            mood -> MoodMapping,
            maybe_uid -> Nullable<Uuid>,
            seen_at -> Timestamptz,
            token -> Uuid,
        }
    }
}

use schema::*;

/// `Option<String>`, for `deserialize_as`: `#[derive(GetOrCreate)]` reads the values of
/// Diesel's field attributes as expressions, and `deserialize_as = Option<String>` does not
/// parse as one (error: "comparison operators cannot be chained").
pub type NullableText = Option<String>;

/// `Vec<i32>`, for `deserialize_as` (see [`NullableText`]).
pub type Integers = Vec<i32>;

/// Database defaults. Each `Option` field on a `NOT NULL` column writes the column's
/// `DEFAULT` for `None` (`deleted DEFAULT FALSE`, `color DEFAULT 'grey'`, `score DEFAULT
/// 10`); `note` is nullable with `DEFAULT 'none'`, and its `None` writes `NULL`; `tint` is
/// nullable with `DEFAULT 'blue'`, and its `None` writes the `DEFAULT`, `Some(None)` `NULL`.
///
/// Read back, a `NOT NULL` column's value is always `Some` (`deserialize_as`), and `tint`'s
/// is `Some(the column)`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = flags)]
pub struct Flag {
    pub id: i64,
    #[lookup]
    pub name: String,
    #[default]
    #[diesel(deserialize_as = bool)]
    pub deleted: Option<bool>,
    #[default]
    #[diesel(deserialize_as = String)]
    pub color: Option<String>,
    #[default]
    pub note: Option<String>,
    #[default]
    #[diesel(deserialize_as = NullableText)]
    pub tint: Option<Option<String>>,
    #[default]
    #[diesel(deserialize_as = i32)]
    pub score: Option<i32>,
    /// Always written: who made the row.
    #[default]
    pub label: String,
}

/// Which of [`Flag`]'s defaults a call gives (a bit set) and which it leaves to the
/// database: bit 0 `deleted: Some(true)`, bit 1 `color: Some("red")`, bit 2 `note:
/// Some("noted")`, bit 3 `tint` given, bit 4 (with bit 3) `tint: Some(None)` rather than
/// `Some(Some("teal"))`, bit 5 `score: Some(42)`.
pub type Pattern = u8;

/// Every pattern that means something different (`tint`'s bit 4 only counts with bit 3).
pub const PATTERNS: [Pattern; 48] = {
    let mut patterns = [0; 48];
    let mut p = 0u8;
    let mut n = 0;
    while p < 64 {
        if p & 0b11000 != 0b10000 {
            patterns[n] = p;
            n += 1;
        }
        p += 1;
    }
    patterns
};

/// [`Flag`]'s defaults for `pattern`, labelled `label`.
pub fn flag_defaults(pattern: Pattern, label: &str) -> FlagDefaults {
    FlagDefaults {
        deleted: (pattern & 1 != 0).then_some(true),
        color: (pattern & 2 != 0).then(|| "red".to_owned()),
        note: (pattern & 4 != 0).then(|| "noted".to_owned()),
        tint: (pattern & 8 != 0).then(|| (pattern & 16 == 0).then(|| "teal".to_owned())),
        score: (pattern & 32 != 0).then_some(42),
        label: label.to_owned(),
    }
}

/// The row `flag_defaults(pattern, label)` creates for `name`: the database's `DEFAULT`
/// where a `None` means it, `NULL` where it means that.
pub fn flag_row(id: i64, name: &str, pattern: Pattern, label: &str) -> Flag {
    let defaults = flag_defaults(pattern, label);
    Flag {
        id,
        name: name.to_owned(),
        deleted: Some(defaults.deleted.unwrap_or(false)),
        color: Some(defaults.color.unwrap_or_else(|| "grey".to_owned())),
        note: defaults.note,
        tint: Some(defaults.tint.unwrap_or_else(|| Some("blue".to_owned()))),
        score: Some(defaults.score.unwrap_or(10)),
        label: defaults.label,
    }
}

/// SQL expressions: `created_at` and `revision` are written on insert only, `updated_at`
/// on insert and update, `touched` on update only (its insert takes the column's
/// `DEFAULT 0`). `created_at`, `updated_at` and `revision` have no `DEFAULT`: an insert
/// without their expression fails. `kind` is `NOT NULL DEFAULT 'plain'`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = stamps)]
pub struct Stamp {
    pub id: i64,
    #[lookup]
    pub code: String,
    #[default]
    pub body: String,
    #[default]
    #[diesel(deserialize_as = String)]
    pub kind: Option<String>,
    #[get_or_create(on_create = "CURRENT_TIMESTAMP")]
    pub created_at: NaiveDateTime,
    #[get_or_create(on_create = "CURRENT_TIMESTAMP", on_update = "CURRENT_TIMESTAMP")]
    pub updated_at: NaiveDateTime,
    #[get_or_create(on_create = "1", on_update = "revision + 1")]
    pub revision: i32,
    #[get_or_create(on_update = "touched + 1")]
    pub touched: i32,
}

/// Integers as a composite key, and the other numeric types as defaults.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = numbers)]
pub struct Numbers {
    pub id: i64,
    #[lookup]
    pub small: i16,
    #[lookup]
    pub medium: i32,
    #[lookup]
    pub big: i64,
    #[default]
    pub flag: bool,
    #[default]
    pub ratio: f32,
    #[default]
    pub score: f64,
    #[default]
    pub amount: BigDecimal,
    #[default]
    pub maybe_big: Option<i64>,
}

/// Dates and times of chrono and time.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = moments)]
pub struct Moment {
    pub id: i64,
    #[lookup]
    pub day: NaiveDate,
    #[default]
    pub happened: NaiveDateTime,
    #[default]
    pub clock: NaiveTime,
    #[default]
    pub t_day: time::Date,
    #[default]
    pub t_happened: time::PrimitiveDateTime,
    #[default]
    pub maybe_day: Option<NaiveDate>,
}

/// Bytes as the key, JSON as defaults.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = blobs)]
pub struct Blob {
    pub id: i64,
    #[lookup]
    pub data: Vec<u8>,
    #[default]
    pub doc: Value,
    #[default]
    pub maybe_data: Option<Vec<u8>>,
    #[default]
    pub maybe_doc: Option<Value>,
}

/// An enum and two newtypes as a composite key.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = moods)]
pub struct Moody {
    pub id: i64,
    #[lookup]
    pub mood: Mood,
    #[lookup]
    pub email: Email,
    #[lookup]
    pub uid: Uid,
    #[default]
    pub alt: Option<Mood>,
    #[default]
    pub backup: Option<Email>,
    #[default]
    pub note: String,
}

/// SQLite's `TimestamptzSqlite`: chrono's `DateTime<Utc>` as the key, time's
/// `OffsetDateTime` as a default.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = zoned_sqlite)]
pub struct ZonedSqlite {
    pub id: i64,
    #[lookup]
    pub happened: DateTime<Utc>,
    #[default]
    pub t_happened: time::OffsetDateTime,
    #[default]
    pub maybe: Option<DateTime<Utc>>,
}

/// MySQL's `DATETIME(6)` through time's types (Diesel maps chrono's `DateTime<Utc>` to no
/// MySQL type).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = zoned_mysql)]
pub struct ZonedMysql {
    pub id: i64,
    #[lookup]
    pub happened: time::OffsetDateTime,
    #[default]
    pub t_happened: time::PrimitiveDateTime,
    #[default]
    pub maybe: Option<time::OffsetDateTime>,
}

/// PostgreSQL arrays as defaults: before arrays were sent as rows, `get_or_create_many` of
/// this model failed with `function pg_catalog.unnest(unknown) is not unique`. `nums` is
/// `int[] NOT NULL DEFAULT '{7,8,9}'`: `None` writes the `DEFAULT`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = pg_tagged)]
pub struct PgTagged {
    pub id: i64,
    #[lookup]
    pub name: String,
    #[default]
    pub tags: Vec<String>,
    #[default]
    pub opt_tags: Vec<Option<String>>,
    #[default]
    pub maybe_tags: Option<Vec<String>>,
    #[default]
    #[diesel(deserialize_as = Integers)]
    pub nums: Option<Vec<i32>>,
}

/// PostgreSQL arrays as the key, and an array of a native enum.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = pg_array_keys)]
pub struct PgArrayKey {
    pub id: i64,
    #[lookup]
    pub tags: Vec<String>,
    #[lookup]
    pub opt_tags: Vec<Option<String>>,
    #[default]
    pub label: String,
    #[default]
    pub moods: Vec<Mood>,
}

/// PostgreSQL's own types, four of them the key; `seen_at` is `now()` on insert and
/// update, `token` `gen_random_uuid()` on insert.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = pg_types)]
pub struct PgTyped {
    pub id: i64,
    #[lookup]
    pub uid: uuid::Uuid,
    #[lookup]
    pub addr: IpNetwork,
    #[lookup]
    pub doc: Value,
    #[lookup]
    pub happened: DateTime<Utc>,
    #[default]
    pub net: IpNetwork,
    #[default]
    pub t_happened: time::OffsetDateTime,
    #[default]
    pub raw: Value,
    #[default]
    pub amount: BigDecimal,
    #[default]
    pub mood: Mood,
    #[default]
    pub maybe_uid: Option<uuid::Uuid>,
    #[get_or_create(on_create = "now()", on_update = "now()")]
    pub seen_at: DateTime<Utc>,
    #[get_or_create(on_create = "gen_random_uuid()")]
    pub token: uuid::Uuid,
}

/// A model of the type matrix: its items, numbered, each with variants of its defaults,
/// and the row each makes. `tests/models.rs` runs every call on them.
pub trait Sample: GetOrCreate + Clone + PartialEq + Debug + Send + 'static {
    /// The key of item `i`.
    fn key(i: usize) -> Self::Lookup;
    /// Variant `v` of item `i`'s defaults.
    fn defaults(i: usize, v: usize) -> Self::Defaults;
    /// The row item `i` holds when written with variant `v` of its defaults.
    fn row(id: i64, i: usize, v: usize) -> Self;
    /// The row `stored` holds after an update of item `i` to variant `v` of its
    /// defaults: by default the row of that variant (a model whose `None` keeps a stored
    /// value says so).
    fn updated(stored: Self, i: usize, v: usize) -> Self {
        Self::row(stored.id(), i, v)
    }
    /// The row's id.
    fn id(&self) -> i64;
    /// What a comparison sees of a row: all of it, but columns the database computes.
    fn comparable(self) -> Self {
        self
    }
}

fn decimal(text: &str) -> BigDecimal {
    BigDecimal::from_str(text).expect("a decimal")
}

impl Sample for Numbers {
    fn key(i: usize) -> NumbersLookup {
        NumbersLookup {
            small: i as i16 - 100,
            medium: i32::MIN + i as i32,
            big: i64::MAX - i as i64,
        }
    }

    fn defaults(i: usize, v: usize) -> NumbersDefaults {
        let sign = if i % 2 == 1 { "-" } else { "" };
        NumbersDefaults {
            flag: (i + v) % 2 == 0,
            ratio: 0.25 + i as f32 + v as f32 * 0.5,
            score: -1.5e10 + (i * 10 + v) as f64,
            // Exact in binary: SQLite keeps a `Numeric` as a double.
            amount: decimal(&format!("{sign}{}.625", 1000 * i + v)),
            maybe_big: ((i + v) % 3 != 0).then(|| i64::MIN + (i + v) as i64),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        Numbers {
            id,
            small: k.small,
            medium: k.medium,
            big: k.big,
            flag: d.flag,
            ratio: d.ratio,
            score: d.score,
            amount: d.amount,
            maybe_big: d.maybe_big,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

impl Sample for Moment {
    fn key(i: usize) -> MomentLookup {
        MomentLookup {
            day: date(2024, 2, 29) + Duration::days(i as i64),
        }
    }

    fn defaults(i: usize, v: usize) -> MomentDefaults {
        let t_day = time::Date::from_calendar_date(1999, time::Month::December, 31)
            .expect("a date")
            + time::Duration::days((i + v) as i64);
        // Before 2038: Diesel's MySQL driver binds a `Timestamp` as `MYSQL_TYPE_TIMESTAMP`,
        // and MariaDB reads one past 2038-01-19 03:14:07 UTC as NULL (on a `DATETIME`
        // column too: "Column 't_happened' cannot be null").
        let t_happened = time::PrimitiveDateTime::new(
            time::Date::from_calendar_date(2037, time::Month::January, 19).expect("a date"),
            time::Time::from_hms(3, 14, 7).expect("a time"),
        ) + time::Duration::seconds((i * 86_400 + v) as i64);
        MomentDefaults {
            happened: date(2024, 1, 1).and_hms_opt(0, 0, 0).expect("a time")
                + Duration::seconds((i * 3601 + v * 61) as i64),
            clock: NaiveTime::from_hms_opt((i % 24) as u32, (v * 7 % 60) as u32, 30)
                .expect("a time"),
            t_day,
            t_happened,
            maybe_day: ((i + v) % 2 == 1).then(|| date(1970, 1, 1) + Duration::days(i as i64)),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        Moment {
            id,
            day: k.day,
            happened: d.happened,
            clock: d.clock,
            t_day: d.t_day,
            t_happened: d.t_happened,
            maybe_day: d.maybe_day,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for Blob {
    fn key(i: usize) -> BlobLookup {
        BlobLookup {
            // Item 3's key is empty: zero bytes, not NULL.
            data: if i == 3 {
                Vec::new()
            } else {
                vec![0, 255, i as u8, (i * 7 % 256) as u8, 0]
            },
        }
    }

    fn defaults(i: usize, v: usize) -> BlobDefaults {
        BlobDefaults {
            doc: json!({
                "i": i,
                "v": v,
                "nested": {"list": [1, "two", null, true, 2.5]},
                "text": "zażółć \"gęślą\" \\ jaźń",
            }),
            maybe_data: ((i + v) % 2 == 1).then(|| vec![v as u8; i % 5]),
            maybe_doc: match (i + v) % 3 {
                0 => None,
                // JSON's `null`, which is a value, not SQL's `NULL`.
                1 => Some(Value::Null),
                _ => Some(json!([i, v, "x"])),
            },
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        Blob {
            id,
            data: k.data,
            doc: d.doc,
            maybe_data: d.maybe_data,
            maybe_doc: d.maybe_doc,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for Moody {
    fn key(i: usize) -> MoodyLookup {
        MoodyLookup {
            mood: Mood::nth(i),
            email: Email(format!("user{}@example.com", i / 3)),
            uid: Uid(uuid::Uuid::from_u128(
                0x0123_4567_89ab_cdef_0000 + (i / 3) as u128,
            )),
        }
    }

    fn defaults(i: usize, v: usize) -> MoodyDefaults {
        MoodyDefaults {
            alt: ((i + v) % 4 != 0).then(|| Mood::nth(i + v)),
            backup: ((i + v) % 2 == 0).then(|| Email(format!("backup{i}.{v}@example.com"))),
            note: format!("note {i}/{v}"),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        Moody {
            id,
            mood: k.mood,
            email: k.email,
            uid: k.uid,
            alt: d.alt,
            backup: d.backup,
            note: d.note,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

/// `2024-05-06 07:08:09.123456 UTC` plus `seconds`.
fn instant(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
        .single()
        .expect("an instant")
        + Duration::microseconds(123_456)
        + Duration::seconds(seconds)
}

/// `2031-02-03 04:05:06.654321 +02:00` plus `seconds`.
fn offset_instant(seconds: i64) -> time::OffsetDateTime {
    time::PrimitiveDateTime::new(
        time::Date::from_calendar_date(2031, time::Month::February, 3).expect("a date"),
        time::Time::from_hms_micro(4, 5, 6, 654_321).expect("a time"),
    )
    .assume_offset(time::UtcOffset::from_hms(2, 0, 0).expect("an offset"))
        + time::Duration::seconds(seconds)
}

impl Sample for ZonedSqlite {
    fn key(i: usize) -> ZonedSqliteLookup {
        ZonedSqliteLookup {
            happened: instant(i as i64 * 3600),
        }
    }

    fn defaults(i: usize, v: usize) -> ZonedSqliteDefaults {
        ZonedSqliteDefaults {
            t_happened: offset_instant((i * 100 + v) as i64),
            maybe: ((i + v) % 2 == 0).then(|| instant(-((i + v) as i64))),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        ZonedSqlite {
            id,
            happened: k.happened,
            t_happened: d.t_happened,
            maybe: d.maybe,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for ZonedMysql {
    fn key(i: usize) -> ZonedMysqlLookup {
        ZonedMysqlLookup {
            happened: offset_instant(i as i64 * 3600),
        }
    }

    fn defaults(i: usize, v: usize) -> ZonedMysqlDefaults {
        let t = offset_instant((i * 100 + v) as i64).to_offset(time::UtcOffset::UTC);
        ZonedMysqlDefaults {
            t_happened: time::PrimitiveDateTime::new(t.date(), t.time()),
            maybe: ((i + v) % 2 == 0).then(|| offset_instant(-((i + v) as i64))),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        ZonedMysql {
            id,
            happened: k.happened,
            t_happened: d.t_happened,
            maybe: d.maybe,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for PgTagged {
    fn key(i: usize) -> PgTaggedLookup {
        PgTaggedLookup {
            name: format!("tagged-{i}"),
        }
    }

    fn defaults(i: usize, v: usize) -> PgTaggedDefaults {
        let s = |text: &str| text.to_owned();
        PgTaggedDefaults {
            tags: match (i + v) % 4 {
                0 => Vec::new(),
                1 => vec![s("a,b"), s("{x}"), s("\"q\""), s("back\\slash")],
                2 => vec![s("NULL"), s(""), s("zażółć")],
                _ => vec![format!("t{i}"), format!("v{v}")],
            },
            opt_tags: match (i + v) % 3 {
                0 => Vec::new(),
                1 => vec![None],
                _ => vec![Some(format!("o{i}")), None, Some(s("NULL"))],
            },
            maybe_tags: match (i + v) % 3 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(vec![format!("m{v}")]),
            },
            nums: ((i + v) % 2 == 1).then(|| vec![i as i32, -(v as i32), i32::MAX]),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        PgTagged {
            id,
            name: k.name,
            tags: d.tags,
            opt_tags: d.opt_tags,
            maybe_tags: d.maybe_tags,
            nums: Some(d.nums.unwrap_or_else(|| vec![7, 8, 9])),
        }
    }

    /// An update whose `nums` is `None` keeps the stored `nums` (a `DEFAULT` is written
    /// only on insert).
    fn updated(stored: Self, i: usize, v: usize) -> Self {
        let kept = Self::defaults(i, v).nums.is_none();
        let row = Self::row(stored.id, i, v);
        if kept {
            PgTagged {
                nums: stored.nums,
                ..row
            }
        } else {
            row
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for PgArrayKey {
    fn key(i: usize) -> PgArrayKeyLookup {
        PgArrayKeyLookup {
            tags: if i == 0 {
                Vec::new()
            } else {
                vec![format!("k{i}"), "x,y".to_owned()]
            },
            opt_tags: match i % 3 {
                0 => Vec::new(),
                1 => vec![None],
                _ => vec![Some(i.to_string()), None],
            },
        }
    }

    fn defaults(i: usize, v: usize) -> PgArrayKeyDefaults {
        PgArrayKeyDefaults {
            label: format!("label {i}/{v}"),
            moods: (0..(i + v) % 4).map(|n| Mood::nth(n + v)).collect(),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        PgArrayKey {
            id,
            tags: k.tags,
            opt_tags: k.opt_tags,
            label: d.label,
            moods: d.moods,
        }
    }

    fn id(&self) -> i64 {
        self.id
    }
}

impl Sample for PgTyped {
    fn key(i: usize) -> PgTypedLookup {
        let addr = if i % 2 == 0 {
            format!("192.168.{}.7/24", i % 256)
        } else {
            format!("2001:db8::{i:x}/64")
        };
        PgTypedLookup {
            uid: uuid::Uuid::from_u128(0xfeed_0000_0000 + (i / 2) as u128),
            addr: addr.parse().expect("an inet"),
            doc: json!({"key": i / 2, "tags": ["a", {"b": null}]}),
            happened: instant((i / 2) as i64),
        }
    }

    fn defaults(i: usize, v: usize) -> PgTypedDefaults {
        let net = if (i + v) % 2 == 0 {
            format!("10.{}.0.0/16", i % 256)
        } else {
            format!("2001:db8:{:x}::/48", i + v)
        };
        PgTypedDefaults {
            net: net.parse().expect("a cidr"),
            t_happened: offset_instant((i * 1000 + v) as i64),
            raw: json!({"i": i, "v": v, "order": "kept as written"}),
            amount: decimal(&format!("123456789012345678901234.{:010}", i * 10 + v)),
            mood: Mood::nth(i + v),
            maybe_uid: ((i + v) % 2 == 1).then(|| uuid::Uuid::from_u128((i * 10 + v) as u128)),
        }
    }

    fn row(id: i64, i: usize, v: usize) -> Self {
        let (k, d) = (Self::key(i), Self::defaults(i, v));
        PgTyped {
            id,
            uid: k.uid,
            addr: k.addr,
            doc: k.doc,
            happened: k.happened,
            net: d.net,
            t_happened: d.t_happened,
            raw: d.raw,
            amount: d.amount,
            mood: d.mood,
            maybe_uid: d.maybe_uid,
            seen_at: DateTime::UNIX_EPOCH,
            token: uuid::Uuid::nil(),
        }
    }

    fn id(&self) -> i64 {
        self.id
    }

    /// `seen_at` and `token` are the database's (`pg_sql_expressions` checks them).
    fn comparable(self) -> Self {
        PgTyped {
            seen_at: DateTime::UNIX_EPOCH,
            token: uuid::Uuid::nil(),
            ..self
        }
    }
}

/// Every row of a model's table, ordered by id.
pub trait LoadAll<M> {
    /// The rows.
    fn load_all(&mut self) -> Vec<M>;
}

macro_rules! load_all {
    ($conn:ty: $($model:ty => $table:ident),* $(,)?) => {
        $(
            impl LoadAll<$model> for $conn {
                fn load_all(&mut self) -> Vec<$model> {
                    $table::table
                        .order($table::id)
                        .select(<$model>::as_select())
                        .load(self)
                        .unwrap_or_else(|e| panic!("{}: {e}", stringify!($table)))
                }
            }
        )*
    };
}

load_all!(SqliteConnection:
    Flag => flags, Stamp => stamps, Numbers => numbers, Moment => moments, Blob => blobs,
    Moody => moods, ZonedSqlite => zoned_sqlite,
);
load_all!(PgConnection:
    Flag => flags, Stamp => stamps, Numbers => numbers, Moment => moments, Blob => blobs,
    Moody => moods, PgTagged => pg_tagged, PgArrayKey => pg_array_keys, PgTyped => pg_types,
);
#[cfg(feature = "mysql")]
load_all!(MysqlConnection:
    Flag => flags, Stamp => stamps, Numbers => numbers, Moment => moments, Blob => blobs,
    Moody => moods, ZonedMysql => zoned_mysql,
);

/// What a backend offers the tests of `tests/models.rs`, on top of [`TestDb`].
pub trait ModelsDb:
    TestDb<
    Conn: GocConnection<Flag>
              + GocConnection<Stamp>
              + GocConnection<Numbers>
              + GocConnection<Moment>
              + GocConnection<Blob>
              + GocConnection<Moody>
              + LoadAll<Flag>
              + LoadAll<Stamp>
              + LoadAll<Numbers>
              + LoadAll<Moment>
              + LoadAll<Blob>
              + LoadAll<Moody>,
>
{
    /// The statements that create this module's tables (and types).
    const DDL: &'static [&'static str];

    /// Session settings of every connection of these tests: `CURRENT_TIMESTAMP` in UTC
    /// (SQLite's always is), and SQLite's commits without an fsync each.
    const SESSION: &'static [&'static str];

    /// A new isolated database holding the harness's tables and this module's.
    fn create_models() -> Self {
        let db = Self::create();
        let mut conn = db.models_connect();
        for statement in Self::DDL {
            Self::exec(&mut conn, statement);
        }
        db
    }

    /// A new connection, with the [`SESSION`](Self::SESSION) settings.
    fn models_connect(&self) -> Self::Conn {
        let mut conn = self.connect();
        for statement in Self::SESSION {
            Self::exec(&mut conn, statement);
        }
        conn
    }

    /// Runs SQL, panicking with it on error.
    fn exec(conn: &mut Self::Conn, sql: &str) {
        conn.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", Self::NAME));
    }
}

impl ModelsDb for SqliteDb {
    const DDL: &'static [&'static str] = &[
        "CREATE TABLE flags (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
            deleted BOOLEAN NOT NULL DEFAULT FALSE, color TEXT NOT NULL DEFAULT 'grey',
            note TEXT DEFAULT 'none', tint TEXT DEFAULT 'blue',
            score INTEGER NOT NULL DEFAULT 10, label TEXT NOT NULL)",
        "CREATE TABLE stamps (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'plain',
            created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
            revision INTEGER NOT NULL, touched INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE numbers (id INTEGER PRIMARY KEY AUTOINCREMENT, small SMALLINT NOT NULL,
            medium INTEGER NOT NULL, big BIGINT NOT NULL, flag BOOLEAN NOT NULL,
            ratio REAL NOT NULL, score DOUBLE NOT NULL, amount NUMERIC NOT NULL,
            maybe_big BIGINT, UNIQUE (small, medium, big))",
        "CREATE TABLE moments (id INTEGER PRIMARY KEY AUTOINCREMENT, day DATE NOT NULL UNIQUE,
            happened TIMESTAMP NOT NULL, clock TIME NOT NULL, t_day DATE NOT NULL,
            t_happened TIMESTAMP NOT NULL, maybe_day DATE)",
        "CREATE TABLE blobs (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL UNIQUE,
            doc TEXT NOT NULL, maybe_data BLOB, maybe_doc TEXT)",
        "CREATE TABLE moods (id INTEGER PRIMARY KEY AUTOINCREMENT,
            mood TEXT NOT NULL CHECK (mood IN ('happy', 'sad', 'so_so')),
            email TEXT NOT NULL, uid BLOB NOT NULL,
            alt TEXT CHECK (alt IN ('happy', 'sad', 'so_so')), backup TEXT,
            note TEXT NOT NULL, UNIQUE (mood, email, uid))",
        "CREATE TABLE zoned_sqlite (id INTEGER PRIMARY KEY AUTOINCREMENT,
            happened TIMESTAMPTZ NOT NULL UNIQUE, t_happened TIMESTAMPTZ NOT NULL,
            maybe TIMESTAMPTZ)",
    ];

    const SESSION: &'static [&'static str] = &["PRAGMA synchronous = NORMAL"];
}

impl ModelsDb for PgDb {
    const DDL: &'static [&'static str] = &[
        // In the test's schema, first on the search_path of every connection.
        "CREATE TYPE mood AS ENUM ('happy', 'sad', 'so_so')",
        "CREATE TABLE flags (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            deleted BOOLEAN NOT NULL DEFAULT FALSE, color TEXT NOT NULL DEFAULT 'grey',
            note TEXT DEFAULT 'none', tint TEXT DEFAULT 'blue',
            score INTEGER NOT NULL DEFAULT 10, label TEXT NOT NULL)",
        "CREATE TABLE stamps (id BIGSERIAL PRIMARY KEY, code TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'plain',
            created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
            revision INTEGER NOT NULL, touched INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE numbers (id BIGSERIAL PRIMARY KEY, small SMALLINT NOT NULL,
            medium INTEGER NOT NULL, big BIGINT NOT NULL, flag BOOLEAN NOT NULL,
            ratio REAL NOT NULL, score DOUBLE PRECISION NOT NULL,
            amount NUMERIC(20, 4) NOT NULL, maybe_big BIGINT, UNIQUE (small, medium, big))",
        "CREATE TABLE moments (id BIGSERIAL PRIMARY KEY, day DATE NOT NULL UNIQUE,
            happened TIMESTAMP NOT NULL, clock TIME NOT NULL, t_day DATE NOT NULL,
            t_happened TIMESTAMP NOT NULL, maybe_day DATE)",
        "CREATE TABLE blobs (id BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL UNIQUE,
            doc JSON NOT NULL, maybe_data BYTEA, maybe_doc JSON)",
        "CREATE TABLE moods (id BIGSERIAL PRIMARY KEY, mood mood NOT NULL,
            email TEXT NOT NULL, uid BYTEA NOT NULL, alt mood, backup TEXT,
            note TEXT NOT NULL, UNIQUE (mood, email, uid))",
        "CREATE TABLE pg_tagged (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            tags TEXT[] NOT NULL, opt_tags TEXT[] NOT NULL, maybe_tags TEXT[],
            nums INTEGER[] NOT NULL DEFAULT '{7,8,9}')",
        "CREATE TABLE pg_array_keys (id BIGSERIAL PRIMARY KEY, tags TEXT[] NOT NULL,
            opt_tags TEXT[] NOT NULL, label TEXT NOT NULL, moods mood[] NOT NULL,
            UNIQUE (tags, opt_tags))",
        "CREATE TABLE pg_types (id BIGSERIAL PRIMARY KEY, uid UUID NOT NULL, addr INET NOT NULL,
            doc JSONB NOT NULL, happened TIMESTAMPTZ NOT NULL, net CIDR NOT NULL,
            t_happened TIMESTAMPTZ NOT NULL, raw JSON NOT NULL, amount NUMERIC(40, 10) NOT NULL,
            mood mood NOT NULL, maybe_uid UUID, seen_at TIMESTAMPTZ NOT NULL,
            token UUID NOT NULL, UNIQUE (uid, addr, doc, happened))",
    ];

    const SESSION: &'static [&'static str] = &["SET TIME ZONE 'UTC'"];
}

#[cfg(feature = "mysql")]
impl ModelsDb for MysqlDb {
    const DDL: &'static [&'static str] = &[
        "CREATE TABLE flags (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(191) NOT NULL UNIQUE, deleted BOOLEAN NOT NULL DEFAULT FALSE,
            color VARCHAR(64) NOT NULL DEFAULT 'grey', note TEXT NULL DEFAULT 'none',
            tint TEXT NULL DEFAULT 'blue', score INT NOT NULL DEFAULT 10, label TEXT NOT NULL)",
        // DATETIME, not TIMESTAMP: MariaDB gives a TIMESTAMP column implicit defaults and
        // `ON UPDATE` clauses of its own.
        "CREATE TABLE stamps (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            code VARCHAR(191) NOT NULL UNIQUE, body TEXT NOT NULL,
            kind VARCHAR(32) NOT NULL DEFAULT 'plain', created_at DATETIME NOT NULL,
            updated_at DATETIME NOT NULL, revision INT NOT NULL, touched INT NOT NULL DEFAULT 0)",
        "CREATE TABLE numbers (id BIGINT AUTO_INCREMENT PRIMARY KEY, small SMALLINT NOT NULL,
            medium INT NOT NULL, big BIGINT NOT NULL, flag BOOLEAN NOT NULL,
            ratio FLOAT NOT NULL, score DOUBLE NOT NULL, amount DECIMAL(20, 4) NOT NULL,
            maybe_big BIGINT NULL, UNIQUE KEY numbers_key (small, medium, big))",
        "CREATE TABLE moments (id BIGINT AUTO_INCREMENT PRIMARY KEY, day DATE NOT NULL UNIQUE,
            happened DATETIME NOT NULL, clock TIME NOT NULL, t_day DATE NOT NULL,
            t_happened DATETIME NOT NULL, maybe_day DATE NULL)",
        "CREATE TABLE blobs (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            data VARBINARY(64) NOT NULL UNIQUE, doc JSON NOT NULL, maybe_data BLOB NULL,
            maybe_doc JSON NULL)",
        "CREATE TABLE moods (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            mood ENUM('happy', 'sad', 'so_so') NOT NULL, email VARCHAR(191) NOT NULL,
            uid BINARY(16) NOT NULL, alt ENUM('happy', 'sad', 'so_so') NULL,
            backup VARCHAR(191) NULL, note TEXT NOT NULL,
            UNIQUE KEY moods_key (mood, email, uid))",
        "CREATE TABLE zoned_mysql (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            happened DATETIME(6) NOT NULL UNIQUE, t_happened DATETIME(6) NOT NULL,
            maybe DATETIME(6) NULL)",
    ];

    const SESSION: &'static [&'static str] = &["SET time_zone = '+00:00'"];
}

/// What a backend's diesel-async connection must offer the async tests of
/// `tests/models.rs`.
pub trait ModelsAsyncDb:
    ModelsDb
    + AsyncTestDb<
        AsyncConn: AsyncGocConnection<Flag>
                       + AsyncGocConnection<Stamp>
                       + AsyncGocConnection<Numbers>
                       + AsyncGocConnection<Moment>
                       + AsyncGocConnection<Blob>
                       + AsyncGocConnection<Moody>,
    >
{
    /// A new async connection, with the [`SESSION`](ModelsDb::SESSION) settings.
    fn models_connect_async(&self) -> impl Future<Output = Self::AsyncConn> + Send {
        async move {
            let mut conn = self.connect_async().await;
            for statement in Self::SESSION {
                conn.batch_execute(statement)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {statement}: {e}", Self::NAME));
            }
            conn
        }
    }
}

impl ModelsAsyncDb for SqliteDb {}
impl ModelsAsyncDb for PgDb {}
#[cfg(feature = "mysql")]
impl ModelsAsyncDb for MysqlDb {}
