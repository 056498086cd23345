//! A soft delete without a partial index, as the README advises for MySQL/MariaDB (which
//! have none): the key is unique over all rows, with a marker column that tells deleted
//! rows apart (`deleted_id`, 0 on a live row, the row's own id once it is deleted), and
//! `UNIQUE (email, deleted_id)`. On every backend; a race on it is checked against the
//! table.

use diesel::connection::SimpleConnection;
use get_or_create_tests::MYSQL_NAME;

use super::*;

diesel::table! {
    members (id) {
        id -> BigInt,
        email -> Text,
        deleted_id -> BigInt,
        name -> Text,
    }
}

/// A member, live while `deleted_id` is 0.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable, GetOrCreate)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: i64,
    #[lookup]
    pub email: String,
    #[lookup]
    pub deleted_id: i64,
    #[default]
    pub name: String,
}

get_or_create_tests::for_each_backend!(soft_delete_by_marker_column);

fn create_members<D: TestDb>(conn: &mut D::Conn) {
    let ddl = match D::NAME {
        PgDb::NAME => {
            "CREATE TABLE members (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL,
                deleted_id BIGINT NOT NULL DEFAULT 0, name TEXT NOT NULL,
                CONSTRAINT members_email_deleted_id UNIQUE (email, deleted_id))"
        }
        MYSQL_NAME => {
            "CREATE TABLE members (id BIGINT AUTO_INCREMENT PRIMARY KEY,
                email VARCHAR(191) NOT NULL, deleted_id BIGINT NOT NULL DEFAULT 0,
                name TEXT NOT NULL, UNIQUE KEY members_email_deleted_id (email, deleted_id))"
        }
        _ => {
            "CREATE TABLE members (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL,
                deleted_id INTEGER NOT NULL DEFAULT 0, name TEXT NOT NULL,
                UNIQUE (email, deleted_id))"
        }
    };
    conn.batch_execute(ddl).expect("CREATE TABLE members");
}

fn live(email: &str) -> MemberLookup {
    MemberLookup {
        email: email.into(),
        deleted_id: 0,
    }
}

fn named(name: &str) -> MemberDefaults {
    MemberDefaults { name: name.into() }
}

fn row(member: &Member) -> Row {
    Row {
        id: member.id,
        key: member.email.clone(),
        tag: member.name.clone(),
    }
}

/// The live row of each email is found and created as with a partial index; a deleted row
/// neither matches nor blocks a new live one; then 8 threads race over 64 emails, which
/// end with one live row each, created by one caller, the row every caller got.
fn soft_delete_by_marker_column<D: KeysDb>()
where
    D::Conn: GocConnection<Member>,
{
    let what = D::NAME;
    let db = D::create();
    let mut conn = db.keys_connect();
    create_members::<D>(&mut conn);

    let (ann, created) = Member::get_or_create(&mut conn, live("ann@x"), named("Ann")).unwrap();
    assert!(created, "{what}");
    let again = Member::get_or_create(&mut conn, live("ann@x"), named("x")).unwrap();
    assert_eq!(again, (ann.clone(), false), "{what}");

    // Soft delete: the next call creates a live row beside the deleted one.
    let delete = format!("UPDATE members SET deleted_id = id WHERE id = {}", ann.id);
    conn.batch_execute(&delete).expect("soft delete");
    let (ann2, created) = Member::get_or_create(&mut conn, live("ann@x"), named("Ann 2")).unwrap();
    assert!(created && ann2.id != ann.id, "{what}: {ann2:?}");

    let many = Member::get_or_create_many(
        &mut conn,
        [
            (live("ann@x"), named("x")),
            (live("bob@x"), named("Bob")),
            (live("ann@x"), named("y")),
        ],
    )
    .unwrap();
    let many: Vec<(Row, bool)> = many.iter().map(|(m, c)| (row(m), *c)).collect();
    let bob = many[1].0.clone();
    assert_eq!(
        many,
        [
            (row(&ann2), false),
            (bob.clone(), true),
            (row(&ann2), false)
        ],
        "{what}"
    );
    let (updated, created) =
        Member::update_or_create(&mut conn, live("ann@x"), named("Ann 3")).unwrap();
    assert_eq!(
        (updated.id, updated.name.as_str(), created),
        (ann2.id, "Ann 3", false)
    );
    assert_eq!(
        D::count(&mut conn, "members"),
        3,
        "{what}: the deleted row stays"
    );
    Member::check_schema(&mut conn).unwrap_or_else(|e| panic!("{what}: {e}"));

    let load = Race {
        threads: 8,
        keys: 64,
        order: Order::Shuffled,
        batch: 1,
        offset: 0,
    };
    let email = |key: usize, _thread: usize| format!("member{key}@x");
    let report = race(
        &db,
        load,
        |_| {},
        email,
        |conn, thread, asked| {
            let [email] = asked else {
                unreachable!("one key per call")
            };
            Member::get_or_create(conn, live(email), named(&tag(thread)))
                .map(|(m, created)| vec![Got::new(m.id, &m.email, &m.name, created)])
        },
    );
    let emails: Vec<String> = (0..load.keys).map(|key| email(key, 0)).collect();
    let stored = Member::get_or_create_many(
        &mut conn,
        emails.iter().map(|email| (live(email), named("unused"))),
    )
    .unwrap();
    assert!(stored.iter().all(|(_, created)| !created), "{what}");
    let stored: Vec<Row> = stored.iter().map(|(m, _)| row(m)).collect();
    report.assert_exact(what, load, &stored, str::to_owned);
    assert_eq!(D::count(&mut conn, "members"), 3 + 64, "{what}");
}
