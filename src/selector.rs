//! Label and field selectors as the apiserver parses and evaluates them: the `labelSelector` and
//! `fieldSelector` query parameters, and metav1.LabelSelector objects in webhook configurations.
//! Pure functions of their input, shared by the simulator and the write probe; nothing here
//! touches a store or the network.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A selector that could not be parsed or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Query-string label selector syntax error, worded as the apiserver words it.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A metav1.LabelSelector object that is not valid.
    #[error("{0}")]
    Invalid(String),
    /// Field selector syntax error.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Field { selector: String, term: String },
}

pub type Result<T, E = SelectorError> = std::result::Result<T, E>;

/// A label requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One compiled requirement: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: BTreeSet<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement> {
        validate_label_key(key).map_err(SelectorError::Requirement)?;
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(SelectorError::Requirement(
                    "for 'in', 'notin' operators, values set can't be empty".into(),
                ));
            }
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err(SelectorError::Requirement(
                    "exact-match compatibility requires one single value".into(),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(SelectorError::Requirement(
                    "values set must be empty for exists and does not exist".into(),
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(SelectorError::Requirement(
                        "for 'Gt', 'Lt' operators, exactly one value is required".into(),
                    ));
                }
                if values.iter().any(|v| v.parse::<i64>().is_err()) {
                    return Err(SelectorError::Requirement(
                        "for 'Gt', 'Lt' operators, the value must be an integer".into(),
                    ));
                }
            }
            _ => {}
        }
        for v in &values {
            if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
                validate_label_value(v).map_err(SelectorError::Requirement)?;
            }
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values: values.into_iter().collect(),
        })
    }

    /// Kubernetes semantics: `!=` and `notin` match when the key is absent.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.contains(v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self
                    .values
                    .iter()
                    .next()
                    .and_then(|v| v.parse::<i64>().ok())
                else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// A compiled label selector; no requirements selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// True when the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Parses the query-string syntax (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(input: &str) -> Result<LabelSelector> {
        let tokens = lex(input)?;
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if parser.peek() == &Token::End {
            return Ok(LabelSelector::everything());
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                Token::End => break,
                Token::Comma => {}
                other => {
                    return Err(SelectorError::Requirement(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        other.text()
                    )));
                }
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Compiles a metav1.LabelSelector object; `null`, missing and `{}` select everything.
    pub fn from_json(value: &Value) -> Result<LabelSelector> {
        let obj = match value {
            Value::Null => return Ok(LabelSelector::everything()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError::Invalid(format!(
                    "label selector must be an object, got {other}"
                )));
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let Some(v) = v.as_str() else {
                        return Err(SelectorError::Invalid(format!(
                            "matchLabels[{k}] must be a string"
                        )));
                    };
                    requirements.push(Requirement::new(k, Operator::Equals, vec![v.into()])?);
                }
            }
            Some(_) => {
                return Err(SelectorError::Invalid(
                    "matchLabels must be an object".into(),
                ));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for expr in exprs {
                    let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
                    let op = expr
                        .get("operator")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let values: Vec<String> = match expr.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(vs)) => vs
                            .iter()
                            .map(|v| v.as_str().map(str::to_string))
                            .collect::<Option<_>>()
                            .ok_or_else(|| {
                                SelectorError::Invalid("values must be strings".into())
                            })?,
                        Some(_) => {
                            return Err(SelectorError::Invalid("values must be a list".into()));
                        }
                    };
                    let operator = match op {
                        "In" => Operator::In,
                        "NotIn" => Operator::NotIn,
                        "Exists" => Operator::Exists,
                        "DoesNotExist" => Operator::DoesNotExist,
                        other => {
                            return Err(SelectorError::Invalid(format!(
                                "{other:?} is not a valid label selector operator"
                            )));
                        }
                    };
                    requirements.push(Requirement::new(key, operator, values)?);
                }
            }
            Some(_) => {
                return Err(SelectorError::Invalid(
                    "matchExpressions must be a list".into(),
                ));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Every requirement must hold.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    In,
    NotIn,
    End,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::Bang => "!".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::End => String::new(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(input: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let token = match (c, next) {
            ('=', Some('=')) => {
                i += 2;
                Token::DoubleEquals
            }
            ('!', Some('=')) => {
                i += 2;
                Token::NotEquals
            }
            ('=', _) => {
                i += 1;
                Token::Equals
            }
            ('!', _) => {
                i += 1;
                Token::Bang
            }
            ('>', _) => {
                i += 1;
                Token::Gt
            }
            ('<', _) => {
                i += 1;
                Token::Lt
            }
            ('(', _) => {
                i += 1;
                Token::Open
            }
            (')', _) => {
                i += 1;
                Token::Close
            }
            (',', _) => {
                i += 1;
                Token::Comma
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Ident(word),
                }
            }
        };
        tokens.push(token);
    }
    tokens.push(Token::End);
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn requirement(&mut self) -> Result<Requirement> {
        match self.next() {
            Token::Bang => match self.next() {
                Token::Ident(key) => Requirement::new(&key, Operator::DoesNotExist, vec![]),
                other => Err(SelectorError::Requirement(format!(
                    "found '{}', expected: identifier after '!'",
                    other.text()
                ))),
            },
            Token::Ident(key) => {
                let operator = match self.peek() {
                    Token::End | Token::Comma => {
                        return Requirement::new(&key, Operator::Exists, vec![]);
                    }
                    Token::Equals | Token::DoubleEquals => Operator::Equals,
                    Token::NotEquals => Operator::NotEquals,
                    Token::In => Operator::In,
                    Token::NotIn => Operator::NotIn,
                    Token::Gt => Operator::GreaterThan,
                    Token::Lt => Operator::LessThan,
                    other => {
                        return Err(SelectorError::Requirement(format!(
                            "found '{}', expected: =, !=, ==, in, notin",
                            other.text()
                        )));
                    }
                };
                self.next();
                let values = match operator {
                    Operator::In | Operator::NotIn => self.value_set()?,
                    _ => vec![self.exact_value()?],
                };
                Requirement::new(&key, operator, values)
            }
            other => Err(SelectorError::Requirement(format!(
                "found '{}', expected: !, identifier, or 'end of string'",
                other.text()
            ))),
        }
    }

    fn exact_value(&mut self) -> Result<String> {
        match self.peek().clone() {
            Token::End | Token::Comma => Ok(String::new()),
            Token::Ident(v) => {
                self.next();
                Ok(v)
            }
            // `in`/`notin` are valid values after `=`.
            Token::In | Token::NotIn => Ok(self.next().text()),
            other => Err(SelectorError::Requirement(format!(
                "found '{}', expected: identifier",
                other.text()
            ))),
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>> {
        match self.next() {
            Token::Open => {}
            other => {
                return Err(SelectorError::Requirement(format!(
                    "found '{}', expected: '('",
                    other.text()
                )));
            }
        }
        let mut values = Vec::new();
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Close => {
                    // `a in (x,)` carries an empty value, as the apiserver reads it.
                    if expect_value && !values.is_empty() {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::Ident(v) if expect_value => {
                    values.push(v);
                    expect_value = false;
                }
                t @ (Token::In | Token::NotIn) if expect_value => {
                    values.push(t.text());
                    expect_value = false;
                }
                other => {
                    return Err(SelectorError::Requirement(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.text()
                    )));
                }
            }
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn valid_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(is_name_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn validate_label_key(key: &str) -> std::result::Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !valid_dns_subdomain(prefix)
    {
        return Err(format!(
            "key: Invalid value: {key:?}: prefix part must be a valid DNS subdomain"
        ));
    }
    if !valid_name_part(name) {
        return Err(format!(
            "key: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ));
    }
    Ok(())
}

fn validate_label_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() || valid_name_part(value) {
        return Ok(());
    }
    Err(format!(
        "values[0]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ))
}

/// One field requirement: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A compiled field selector; no requirements selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Boolean fields the apiserver reads from typed structs, where absence means `false`.
const FALSE_WHEN_ABSENT: &[&str] = &["spec.unschedulable", "spec.hostNetwork"];

impl FieldSelector {
    /// Parses `f=v`, `f==v`, `f!=v`, comma separated, with `\,` `\=` `\\` escapes.
    pub fn parse(input: &str) -> Result<FieldSelector> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        for term in split_unescaped(input, ',') {
            let term_trimmed = term.trim();
            let parsed =
                [("!=", true), ("==", false), ("=", false)]
                    .iter()
                    .find_map(|(op, negated)| {
                        find_unescaped(term_trimmed, op).map(|at| {
                            (
                                &term_trimmed[..at],
                                &term_trimmed[at + op.len()..],
                                *negated,
                            )
                        })
                    });
            let Some((field, value, negated)) = parsed else {
                return Err(SelectorError::Field {
                    selector: input.to_string(),
                    term: term.clone(),
                });
            };
            let field = unescape(field.trim());
            if field.is_empty() {
                return Err(SelectorError::Field {
                    selector: input.to_string(),
                    term: term.clone(),
                });
            }
            requirements.push(FieldRequirement {
                field,
                value: unescape(value.trim()),
                negated,
            });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// The field names used, so the caller can reject the unsupported ones.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.field.as_str())
    }

    /// Resolves each field as a dotted path in the object; a missing field reads as "".
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let have = field_value(object, &r.field);
            (have == r.value) != r.negated
        })
    }
}

/// The string value the apiserver compares for `field` in `object`.
pub fn field_value(object: &Value, field: &str) -> String {
    if field == "source" {
        // Events: the label `source` is the source component (core) or the deprecated source
        // component (events.k8s.io), falling back to the reporting controller.
        return [
            "/source/component",
            "/deprecatedSource/component",
            "/reportingController",
        ]
        .iter()
        .filter_map(|p| object.pointer(p).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_string();
    }
    let mut cur = object;
    for part in field.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => {
                return if FALSE_WHEN_ABSENT.contains(&field) {
                    "false".into()
                } else {
                    String::new()
                };
            }
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null if FALSE_WHEN_ABSENT.contains(&field) => "false".into(),
        _ => String::new(),
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn find_unescaped(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

const CORE_EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "source",
    "type",
];

/// Whether the apiserver accepts `field` in a field selector for `kind`. `Event` accepts both
/// the core names (`involvedObject.*`) and the events.k8s.io names (`regarding.*`); use
/// [`supported_field_in_group`] to tell them apart.
pub fn supported_field(kind: &str, field: &str) -> bool {
    supported_field_in_group("", kind, field)
        || (kind == "Event" && supported_field_in_group("events.k8s.io", kind, field))
}

/// Like [`supported_field`], for a kind in a given API group.
pub fn supported_field_in_group(group: &str, kind: &str, field: &str) -> bool {
    if field == "metadata.name" || field == "metadata.namespace" {
        return true;
    }
    let extra: &[&str] = match (group, kind) {
        ("", "Event") => CORE_EVENT_FIELDS,
        ("events.k8s.io", "Event") => EVENTS_V1_FIELDS,
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "ReplicationController") => &["status.replicas"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        ("certificates.k8s.io", "CertificateSigningRequest") => &["spec.signerName"],
        _ => &[],
    };
    extra.contains(&field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = LabelSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        assert!(LabelSelector::parse("   ").unwrap().is_empty());
    }

    #[test]
    fn equality_operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(LabelSelector::parse("app=web").unwrap().matches(&l));
        assert!(LabelSelector::parse("app==web").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app=db").unwrap().matches(&l));
        assert!(!LabelSelector::parse("app!=web").unwrap().matches(&l));
        assert!(LabelSelector::parse("app!=db").unwrap().matches(&l));
        // != matches when the key is absent
        assert!(LabelSelector::parse("missing!=x").unwrap().matches(&l));
        // = on an absent key does not
        assert!(!LabelSelector::parse("missing=x").unwrap().matches(&l));
        // empty value
        assert!(
            LabelSelector::parse("missing=")
                .unwrap()
                .matches(&labels(&[("missing", "")]))
        );
    }

    #[test]
    fn set_operators() {
        let l = labels(&[("env", "prod")]);
        assert!(
            LabelSelector::parse("env in (prod, staging)")
                .unwrap()
                .matches(&l)
        );
        assert!(!LabelSelector::parse("env in (dev)").unwrap().matches(&l));
        assert!(
            !LabelSelector::parse("env notin (prod)")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelSelector::parse("env notin (dev)").unwrap().matches(&l));
        // notin matches when the key is absent, in does not
        assert!(LabelSelector::parse("zone notin (a)").unwrap().matches(&l));
        assert!(!LabelSelector::parse("zone in (a)").unwrap().matches(&l));
    }

    #[test]
    fn existence_operators_and_combination() {
        let l = labels(&[("a", "1"), ("b", "2")]);
        assert!(LabelSelector::parse("a").unwrap().matches(&l));
        assert!(!LabelSelector::parse("c").unwrap().matches(&l));
        assert!(LabelSelector::parse("!c").unwrap().matches(&l));
        assert!(!LabelSelector::parse("!a").unwrap().matches(&l));
        let s = LabelSelector::parse(" a , ! c,b in ( 2 ,3 ) , a!=5 ").unwrap();
        assert_eq!(s.requirements().len(), 4);
        assert!(s.matches(&l));
        assert!(!LabelSelector::parse("a,c").unwrap().matches(&l));
        assert!(LabelSelector::parse("a>0").unwrap().matches(&l));
        assert!(!LabelSelector::parse("a<1").unwrap().matches(&l));
    }

    #[test]
    fn parse_errors_are_worded_like_the_apiserver() {
        for bad in [
            "a in ()",
            "a in (b",
            "a=b,",
            "!",
            "a b",
            "=b",
            "a in b",
            "bad key!x=1",
            "a=b c",
            "k=-bad-",
            "a>b",
        ] {
            let err = LabelSelector::parse(bad).expect_err(bad);
            assert!(
                err.to_string().starts_with("unable to parse requirement: "),
                "{bad}: {err}"
            );
        }
        let err = LabelSelector::parse("a in ()").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
        );
        assert!(LabelSelector::parse("example.com/app=x").is_ok());
        assert!(LabelSelector::parse("Bad_Prefix/app=x").is_err());
    }

    #[test]
    fn from_json_selectors() {
        let l = labels(&[("app", "web"), ("env", "prod")]);
        assert!(LabelSelector::from_json(&Value::Null).unwrap().is_empty());
        assert!(LabelSelector::from_json(&json!({})).unwrap().is_empty());
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "qa"]},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "app", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert!(s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("legacy", "1")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
    }

    #[test]
    fn from_json_validation() {
        let cases = [
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchLabels": {"a b": "c"}}),
            json!("nope"),
        ];
        for c in cases {
            assert!(LabelSelector::from_json(&c).is_err(), "{c}");
        }
        let err = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Bogus", "values": ["x"]}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"Bogus\" is not a valid label selector operator"
        );
    }

    #[test]
    fn field_selector_parse_and_match() {
        let pod = json!({
            "metadata": {"name": "p1", "namespace": "default"},
            "spec": {"nodeName": "n1", "hostNetwork": true},
            "status": {"phase": "Running"}
        });
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            vec!["spec.nodeName", "status.phase"]
        );
        assert!(s.matches(&pod));
        assert!(
            FieldSelector::parse("metadata.name==p1")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("metadata.name=p2")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.hostNetwork=true")
                .unwrap()
                .matches(&pod)
        );
        // missing field reads as empty string
        assert!(
            FieldSelector::parse("spec.schedulerName=")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.schedulerName!=x")
                .unwrap()
                .matches(&pod)
        );
        // typed booleans read as false when absent
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.unschedulable=false")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !FieldSelector::parse("spec.unschedulable=true")
                .unwrap()
                .matches(&node)
        );
        assert!(FieldSelector::parse("").unwrap().is_empty());
        // escapes
        let s = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(s.requirements()[0].value, "a,b");
    }

    #[test]
    fn field_selector_errors() {
        let err = FieldSelector::parse("spec.nodeName").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        assert!(FieldSelector::parse("a=b,c").is_err());
        assert!(FieldSelector::parse("=b").is_err());
    }

    #[test]
    fn supported_fields_per_kind() {
        assert!(supported_field("ConfigMap", "metadata.name"));
        assert!(supported_field("ConfigMap", "metadata.namespace"));
        assert!(!supported_field("ConfigMap", "data.x"));
        assert!(supported_field("Pod", "spec.nodeName"));
        assert!(supported_field("Pod", "status.nominatedNodeName"));
        assert!(!supported_field("Pod", "spec.containers"));
        assert!(supported_field("Node", "spec.unschedulable"));
        assert!(!supported_field("Node", "status.phase"));
        assert!(supported_field("Secret", "type"));
        assert!(supported_field("Namespace", "status.phase"));
        assert!(supported_field("Event", "involvedObject.name"));
        assert!(supported_field("Event", "regarding.name"));
        assert!(!supported_field_in_group("", "Event", "regarding.name"));
        assert!(supported_field_in_group(
            "events.k8s.io",
            "Event",
            "reportingController"
        ));
        assert!(!supported_field_in_group(
            "events.k8s.io",
            "Event",
            "involvedObject.name"
        ));
    }
}
