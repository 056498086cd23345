//! Keys as real schemas declare them, for `tests/keys.rs`: our own tables and models in the
//! shapes crates.io and Lemmy use (see each table's doc), created next to the harness's
//! tables in each test's isolated database, and a race runner whose callers spell the same
//! key differently (`LEMMY.ML`, `lemmy.ml`) and whose checks compare every call with the
//! table afterwards.
//!
//! | table | key | shape |
//! |---|---|---|
//! | `instances` | `lower(domain)` (and `domain` exactly) | Lemmy's `instance`, with the index its lookup needs |
//! | `domains_exact` | `domain` exactly, looked up by `lower(domain)` | Lemmy's `instance` as it is: the lookup no index backs |
//! | `krates` | `canon_name(name)`, a function of our own | crates.io's `crates` and `canon_crate_name` |
//! | `categories` | `slug`, and `category` unique as well | crates.io's `categories` |
//! | `gh_users` | `gh_id` where `gh_id > 0`; legacy rows hold `-1` | crates.io's `users.gh_id` |
//! | `subscribers` | `email` where `deleted_at IS NULL` | soft delete |
//! | `languages`, `regions` | `code`, no unique index | Lemmy's `language` |
//! | `codes` | a nullable `code` | `NULLS NOT DISTINCT` on PostgreSQL |
//! | `topics` | `name COLLATE ..` | a case-insensitive collation on the key |
//! | `hosts` | `hostname`, a column whose own collation ignores case | SQLite `COLLATE NOCASE`, MariaDB `_ci` |
//!
//! MySQL/MariaDB have no partial or expression indexes: there the same tables emulate them
//! with generated columns, and the models that declare `function`, `collate` or `where`
//! may only find rows (creating one is `Error::KeyNotSupported`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use get_or_create_core::asynchronous::Connection as AsyncGocConnection;
use get_or_create_core::{Connection as GocConnection, Error, GetOrCreate};
use rand::seq::SliceRandom;

use crate::asynchronous::AsyncTestDb;
pub use crate::race::Order;
#[cfg(feature = "mysql")]
use crate::MysqlDb;
use crate::{PgDb, SqliteDb, TestDb, MYSQL_NAME};

pub mod schema {
    diesel::table! {
        instances (id) {
            id -> BigInt,
            domain -> Text,
            software -> Text,
        }
    }

    diesel::table! {
        domains_exact (id) {
            id -> BigInt,
            domain -> Text,
            software -> Text,
        }
    }

    diesel::table! {
        krates (id) {
            id -> BigInt,
            name -> Text,
            description -> Text,
        }
    }

    diesel::table! {
        categories (id) {
            id -> BigInt,
            category -> Text,
            slug -> Text,
            description -> Text,
        }
    }

    diesel::table! {
        gh_users (id) {
            id -> BigInt,
            gh_id -> Integer,
            gh_login -> Text,
        }
    }

    diesel::table! {
        subscribers (id) {
            id -> BigInt,
            email -> Text,
            name -> Text,
            deleted_at -> Nullable<BigInt>,
        }
    }

    diesel::table! {
        languages (id) {
            id -> BigInt,
            code -> Text,
            name -> Text,
        }
    }

    diesel::table! {
        regions (id) {
            id -> BigInt,
            code -> Text,
            name -> Text,
        }
    }

    diesel::table! {
        codes (id) {
            id -> BigInt,
            code -> Nullable<Text>,
            label -> Text,
        }
    }

    diesel::table! {
        topics (id) {
            id -> BigInt,
            name -> Text,
            color -> Text,
        }
    }

    diesel::table! {
        hosts (id) {
            id -> BigInt,
            hostname -> Text,
            software -> Text,
        }
    }
}

use schema::*;

/// Lemmy's `instance`, looked up by `lower(domain)` with the unique index on
/// `lower(domain)` that makes the lookup race-safe (the table also keeps Lemmy's exact
/// `UNIQUE (domain)`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = instances)]
pub struct Instance {
    pub id: i64,
    #[lookup(function = lower)]
    pub domain: String,
    #[default]
    pub software: String,
}

/// The same table with a plain key: backed by the exact `UNIQUE (domain)` (on MariaDB a
/// `_ci` column, so that it ignores case there).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = instances)]
pub struct InstanceExact {
    pub id: i64,
    #[lookup]
    pub domain: String,
    #[default]
    pub software: String,
}

/// Lemmy's `instance` as it is: unique on the exact domain, looked up by `lower(domain)`.
/// Two spellings of a domain are two rows, and the lookup finds both.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = domains_exact)]
pub struct LemmyInstance {
    pub id: i64,
    #[lookup(function = lower)]
    pub domain: String,
    #[default]
    pub software: String,
}

/// [`LemmyInstance`] under another name, for the test that adds the missing index (the
/// library remembers per model type, not per table, that some table of it was found
/// backed, and then checks a new table only after its first insert).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = domains_exact)]
pub struct LemmyInstanceFixed {
    pub id: i64,
    #[lookup(function = lower)]
    pub domain: String,
    #[default]
    pub software: String,
}

/// [`LemmyInstance`] under a third name, for the test of the advice's name.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = domains_exact)]
pub struct LemmyInstanceAdvised {
    pub id: i64,
    #[lookup(function = lower)]
    pub domain: String,
    #[default]
    pub software: String,
}

/// crates.io's `crates`: unique on `canon_name(name)`, `replace(lower(name), '-', '_')`, a
/// function of the application's own (PostgreSQL: SQL, SQLite: registered on each
/// connection, MariaDB: stored function, with the unique key on a generated column).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = krates)]
pub struct Krate {
    pub id: i64,
    #[lookup(function = canon_name)]
    pub name: String,
    #[default]
    pub description: String,
}

/// `krates` with a plain key, which no index backs (only the canonical name is unique).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = krates)]
pub struct KrateExact {
    pub id: i64,
    #[lookup]
    pub name: String,
    #[default]
    pub description: String,
}

/// crates.io's `categories`: looked up by `slug`; `category` is unique as well.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = categories)]
pub struct Category {
    pub id: i64,
    #[default]
    pub category: String,
    #[lookup]
    pub slug: String,
    #[default]
    pub description: String,
}

/// `categories` looked up by `lower(slug)` (PostgreSQL and SQLite also have that index).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = categories)]
pub struct CategoryCi {
    pub id: i64,
    #[default]
    pub category: String,
    #[lookup(function = lower)]
    pub slug: String,
    #[default]
    pub description: String,
}

/// crates.io's `users`: `UNIQUE (gh_id) WHERE gh_id > 0`, legacy rows hold `gh_id = -1`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = gh_users)]
#[get_or_create(where = "gh_id > 0")]
pub struct GhUser {
    pub id: i64,
    #[lookup]
    pub gh_id: i32,
    #[default]
    pub gh_login: String,
}

