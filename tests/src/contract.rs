//! The REST API's contract, checked on every reply the tests receive.
//!
//! [`crate::http`] sends every request through a small forward proxy in
//! this process. For a path under `/api/v1`, the proxy reads the reply and
//! checks it against the checked-in OpenAPI document (`docs/openapi.json`,
//! which a unit test of the server keeps equal to what the code generates):
//! the operation (path and method) must be documented, its status listed,
//! its content type one the document names, and a JSON body valid against
//! that status's schema. A reply that breaks the document does not reach
//! the test: it gets a 502 whose body says what broke (also printed to
//! standard error), so whatever the test asserts next fails with it.

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The status a reply that breaks the document is replaced with.
pub const VIOLATION_STATUS: u16 = 502;
/// The header that marks such a replacement.
pub const VIOLATION_HEADER: &str = "x-openapi-violation";

/// The checked-in OpenAPI document, parsed once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = crate::workspace().join("docs/openapi.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("docs/openapi.json is JSON")
    })
}

/// The documented operations, with their path templates split in segments.
pub struct Contract {
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

struct Operation {
    method: String,
    template: String,
    segments: Vec<Option<String>>,
    responses: Value,
}

impl Contract {
    pub fn get() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(|| {
            let doc = document();
            let mut operations = Vec::new();
            for (template, item) in doc["paths"].as_object().expect("paths") {
                for (method, operation) in item.as_object().expect("a path item") {
                    if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                        continue;
                    }
                    operations.push(Operation {
                        method: method.to_uppercase(),
                        template: template.clone(),
                        segments: template
                            .split('/')
                            .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                            .collect(),
                        responses: operation["responses"].clone(),
                    });
                }
            }
            Contract {
                operations,
                validators: Mutex::default(),
            }
        })
    }

    /// The templates `path` matches, the most literal first.
    fn templates_for(&self, path: &str) -> Vec<&Operation> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut found: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|op| {
                op.segments.len() == parts.len()
                    && op.segments.iter().zip(&parts).all(|(s, p)| match s {
                        Some(literal) => literal == p,
                        None => !p.is_empty(),
                    })
            })
            .collect();
        found.sort_by_key(|op| std::cmp::Reverse(op.segments.iter().flatten().count()));
        found
    }

    /// Checks one reply; Err says what breaks the document.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        let matching = self.templates_for(path);
        let Some(first) = matching.first() else {
            // Not an operation: only an error in the API's shape may come back.
            if status < 400 {
                return Err(format!(
                    "{method} {path}: {status} for a path the document does not have"
                ));
            }
            return self.check_json(
                &format!("{method} {path} {status}"),
                "#/components/schemas/ErrorReply",
                &serde_json::json!({"$ref": "#/components/schemas/ErrorReply"}),
                content_type,
                body,
            );
        };
        let template = &first.template;
        let Some(operation) = matching
            .iter()
            .find(|op| op.template == *template && op.method == method)
        else {
            if status != 405 {
                return Err(format!(
                    "{method} {path}: {status}, but {template} has no {method} (405 expected)"
                ));
            }
            return self.check_json(
                &format!("{method} {path} {status}"),
                "#/components/schemas/ErrorReply",
                &serde_json::json!({"$ref": "#/components/schemas/ErrorReply"}),
                content_type,
                body,
            );
        };
        let what = format!("{method} {template} → {status}");
        let response = match operation.responses.get(status.to_string()) {
            Some(response) => response,
            None => operation
                .responses
                .get(format!("{}XX", status / 100))
                .or_else(|| operation.responses.get("default"))
                .ok_or_else(|| format!("{what}: the status is not documented"))?,
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            if body.is_empty() {
                return Ok(());
            }
            return Err(format!("{what}: a body where the document has none"));
        };
        let essence = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let Some(media) = content.get(&essence) else {
            return Err(format!(
                "{what}: content type {content_type:?}, the document has {:?}",
                content.keys().collect::<Vec<_>>()
            ));
        };
        if essence != "application/json" {
            return Ok(());
        }
        let schema = media.get("schema").cloned().unwrap_or(Value::Bool(true));
        self.check_json(
            &what,
            &format!("{method} {template} {status}"),
            &schema,
            content_type,
            body,
        )
    }

    fn check_json(
        &self,
        what: &str,
        key: &str,
        schema: &Value,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), String> {
        if !content_type.is_some_and(|c| c.starts_with("application/json")) {
            return Err(format!(
                "{what}: content type {content_type:?}, not application/json"
            ));
        }
        let instance: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{what}: the body is not JSON: {e}"))?;
        let validator = self.validator(key, schema);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what}: the body breaks the schema: {}; body: {}",
                errors.join("; "),
                String::from_utf8_lossy(&body[..body.len().min(2000)])
            ))
        }
    }

    /// The validator of one schema of the document, its `$ref`s resolved
    /// against the whole document; compiled once.
    fn validator(&self, key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap();
        validators
            .entry(key.to_owned())
            .or_insert_with(|| {
                let mut root = serde_json::json!({ "allOf": [schema] });
                root["components"] = document()["components"].clone();
                Arc::new(
                    jsonschema::draft202012::new(&root)
                        .unwrap_or_else(|e| panic!("the schema of {key} compiles: {e}")),
                )
            })
            .clone()
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The address of the checking proxy (started on first use, on its own
/// thread, so it outlives any one test's runtime).
pub fn proxy() -> &'static str {
    static PROXY: OnceLock<String> = OnceLock::new();
    PROXY.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("openapi-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime starts");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("the proxy binds a port");
                    let address = format!("http://{}", listener.local_addr().unwrap());
                    sender.send(address).unwrap();
                    let client: Client<HttpConnector, Incoming> =
                        Client::builder(TokioExecutor::new()).build_http();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let client = client.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                forward(client.clone(), request)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        });
                    }
                });
            })
            .expect("the proxy's thread starts");
        receiver.recv().expect("the proxy reports its address")
    })
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    mut request: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::convert::Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let api = path.starts_with("/api/v1/") || path == "/api/v1";
    if api {
        // The checks read the body as sent; compression is tested elsewhere.
        request.headers_mut().remove(hyper::header::ACCEPT_ENCODING);
    }
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(error) => {
            let mut reply =
                Response::new(full(format!("the test proxy could not forward: {error}")));
            *reply.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(reply);
        }
    };
    if !api {
        return Ok(response.map(BodyExt::boxed));
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let mut reply = Response::new(full(format!("the reply's body failed: {error}")));
            *reply.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(reply);
        }
    };
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let checked = Contract::get().check(
        &method,
        &path,
        parts.status.as_u16(),
        content_type.as_deref(),
        &bytes,
    );
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    match checked {
        Ok(()) => Ok(Response::from_parts(parts, full(bytes))),
        Err(violation) => {
            eprintln!("OpenAPI violation: {violation}");
            let mut reply = Response::new(full(format!("OpenAPI violation: {violation}\n")));
            *reply.status_mut() = hyper::StatusCode::from_u16(VIOLATION_STATUS).unwrap();
            reply.headers_mut().insert(
                VIOLATION_HEADER,
                hyper::header::HeaderValue::from_static("1"),
            );
            Ok(reply)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_checked_against_its_operation_and_status() {
        let contract = Contract::get();
        let me = br#"{"name": "ada", "role": "lead"}"#;
        assert_eq!(
            contract.check("GET", "/api/v1/me", 200, Some("application/json"), me),
            Ok(())
        );
        let wrong_role = br#"{"name": "ada", "role": "root"}"#;
        assert!(
            contract
                .check(
                    "GET",
                    "/api/v1/me",
                    200,
                    Some("application/json"),
                    wrong_role
                )
                .is_err()
        );
        let missing = br#"{"name": "ada"}"#;
        assert!(
            contract
                .check("GET", "/api/v1/me", 200, Some("application/json"), missing)
                .is_err()
        );
        let error = br#"{"error": {"code": "not_found", "message": "no"}}"#;
        assert_eq!(
            contract.check(
                "GET",
                "/api/v1/environments/x/runs",
                404,
                Some("application/json"),
                error
            ),
            Ok(())
        );
        // An undocumented status, a method the path lacks, a path the document lacks.
        assert!(
            contract
                .check("GET", "/api/v1/me", 418, Some("application/json"), error)
                .is_err()
        );
        assert!(
            contract
                .check("PATCH", "/api/v1/me", 200, Some("application/json"), me)
                .is_err()
        );
        assert_eq!(
            contract.check("PATCH", "/api/v1/me", 405, Some("application/json"), error),
            Ok(())
        );
        assert!(
            contract
                .check("GET", "/api/v1/nothing", 200, Some("application/json"), me)
                .is_err()
        );
        // The export's text is not JSON, but its content type is documented.
        assert_eq!(
            contract.check(
                "GET",
                "/api/v1/audit/export",
                200,
                Some("text/csv; charset=utf-8"),
                b"seq,id\n"
            ),
            Ok(())
        );
        assert!(
            contract
                .check(
                    "GET",
                    "/api/v1/audit/export",
                    200,
                    Some("text/html"),
                    b"<p>"
                )
                .is_err()
        );
    }
}
