//! The service on a real socket and a real PostgreSQL: many concurrent `PUT /tags/{name}`
//! requests over a few names. Each name is created by exactly one request (201), every
//! other request gets the same tag (200), and the table holds one row per name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use get_or_create_service_example::{app, create_table, pool, tags, Tag, DEFAULT_COLOR};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Barrier;

const REQUESTS: usize = 200;
const NAMES: usize = 20;

/// A PostgreSQL schema of the test's own, dropped at the end (also when the test fails).
struct Schema {
    server: String,
    name: String,
}

impl Schema {
    async fn create() -> Self {
        let server = std::env::var("PG_DATABASE_URL").expect("PG_DATABASE_URL is not set");
        let name = format!("svc_{}_{}", std::process::id(), rand_suffix());
        let mut admin = AsyncPgConnection::establish(&server)
            .await
            .expect("PG_DATABASE_URL: cannot connect to PostgreSQL");
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create the test's schema");
        Schema { server, name }
    }

    /// The server's URL with the schema first on every connection's `search_path`.
    fn url(&self) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.server, self.name
        )
    }
}

/// A few random digits, so that concurrent runs do not share a schema.
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) % 1_000_000_000
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop cannot await: a thread with a runtime of its own does the clean-up.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&server).await {
                    let _ = admin
                        .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// What a request asked for and what it got.
struct Answer {
    name: String,
    color: Option<String>,
    status: StatusCode,
    tag: Tag,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(goc_postgres), ignore = "PG_DATABASE_URL is not set")]
async fn concurrent_puts_create_each_tag_once() {
    let schema = Schema::create().await;
    let pool = pool(&schema.url(), 10);
    create_table(&pool).await.expect("create the table");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on the loopback interface");
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(pool)).await });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let start = Arc::new(Barrier::new(REQUESTS));
    let began = Instant::now();
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (client, start) = (client.clone(), Arc::clone(&start));
            let name = format!("tag-{}", i % NAMES);
            // Every third request has no body, and so asks for the default color.
            let color = (i % 3 != 0).then(|| format!("color-{i}"));
            tokio::spawn(async move {
                let mut request = Request::builder()
                    .method(Method::PUT)
                    .uri(format!("http://{address}/tags/{name}"));
                let body = match &color {
                    Some(color) => {
                        request = request.header(header::CONTENT_TYPE, "application/json");
                        Full::new(Bytes::from(format!(r#"{{"color": "{color}"}}"#)))
                    }
                    None => Full::default(),
                };
                let request = request.body(body).unwrap();
                start.wait().await;
                let response = client.request(request).await.expect("an HTTP response");
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let tag: Tag = serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!(
                        "{status}: not a tag ({e}): {}",
                        String::from_utf8_lossy(&body)
                    )
                });
                Answer {
                    name,
                    color,
                    status,
                    tag,
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("a request task panicked"));
    }
    let elapsed = began.elapsed();

    // Per name: exactly one 201, whose tag has the color that request asked for; every
    // other request 200 with the very same tag.
    let mut created: HashMap<&str, &Answer> = HashMap::new();
    for answer in &answers {
        assert_eq!(answer.tag.name, answer.name);
        match answer.status {
            StatusCode::CREATED => {
                let first = created.insert(&answer.name, answer);
                assert!(first.is_none(), "{} was created twice", answer.name);
                let asked = answer.color.as_deref().unwrap_or(DEFAULT_COLOR);
                assert_eq!(answer.tag.color, asked, "the creator's color is stored");
            }
            StatusCode::OK => {}
            status => panic!("{}: unexpected status {status}", answer.name),
        }
    }
    assert_eq!(created.len(), NAMES, "every name was created once");
    for answer in &answers {
        assert_eq!(
            answer.tag,
            created[answer.name.as_str()].tag,
            "{}: every request gets the same tag",
            answer.name
        );
    }

    let mut conn = AsyncPgConnection::establish(&schema.url()).await.unwrap();
    let stored: Vec<Tag> = tags::table
        .order(tags::id)
        .select(Tag::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), NAMES, "one row per name");
    for tag in &stored {
        assert_eq!(tag, &created[tag.name.as_str()].tag);
    }
    eprintln!(
        "{REQUESTS} concurrent PUTs over {NAMES} names: {NAMES} x 201, {} x 200, {elapsed:.2?}",
        REQUESTS - NAMES
    );
    server.abort();
}
