//! Building and running the HTTP server.

use crate::api;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::mail::{MailError, Mailer};
use crate::metrics::Metrics;
use crate::services::hub::Hub;
use crate::services::passwords::Passwords;
use crate::services::ratelimit::RateLimits;
use crate::services::writer::Writer;
use crate::state::AppState;
use actix_web::dev::{Server, Service};
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database connection or migration.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Mail transport set-up.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// Socket or TLS files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// TLS configuration.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Connects the database and the mailer. Serving TLS (`--tls-cert`) implies
/// `--secure-cookies`: the relay is then reached over HTTPS.
pub fn build_state(mut config: Config) -> Result<AppState, StartupError> {
    if config.tls_cert.is_some() {
        config.secure_cookies = true;
    }
    if let Some(dir) = &config.web_dir
        && !dir.join("index.html").is_file()
    {
        return Err(StartupError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("--web-dir {}: no index.html there", dir.display()),
        )));
    }
    let db = Db::connect_waiting(
        &config.database_url,
        std::time::Duration::from_secs(config.db_wait_secs),
    )?;
    let mailer = Mailer::from_url(&config.mail_url, &config.mail_from)?;
    let at_rest = Arc::new(
        crate::services::at_rest::AtRestKey::load_or_create(&config.secret_key_file).map_err(
            |e| {
                StartupError::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "--secret-key-file {}: {e}",
                        config.secret_key_file.display()
                    ),
                ))
            },
        )?,
    );
    let clock = Clock::default();
    let limits = Arc::new(RateLimits::new(config.disable_rate_limits, &clock));
    let metrics = Arc::new(Metrics::default());
    let writer = Writer::start(db.clone(), metrics.clone())?;
    let permits = match config.password_hash_concurrency {
        0 => Passwords::default_permits(),
        n => n,
    };
    let push_queue_bytes =
        usize::try_from(config.ws_push_queue_kib.saturating_mul(1024)).unwrap_or(usize::MAX);
    let passwords = Arc::new(Passwords::new(
        permits,
        std::time::Duration::from_millis(config.password_hash_wait_ms),
    ));
    Ok(AppState {
        at_rest,
        passwords,
        uploads: Arc::default(),
        writer,
        db,
        config: Arc::new(config),
        mailer,
        clock,
        limits,
        hub: Arc::new(Hub::with_budget(push_queue_bytes)),
        instance: instance_id(),
        listening: Arc::new(AtomicBool::new(false)),
        metrics,
    })
}

/// A random id for this relay process (a clock-derived one if the OS RNG fails: it only has
/// to differ from the other relays').
fn instance_id() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0))
        .unwrap_or(0)
        ^ u64::from(std::process::id())
}

/// How long browsers keep to HTTPS once told (`Strict-Transport-Security`): one year.
const HSTS: &str = "max-age=31536000";

/// Security headers on every response (OWASP ASVS V14.4); HSTS when the relay is reached over
/// HTTPS (`--tls-cert`, or `--secure-cookies` behind a TLS proxy).
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https {
        DefaultHeaders::new().add(("Strict-Transport-Security", HSTS))
    } else {
        DefaultHeaders::new()
    };
    headers
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; \
             img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'self'",
        ))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        ))
        .add(("Cache-Control", "no-store"))
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers(["authorization", "content-type", "x-csrf-token"])
        .supports_credentials()
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// The OpenAPI document, generated from the registered handlers.
#[must_use]
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(api::ApiDoc::openapi())
        .service(api::health::healthz)
        .service(utoipa_actix_web::scope("/api/v1").configure(api::configure))
        .split_for_parts()
        .1
}