/// `gh_users` without the filter: a lookup of `-1` sees every legacy row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = gh_users)]
pub struct GhUserAny {
    pub id: i64,
    #[lookup]
    pub gh_id: i32,
    #[default]
    pub gh_login: String,
}

/// `gh_users` with a filter the partial index does not back (`gh_id <> -1` does not
/// imply `gh_id > 0`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = gh_users)]
#[get_or_create(where = "gh_id <> -1")]
pub struct GhUserNotLegacy {
    pub id: i64,
    #[lookup]
    pub gh_id: i32,
    #[default]
    pub gh_login: String,
}

/// Soft delete: `UNIQUE (email) WHERE deleted_at IS NULL`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = subscribers)]
#[get_or_create(where = "deleted_at IS NULL")]
pub struct Subscriber {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[default]
    pub name: String,
    pub deleted_at: Option<i64>,
}

/// Lemmy's `language`: `code` has no unique index, rows are seeded.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = languages)]
pub struct Language {
    pub id: i64,
    #[lookup]
    pub code: String,
    #[default]
    pub name: String,
}

/// `regions`: no unique index until the test that uses it creates the one the error
/// names.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = regions)]
pub struct Region {
    pub id: i64,
    #[lookup]
    pub code: String,
    #[default]
    pub name: String,
}

/// A lookup type that hides its `Option` behind an alias.
pub type Code = Option<String>;

/// A nullable key, whose nullability the derive takes from the column, not the spelling
/// of the field's type.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = codes)]
pub struct Coded {
    pub id: i64,
    #[lookup]
    pub code: Code,
    #[default]
    pub label: String,
}

/// SQLite: `UNIQUE INDEX ON topics (name COLLATE NOCASE)`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = topics)]
pub struct TopicNocase {
    pub id: i64,
    #[lookup(collate = "NOCASE")]
    pub name: String,
    #[default]
    pub color: String,
}

/// PostgreSQL: `UNIQUE INDEX ON topics (name COLLATE goc_ci)`, a nondeterministic ICU
/// collation that ignores case.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = topics)]
pub struct TopicCi {
    pub id: i64,
    #[lookup(collate = "goc_ci")]
    pub name: String,
    #[default]
    pub color: String,
}

/// MariaDB: a collation the server has, on a key whose column is `_ci`: a lookup works,
/// creating is refused.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = topics)]
pub struct TopicBin {
    pub id: i64,
    #[lookup(collate = "utf8mb4_bin")]
    pub name: String,
    #[default]
    pub color: String,
}

/// A plain key on a column whose own collation ignores case: SQLite `COLLATE NOCASE`,
/// PostgreSQL `COLLATE goc_ci`, MariaDB's default `utf8mb4_general_ci`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate)]
#[diesel(table_name = hosts)]
pub struct Host {
    pub id: i64,
    #[lookup]
    pub hostname: String,
    #[default]
    pub software: String,
}

