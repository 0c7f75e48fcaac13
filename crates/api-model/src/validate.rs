//! Model-driven validation of raw request JSON, reported the way AWS reports it.
//!
//! [`validate`] walks a `serde_json::Value` against an input shape of the embedded botocore
//! model ([`crate::SERVICE_MODEL_JSON`]) and collects every violation of `required`, JSON type,
//! `min`/`max` (string length, collection size, numeric range), `pattern` and `enum`.
//! [`parse_request`] chains JSON parsing, validation and typed deserialization, so that a
//! handler either gets a well-formed request or a [`ValidationErrors`] whose `Display` is the
//! AWS sentence, e.g.
//!
//! ```text
//! 1 validation error detected: Value 'my flow' at 'flowName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][\w!@#.-]+
//! ```
//!
//! # Paths
//!
//! Paths follow the AWS convention:
//! * structure members are joined with `.`: `sourceFlowConfig.sourceConnectorProperties.S3.bucketName`;
//! * list elements are `<list>.<n>.member` with a 1-based `n`: `tasks.1.member.sourceFields`, and a
//!   scalar element is `tasks.1.member.sourceFields.2.member`;
//! * map values are `<map>.<key>`: `tags.team`, `tasks.1.member.taskProperties.VALUE`; a bad map
//!   *key* is reported at the map itself with `Map keys must satisfy constraint: [...]`.
//!
//! # Semantics
//!
//! * Unknown members are ignored, as AWS does; a JSON `null` counts as an absent member.
//! * Members bound to the URI or query string (`resourceArn`, `tagKeys`) are not part of the body
//!   and are skipped by [`validate`]; check them with [`validate_member`].
//! * Patterns are Java regexes that must match the whole value. They are translated once to the
//!   `regex` crate's dialect (anchored, `\w`/`\s`/`\d` kept ASCII-only as in Java, `.` excluding
//!   Java's line terminators, `\uD800\uDC00`-style surrogate pairs turned into code points) and
//!   compiled lazily, one cached `Regex` per shape. A leading negative look-ahead on a literal
//!   (`TagKey`'s `^(?!aws:)`) becomes an explicit "must not start with" check.
//! * String lengths count Unicode scalar values (Smithy's `length` semantics).
//! * Timestamps accept epoch seconds (integer or fractional) and RFC 3339 / ISO-8601 strings,
//!   exactly what [`crate::Timestamp`] deserializes.
//! * Values of sensitive shapes (passwords, tokens, keys) are never echoed: the sentence becomes
//!   `Value at 'path' failed to satisfy constraint: ...`. Echoed values longer than
//!   [`MAX_ECHOED_CHARS`] characters are shortened with `...`.
//! * Members are visited in alphabetical order, so problems are reported in a stable order;
//!   at most [`MAX_REPORTED_ERRORS`] of them per request.
//! * Enum value sets are listed in model order.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::codegen::shapes::OPERATIONS;

/// The most problems one request reports; further ones are dropped.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Echoed values longer than this many characters are shortened.
pub const MAX_ECHOED_CHARS: usize = 200;

/// One validation problem; `Display` gives the AWS-style sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where the problem is, in the AWS path convention (see the module docs). Empty for
    /// problems with the body as a whole (malformed JSON, not an object).
    pub path: String,
    /// The violated constraint, e.g. `Member must not be null`.
    pub message: String,
    /// The offending value as it appears in the sentence (`'my flow'`, `null`, `'5'`), or
    /// `None` when the value is secret and must not be echoed.
    pub value: Option<String>,
}

impl ValidationError {
    /// A problem with the request as a whole, displayed as `message` alone.
    pub fn body(message: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            message: message.into(),
            value: None,
        }
    }

    /// A problem at `path`, echoing `value` (already rendered, e.g. `'abc'` or `null`).
    pub fn at(path: impl Into<String>, value: Option<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            value,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            return f.write_str(&self.message);
        }
        match &self.value {
            Some(value) => write!(
                f,
                "Value {value} at '{}' failed to satisfy constraint: {}",
                self.path, self.message
            ),
            None => write!(
                f,
                "Value at '{}' failed to satisfy constraint: {}",
                self.path, self.message
            ),
        }
    }
}

