//! `GET /api/docs`: the OpenAPI document as one page a person reads —
//! every operation with its parameters, body and replies, then every
//! schema with its fields. Rendered on the server from the same document
//! `/api/v1/openapi.json` serves; no script, nothing from elsewhere.

use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write;

pub(crate) async fn docs_page() -> Response {
    let doc: Value = serde_json::from_str(&super::openapi_document()).unwrap_or(Value::Null);
    Html(render(&doc)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text with `code` spans in backticks, escaped.
fn prose(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// A schema in a few words, with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{0}\">{0}</a>", escape(name));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(combinator).and_then(Value::as_array) {
            return options.iter().map(type_of).collect::<Vec<_>>().join(" or ");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let names: Vec<String> = match schema.get("type") {
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return "any".to_owned(),
    };
    names
        .iter()
        .map(|name| match name.as_str() {
            "array" => format!(
                "array of {}",
                schema.get("items").map(type_of).unwrap_or_default()
            ),
            "integer" => match (schema.get("minimum"), schema.get("maximum")) {
                (Some(min), Some(max)) => format!("integer ({min} to {max})"),
                (Some(min), None) => format!("integer (from {min})"),
                _ => "integer".to_owned(),
            },
            other => escape(other),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn render(doc: &Value) -> String {
    let mut html = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{0} · Flightdeck</title><link rel=\"stylesheet\" href=\"/pkg/flightdeck.css\">\
         </head><body class=\"api-docs\"><main><h1>{0} <small>version {1}</small></h1>\
         <p>{2}</p><p>The machine-readable document: <a href=\"/api/v1/openapi.json\">\
         <code>/api/v1/openapi.json</code></a> (OpenAPI {3}). <a href=\"/\">Back to the panel</a></p>",
        escape(title),
        escape(doc["info"]["version"].as_str().unwrap_or("")),
        prose(doc["info"]["description"].as_str().unwrap_or("")),
        escape(doc["openapi"].as_str().unwrap_or("")),
    );

    html.push_str("<section><h2>Authentication</h2><dl>");
    if let Some(schemes) = doc["components"]["securitySchemes"].as_object() {
        for (name, scheme) in schemes {
            let how = match scheme["type"].as_str() {
                Some("http") => format!(
                    "HTTP <code>Authorization: {} …</code>",
                    escape(scheme["scheme"].as_str().unwrap_or("")),
                ),
                Some("apiKey") => format!(
                    "the {} <code>{}</code>",
                    escape(scheme["in"].as_str().unwrap_or("")),
                    escape(scheme["name"].as_str().unwrap_or("")),
                ),
                _ => String::new(),
            };
            let _ = write!(
                html,
                "<dt><code>{}</code></dt><dd>{how}: {}</dd>",
                escape(name),
                prose(scheme["description"].as_str().unwrap_or("")),
            );
        }
    }
    html.push_str("</dl></section>");

    html.push_str("<section><h2>Operations</h2>");
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete"] {
                if let Some(operation) = item.get(method) {
                    operation_html(&mut html, method, path, operation);
                }
            }
        }
    }
    html.push_str("</section>");

    html.push_str("<section><h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            schema_html(&mut html, name, schema);
        }
    }
    html.push_str("</section></main></body></html>");
    html
}

fn operation_html(html: &mut String, method: &str, path: &str, operation: &Value) {
    let id = format!("{method}-{path}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>();
    let _ = write!(
        html,
        "<article class=\"panel\" id=\"op-{id}\"><h3><code>{} {}</code></h3>",
        method.to_uppercase(),
        escape(path),
    );
    for key in ["summary", "description"] {
        if let Some(text) = operation[key].as_str() {
            let _ = write!(html, "<p>{}</p>", prose(text));
        }
    }
    if operation["security"].as_array().is_some_and(Vec::is_empty) {
        html.push_str("<p>No sign-in needed.</p>");
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        html.push_str(
            "<h4>Parameters</h4><table><thead><tr><th>name</th><th>in</th><th>type</th>\
             <th>required</th><th>description</th></tr></thead><tbody>",
        );
        for p in parameters {
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(p["name"].as_str().unwrap_or("")),
                escape(p["in"].as_str().unwrap_or("")),
                type_of(&p["schema"]),
                if p["required"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                prose(p["description"].as_str().unwrap_or("")),
            );
        }
        html.push_str("</tbody></table>");
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        html.push_str("<h4>Body</h4><ul>");
        for (media, body) in content {
            let _ = write!(
                html,
                "<li><code>{}</code>: {}</li>",
                escape(media),
                type_of(&body["schema"])
            );
        }
        html.push_str("</ul>");
    }
    if let Some(responses) = operation["responses"].as_object() {
        html.push_str(
            "<h4>Replies</h4><table><thead><tr><th>status</th><th>body</th><th>when</th>\
             </tr></thead><tbody>",
        );
        for (status, response) in responses {
            let body = response["content"]
                .as_object()
                .map(|content| {
                    content
                        .iter()
                        .map(|(media, c)| {
                            format!("{} (<code>{}</code>)", type_of(&c["schema"]), escape(media))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "none".to_owned());
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{body}</td><td>{}</td></tr>",
                escape(status),
                prose(response["description"].as_str().unwrap_or("")),
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</article>");
}

fn schema_html(html: &mut String, name: &str, schema: &Value) {
    let _ = write!(
        html,
        "<article class=\"panel\" id=\"schema-{0}\"><h3><code>{0}</code></h3>",
        escape(name)
    );
    if let Some(text) = schema["description"].as_str() {
        let _ = write!(html, "<p>{}</p>", prose(text));
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match schema["properties"].as_object() {
        Some(properties) => {
            html.push_str(
                "<table><thead><tr><th>field</th><th>type</th><th>always there</th>\
                 <th>description</th></tr></thead><tbody>",
            );
            for (field, property) in properties {
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    type_of(property),
                    if required.contains(&field.as_str()) {
                        "yes"
                    } else {
                        "no"
                    },
                    prose(property["description"].as_str().unwrap_or("")),
                );
            }
            html.push_str("</tbody></table>");
        }
        None => {
            let _ = write!(html, "<p>{}</p>", type_of(schema));
        }
    }
    html.push_str("</article>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_operation_and_schema_and_escapes_text() {
        let doc: Value = serde_json::from_str(&super::super::openapi_document()).unwrap();
        let page = render(&doc);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let heading = format!("<code>{} {}</code>", method.to_uppercase(), escape(path));
                assert!(page.contains(&heading), "{heading}");
            }
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(page.contains(&format!("id=\"schema-{name}\"")), "{name}");
        }
        assert!(page.contains("<a href=\"#schema-ErrorReply\">ErrorReply</a>"));
        assert!(!page.contains("<script"));
        assert_eq!(prose("a `<b>` c"), "a <code>&lt;b&gt;</code> c");
    }
}
