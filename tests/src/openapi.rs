//! `openapi.yaml` as a checker: every actual response (status, required headers, JSON body) must
//! be documented and match its schema; the spec's operations are listed for coverage checks.

use std::collections::BTreeSet;

use serde_json::Value;

/// The loaded spec.
pub struct Spec {
    doc: Value,
}

/// One documented response: `(path, method, status)`.
pub type Operation = (String, String, u16);

impl Spec {
    /// Loads `openapi.yaml` from the repository root.
    pub fn load() -> Spec {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        let text = std::fs::read_to_string(&file).expect("openapi.yaml");
        let doc: Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
        assert_eq!(doc["openapi"], "3.1.0");
        Spec { doc }
    }

    /// Every documented `(path, method, status)`.
    pub fn operations(&self) -> BTreeSet<Operation> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                for status in operation["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                {
                    all.insert((
                        path.clone(),
                        method.clone(),
                        status.parse().expect("numeric status"),
                    ));
                }
            }
        }
        all
    }

    /// Checks one actual response against the spec; panics naming the drift.
    pub fn check(&self, operation: &Operation, headers: &http::HeaderMap, body: &Value) {
        let (path, method, status) = operation;
        let pointer = format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        );
        let (pointer, response) = self.resolve(&pointer).unwrap_or_else(|| {
            panic!("undocumented response {status} for {method} {path}: {body}")
        });
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(
            content_type,
            Some("application/json"),
            "{method} {path} {status}"
        );
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            if header["required"] == true {
                assert!(
                    headers.contains_key(name.as_str()),
                    "{method} {path} {status}: header {name} missing"
                );
            }
        }
        let mut schema = self.doc.clone();
        schema["$ref"] = Value::String(format!("#{pointer}/content/application~1json/schema"));
        let validator = jsonschema::validator_for(&schema).expect("the spec's schemas compile");
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} violates the spec: {errors:?}\n{body}"
        );
    }

    /// The response at `pointer`, following one `$ref`, with the pointer it was found at.
    fn resolve(&self, pointer: &str) -> Option<(String, &Value)> {
        let response = self.doc.pointer(pointer)?;
        match response.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let target = reference.trim_start_matches('#').to_owned();
                let resolved = self.doc.pointer(&target)?;
                Some((target, resolved))
            }
            None => Some((pointer.to_owned(), response)),
        }
    }
}