/// All problems found in one request; `Display` follows AWS's `N validation error(s) detected:`
/// format with the individual sentences joined by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summarize(&self.0))]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The individual problems, in the order they were found.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }
}

impl From<ValidationError> for ValidationErrors {
    fn from(error: ValidationError) -> Self {
        Self(vec![error])
    }
}

fn summarize(errors: &[ValidationError]) -> String {
    let count = errors.len();
    let noun = if count == 1 { "error" } else { "errors" };
    let sentences: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(
        "{count} validation {noun} detected: {}",
        sentences.join("; ")
    )
}

/// Validates `body` against the input shape `shape` (e.g. `CreateFlowRequest`).
///
/// # Errors
///
/// Every violation found, or a single error when `shape` is not a structure of the model.
pub fn validate(shape: &str, body: &Value) -> Result<(), ValidationErrors> {
    let model = model()?;
    let Some(target) = model.shapes.get(shape) else {
        return Err(ValidationError::body(format!("Unknown input shape '{shape}'")).into());
    };
    if !matches!(target.kind, Kind::Structure { .. }) {
        return Err(ValidationError::body(format!("Shape '{shape}' is not a structure")).into());
    }
    if !body.is_object() {
        return Err(ValidationError::body(format!(
            "Request body must be a JSON object but was {}",
            json_type(body)
        ))
        .into());
    }
    let mut walker = Walker::new(model);
    walker.check(target, body, "");
    walker.finish()
}

/// Validates the value of one member of `shape`, reported at path `member`. Meant for members
/// bound to the URI or query string, which [`validate`] skips.
///
/// # Errors
///
/// The violations found, or a single error when the shape or member does not exist.
pub fn validate_member(shape: &str, member: &str, value: &Value) -> Result<(), ValidationErrors> {
    let model = model()?;
    let member_shape = model.shapes.get(shape).and_then(|s| match &s.kind {
        Kind::Structure { members, .. } => members.iter().find(|m| m.name == member),
        _ => None,
    });
    let Some(member_shape) = member_shape.and_then(|m| model.shapes.get(&m.shape)) else {
        return Err(
            ValidationError::body(format!("Unknown member '{member}' of shape '{shape}'")).into(),
        );
    };
    let mut walker = Walker::new(model);
    if value.is_null() {
        walker.push(ValidationError::at(
            member,
            Some("null".into()),
            "Member must not be null",
        ));
    } else {
        walker.check(member_shape, value, member);
    }
    walker.finish()
}

/// Parses JSON text, validates it against `shape` and deserializes it into `T`.
///
/// An empty (or all-whitespace) body counts as `{}`: `GET`/`DELETE` operations send none.
///
/// # Errors
///
/// Malformed JSON, wrong JSON types, missing required members, unknown enum values and
/// length/range/pattern violations all become [`ValidationErrors`].
pub fn parse_request<T: serde::de::DeserializeOwned>(
    shape: &str,
    body: &[u8],
) -> Result<T, ValidationErrors> {
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|error| {
            ValidationError::body(format!("Request body is not valid JSON: {error}"))
        })?
    };
    validate(shape, &value)?;
    serde_json::from_value(value).map_err(|error| {
        ValidationError::body(format!("Request body does not match {shape}: {error}")).into()
    })
}

/// The input shape of an operation, e.g. `CreateFlow` -> `CreateFlowRequest`.
pub fn input_shape(operation: &str) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .find(|op| op.name == operation)
        .map(|op| op.input)
}

// ---------------------------------------------------------------------------------------------
// The model

struct Model {
    shapes: HashMap<String, Shape>,
}

struct Shape {
    kind: Kind,
    /// The shape itself is secret.
    sensitive: bool,
    /// The shape or anything reachable from it is secret, so whole values must not be echoed.
    contains_sensitive: bool,
}

enum Kind {
    Structure {
        /// Sorted by name, so errors come out in a stable order.
        members: Vec<Member>,
        required: HashSet<String>,
    },
    List {
        member: String,
        min: Option<u64>,
        max: Option<u64>,
    },
    Map {
        key: String,
        value: String,
        min: Option<u64>,
        max: Option<u64>,
    },
    String(StringRules),
    Integer {
        min: i64,
        max: i64,
    },
    Double {
        min: Option<f64>,
        max: Option<f64>,
    },
    Boolean,
    Timestamp,
    /// Shape types the AppFlow model does not use (blob, document); accepted as they are.
    Opaque,
}