diesel::define_sql_function! {
    /// crates.io's canonical crate name, registered on each SQLite connection.
    fn canon_name(name: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `replace(lower(name), '-', '_')`, as the database computes `canon_name`.
pub fn canon(name: &str) -> String {
    name.to_lowercase().replace('-', "_")
}

/// An isolation level (or SQLite transaction kind) and how to run a transaction at it.
pub struct Level<C> {
    /// As the backend names it.
    pub name: &'static str,
    /// Session settings, on each new connection.
    pub prepare: fn(&mut C),
    /// Runs `body` in one transaction.
    pub run: Transaction<C>,
    /// Whether a transaction that lost a race must be rerun at this level.
    pub retries: bool,
}

/// Runs a body in a transaction of some level.
pub type Transaction<C> =
    fn(&mut C, &mut dyn FnMut(&mut C) -> Result<Vec<Got>, Error>) -> Result<Vec<Got>, Error>;

/// What a backend offers the tests of `tests/keys.rs`, on top of [`TestDb`].
pub trait KeysDb:
    TestDb<
    Conn: GocConnection<Instance>
              + GocConnection<InstanceExact>
              + GocConnection<LemmyInstance>
              + GocConnection<LemmyInstanceFixed>
              + GocConnection<LemmyInstanceAdvised>
              + GocConnection<Krate>
              + GocConnection<KrateExact>
              + GocConnection<Category>
              + GocConnection<CategoryCi>
              + GocConnection<GhUser>
              + GocConnection<GhUserAny>
              + GocConnection<GhUserNotLegacy>
              + GocConnection<Subscriber>
              + GocConnection<Language>
              + GocConnection<Region>
              + GocConnection<Coded>
              + GocConnection<TopicNocase>
              + GocConnection<TopicCi>
              + GocConnection<TopicBin>
              + GocConnection<Host>,
>
{
    /// The statements that create this module's tables (and functions, collations).
    const DDL: &'static [&'static str];

    /// A new isolated database holding the harness's tables and this module's.
    fn create_keys() -> Self {
        let db = Self::create();
        let mut conn = db.keys_connect();
        // One batch: one round trip (and on PostgreSQL one transaction).
        Self::exec(&mut conn, &Self::DDL.join(";\n"));
        db
    }

    /// A new connection, with what this module's tables need (SQLite: `canon_name`).
    fn keys_connect(&self) -> Self::Conn {
        let mut conn = self.connect();
        Self::prepare_keys(&mut conn);
        conn
    }

    /// What a connection needs for this module's tables.
    fn prepare_keys(_conn: &mut Self::Conn) {}

    /// Runs SQL, panicking with it on error.
    fn exec(conn: &mut Self::Conn, sql: &str) {
        conn.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{}: {sql}: {e}", Self::NAME));
    }

    /// The isolation levels (SQLite: transaction kinds) the backend offers.
    fn levels() -> Vec<Level<Self::Conn>>;

    /// Every row of a table, ordered by id.
    fn instances(conn: &mut Self::Conn) -> Vec<Instance>;
    fn domains_exact(conn: &mut Self::Conn) -> Vec<LemmyInstance>;
    fn krates(conn: &mut Self::Conn) -> Vec<Krate>;
    fn categories(conn: &mut Self::Conn) -> Vec<Category>;
    fn gh_users(conn: &mut Self::Conn) -> Vec<GhUserAny>;
    fn subscribers(conn: &mut Self::Conn) -> Vec<Subscriber>;
    fn languages(conn: &mut Self::Conn) -> Vec<Language>;
    fn regions(conn: &mut Self::Conn) -> Vec<Region>;
    fn codes(conn: &mut Self::Conn) -> Vec<Coded>;
    fn topics(conn: &mut Self::Conn) -> Vec<(i64, String, String)>;
    fn hosts(conn: &mut Self::Conn) -> Vec<Host>;
}

/// The loaders of [`KeysDb`], the same code on each backend's concrete connection.
macro_rules! loaders {
    () => {
        fn instances(conn: &mut Self::Conn) -> Vec<Instance> {
            instances::table
                .order(instances::id)
                .select(Instance::as_select())
                .load(conn)
                .expect("instances")
        }
        fn domains_exact(conn: &mut Self::Conn) -> Vec<LemmyInstance> {
            domains_exact::table
                .order(domains_exact::id)
                .select(LemmyInstance::as_select())
                .load(conn)
                .expect("domains_exact")
        }
        fn krates(conn: &mut Self::Conn) -> Vec<Krate> {
            krates::table
                .order(krates::id)
                .select(Krate::as_select())
                .load(conn)
                .expect("krates")
        }
        fn categories(conn: &mut Self::Conn) -> Vec<Category> {
            categories::table
                .order(categories::id)
                .select(Category::as_select())
                .load(conn)
                .expect("categories")
        }
        fn gh_users(conn: &mut Self::Conn) -> Vec<GhUserAny> {
            gh_users::table
                .order(gh_users::id)
                .select(GhUserAny::as_select())
                .load(conn)
                .expect("gh_users")
        }
        fn subscribers(conn: &mut Self::Conn) -> Vec<Subscriber> {
            subscribers::table
                .order(subscribers::id)
                .select(Subscriber::as_select())
                .load(conn)
                .expect("subscribers")
        }
        fn languages(conn: &mut Self::Conn) -> Vec<Language> {
            languages::table
                .order(languages::id)
                .select(Language::as_select())
                .load(conn)
                .expect("languages")
        }
        fn regions(conn: &mut Self::Conn) -> Vec<Region> {
            regions::table
                .order(regions::id)
                .select(Region::as_select())
                .load(conn)
                .expect("regions")
        }
        fn codes(conn: &mut Self::Conn) -> Vec<Coded> {
            codes::table
                .order(codes::id)
                .select(Coded::as_select())
                .load(conn)
                .expect("codes")
        }
        fn topics(conn: &mut Self::Conn) -> Vec<(i64, String, String)> {
            topics::table
                .order(topics::id)
                .select((topics::id, topics::name, topics::color))
                .load(conn)
                .expect("topics")
        }
        fn hosts(conn: &mut Self::Conn) -> Vec<Host> {
            hosts::table
                .order(hosts::id)
                .select(Host::as_select())
                .load(conn)
                .expect("hosts")
        }
    };
}

impl KeysDb for SqliteDb {
    const DDL: &'static [&'static str] = &[
        "CREATE TABLE instances (id INTEGER PRIMARY KEY AUTOINCREMENT,
            domain TEXT NOT NULL UNIQUE, software TEXT NOT NULL)",
        "CREATE UNIQUE INDEX instances_domain_lower ON instances (lower(domain))",
        "CREATE TABLE domains_exact (id INTEGER PRIMARY KEY AUTOINCREMENT,
            domain TEXT NOT NULL UNIQUE, software TEXT NOT NULL)",
        "CREATE TABLE krates (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
            description TEXT NOT NULL)",
        "CREATE UNIQUE INDEX krates_canon_name ON krates (canon_name(name))",
        "CREATE TABLE categories (id INTEGER PRIMARY KEY AUTOINCREMENT,
            category TEXT NOT NULL CONSTRAINT categories_category_key UNIQUE,
            slug TEXT NOT NULL CONSTRAINT categories_slug_key UNIQUE,
            description TEXT NOT NULL)",
        "CREATE UNIQUE INDEX categories_slug_lower ON categories (lower(slug))",
        "CREATE TABLE gh_users (id INTEGER PRIMARY KEY AUTOINCREMENT, gh_id INTEGER NOT NULL,
            gh_login TEXT NOT NULL)",
        "CREATE UNIQUE INDEX gh_users_gh_id ON gh_users (gh_id) WHERE gh_id > 0",
        "CREATE TABLE subscribers (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL,
            name TEXT NOT NULL, deleted_at INTEGER)",
        "CREATE UNIQUE INDEX subscribers_live_email ON subscribers (email)
            WHERE deleted_at IS NULL",
        "CREATE TABLE languages (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL,
            name TEXT NOT NULL)",
        "CREATE TABLE regions (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL,
            name TEXT NOT NULL)",
        "CREATE TABLE codes (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT UNIQUE,
            label TEXT NOT NULL)",
        "CREATE TABLE topics (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
            color TEXT NOT NULL)",
        "CREATE UNIQUE INDEX topics_name_nocase ON topics (name COLLATE NOCASE)",
        "CREATE TABLE hosts (id INTEGER PRIMARY KEY AUTOINCREMENT,
            hostname TEXT NOT NULL UNIQUE COLLATE NOCASE, software TEXT NOT NULL)",
    ];

    fn prepare_keys(conn: &mut SqliteConnection) {
        canon_name_utils::register_impl(conn, |name: String| canon(&name))
            .expect("register canon_name");
        // Commits wait for no fsync: the races measure contention, not the disk.
        conn.batch_execute("PRAGMA synchronous = NORMAL")
            .expect("synchronous");
    }

    fn levels() -> Vec<Level<SqliteConnection>> {
        vec![
            Level {
                name: "deferred",
                prepare: |_| {},
                run: |conn, body| conn.transaction(body),
                retries: true,
            },
            Level {
                name: "immediate",
                prepare: |_| {},
                run: |conn, body| conn.immediate_transaction(body),
                retries: false,
            },
            Level {
                name: "exclusive",
                prepare: |_| {},
                run: |conn, body| conn.exclusive_transaction(body),
                retries: false,
            },
        ]
    }

    loaders!();
}

