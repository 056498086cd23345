//! A web service that gets or creates tags: `PUT /tags/{name}` with an optional JSON body
//! `{"color": ".."}` (the color of a new tag) answers `201 Created` and the tag when this
//! request created it, `200 OK` and the stored tag when it existed, however many requests
//! race for the same name.
//!
//! axum on tokio, PostgreSQL through diesel-async (tokio-postgres: no libpq) and a
//! deadpool pool. `main.rs` runs it; `tests/concurrent_puts.rs` fires concurrent requests
//! at it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::{Pool, PoolError};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use get_or_create_core::asynchronous::GetOrCreate;
use get_or_create_core::Error;
use serde::{Deserialize, Serialize};

diesel::table! {
    tags (id) {
        id -> BigInt,
        name -> Text,
        color -> Text,
    }
}

/// The table, created by [`create_table`] if missing.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tags (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL
)";

/// A tag, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, GetOrCreate, Serialize, Deserialize)]
#[diesel(table_name = tags)]
pub struct Tag {
    pub id: i64,
    #[lookup]
    pub name: String,
    #[default]
    pub color: String,
}

/// The color of a tag created without one.
pub const DEFAULT_COLOR: &str = "grey";

/// The optional body of `PUT /tags/{name}`: the tag's color if it has to be created.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagBody {
    pub color: Option<String>,
}

/// The pool of the service's database connections.
pub type DbPool = Pool<AsyncPgConnection>;

/// A pool of at most `max_size` connections to `database_url`.
pub fn pool(database_url: &str, max_size: usize) -> DbPool {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .expect("a pool without a runtime or timeouts always builds")
}

/// Creates the `tags` table if it does not exist.
pub async fn create_table(pool: &DbPool) -> Result<(), ApiError> {
    let mut conn = pool.get().await?;
    conn.batch_execute(CREATE_TABLE)
        .await
        .map_err(Error::Database)?;
    Ok(())
}

/// The service's routes.
pub fn app(pool: DbPool) -> Router {
    Router::new()
        .route("/tags/{name}", put(put_tag))
        .with_state(pool)
}

/// `PUT /tags/{name}`: gets or creates the tag.
async fn put_tag(
    State(pool): State<DbPool>,
    Path(name): Path<String>,
    body: Option<Json<TagBody>>,
) -> Result<(StatusCode, Json<Tag>), ApiError> {
    let color = body.and_then(|Json(body)| body.color);
    let mut conn = pool.get().await?;
    let (tag, created) = Tag::get_or_create(
        &mut conn,
        TagLookup { name },
        TagDefaults {
            color: color.unwrap_or_else(|| DEFAULT_COLOR.into()),
        },
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(tag)))
}

/// What a request can fail with, answered as a status and a JSON body
/// `{"error": "<kind>", "message": ".."}`.
#[derive(Debug)]
pub enum ApiError {
    /// The library's error.
    GetOrCreate(Error),
    /// No connection could be had from the pool.
    Pool(PoolError),
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::GetOrCreate(error)
    }
}

impl From<PoolError> for ApiError {
    fn from(error: PoolError) -> Self {
        ApiError::Pool(error)
    }
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable name of the case, for programs.
    pub error: String,
    /// The error's message, for people.
    pub message: String,
}

impl ApiError {
    /// The status, a stable name, and whether a retry later may succeed.
    fn classify(&self) -> (StatusCode, &'static str, bool) {
        match self {
            // A default clashes with another row's unique column: the client's request
            // conflicts with the stored state.
            ApiError::GetOrCreate(Error::UniqueViolation { .. }) => {
                (StatusCode::CONFLICT, "unique_violation", false)
            }
            // Lost races or conflicts that a later attempt wins.
            ApiError::GetOrCreate(Error::TransactionMustBeRetried { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "must_retry", true)
            }
            ApiError::GetOrCreate(Error::RetriesExhausted { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "retries_exhausted", true)
            }
            ApiError::Pool(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_connection", true),
            // Schema problems (several rows match, no unique index) and database failures
            // are the server's.
            ApiError::GetOrCreate(Error::MultipleRowsMatch { .. }) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "multiple_rows_match",
                false,
            ),
            ApiError::GetOrCreate(Error::NoUniqueIndex { .. }) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "no_unique_index", false)
            }
            ApiError::GetOrCreate(_) => (StatusCode::INTERNAL_SERVER_ERROR, "database", false),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::GetOrCreate(error) => error.fmt(f),
            ApiError::Pool(error) => write!(f, "no database connection: {error}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, retry) = self.classify();
        let body = ErrorBody {
            error: error.into(),
            message: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::Error as DieselError;

    use super::*;

    /// The status, `Retry-After` and JSON body the service answers `error` with.
    async fn answer(error: Error) -> (StatusCode, Option<String>, ErrorBody) {
        let response = ApiError::from(error).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    /// The one library error a test can build: the others' variants are
    /// `#[non_exhaustive]`, so only the library makes them.
    #[tokio::test]
    async fn statuses_of_database_errors() {
        let (status, retry, body) = answer(Error::Database(DieselError::NotFound)).await;
        assert_eq!((status, retry), (StatusCode::INTERNAL_SERVER_ERROR, None));
        assert_eq!(body.error, "database");
    }
}
