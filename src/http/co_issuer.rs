//! The co-issuer's own small HTTP server: its public key, how far it has followed the log, and
//! its blind signature over a resident's credential request, at the same path as the node's so
//! a client asks both the same way. Errors are the API's problems.

use std::sync::Arc;

use actix_web::{get, web};
use serde::Serialize;

use crate::co_issuer::CoIssuer;
use crate::http::credentials::BlindSignatureView;
use crate::http::{off_worker, Reply, RunningHttpServer};

#[derive(Serialize)]
pub struct CoIssuerView {
    /// The co-issuer's RSA public key, hex DER: what an anonymous poll names as `co_issuer_key`.
    pub issuer_key: String,
    /// Log entries followed and checked so far.
    pub followed_log_size: u64,
}

#[get("/v1/co-issuer")]
async fn about(co_issuer: web::Data<CoIssuer>) -> Reply<CoIssuerView> {
    Ok(web::Json(CoIssuerView {
        issuer_key: hex::encode(co_issuer.public_key().der()),
        followed_log_size: co_issuer.followed_size(),
    }))
}

#[get("/v1/polls/{poll}/credentials/{key}")]
async fn blind_signature(
    co_issuer: web::Data<CoIssuer>,
    path: web::Path<(u64, String)>,
) -> Reply<BlindSignatureView> {
    let (poll, key) = path.into_inner();
    let key = crate::http::parse_key(&key)?;
    let signer = co_issuer.clone();
    let answer = off_worker(move || signer.answer(poll, key)).await?;
    Ok(web::Json(BlindSignatureView {
        poll,
        request_position: answer.request_position,
        issuer_key: hex::encode(co_issuer.public_key().der()),
        blind_signature: hex::encode(answer.blind_signature),
    }))
}

/// Binds the co-issuer's routes to `listener`; the server must be awaited inside `block_on`.
pub fn bind(
    co_issuer: Arc<CoIssuer>,
    listener: std::net::TcpListener,
) -> std::io::Result<RunningHttpServer> {
    let data = web::Data::from(co_issuer);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .service(about)
            .service(blind_signature)
    })
    .listen(listener)?
    .shutdown_timeout(projections::limits::HTTP_SHUTDOWN_TIMEOUT_SECONDS)
    .run();
    Ok(server)
}