impl KeysDb for PgDb {
    const DDL: &'static [&'static str] = &[
        // In the test's schema, which is first on the search_path of every connection.
        "CREATE COLLATION goc_ci (provider = icu, locale = 'und-u-ks-level2',
            deterministic = false)",
        "CREATE FUNCTION canon_name(text) RETURNS text LANGUAGE sql IMMUTABLE
            AS $$ SELECT replace(lower($1), '-', '_') $$",
        "CREATE TABLE instances (id BIGSERIAL PRIMARY KEY,
            domain TEXT NOT NULL CONSTRAINT instances_domain_key UNIQUE,
            software TEXT NOT NULL)",
        "CREATE UNIQUE INDEX instances_domain_lower ON instances (lower(domain))",
        "CREATE TABLE domains_exact (id BIGSERIAL PRIMARY KEY,
            domain TEXT NOT NULL CONSTRAINT domains_exact_domain_key UNIQUE,
            software TEXT NOT NULL)",
        "CREATE TABLE krates (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL,
            description TEXT NOT NULL)",
        "CREATE UNIQUE INDEX krates_canon_name ON krates (canon_name(name))",
        "CREATE TABLE categories (id BIGSERIAL PRIMARY KEY,
            category TEXT NOT NULL CONSTRAINT categories_category_key UNIQUE,
            slug TEXT NOT NULL CONSTRAINT categories_slug_key UNIQUE,
            description TEXT NOT NULL)",
        "CREATE UNIQUE INDEX categories_slug_lower ON categories (lower(slug))",
        "CREATE TABLE gh_users (id BIGSERIAL PRIMARY KEY, gh_id INTEGER NOT NULL,
            gh_login TEXT NOT NULL)",
        "CREATE UNIQUE INDEX gh_users_gh_id ON gh_users (gh_id) WHERE gh_id > 0",
        "CREATE TABLE subscribers (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL,
            name TEXT NOT NULL, deleted_at BIGINT)",
        "CREATE UNIQUE INDEX subscribers_live_email ON subscribers (email)
            WHERE deleted_at IS NULL",
        "CREATE TABLE languages (id BIGSERIAL PRIMARY KEY, code TEXT NOT NULL,
            name TEXT NOT NULL)",
        "CREATE TABLE regions (id BIGSERIAL PRIMARY KEY, code TEXT NOT NULL,
            name TEXT NOT NULL)",
        "CREATE TABLE codes (id BIGSERIAL PRIMARY KEY,
            code TEXT CONSTRAINT codes_code_key UNIQUE NULLS NOT DISTINCT,
            label TEXT NOT NULL)",
        "CREATE TABLE topics (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL,
            color TEXT NOT NULL)",
        "CREATE UNIQUE INDEX topics_name_ci ON topics (name COLLATE goc_ci)",
        "CREATE TABLE hosts (id BIGSERIAL PRIMARY KEY,
            hostname TEXT COLLATE goc_ci NOT NULL CONSTRAINT hosts_hostname_key UNIQUE,
            software TEXT NOT NULL)",
    ];

    fn create_keys() -> Self {
        let db = Self::create();
        let mut conn = db.keys_connect();
        // The collations of `topics` and `hosts` are ICU's: a server built without ICU
        // fails here, said plainly, rather than in every test's set-up.
        let (collation, rest) = Self::DDL.split_first().expect("DDL");
        if let Err(e) = conn.batch_execute(collation) {
            panic!(
                "this PostgreSQL server cannot create the ICU collation the collation tests \
                 need ({e}); use one built with ICU, like the PostgreSQL 18 of scripts/setup.sh"
            );
        }
        Self::exec(&mut conn, &rest.join(";\n"));
        db
    }

    fn levels() -> Vec<Level<PgConnection>> {
        vec![
            Level {
                name: "READ COMMITTED",
                prepare: |_| {},
                run: |conn, body| conn.build_transaction().read_committed().run(body),
                retries: false,
            },
            Level {
                name: "REPEATABLE READ",
                prepare: |_| {},
                run: |conn, body| conn.build_transaction().repeatable_read().run(body),
                retries: true,
            },
            Level {
                name: "SERIALIZABLE",
                prepare: |_| {},
                run: |conn, body| conn.build_transaction().serializable().run(body),
                retries: true,
            },
        ]
    }

    loaders!();
}

/// `SET SESSION TRANSACTION ISOLATION LEVEL ..`
#[cfg(feature = "mysql")]
fn mysql_level(conn: &mut MysqlConnection, level: &str) {
    conn.batch_execute(&format!("SET SESSION TRANSACTION ISOLATION LEVEL {level}"))
        .expect("isolation level");
}

#[cfg(feature = "mysql")]
impl KeysDb for MysqlDb {
    const DDL: &'static [&'static str] = &[
        // For lookups only: MariaDB cannot index a stored function, so the unique key is
        // on a generated column computing the same.
        "CREATE FUNCTION canon_name(s VARCHAR(255)) RETURNS VARCHAR(255) DETERMINISTIC
            RETURN REPLACE(LOWER(s), '-', '_')",
        // The database's default collation, utf8mb4_general_ci, ignores case.
        "CREATE TABLE instances (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            domain VARCHAR(191) NOT NULL, software TEXT NOT NULL,
            UNIQUE KEY instances_domain_key (domain))",
        "CREATE TABLE domains_exact (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            domain VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
            software TEXT NOT NULL, UNIQUE KEY domains_exact_domain_key (domain))",
        "CREATE TABLE krates (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(191) NOT NULL, description TEXT NOT NULL,
            name_key VARCHAR(191) AS (REPLACE(LOWER(name), '-', '_')) PERSISTENT,
            UNIQUE KEY krates_canon_name (name_key))",
        // `category` first: InnoDB checks unique keys in this order, so the error of an
        // insert that clashes on both names `category`, the index that is not the key's.
        "CREATE TABLE categories (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            category VARCHAR(191) NOT NULL, slug VARCHAR(191) NOT NULL,
            description TEXT NOT NULL,
            UNIQUE KEY categories_category_key (category),
            UNIQUE KEY categories_slug_key (slug))",
        "CREATE TABLE gh_users (id BIGINT AUTO_INCREMENT PRIMARY KEY, gh_id INT NOT NULL,
            gh_login VARCHAR(191) NOT NULL,
            gh_id_live INT AS (IF(gh_id > 0, gh_id, NULL)) PERSISTENT,
            UNIQUE KEY gh_users_gh_id (gh_id_live))",
        "CREATE TABLE subscribers (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            email VARCHAR(191) NOT NULL, name TEXT NOT NULL, deleted_at BIGINT NULL,
            live_email VARCHAR(191) AS (IF(deleted_at IS NULL, email, NULL)) PERSISTENT,
            UNIQUE KEY subscribers_live_email (live_email))",
        "CREATE TABLE languages (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            code VARCHAR(16) NOT NULL, name TEXT NOT NULL)",
        "CREATE TABLE regions (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            code VARCHAR(16) NOT NULL, name TEXT NOT NULL)",
        "CREATE TABLE codes (id BIGINT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(191) NULL,
            label TEXT NOT NULL, UNIQUE KEY codes_code_key (code))",
        "CREATE TABLE topics (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(191) NOT NULL, color TEXT NOT NULL,
            UNIQUE KEY topics_name_key (name))",
        "CREATE TABLE hosts (id BIGINT AUTO_INCREMENT PRIMARY KEY,
            hostname VARCHAR(191) NOT NULL, software TEXT NOT NULL,
            UNIQUE KEY hosts_hostname_key (hostname))",
    ];

    fn levels() -> Vec<Level<MysqlConnection>> {
        vec![
            Level {
                name: "READ COMMITTED",
                prepare: |conn| mysql_level(conn, "READ COMMITTED"),
                run: |conn, body| conn.transaction(body),
                retries: false,
            },
            Level {
                name: "REPEATABLE READ",
                prepare: |conn| mysql_level(conn, "REPEATABLE READ"),
                run: |conn, body| conn.transaction(body),
                retries: false,
            },
            Level {
                name: "SERIALIZABLE",
                prepare: |conn| mysql_level(conn, "SERIALIZABLE"),
                run: |conn, body| conn.transaction(body),
                retries: true,
            },
        ]
    }

    loaders!();
}

