//! Liveness and readiness.

use crate::api::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

/// Health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: &'static str,
}

/// `/healthz`: 200 when the relay and its database answer, 503 otherwise.
#[utoipa::path(responses((status = 200, body = Health), (status = 503, body = crate::api::error::ErrorBody)))]
#[get("/healthz")]
pub(crate) async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db
        .run(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}
