//! tlog-witness over HTTP: the witness's server (axum) and the client a log uses to submit a
//! checkpoint (ureq). The decisions are `tlog::witness`'s; this file only moves bytes.
//!
//! Server routes: `POST /add-checkpoint` (the submission prefix is the server's root) and
//! `GET /<hex SHA-256(origin)>/checkpoint`, the last checkpoint cosigned for that origin with the
//! log's signatures and the cosignature (the spec's monitoring retrieval; 404 when none).
//!
//! Limits (`Limits`): at most `concurrent` requests are served at once, a request beyond is
//! answered 503 at once; a request body larger than `ADD_CHECKPOINT_LEN_MAX_BYTES` gets 413, and
//! one not received within `body_timeout` gets 408 (a slow client cannot hold a slot for long).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use thiserror::Error;

use crate::tlog::checkpoint::parse_size;
use crate::tlog::note::{parse_signature_lines, NoteError, NoteSignature};
use crate::tlog::witness::{Response, ADD_CHECKPOINT_LEN_MAX_BYTES, CONTENT_TYPE_SIZE};
use crate::witness_service::WitnessService;

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests served at once; one more is answered 503 at once.
    pub concurrent: usize,
    /// Time to receive a request's body; after it, 408.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            concurrent: 64,
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves the witness on `listener` until the process ends, with the default `Limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<WitnessService>,
) -> std::io::Result<()> {
    serve_with(listener, service, Limits::default()).await
}

/// Serves the witness on `listener` with `limits`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    service: Arc<WitnessService>,
    limits: Limits,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.concurrent.max(1)));
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .with_state((service, limits))
        .layer(from_fn_with_state(slots, limit_concurrency));
    axum::serve(listener, app).await
}

/// 503 when every slot is taken; else the request, holding a slot until it is answered.
async fn limit_concurrency(
    State(slots): State<Arc<tokio::sync::Semaphore>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    match slots.try_acquire_owned() {
        Ok(_slot) => next.run(request).await,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "the witness is busy: try again\n",
        )
            .into_response(),
    }
}

/// POSIX seconds now: the cosignature's time.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

async fn add_checkpoint(
    State((service, limits)): State<(Arc<WitnessService>, Limits)>,
    body: Body,
) -> axum::response::Response {
    let read = axum::body::to_bytes(body, ADD_CHECKPOINT_LEN_MAX_BYTES);
    let body: Bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body could not be read whole: {error}\n"),
            )
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time\n",
            )
                .into_response()
        }
    };
    let now_s = now_s();
    // File IO and fsync under the origin's lock: off the async threads.
    let response = tokio::task::spawn_blocking(move || service.add_checkpoint(&body, now_s))
        .await
        .unwrap_or_else(|error| Response::internal(&format!("the request's task failed: {error}")));
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, response.content_type)],
        response.body,
    )
        .into_response()
}

async fn checkpoint(
    State((service, _)): State<(Arc<WitnessService>, Limits)>,
    Path(origin_hash): Path<String>,
) -> axum::response::Response {
    match service.state().read_note(&origin_hash) {
        Some(note) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            note,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "never cosigned for this origin\n").into_response(),
    }
}

/// How long a submission may take, connection included, before the witness counts as down.
pub const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest witness reply read (a few cosignature lines, or an error message).
pub const WITNESS_REPLY_LEN_MAX_BYTES: u64 = 64 * 1024;

/// What a witness answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessReply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl WitnessReply {
    /// On a 409 with `text/x.tlog.size`: the size the witness last cosigned.
    pub fn held_size(&self) -> Option<u64> {
        let media_type = self.content_type.split(';').next().unwrap_or("").trim();
        if self.status != 409 || media_type != CONTENT_TYPE_SIZE {
            return None;
        }
        parse_size(self.body.strip_suffix('\n')?)
    }

    /// On a 200: the signature lines (verify them with the witnesses' vkeys before keeping any).
    pub fn cosignatures(&self) -> Result<Vec<NoteSignature>, NoteError> {
        parse_signature_lines(self.body.as_bytes())
    }
}

/// Why no answer came back.
#[derive(Debug, Error)]
#[error("witness {url}: {reason}")]
pub struct SubmitError {
    pub url: String,
    pub reason: String,
}

/// `POST <url_prefix>/add-checkpoint` with `body` (an `AddCheckpoint::format` text); any status
/// is a reply, only a transport failure or a timeout is an error. Blocking: from async code,
/// call it in `tokio::task::spawn_blocking`.
pub fn submit_add_checkpoint(
    url_prefix: &str,
    body: &str,
    timeout: Duration,
) -> Result<WitnessReply, SubmitError> {
    let url = format!("{}/add-checkpoint", url_prefix.trim_end_matches('/'));
    let failed = |reason: String| SubmitError {
        url: url.clone(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(&url)
        .header("Content-Type", "text/plain; charset=utf-8")
        .send(body)
        .map_err(|error| failed(error.to_string()))?;
    let status = response.status().as_u16();
    let content_type = (response.headers().get(header::CONTENT_TYPE))
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response
        .body_mut()
        .with_config()
        .limit(WITNESS_REPLY_LEN_MAX_BYTES)
        .read_to_string()
        .map_err(|error| failed(format!("reading the reply: {error}")))?;
    Ok(WitnessReply {
        status,
        content_type,
        body,
    })
}
