//! JSON Schema checks: a hire's input against the agent's `input-schema` (on the client
//! before it negotiates, and again on the provider when it accepts), and an answer against
//! the `answer_schema` of the agent's open question (on the client). The rules are those of
//! `spec/hiring.md` ("Input schema"); the schemas come from signed manifests and from agents,
//! so they are hostile: nothing here fetches a remote `$ref`, and `pattern` uses the
//! linear-time `regex` engine (no backtracking).
//!
//! It never decides what to do with a failure: callers turn a [`SchemaError`] into a local
//! refusal (client) or a `bad-call` reply (provider).

use serde_json::Value;

/// Most violations reported for one value (the first ones, in the validator's order).
pub const MAX_VIOLATIONS: usize = 8;

/// One place where a value breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) to the offending part of the value; empty for the whole value.
    pub pointer: String,
    /// JSON pointer into the schema to the rule that failed (e.g. `/properties/n/type`).
    pub rule: String,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "the top level"
        } else {
            &self.pointer
        };
        write!(f, "at {at}: {} (schema rule {})", self.message, self.rule)
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The value breaks the schema (at least one violation, at most [`MAX_VIOLATIONS`]).
    #[error("{what} does not match its schema: {}", list(.violations))]
    Mismatch {
        /// What was checked ("the input", "the answer").
        what: &'static str,
        /// Where and how.
        violations: Vec<Violation>,
    },
}

fn list(v: &[Violation]) -> String {
    v.iter()
        .map(Violation::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A schema that can be applied, or `None` when it is not usable JSON Schema (not an
/// object or boolean, not valid under its draft, or needing a remote `$ref`): the protocol
/// lets a manifest carry such a schema, and then nothing is checked against it.
pub fn compile(schema: &Value) -> Option<jsonschema::Validator> {
    if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
        return None;
    }
    match jsonschema::options()
        .offline()
        .should_validate_formats(false)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
    {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!("schema not applied: {e}");
            None
        }
    }
}

/// Checks `value` against `schema` (see [`compile`] for schemas that are not applied).
pub fn check(what: &'static str, schema: &Value, value: &Value) -> Result<(), SchemaError> {
    match compile(schema) {
        Some(validator) => violations(&validator, what, value),
        None => Ok(()),
    }
}

fn violations(
    validator: &jsonschema::Validator,
    what: &'static str,
    value: &Value,
) -> Result<(), SchemaError> {
    let violations: Vec<Violation> = validator
        .iter_errors(value)
        .take(MAX_VIOLATIONS)
        .map(|e| Violation {
            pointer: e.instance_path().as_str().to_owned(),
            rule: e.schema_path().as_str().to_owned(),
            message: e.masked().to_string(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Mismatch { what, violations })
    }
}

/// Checks a job input (JSON bytes or value) against a manifest's `input-schema` text. A
/// schema text that is not JSON is not applied (manifests are checked for that on admission).
pub fn check_input(input_schema: &str, input: &Value) -> Result<(), SchemaError> {
    match serde_json::from_str::<Value>(input_schema) {
        Ok(schema) => check("the input", &schema, input),
        Err(_) => Ok(()),
    }
}

/// [`check_input`] for an input received as JSON bytes (the provider's check): the input is
/// parsed only when the schema is usable. Bytes that are not JSON are not checked here.
pub fn check_input_bytes(input_schema: &str, input: &[u8]) -> Result<(), SchemaError> {
    let Ok(schema) = serde_json::from_str::<Value>(input_schema) else {
        return Ok(());
    };
    let Some(validator) = compile(&schema) else {
        return Ok(());
    };
    match serde_json::from_slice::<Value>(input) {
        Ok(value) => violations(&validator, "the input", &value),
        Err(_) => Ok(()),
    }
}

/// Checks an answer against the open question's `answer_schema` member, when the question
/// is an object that has one.
pub fn check_answer(question: Option<&Value>, answer: &Value) -> Result<(), SchemaError> {
    match question.and_then(|q| q.get("answer_schema")) {
        Some(schema) => check("the answer", schema, answer),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "max_words": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}
            }
        })
    }

    fn violations(r: Result<(), SchemaError>) -> Vec<Violation> {
        match r {
            Ok(()) => panic!("expected a mismatch"),
            Err(SchemaError::Mismatch { violations, .. }) => violations,
        }
    }

    #[test]
    fn names_the_field_and_the_rule() {
        let s = schema();
        assert_eq!(check("the input", &s, &json!({"text": "hi"})), Ok(()));
        let v = violations(check(
            "the input",
            &s,
            &json!({"text": "hi", "max_words": "ten"}),
        ));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pointer, "/max_words");
        assert_eq!(v[0].rule, "/properties/max_words/type");
        let v = violations(check("the input", &s, &json!({"tags": ["ok", "NO"]})));
        let pointers: Vec<&str> = v.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&""), "missing required text: {v:?}");
        assert!(pointers.contains(&"/tags/1"), "{v:?}");
        let rules: Vec<&str> = v.iter().map(|v| v.rule.as_str()).collect();
        assert!(rules.contains(&"/required"), "{v:?}");
        assert!(rules.contains(&"/properties/tags/items/pattern"), "{v:?}");
        let text = SchemaError::Mismatch {
            what: "the input",
            violations: v,
        }
        .to_string();
        assert!(
            text.starts_with("the input does not match its schema: "),
            "{text}"
        );
        assert!(text.contains("at /tags/1: "), "{text}");
        assert!(text.contains("(schema rule /required)"), "{text}");
    }

    #[test]
    fn reports_at_most_a_few() {
        let s = json!({"type": "array", "items": {"type": "integer"}});
        let v = violations(check("x", &s, &json!(vec!["a"; 100])));
        assert_eq!(v.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn unusable_schemas_are_not_applied() {
        // Not an object, invalid under its draft, or a remote reference: nothing is checked
        // (and nothing is fetched).
        for s in [
            json!("string"),
            json!({"type": 12}),
            json!({"$ref": "https://example.com/schema.json"}),
        ] {
            assert!(compile(&s).is_none(), "{s}");
            assert_eq!(check("x", &s, &json!(1)), Ok(()));
        }
        assert_eq!(check_input("not json", &json!(1)), Ok(()));
        assert_eq!(check_input("{}", &json!(1)), Ok(()));
        assert!(check_input(r#"{"type":"object"}"#, &json!(1)).is_err());
        assert!(check_input_bytes(r#"{"type":"object"}"#, b"1").is_err());
        assert_eq!(check_input_bytes(r#"{"type":"object"}"#, b"{}"), Ok(()));
        assert_eq!(check_input_bytes("{}", b"not json"), Ok(()));
        // `false` refuses everything; formats are annotations only.
        assert!(check("x", &json!(false), &json!(1)).is_err());
        assert_eq!(
            check("x", &json!({"format": "email"}), &json!("not an email")),
            Ok(())
        );
    }

    #[test]
    fn answers_follow_the_question() {
        let q = json!({"text": "how many?", "answer_schema": {"type": "integer"}});
        assert_eq!(check_answer(Some(&q), &json!(3)), Ok(()));
        let v = violations(check_answer(Some(&q), &json!("three")));
        assert_eq!(v[0].pointer, "");
        assert_eq!(v[0].rule, "/type");
        assert_eq!(
            check_answer(Some(&json!("plain question")), &json!(1)),
            Ok(())
        );
        assert_eq!(check_answer(None, &json!(1)), Ok(()));
    }
}