/// What a backend's diesel-async connection must offer the async tests of
/// `tests/keys.rs`.
pub trait KeysAsyncDb:
    KeysDb
    + AsyncTestDb<
        AsyncConn: AsyncGocConnection<Instance>
                       + AsyncGocConnection<Host>
                       + AsyncGocConnection<Category>
                       + AsyncGocConnection<GhUser>
                       + AsyncGocConnection<GhUserAny>
                       + AsyncGocConnection<Subscriber>
                       + AsyncGocConnection<Language>,
    >
{
}

impl KeysAsyncDb for SqliteDb {}
impl KeysAsyncDb for PgDb {}
#[cfg(feature = "mysql")]
impl KeysAsyncDb for MysqlDb {}

/// Whether `D` is MySQL/MariaDB, where expression and partial keys cannot create rows.
pub fn is_mysql<D: TestDb>() -> bool {
    D::NAME == MYSQL_NAME
}

/// Whether `D` is SQLite.
pub fn is_sqlite<D: TestDb>() -> bool {
    D::NAME == SqliteDb::NAME
}

/// The `variant`th spelling of `base`: lower case, upper case, capitalised parts, or
/// alternating case; with `swap_dashes`, also `-` and `_` swapped in odd variants.
pub fn spelling(base: &str, variant: usize, swap_dashes: bool) -> String {
    let cased: String = match variant % 4 {
        0 => base.to_lowercase(),
        1 => base.to_uppercase(),
        2 => {
            let mut start = true;
            base.chars()
                .map(|c| {
                    let out = if start {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                    start = !c.is_ascii_alphanumeric();
                    out
                })
                .collect()
        }
        _ => base
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    };
    if swap_dashes && variant % 2 == 1 {
        cased
            .chars()
            .map(|c| match c {
                '-' => '_',
                '_' => '-',
                c => c,
            })
            .collect()
    } else {
        cased
    }
}

/// The defaults' marker of the thread that made a call: a row created by thread 3 holds
/// `t3`, so the table tells who created each row.
pub fn tag(thread: usize) -> String {
    format!("t{thread}")
}

/// A row as the race checks see it: its id, its key as stored, and the defaults' marker
/// ([`tag`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub key: String,
    pub tag: String,
}

/// What one call got: the row and whether the call created it.
#[derive(Clone, Debug)]
pub struct Got {
    pub row: Row,
    pub created: bool,
}

impl Got {
    pub fn new(id: i64, key: &str, tag: &str, created: bool) -> Self {
        Got {
            row: Row {
                id,
                key: key.to_owned(),
                tag: tag.to_owned(),
            },
            created,
        }
    }
}

/// One call of a race: which thread asked for which key, spelled how, and what it got
/// (or the kind of its error, see [`kind`]).
#[derive(Clone, Debug)]
pub struct Call {
    pub thread: usize,
    pub key: usize,
    pub asked: String,
    pub outcome: Result<Got, String>,
}

/// The shape of a race.
#[derive(Clone, Copy, Debug)]
pub struct Race {
    /// Threads (tasks), each with a connection of its own.
    pub threads: usize,
    /// Keys; every thread asks for every key, in its own spelling.
    pub keys: usize,
    /// Shuffled per thread, or the same order with all threads at each key together.
    pub order: Order,
    /// Keys per call: 1 for the single calls, more for `get_or_create_many`.
    pub batch: usize,
    /// The first key: races on one database use disjoint ranges of keys.
    pub offset: usize,
}

impl Race {
    /// The same race on the next `keys` keys, for another race on the same database.
    pub fn after(self, previous: Race) -> Race {
        Race {
            offset: previous.offset + previous.keys,
            ..self
        }
    }
}

/// Every call of a race.
#[derive(Debug, Default)]
pub struct Report {
    pub calls: Vec<Call>,
    pub elapsed: Duration,
}

