//! Test helpers for checking the simulators against `shared/contracts/`:
//! reading a contract, turning OpenAPI 3.0's `nullable` into JSON Schema,
//! following `$ref`s, and validating with the jsonschema crate.

use serde_json::{Value, json};
use std::path::PathBuf;

/// `shared/contracts` beside the project (or `FLIGHTDECK_CONTRACTS`).
pub fn contracts_dir() -> PathBuf {
    std::env::var_os("FLIGHTDECK_CONTRACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts"))
}

/// One contract file, parsed.
pub fn read_contract(name: &str) -> Value {
    let path = contracts_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the contract {} must be readable: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `nullable: true` → `"type": [T, "null"]` (and `null` in an `enum`), or
/// `anyOf: [schema, null]` where the schema has no `type` of its own.
pub fn nullable_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(nullable_to_json_schema);
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            match map.get("type").cloned() {
                Some(Value::String(t)) => {
                    map.insert("type".into(), json!([t, "null"]));
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                }
                _ => {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, { "type": "null" }]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// Follows `$ref`s (within `spec`) until a node that is not one.
pub fn resolve<'a>(spec: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(pointer) = node.get("$ref").and_then(Value::as_str) {
        node = spec
            .pointer(&pointer[1..].replace("~1", "/"))
            .unwrap_or_else(|| panic!("dangling $ref {pointer}"));
    }
    node
}

/// What `body` breaks of the draft-07 schema `root`, with where.
pub fn schema_errors(root: &Value, body: &Value) -> Vec<String> {
    let validator = jsonschema::draft7::new(root).expect("the contract's schema compiles");
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}