struct Member {
    name: String,
    shape: String,
    /// `true` for members bound to the URI, query string or a header.
    bound_outside_body: bool,
}

struct StringRules {
    min: Option<u64>,
    max: Option<u64>,
    enum_values: Option<Vec<String>>,
    pattern: Option<Pattern>,
}

struct Pattern {
    /// The model's (Java) pattern, quoted in messages.
    source: String,
    /// A literal prefix the value must not start with (from a leading `^(?!literal)`).
    forbidden_prefix: Option<String>,
    /// The anchored `regex`-dialect translation.
    translated: String,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: &str) -> Self {
        let (forbidden_prefix, rest) = split_negative_lookahead(source);
        let translated = format!("^(?:{})$", java_to_rust_regex(rest));
        Self {
            source: source.to_string(),
            forbidden_prefix,
            translated,
            compiled: OnceLock::new(),
        }
    }

    fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&self.translated).ok())
            .as_ref()
    }

    fn matches(&self, value: &str) -> bool {
        if let Some(prefix) = &self.forbidden_prefix
            && value.starts_with(prefix.as_str())
        {
            return false;
        }
        // Every model pattern compiles (checked by a test); should one ever fail, the
        // constraint is skipped rather than rejecting every request.
        self.regex().is_none_or(|regex| regex.is_match(value))
    }
}

fn model() -> Result<&'static Model, ValidationErrors> {
    static MODEL: OnceLock<Result<Model, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| Model::parse(crate::SERVICE_MODEL_JSON))
        .as_ref()
        .map_err(|error| {
            ValidationError::body(format!("Service model is unusable: {error}")).into()
        })
}

impl Model {
    fn parse(text: &str) -> Result<Self, String> {
        let root: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let raw = root
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or("the model has no `shapes` object")?;
        let mut shapes = HashMap::with_capacity(raw.len());
        for (name, spec) in raw {
            shapes.insert(name.clone(), Shape::parse(name, spec)?);
        }
        let mut model = Self { shapes };
        model.mark_sensitive_subtrees();
        Ok(model)
    }

    fn mark_sensitive_subtrees(&mut self) {
        let names: Vec<String> = self.shapes.keys().cloned().collect();
        let mut memo: HashMap<String, bool> = HashMap::new();
        for name in &names {
            let mut visiting = HashSet::new();
            self.contains_sensitive(name, &mut memo, &mut visiting);
        }
        for (name, flag) in memo {
            if let Some(shape) = self.shapes.get_mut(&name) {
                shape.contains_sensitive = flag;
            }
        }
    }

    fn contains_sensitive(
        &self,
        name: &str,
        memo: &mut HashMap<String, bool>,
        visiting: &mut HashSet<String>,
    ) -> bool {
        if let Some(&known) = memo.get(name) {
            return known;
        }
        let Some(shape) = self.shapes.get(name) else {
            return false;
        };
        // A recursive reference adds nothing new: the cycle's other shapes are checked anyway.
        if !visiting.insert(name.to_string()) {
            return shape.sensitive;
        }
        let children: Vec<&str> = match &shape.kind {
            Kind::Structure { members, .. } => members.iter().map(|m| m.shape.as_str()).collect(),
            Kind::List { member, .. } => vec![member.as_str()],
            Kind::Map { key, value, .. } => vec![key.as_str(), value.as_str()],
            _ => Vec::new(),
        };
        let mut flag = shape.sensitive;
        for child in children {
            flag |= self.contains_sensitive(child, memo, visiting);
        }
        visiting.remove(name);
        memo.insert(name.to_string(), flag);
        flag
    }
}