/// The keys each thread asks for, in its order, cut into calls of `race.batch` keys.
pub fn thread_plan(race: Race) -> Vec<Vec<usize>> {
    let mut keys: Vec<usize> = (race.offset..race.offset + race.keys).collect();
    if race.order == Order::Shuffled {
        keys.shuffle(&mut rand::rng());
    }
    keys.chunks(race.batch.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// A short, stable name for the kind of an error, to count errors by kind.
pub fn kind(error: &Error) -> String {
    match error {
        Error::Database(error) => format!("Database({})", crate::race::diesel_kind(error)),
        Error::NoUniqueIndex { .. } => "NoUniqueIndex".into(),
        Error::CreatedOutsideFilter { .. } => "CreatedOutsideFilter".into(),
        Error::KeyNotSupported { .. } => "KeyNotSupported".into(),
        other => crate::race::kind(other),
    }
}

/// The calls a batch of keys made, from what the call returned.
pub fn record(
    thread: usize,
    keys: &[usize],
    asked: &[String],
    result: Result<Vec<Got>, Error>,
) -> Vec<Call> {
    let outcomes: Vec<Result<Got, String>> = match result {
        Ok(got) if got.len() == keys.len() => got.into_iter().map(Ok).collect(),
        Ok(got) => vec![Err(format!("{} results for {} keys", got.len(), keys.len())); keys.len()],
        Err(error) => vec![Err(kind(&error)); keys.len()],
    };
    keys.iter()
        .zip(asked)
        .zip(outcomes)
        .map(|((&key, asked), outcome)| Call {
            thread,
            key,
            asked: asked.clone(),
            outcome,
        })
        .collect()
}

/// A racing call: the connection, the thread, the spellings of a batch of keys; one
/// [`Got`] per key.
pub type BatchCall<C> = fn(&mut C, usize, &[String]) -> Result<Vec<Got>, Error>;

/// Runs a race on separate connections in real threads: each thread prepares its
/// connection, then asks for every key, spelled `spell(key, thread)`, through `call`
/// (given the thread and the spellings of one batch of keys). Threads start together;
/// in lockstep they also wait for each other before every batch.
pub fn race<D, P, S, F>(db: &D, race: Race, prepare: P, spell: S, call: F) -> Report
where
    D: KeysDb,
    P: Fn(&mut D::Conn) + Sync,
    S: Fn(usize, usize) -> String + Sync,
    F: Fn(&mut D::Conn, usize, &[String]) -> Result<Vec<Got>, Error> + Sync,
{
    let barrier = Barrier::new(race.threads);
    let started = std::sync::OnceLock::new();
    let (prepare, spell, call) = (&prepare, &spell, &call);
    let calls: Vec<Vec<Call>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..race.threads)
            .map(|thread| {
                let (barrier, started) = (&barrier, &started);
                scope.spawn(move || {
                    let mut conn = db.keys_connect();
                    prepare(&mut conn);
                    let plan = thread_plan(race);
                    let mut calls = Vec::with_capacity(race.keys);
                    barrier.wait();
                    started.get_or_init(Instant::now);
                    for keys in plan {
                        if race.order == Order::Lockstep {
                            barrier.wait();
                        }
                        let asked: Vec<String> = keys.iter().map(|&k| spell(k, thread)).collect();
                        let result = call(&mut conn, thread, &asked);
                        calls.extend(record(thread, &keys, &asked, result));
                    }
                    calls
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a racing thread panicked"))
            .collect()
    });
    Report {
        calls: calls.into_iter().flatten().collect(),
        elapsed: started.get().map_or(Duration::ZERO, Instant::elapsed),
    }
}

impl Report {
    /// The errors, counted by kind.
    pub fn errors(&self) -> BTreeMap<String, usize> {
        let mut errors = BTreeMap::new();
        for call in &self.calls {
            if let Err(kind) = &call.outcome {
                *errors.entry(kind.clone()).or_default() += 1;
            }
        }
        errors
    }

    /// How many calls said they created their row.
    pub fn creators(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| matches!(&c.outcome, Ok(got) if got.created))
            .count()
    }

    /// One line with the race's figures, printed for the record (`--nocapture`).
    pub fn summary(&self, backend: &str, what: &str, rows: usize) -> String {
        let secs = self.elapsed.as_secs_f64();
        format!(
            "{backend} {what}: {} calls in {secs:.2} s ({:.0}/s), {rows} rows, {} creators, \
             errors {:?}",
            self.calls.len(),
            self.calls.len() as f64 / secs.max(1e-9),
            self.creators(),
            self.errors()
        )
    }

    fn per_key(&self) -> BTreeMap<usize, Vec<&Call>> {
        let mut per_key: BTreeMap<usize, Vec<&Call>> = BTreeMap::new();
        for call in &self.calls {
            per_key.entry(call.key).or_default().push(call);
        }
        per_key
    }

    /// The stored rows of the race's keys, by key: `canon` maps a spelling to the key's
    /// canonical form, and a key must have one row at most. (Rows of other keys belong to
    /// other races on the same database, or to the seed.)
    fn stored_by_key<'r>(
        &self,
        what: &str,
        stored: &'r [Row],
        canon: &impl Fn(&str) -> String,
    ) -> HashMap<usize, &'r Row> {
        let keys: HashMap<String, usize> = self
            .calls
            .iter()
            .map(|call| (canon(&call.asked), call.key))
            .collect();
        let mut by_key: HashMap<usize, &Row> = HashMap::new();
        for row in stored {
            let Some(key) = keys.get(&canon(&row.key)) else {
                continue;
            };
            if let Some(other) = by_key.insert(*key, row) {
                panic!("{what}: key {key} has two rows: {other:?} and {row:?}");
            }
        }
        by_key
    }

    /// What every check of a race that must not fail asks: no error; every key asked for
    /// by every thread; one stored row per key, with one creator among its calls, who
    /// spelled it as it is stored. Then `check` is given each key's calls, its creator and
    /// its row. Returns how many rows the race's keys have, for the caller's count of the
    /// whole table.
    fn each_created_once(
        &self,
        what: &str,
        race: Race,
        stored: &[Row],
        canon: impl Fn(&str) -> String,
        mut check: impl FnMut(usize, &[&Call], &Call, &Row),
    ) -> usize {
        let errors = self.errors();
        assert!(errors.is_empty(), "{what}: errors {errors:?}");
        let per_key = self.per_key();
        assert_eq!(per_key.len(), race.keys, "{what}: keys asked for");
        let stored_by_key = self.stored_by_key(what, stored, &canon);
        assert_eq!(stored_by_key.len(), race.keys, "{what}: one row per key");
        for (key, calls) in &per_key {
            assert_eq!(calls.len(), race.threads, "{what}: calls of key {key}");
            let row = stored_by_key
                .get(key)
                .unwrap_or_else(|| panic!("{what}: key {key} has no row"));
            let creators: Vec<&&Call> = calls
                .iter()
                .filter(|c| matches!(&c.outcome, Ok(got) if got.created))
                .collect();
            assert_eq!(
                creators.len(),
                1,
                "{what}: key {key} has {} creators: {creators:?}",
                creators.len()
            );
            assert_eq!(
                row.key, creators[0].asked,
                "{what}: key {key} is stored as spelled by its creator"
            );
            check(*key, calls, creators[0], row);
        }
        stored_by_key.len()
    }

    /// The check of a race of the calls that only create: as `each_created_once`,
    /// and each key's row holds its creator's defaults and is the row every caller got.
    pub fn assert_exact(
        &self,
        what: &str,
        race: Race,
        stored: &[Row],
        canon: impl Fn(&str) -> String,
    ) -> usize {
        self.each_created_once(what, race, stored, canon, |key, calls, creator, row| {
            assert_eq!(
                row.tag,
                tag(creator.thread),
                "{what}: key {key} holds its creator's defaults"
            );
            for call in calls {
                let Ok(got) = &call.outcome else {
                    unreachable!("no errors")
                };
                assert_eq!(
                    &got.row, row,
                    "{what}: thread {} asked for {:?} and got another row than the stored one",
                    call.thread, call.asked
                );
            }
        })
    }

    /// The check of a race of `update_or_create_many`, whose callers write every key: as
    /// `each_created_once`, and each key's row is the row every caller got (by
    /// id), holding the values of one of its callers.
    pub fn assert_upserted(
        &self,
        what: &str,
        race: Race,
        stored: &[Row],
        canon: impl Fn(&str) -> String,
    ) -> usize {
        self.each_created_once(what, race, stored, canon, |key, calls, _, row| {
            let got: Vec<&Got> = calls
                .iter()
                .filter_map(|c| c.outcome.as_ref().ok())
                .collect();
            assert!(
                got.iter().all(|g| g.row.id == row.id),
                "{what}: key {key}: callers got {got:?}, the row is {row:?}"
            );
            assert!(
                calls.iter().any(|c| tag(c.thread) == row.tag),
                "{what}: key {key} holds {row:?}, the values of none of its callers"
            );
        })
    }

    /// The check of a race in which some calls may fail with an error that `allowed`
    /// accepts (a transaction that must be retried): a key has a row exactly when a
    /// successful call got it, exactly one successful call created it, and every
    /// successful caller got that row. Returns how many rows the race's keys have.
    pub fn assert_consistent(
        &self,
        what: &str,
        stored: &[Row],
        canon: impl Fn(&str) -> String,
        allowed: impl Fn(&str) -> bool,
    ) -> usize {
        let unexpected: Vec<_> = self
            .errors()
            .into_iter()
            .filter(|(kind, _)| !allowed(kind))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{what}: unexpected errors {unexpected:?}"
        );
        let stored_by_key = self.stored_by_key(what, stored, &canon);
        for (key, calls) in self.per_key() {
            let got: Vec<&Got> = calls
                .iter()
                .filter_map(|c| c.outcome.as_ref().ok())
                .collect();
            match stored_by_key.get(&key) {
                None => assert!(
                    got.is_empty(),
                    "{what}: key {key} has no row, yet calls got {got:?}"
                ),
                Some(row) => {
                    let creators = got.iter().filter(|g| g.created).count();
                    assert_eq!(creators, 1, "{what}: creators of key {key}: {got:?}");
                    assert!(
                        got.iter().all(|g| &g.row == *row),
                        "{what}: callers of key {key} got {got:?}, the row is {row:?}"
                    );
                }
            }
        }
        stored_by_key.len()
    }
}

