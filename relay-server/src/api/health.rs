//! Liveness and readiness.

use crate::api::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use diesel::RunQueryDsl;
use serde::Serialize;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// Health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: &'static str,
    /// Whether this relay is listening for the envelopes other relays on the same PostgreSQL
    /// database accept (LISTEN/NOTIFY), so that it pushes them live; always `false` on SQLite,
    /// where there are no other relays.
    pub cross_relay_push: bool,
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
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        cross_relay_push: state.listening.load(Ordering::Relaxed),
    }))
}