/// Starts serving on `listener` with `state`; returns the running server (await it, or stop it
/// through its handle for a graceful shutdown).
pub fn serve(listener: TcpListener, state: AppState) -> Result<Server, StartupError> {
    let tls = load_tls(&state.config)?;
    crate::services::notify::spawn_listener(state.clone());
    let data = web::Data::new(state.clone());
    let origins = state.config.allowed_origins.clone();
    let web_dir = state.config.web_dir.clone();
    let openapi = web::Data::new(openapi_document());
    let serve_metrics = state.config.metrics;
    let peers = Arc::new(crate::peer::PeerCounts::new(
        state.config.max_connections_per_ip,
    ));
    let body_read_timeout =
        std::time::Duration::from_secs(state.config.body_read_timeout_secs.max(1));
    let https = state.config.secure_cookies;
    let metrics = state.metrics.clone();
    let factory = move || {
        let app = App::new()
            // Registered before the /api/v1 scope, which would otherwise swallow it.
            .app_data(openapi.clone())
            .route("/api/v1/openapi.json", web::get().to(api::openapi_json))
            .route("/api/v1/ws", web::get().to(api::ws::connect))
            // Operational metrics: outside the API and its OpenAPI document, only when asked.
            .configure(|cfg| {
                if serve_metrics {
                    cfg.route("/metrics", web::get().to(crate::metrics::scrape));
                }
            })
            .into_utoipa_app()
            .app_data(data.clone())
            .app_data(api::json_config())
            .app_data(api::path_config())
            .service(api::health::healthz)
            .service(utoipa_actix_web::scope("/api/v1").configure(api::configure))
            .into_app();
        // The web app (if configured) answers every path the API does not; `/` serves its
        // `index.html`. Unknown paths get the API's typed 404 either way.
        let app = app.default_service(web::to(api::not_found));
        let app = match &web_dir {
            Some(dir) => app.service(
                actix_files::Files::new("/", dir)
                    .index_file("index.html")
                    .default_handler(web::to(api::not_found)),
            ),
            None => app,
        };
        let metrics = metrics.clone();
        app.wrap_fn(move |req, srv| api::transport::guard(req, srv, body_read_timeout))
            .wrap(cors(&origins))
            .wrap(security_headers(https))
            .wrap_fn(move |req, srv| {
                let metrics = metrics.clone();
                let response = srv.call(req);
                async move {
                    let response = response.await;
                    let status = match &response {
                        Ok(r) => r.status(),
                        Err(e) => e.as_response_error().status_code(),
                    };
                    metrics.http_response(status.as_u16());
                    response
                }
            })
            .wrap(
                Logger::new("%a \"%{request}xi\" %s %Dms")
                    .custom_request_replace("request", |req| {
                        format!("{} {}", req.method(), log_path(req.path()))
                    })
                    .exclude("/healthz")
                    .exclude("/metrics"),
            )
    };
    let server = HttpServer::new(factory)
        .on_connect(crate::peer::on_connect(peers))
        .tcp_nodelay(true)
        .shutdown_timeout(10);
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

fn load_tls(config: &Config) -> Result<Option<rustls::ServerConfig>, StartupError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key)?))?
        .ok_or_else(|| StartupError::Tls("no private key in --tls-key".into()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StartupError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| StartupError::Tls(e.to_string()))?;
    Ok(Some(config))
}

/// Prints `line` on stdout; a closed stdout is not an error worth stopping for.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Runs the relay described by `config` until Ctrl-C / SIGTERM (graceful shutdown).
pub async fn run(config: Config) -> Result<(), StartupError> {
    let listener = TcpListener::bind(config.listen)?;
    let state = build_state(config)?;
    let address = listener.local_addr()?;
    tracing::info!(
        listen = %address,
        backend = ?state.db.backend(),
        "SecureChat relay listening"
    );
    // One line on stdout with the bound address (also when `--listen` asked for port 0), for
    // the person who started the relay and for programs that start it (tests, benches).
    let scheme = if state.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    announce(&format!(
        "SecureChat relay listening on {scheme}://{address}"
    ));
    let housekeeping = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            housekeeping.limits.prune();
            if let Err(e) = crate::services::twofa::prune_expired(&housekeeping).await {
                tracing::warn!(error = %e, "pruning expired 2FA challenges and codes failed");
            }
            match crate::services::attachments::prune_expired(&housekeeping).await {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "expired attachments deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "attachment pruning failed"),
            }
        }
    });
    let hourly = state.clone();
    tokio::spawn(async move {
        // The first tick fires at once: both run at start, then hourly.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let now = hourly.clock.now();
            let pruned = hourly
                .db
                .run(move |conn| crate::services::delivery::prune_expired(conn, None, now))
                .await;
            match pruned {
                Ok(n) if n > 0 => tracing::info!(pruned = n, "expired envelopes deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "envelope pruning failed"),
            }
            match crate::services::attachments::sweep_orphans(&hourly).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "orphaned blob files removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping orphaned blob files failed"),
            }
        }
    });
    serve(listener, state)?.await?;
    Ok(())
}

/// The path as the access log shows it: an attachment id (the capability to download its
/// ciphertext) becomes `…`, and query strings are left out.
fn log_path(path: &str) -> String {
    const ATTACHMENTS: &str = "/api/v1/attachments/";
    match path.strip_prefix(ATTACHMENTS) {
        Some(rest) if !rest.is_empty() => format!("{ATTACHMENTS}…"),
        _ => path.to_owned(),
    }
}