/// A model of this module as the generic tests see it: a key spelled as a string, a row
/// as a [`Row`].
pub trait Keyed: GetOrCreate + Clone + PartialEq + std::fmt::Debug + Send {
    /// The table, as `TestDb::count` takes it.
    const TABLE: &'static str;
    /// The lookup of `key`.
    fn lookup(key: &str) -> Self::Lookup;
    /// The defaults a caller marked `tag` creates the row of `key` with.
    fn defaults(key: &str, tag: &str) -> Self::Defaults;
    /// The changes of `update_or_create_with` that set the marker to `tag`.
    fn changes(tag: &str) -> Self::Changes;
    /// The row as the checks see it.
    fn row(&self) -> Row;
    /// What the key's unique index makes of a spelling.
    fn canon(key: &str) -> String {
        key.to_lowercase()
    }
    /// The rows of the table that the key can find (a partial index's rows), by id.
    fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row>;
}

/// [`Keyed`] for a model with a text key and one text default, the marker.
macro_rules! keyed {
    ($model:ident, $lookup:ident.$key:ident, $defaults:ident.$tag:ident, $changes:ident,
     $table:literal, $loader:ident) => {
        impl Keyed for $model {
            const TABLE: &'static str = $table;
            fn lookup(key: &str) -> $lookup {
                $lookup {
                    $key: key.to_owned(),
                }
            }
            fn defaults(_key: &str, tag: &str) -> $defaults {
                $defaults {
                    $tag: tag.to_owned(),
                }
            }
            fn changes(tag: &str) -> $changes {
                $changes {
                    $tag: Some(tag.to_owned()),
                }
            }
            fn row(&self) -> Row {
                Row {
                    id: self.id,
                    key: self.$key.clone(),
                    tag: self.$tag.clone(),
                }
            }
            fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
                D::$loader(conn).iter().map(|r| r.row()).collect()
            }
        }
    };
}

keyed!(
    Instance,
    InstanceLookup.domain,
    InstanceDefaults.software,
    InstanceChanges,
    "instances",
    instances
);
keyed!(
    Host,
    HostLookup.hostname,
    HostDefaults.software,
    HostChanges,
    "hosts",
    hosts
);
keyed!(
    Language,
    LanguageLookup.code,
    LanguageDefaults.name,
    LanguageChanges,
    "languages",
    languages
);
keyed!(
    Region,
    RegionLookup.code,
    RegionDefaults.name,
    RegionChanges,
    "regions",
    regions
);
keyed!(
    LemmyInstance,
    LemmyInstanceLookup.domain,
    LemmyInstanceDefaults.software,
    LemmyInstanceChanges,
    "domains_exact",
    domains_exact
);

/// [`Keyed`] for a model that shares its table (and loader) with another, whose rows the
/// loader returns as `$as`.
macro_rules! keyed_as {
    ($model:ident, $lookup:ident.$key:ident, $defaults:ident.$tag:ident, $changes:ident,
     $table:literal, $loader:ident) => {
        impl Keyed for $model {
            const TABLE: &'static str = $table;
            fn lookup(key: &str) -> $lookup {
                $lookup {
                    $key: key.to_owned(),
                }
            }
            fn defaults(_key: &str, tag: &str) -> $defaults {
                $defaults {
                    $tag: tag.to_owned(),
                }
            }
            fn changes(tag: &str) -> $changes {
                $changes {
                    $tag: Some(tag.to_owned()),
                }
            }
            fn row(&self) -> Row {
                Row {
                    id: self.id,
                    key: self.$key.clone(),
                    tag: self.$tag.clone(),
                }
            }
            fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
                D::$loader(conn).into_iter().map(|r| r.row()).collect()
            }
        }
    };
}

keyed_as!(
    InstanceExact,
    InstanceExactLookup.domain,
    InstanceExactDefaults.software,
    InstanceExactChanges,
    "instances",
    instances
);
keyed_as!(
    LemmyInstanceFixed,
    LemmyInstanceFixedLookup.domain,
    LemmyInstanceFixedDefaults.software,
    LemmyInstanceFixedChanges,
    "domains_exact",
    domains_exact
);
keyed_as!(
    LemmyInstanceAdvised,
    LemmyInstanceAdvisedLookup.domain,
    LemmyInstanceAdvisedDefaults.software,
    LemmyInstanceAdvisedChanges,
    "domains_exact",
    domains_exact
);
keyed_as!(
    KrateExact,
    KrateExactLookup.name,
    KrateExactDefaults.description,
    KrateExactChanges,
    "krates",
    krates
);

impl Keyed for Krate {
    const TABLE: &'static str = "krates";
    fn lookup(key: &str) -> KrateLookup {
        KrateLookup {
            name: key.to_owned(),
        }
    }
    fn defaults(_key: &str, tag: &str) -> KrateDefaults {
        KrateDefaults {
            description: tag.to_owned(),
        }
    }
    fn changes(tag: &str) -> KrateChanges {
        KrateChanges {
            description: Some(tag.to_owned()),
        }
    }
    fn row(&self) -> Row {
        Row {
            id: self.id,
            key: self.name.clone(),
            tag: self.description.clone(),
        }
    }
    fn canon(key: &str) -> String {
        canon(key)
    }
    fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
        D::krates(conn).iter().map(Keyed::row).collect()
    }
}

/// [`Keyed`] for the models of `topics`, whose loader returns tuples.
macro_rules! keyed_topic {
    ($model:ident, $lookup:ident, $defaults:ident, $changes:ident) => {
        impl Keyed for $model {
            const TABLE: &'static str = "topics";
            fn lookup(key: &str) -> $lookup {
                $lookup {
                    name: key.to_owned(),
                }
            }
            fn defaults(_key: &str, tag: &str) -> $defaults {
                $defaults {
                    color: tag.to_owned(),
                }
            }
            fn changes(tag: &str) -> $changes {
                $changes {
                    color: Some(tag.to_owned()),
                }
            }
            fn row(&self) -> Row {
                Row {
                    id: self.id,
                    key: self.name.clone(),
                    tag: self.color.clone(),
                }
            }
            fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
                D::topics(conn)
                    .into_iter()
                    .map(|(id, key, tag)| Row { id, key, tag })
                    .collect()
            }
        }
    };
}

