//! What a handler takes from a request before it acts: the signed-in
//! caller and the API's JSON body. As extractors, a handler that acts for
//! someone cannot forget to ask who (the refusal of a caller with no session
//! or token is audited on the way), and every REST body error has the API's
//! shape. Also the one mapping of [`ControlError`] to an HTTP status.

use super::{AppState, Caller};
use crate::audit::RequestMeta;
use crate::control::ControlError;
use crate::identity::Actor;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::response::{IntoResponse, Redirect, Response};
use domain::IdempotencyKey;
use http::StatusCode;
use http::request::Parts;

/// The status and the API's error code for a refusal of the application
/// layer: the one place they are decided (REST answers with both; the
/// pages' form actions and server functions tell a store failure, 500,
/// from a refusal they show on the page).
pub(crate) fn status_of(error: &ControlError) -> (StatusCode, &'static str) {
    match error {
        ControlError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ControlError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ControlError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ControlError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ControlError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ControlError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// An error in the API's shape: `{"error": {"code", "message"}}` with its
/// status (and `Retry-After` for a rate limit). Internal details go to the
/// log only.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_seconds: None,
        }
    }

    /// A request the API cannot read.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        let (status, code) = status_of(&error);
        match error {
            ControlError::Store(error) => {
                tracing::error!(%error, "store failure");
                Self::new(
                    status,
                    code,
                    "something went wrong on the server; the log has the details",
                )
            }
            ControlError::RateLimited {
                message,
                retry_after_seconds,
            } => Self {
                retry_after_seconds: Some(retry_after_seconds),
                ..Self::new(status, code, message)
            },
            other => Self::new(status, code, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = super::rest::error_response(self.status, self.code, &self.message);
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The caller of a request, who must be signed in (a session or an API
/// token, see [`super::context::identify`]). Extracting it audits the
/// refusal of anyone else, with the request's path as the target.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub actor: Actor,
    pub meta: RequestMeta,
}

impl SignedIn {
    async fn resolve(parts: &Parts, state: &AppState) -> Result<SignedIn, ControlError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| {
                // `identify` runs before every route; without it nobody is signed in.
                tracing::error!("a request reached a handler without its caller");
                Caller {
                    actor: None,
                    meta: RequestMeta::default(),
                }
            });
        // Under a nested router the URI has lost its prefix; the audit
        // trail names the path that was asked for.
        let target = parts
            .extensions
            .get::<OriginalUri>()
            .map(|uri| uri.path())
            .unwrap_or(parts.uri.path());
        let actor = state
            .control
            .signed_in(caller.actor.as_ref(), target, &caller.meta)
            .await?;
        Ok(SignedIn {
            actor,
            meta: caller.meta,
        })
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(SignedIn::resolve(parts, state).await?)
    }
}

/// [`SignedIn`] for the pages' form actions: anyone else is sent to the
/// sign-in page.
#[derive(Debug, Clone)]
pub(crate) struct SignedInForm(pub SignedIn);

impl FromRequestParts<AppState> for SignedInForm {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match SignedIn::resolve(parts, state).await {
            Ok(signed_in) => Ok(SignedInForm(signed_in)),
            Err(error) if status_of(&error).0.is_server_error() => {
                Err(ApiError::from(error).status.into_response())
            }
            Err(_) => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// A JSON request body, or a 400 in the API's shape that says what is wrong
/// with it. An empty body is `{}`, so an endpoint whose fields all have
/// defaults takes no body at all; a body is `application/json` (a 415
/// otherwise, so a form or text post never acts).
#[derive(Debug, Clone)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "bad_request"
                };
                ApiError::new(status, code, rejection.body_text())
            })?;
        let blank = bytes.iter().all(u8::is_ascii_whitespace);
        if !blank && !content_type.as_deref().is_some_and(is_json) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "the body must be application/json, not {}",
                    content_type
                        .as_deref()
                        .unwrap_or("a body without Content-Type")
                ),
            ));
        }
        let text: &[u8] = if blank { b"{}" } else { &bytes };
        let unreadable = |error: serde_json::Error| {
            ApiError::bad_request(format!(
                "the body is not the JSON this endpoint takes: {error}"
            ))
        };
        // An object, nothing else: serde would read `[]` as a struct whose
        // fields all have defaults.
        let value: serde_json::Value = serde_json::from_slice(text).map_err(unreadable)?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the body is not the JSON this endpoint takes: a JSON object is expected",
            ));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(unreadable)
    }
}

/// `application/json`, or a `+json` type, with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

/// The `Idempotency-Key` header, when sent (see [`IdempotencyKey`] for the rule).
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyHeader(None));
        };
        let text = value.to_str().unwrap_or("\u{fffd}");
        match IdempotencyKey::parse_trimmed(text) {
            Ok(key) => Ok(IdempotencyHeader(Some(key))),
            Err(_) => Err(ApiError::bad_request(format!(
                "Idempotency-Key must be {}",
                IdempotencyKey::RULE
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_one_status_and_code() {
        let cases = [
            (ControlError::Unauthorized, 401, "unauthorized"),
            (ControlError::Forbidden("no".into()), 403, "forbidden"),
            (ControlError::NotFound("x".into()), 404, "not_found"),
            (ControlError::Conflict("busy".into()), 409, "conflict"),
            (ControlError::Invalid("bad".into()), 422, "invalid"),
            (
                ControlError::RateLimited {
                    message: "wait".into(),
                    retry_after_seconds: 7,
                },
                429,
                "rate_limited",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(
                status_of(&error),
                (StatusCode::from_u16(status).unwrap(), code)
            );
        }
    }

    #[tokio::test]
    async fn a_rate_limit_answers_with_retry_after_and_a_store_failure_hides_its_details() {
        let limited = ApiError::from(ControlError::RateLimited {
            message: "wait".into(),
            retry_after_seconds: 7,
        })
        .into_response();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()[http::header::RETRY_AFTER], "7");
        let failed =
            ApiError::from(ControlError::Store(crate::store::StoreError::NotFound)).into_response();
        assert_eq!(failed.status(), 500);
        let body = axum::body::to_bytes(failed.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not found")
        );
    }

    #[tokio::test]
    async fn an_empty_body_is_an_empty_object_a_wrong_one_a_400_and_one_not_json_a_415() {
        #[derive(Debug, serde::Deserialize, Default)]
        struct Body {
            #[serde(default)]
            failed_only: bool,
        }
        let request = |body: &'static str, content_type: Option<&str>| {
            let mut request = http::Request::builder().method("POST");
            if let Some(content_type) = content_type {
                request = request.header(http::header::CONTENT_TYPE, content_type);
            }
            request.body(axum::body::Body::from(body)).unwrap()
        };
        let read = async |body, content_type| {
            ApiJson::<Body>::from_request(request(body, content_type), &()).await
        };
        let ApiJson(empty) = read(" \n", None).await.unwrap();
        assert!(!empty.failed_only);
        let json = Some("application/json; charset=utf-8");
        let ApiJson(set) = read(r#"{"failed_only": true}"#, json).await.unwrap();
        assert!(set.failed_only);
        for (body, content_type, status) in [
            (r#"{"failed_only": "yes"}"#, json, 400),
            ("null", json, 400),
            ("[]", json, 400),
            ("[true]", json, 400),
            (r#"{"failed_only": true}"#, Some("text/plain"), 415),
            (r#"{"failed_only": true}"#, None, 415),
        ] {
            let refused = read(body, content_type).await.unwrap_err().into_response();
            assert_eq!(refused.status(), status, "{body} {content_type:?}");
        }
    }
}