impl Shape {
    fn parse(name: &str, spec: &Value) -> Result<Self, String> {
        let kind_name = spec
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("shape {name} has no type"))?;
        let int = |key: &str| spec.get(key).and_then(Value::as_i64);
        let size = |key: &str| spec.get(key).and_then(Value::as_u64);
        let target = |key: &str| -> Result<String, String> {
            spec.get(key)
                .and_then(|v| v.get("shape"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("shape {name} has no `{key}` shape"))
        };
        let kind = match kind_name {
            "structure" => {
                let mut members = Vec::new();
                if let Some(raw) = spec.get("members").and_then(Value::as_object) {
                    for (member, member_spec) in raw {
                        let shape = member_spec
                            .get("shape")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("member {name}.{member} has no shape"))?;
                        members.push(Member {
                            name: member.clone(),
                            shape: shape.to_string(),
                            bound_outside_body: member_spec.get("location").is_some(),
                        });
                    }
                }
                members.sort_by(|a, b| a.name.cmp(&b.name));
                let required = spec
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Kind::Structure { members, required }
            }
            "list" => Kind::List {
                member: target("member")?,
                min: size("min"),
                max: size("max"),
            },
            "map" => Kind::Map {
                key: target("key")?,
                value: target("value")?,
                min: size("min"),
                max: size("max"),
            },
            "string" => Kind::String(StringRules {
                min: size("min"),
                max: size("max"),
                enum_values: spec.get("enum").and_then(Value::as_array).map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
                pattern: spec
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(Pattern::new),
            }),
            "integer" => Kind::Integer {
                min: int("min")
                    .unwrap_or(i64::from(i32::MIN))
                    .max(i64::from(i32::MIN)),
                max: int("max")
                    .unwrap_or(i64::from(i32::MAX))
                    .min(i64::from(i32::MAX)),
            },
            "long" => Kind::Integer {
                min: int("min").unwrap_or(i64::MIN),
                max: int("max").unwrap_or(i64::MAX),
            },
            "double" | "float" => Kind::Double {
                min: spec.get("min").and_then(Value::as_f64),
                max: spec.get("max").and_then(Value::as_f64),
            },
            "boolean" => Kind::Boolean,
            "timestamp" => Kind::Timestamp,
            _ => Kind::Opaque,
        };
        let sensitive = spec
            .get("sensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            kind,
            sensitive,
            contains_sensitive: sensitive,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Walking a value

struct Walker<'m> {
    model: &'m Model,
    errors: Vec<ValidationError>,
}

impl<'m> Walker<'m> {
    fn new(model: &'m Model) -> Self {
        Self {
            model,
            errors: Vec::new(),
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    fn push(&mut self, error: ValidationError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }

    fn full(&self) -> bool {
        self.errors.len() >= MAX_REPORTED_ERRORS
    }

    fn violation(&mut self, path: &str, shape: &Shape, value: &Value, message: String) {
        let rendered = echo(value, shape.contains_sensitive);
        self.push(ValidationError::at(path, rendered, message));
    }

    fn shape(&self, name: &str) -> Option<&'m Shape> {
        self.model.shapes.get(name)
    }

    /// Checks a non-null `value` against `shape`.
    fn check(&mut self, shape: &'m Shape, value: &Value, path: &str) {
        if self.full() {
            return;
        }
        match &shape.kind {
            Kind::Structure { members, required } => {
                let Some(object) = value.as_object() else {
                    return self.type_mismatch(path, shape, value, "object");
                };
                for member in members {
                    if member.bound_outside_body {
                        continue;
                    }
                    let child_path = join_member(path, &member.name);
                    match object.get(&member.name) {
                        None | Some(Value::Null) => {
                            if required.contains(&member.name) {
                                self.push(ValidationError::at(
                                    child_path,
                                    Some("null".into()),
                                    "Member must not be null",
                                ));
                            }
                        }
                        Some(child) => {
                            if let Some(child_shape) = self.shape(&member.shape) {
                                self.check(child_shape, child, &child_path);
                            }
                        }
                    }
                }
            }
            Kind::List { member, min, max } => {
                let Some(items) = value.as_array() else {
                    return self.type_mismatch(path, shape, value, "array");
                };
                self.check_size(path, shape, value, items.len(), *min, *max);
                let member_shape = self.shape(member);
                for (index, item) in items.iter().enumerate() {
                    let item_path = format!("{path}.{}.member", index + 1);
                    if item.is_null() {
                        self.push(ValidationError::at(
                            item_path,
                            Some("null".into()),
                            "Member must not be null",
                        ));
                    } else if let Some(member_shape) = member_shape {
                        self.check(member_shape, item, &item_path);
                    }
                }
            }
            Kind::Map {
                key,
                value: value_shape,
                min,
                max,
            } => {
                let Some(entries) = value.as_object() else {
                    return self.type_mismatch(path, shape, value, "object");
                };
                self.check_size(path, shape, value, entries.len(), *min, *max);
                let key_shape = self.shape(key);
                let value_shape = self.shape(value_shape);
                for (entry_key, entry_value) in entries {
                    if let Some(Shape {
                        kind: Kind::String(rules),
                        sensitive,
                        ..
                    }) = key_shape
                    {
                        let problems = string_violations(rules, entry_key);
                        if !problems.is_empty() {
                            let rendered = (!sensitive).then(|| quote(entry_key));
                            self.push(ValidationError::at(
                                path,
                                rendered,
                                format!(
                                    "Map keys must satisfy constraint: [{}]",
                                    problems.join(", ")
                                ),
                            ));
                        }
                    }
                    let entry_path = join_member(path, entry_key);
                    if entry_value.is_null() {
                        self.push(ValidationError::at(
                            entry_path,
                            Some("null".into()),
                            "Member must not be null",
                        ));
                    } else if let Some(value_shape) = value_shape {
                        self.check(value_shape, entry_value, &entry_path);
                    }
                }
            }
            Kind::String(rules) => {
                let Some(text) = value.as_str() else {
                    return self.type_mismatch(path, shape, value, "string");
                };
                for problem in string_violations(rules, text) {
                    self.violation(path, shape, value, problem);
                }
            }
            Kind::Integer { min, max } => {
                let Some(number) = value.as_number() else {
                    return self.type_mismatch(path, shape, value, "integer");
                };
                // A u64 beyond i64::MAX is above every integer shape's maximum.
                let above = number.as_u64().is_some_and(|n| n > i64::MAX as u64);
                let Some(int) = number.as_i64().or(above.then_some(i64::MAX)) else {
                    return self.type_mismatch(path, shape, value, "integer");
                };
                if above || int > *max {
                    let message = format!("Member must have value less than or equal to {max}");
                    self.violation(path, shape, value, message);
                } else if int < *min {
                    let message = format!("Member must have value greater than or equal to {min}");
                    self.violation(path, shape, value, message);
                }
            }
            Kind::Double { min, max } => {
                let Some(number) = value.as_f64() else {
                    return self.type_mismatch(path, shape, value, "number");
                };
                if let Some(max) = max.filter(|max| number > *max) {
                    let message = format!("Member must have value less than or equal to {max}");
                    self.violation(path, shape, value, message);
                }
                if let Some(min) = min.filter(|min| number < *min) {
                    let message = format!("Member must have value greater than or equal to {min}");
                    self.violation(path, shape, value, message);
                }
            }
            Kind::Boolean => {
                if !value.is_boolean() {
                    self.type_mismatch(path, shape, value, "boolean");
                }
            }
            Kind::Timestamp => {
                if !(value.is_number() || value.is_string())
                    || serde_json::from_value::<crate::Timestamp>(value.clone()).is_err()
                {
                    self.type_mismatch(
                        path,
                        shape,
                        value,
                        "timestamp (epoch seconds or an ISO-8601 string)",
                    );
                }
            }
            Kind::Opaque => {}
        }
    }

    fn type_mismatch(&mut self, path: &str, shape: &Shape, value: &Value, expected: &str) {
        let found = if value.is_f64() && expected == "integer" {
            "a decimal number"
        } else {
            json_type(value)
        };
        let message = format!("Member must be of type {expected} but was {found}");
        self.violation(path, shape, value, message);
    }

    fn check_size(
        &mut self,
        path: &str,
        shape: &Shape,
        value: &Value,
        len: usize,
        min: Option<u64>,
        max: Option<u64>,
    ) {
        let len = len as u64;
        if let Some(max) = max.filter(|max| len > *max) {
            let message = format!("Member must have length less than or equal to {max}");
            self.violation(path, shape, value, message);
        }
        if let Some(min) = min.filter(|min| len < *min) {
            let message = format!("Member must have length greater than or equal to {min}");
            self.violation(path, shape, value, message);
        }
    }
}

/// The violated constraints of a string value, as AWS words them.
fn string_violations(rules: &StringRules, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(values) = &rules.enum_values
        && !values.iter().any(|v| v == text)
    {
        problems.push(format!(
            "Member must satisfy enum value set: [{}]",
            values.join(", ")
        ));
    }
    let len = text.chars().count() as u64;
    if let Some(max) = rules.max.filter(|max| len > *max) {
        problems.push(format!(
            "Member must have length less than or equal to {max}"
        ));
    }
    if let Some(min) = rules.min.filter(|min| len < *min) {
        problems.push(format!(
            "Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(pattern) = &rules.pattern
        && !pattern.matches(text)
    {
        problems.push(format!(
            "Member must satisfy regular expression pattern: {}",
            pattern.source
        ));
    }
    problems
}

fn join_member(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Renders a value for a message the way AWS does (`'text'`, `'5'`, `'[a, b]'`, `null`), or
/// `None` when it may contain a secret.
fn echo(value: &Value, secret: bool) -> Option<String> {
    if secret {
        return None;
    }
    if value.is_null() {
        return Some("null".into());
    }
    let mut text = String::new();
    java_like(value, &mut text);
    Some(quote(&text))
}

fn quote(text: &str) -> String {
    if text.chars().count() > MAX_ECHOED_CHARS {
        let short: String = text.chars().take(MAX_ECHOED_CHARS).collect();
        format!("'{short}...'")
    } else {
        format!("'{text}'")
    }
}

/// Java `toString`-like rendering, which is what AWS echoes for collections.
fn java_like(value: &Value, out: &mut String) {
    // Rendering stops early: anything past the echo limit is cut anyway.
    if out.len() > MAX_ECHOED_CHARS * 4 {
        return;
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                java_like(item, out);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push('=');
                java_like(item, out);
            }
            out.push('}');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Java -> `regex` dialect

/// Splits a leading `^(?!literal)` off a pattern; the `regex` crate has no look-around.
fn split_negative_lookahead(pattern: &str) -> (Option<String>, &str) {
    let Some(rest) = pattern.strip_prefix("^(?!") else {
        return (None, pattern);
    };
    let Some(end) = rest.find(')') else {
        return (None, pattern);
    };
    let literal = &rest[..end];
    let is_literal = !literal.is_empty()
        && literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '/' | '@'));
    if !is_literal {
        return (None, pattern);
    }
    // The `^` goes too: the caller anchors the remainder.
    (Some(literal.to_string()), &rest[end + 1..])
}

/// Translates the Java regex features used by the model into the `regex` crate's dialect.
fn java_to_rust_regex(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut class_depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                let next = chars[i + 1];
                let in_class = class_depth > 0;
                // Java's shorthand classes are ASCII-only unless UNICODE_CHARACTER_CLASS is set.
                let ascii_class = match next {
                    'w' => Some("[:word:]"),
                    'W' => Some("[:^word:]"),
                    's' => Some("[:space:]"),
                    'S' => Some("[:^space:]"),
                    'd' => Some("[:digit:]"),
                    'D' => Some("[:^digit:]"),
                    _ => None,
                };
                if let Some(class) = ascii_class {
                    if in_class {
                        out.push_str(class);
                    } else {
                        out.push('[');
                        out.push_str(class);
                        out.push(']');
                    }
                    i += 2;
                    continue;
                }
                if next == 'u'
                    && let Some(unit) = hex4(&chars, i + 2)
                {
                    // Java writes supplementary characters as a surrogate pair of escapes.
                    let low = (chars.get(i + 6..i + 8) == Some(&['\\', 'u'][..]))
                        .then(|| hex4(&chars, i + 8))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    let (code, consumed) = match low {
                        Some(low) if (0xD800..0xDC00).contains(&unit) => {
                            (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
                        }
                        _ => (unit, 6),
                    };
                    out.push_str(&format!("\\x{{{code:X}}}"));
                    i += consumed;
                    continue;
                }
                out.push('\\');
                out.push(next);
                i += 2;
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                i += 1;
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
                i += 1;
            }
            '.' if class_depth == 0 => {
                // Java's `.` also excludes \r, NEL and the Unicode line/paragraph separators.
                out.push_str(r"[^\n\r\x{85}\x{2028}\x{2029}]");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn hex4(chars: &[char], start: usize) -> Option<u32> {
    let digits = chars.get(start..start + 4)?;
    let text: String = digits.iter().collect();
    u32::from_str_radix(&text, 16).ok()
}

#[cfg(test)]
mod tests;
