//! Temporary smoke test: the async calls compile to `Send` futures and run.
use diesel_async::{AsyncConnection, AsyncPgConnection};
use get_or_create_core::AsyncGetOrCreate;
use get_or_create_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
async fn pg_send() {
    let db = PgDb::create();
    let url = db.url();
    let handle = tokio::spawn(async move {
        let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
        let lookup = || UserLookup {
            email: "a@x".into(),
        };
        let defaults = || UserDefaults {
            name: "A".into(),
            karma: 1,
        };
        let (a, created) =
            <User as AsyncGetOrCreate>::get_or_create(&mut conn, lookup(), defaults())
                .await
                .unwrap();
        assert!(created);
        let (b, created) =
            <User as AsyncGetOrCreate>::get_or_create_with(&mut conn, lookup(), defaults)
                .await
                .unwrap();
        assert!(!created);
        assert_eq!(a, b);
        let many =
            <User as AsyncGetOrCreate>::get_or_create_many(&mut conn, [(lookup(), defaults())])
                .await
                .unwrap();
        assert_eq!(many, [(a, false)]);
    });
    handle.await.unwrap();
    drop(db);
}
