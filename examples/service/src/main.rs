//! Runs the tag service: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! names the PostgreSQL database, `LISTEN_ADDR` (default `127.0.0.1:3000`) the address to
//! listen on. Try it with `curl -i -X PUT localhost:3000/tags/rust -d '{"color":"orange"}'
//! -H 'content-type: application/json'`.

use get_or_create_service_example::{app, create_table, pool};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    let listen_addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| DEFAULT_LISTEN_ADDR.into());

    let pool = pool(&database_url, 16);
    create_table(&pool).await?;
    let listener = tokio::net::TcpListener::bind(&listen_addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(pool))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