keyed_topic!(
    TopicNocase,
    TopicNocaseLookup,
    TopicNocaseDefaults,
    TopicNocaseChanges
);
keyed_topic!(TopicCi, TopicCiLookup, TopicCiDefaults, TopicCiChanges);
keyed_topic!(TopicBin, TopicBinLookup, TopicBinDefaults, TopicBinChanges);

/// The category every spelling of a slug is created with: the same for all callers, so
/// that two callers of one key also clash on `category`, the second unique index.
pub fn category_of(slug: &str) -> String {
    format!("Category {}", slug.to_lowercase())
}

/// [`Keyed`] for the models of `categories`: the marker is the description.
macro_rules! keyed_category {
    ($model:ident, $lookup:ident, $defaults:ident, $changes:ident) => {
        impl Keyed for $model {
            const TABLE: &'static str = "categories";
            fn lookup(key: &str) -> $lookup {
                $lookup {
                    slug: key.to_owned(),
                }
            }
            fn defaults(key: &str, tag: &str) -> $defaults {
                $defaults {
                    category: category_of(key),
                    description: tag.to_owned(),
                }
            }
            fn changes(tag: &str) -> $changes {
                $changes {
                    category: None,
                    description: Some(tag.to_owned()),
                }
            }
            fn row(&self) -> Row {
                Row {
                    id: self.id,
                    key: self.slug.clone(),
                    tag: self.description.clone(),
                }
            }
            fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
                D::categories(conn)
                    .into_iter()
                    .map(|c| Row {
                        id: c.id,
                        key: c.slug,
                        tag: c.description,
                    })
                    .collect()
            }
        }
    };
}

keyed_category!(Category, CategoryLookup, CategoryDefaults, CategoryChanges);
keyed_category!(
    CategoryCi,
    CategoryCiLookup,
    CategoryCiDefaults,
    CategoryCiChanges
);

/// [`Keyed`] for the models of `gh_users`: the key is the number, written as text.
macro_rules! keyed_gh_user {
    ($model:ident, $lookup:ident, $defaults:ident, $changes:ident, $filter:expr) => {
        impl Keyed for $model {
            const TABLE: &'static str = "gh_users";
            fn lookup(key: &str) -> $lookup {
                $lookup {
                    gh_id: key.parse().expect("a number"),
                }
            }
            fn defaults(_key: &str, tag: &str) -> $defaults {
                $defaults {
                    gh_login: tag.to_owned(),
                }
            }
            fn changes(tag: &str) -> $changes {
                $changes {
                    gh_login: Some(tag.to_owned()),
                }
            }
            fn row(&self) -> Row {
                Row {
                    id: self.id,
                    key: self.gh_id.to_string(),
                    tag: self.gh_login.clone(),
                }
            }
            fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
                let filter: fn(i32) -> bool = $filter;
                D::gh_users(conn)
                    .into_iter()
                    .filter(|u| filter(u.gh_id))
                    .map(|u| Row {
                        id: u.id,
                        key: u.gh_id.to_string(),
                        tag: u.gh_login,
                    })
                    .collect()
            }
        }
    };
}

keyed_gh_user!(
    GhUser,
    GhUserLookup,
    GhUserDefaults,
    GhUserChanges,
    |gh_id| gh_id > 0
);
keyed_gh_user!(
    GhUserAny,
    GhUserAnyLookup,
    GhUserAnyDefaults,
    GhUserAnyChanges,
    |_| true
);
keyed_gh_user!(
    GhUserNotLegacy,
    GhUserNotLegacyLookup,
    GhUserNotLegacyDefaults,
    GhUserNotLegacyChanges,
    |gh_id| gh_id != -1
);

impl Keyed for Subscriber {
    const TABLE: &'static str = "subscribers";
    fn lookup(key: &str) -> SubscriberLookup {
        SubscriberLookup {
            email: key.to_owned(),
        }
    }
    fn defaults(_key: &str, tag: &str) -> SubscriberDefaults {
        SubscriberDefaults {
            name: tag.to_owned(),
        }
    }
    fn changes(tag: &str) -> SubscriberChanges {
        SubscriberChanges {
            name: Some(tag.to_owned()),
        }
    }
    fn row(&self) -> Row {
        Row {
            id: self.id,
            key: self.email.clone(),
            tag: self.name.clone(),
        }
    }
    fn canon(key: &str) -> String {
        key.to_owned()
    }
    /// The live rows only.
    fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
        D::subscribers(conn)
            .into_iter()
            .filter(|s| s.deleted_at.is_none())
            .map(|s| s.row())
            .collect()
    }
}

/// The key of [`Coded`] as text: `NULL` for none.
pub fn code_of(key: &str) -> Code {
    (key != "NULL").then(|| key.to_owned())
}

impl Keyed for Coded {
    const TABLE: &'static str = "codes";
    fn lookup(key: &str) -> CodedLookup {
        CodedLookup { code: code_of(key) }
    }
    fn defaults(_key: &str, tag: &str) -> CodedDefaults {
        CodedDefaults {
            label: tag.to_owned(),
        }
    }
    fn changes(tag: &str) -> CodedChanges {
        CodedChanges {
            label: Some(tag.to_owned()),
        }
    }
    fn row(&self) -> Row {
        let key = self.code.clone().unwrap_or_else(|| "NULL".to_owned());
        Row {
            id: self.id,
            key,
            tag: self.label.clone(),
        }
    }
    fn canon(key: &str) -> String {
        key.to_owned()
    }
    fn stored<D: KeysDb>(conn: &mut D::Conn) -> Vec<Row> {
        D::codes(conn).iter().map(Keyed::row).collect()
    }
}

/// One `get_or_create` of the first key of `asked`, for [`race`].
pub fn single_call<D, M>(
    conn: &mut D::Conn,
    thread: usize,
    asked: &[String],
) -> Result<Vec<Got>, Error>
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let key = &asked[0];
    let (row, created) = M::get_or_create(conn, M::lookup(key), M::defaults(key, &tag(thread)))?;
    Ok(vec![Got {
        row: row.row(),
        created,
    }])
}

/// One `get_or_create_many` of every key of `asked`, for [`race`].
pub fn bulk_call<D, M>(
    conn: &mut D::Conn,
    thread: usize,
    asked: &[String],
) -> Result<Vec<Got>, Error>
where
    D: KeysDb,
    M: Keyed,
    D::Conn: GocConnection<M>,
{
    let items = asked
        .iter()
        .map(|key| (M::lookup(key), M::defaults(key, &tag(thread))));
    let rows = M::get_or_create_many(conn, items)?;
    Ok(rows
        .into_iter()
        .map(|(row, created)| Got {
            row: row.row(),
            created,
        })
        .collect())
}
