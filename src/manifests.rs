//! Manifests for offline checks: files, folders (every .yaml, .yml and .json in them, in name
//! order) and `-` for standard input; multi-document YAML, JSON (one object or an array), and
//! Lists (`kind: List` and typed ones such as `ValidatingWebhookConfigurationList`, as `kubectl
//! get -o json` prints them) flattened. Every object keeps its place (file, document, item,
//! line) so that errors and warnings can point at it. Reading is bounded: see [`Limits`].

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What `check --file` reads at most. A limit reached is an error that names it, never a hang
/// or an exhausted machine.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes per file (or standard input).
    pub file_bytes: usize,
    /// Bytes of all inputs together.
    pub total_bytes: usize,
    /// YAML documents per file (JSON: objects per file).
    pub documents: usize,
    /// YAML nodes (every value, list and map) per file.
    pub nodes: usize,
    /// How deeply lists and maps may nest.
    pub depth: usize,
}

const MIB: usize = 1024 * 1024;

/// The limits of `kube-rescue check --file` (the README states them).
pub const LIMITS: Limits = Limits {
    file_bytes: 64 * MIB,
    total_bytes: 256 * MIB,
    documents: 100_000,
    nodes: 5_000_000,
    depth: 200,
};

/// The words that end every limit error.
const LIMIT_OF: &str = "the limit of kube-rescue check --file";

#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    #[error("could not read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: no .yaml, .yml or .json files in this folder")]
    EmptyFolder { path: String },
    #[error("no Kubernetes objects in {path}{why}")]
    NoObjects { path: String, why: &'static str },
}

/// Where an object was read: `opa.yaml document 3 (line 40)`, `list.json item 2`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// The file as given (`standard input` for `-`); empty when unknown.
    pub file: String,
    /// 1-based: the YAML document, or the JSON object when the file holds one.
    pub document: Option<usize>,
    /// 1-based: the item of a List (or of a JSON array).
    pub item: Option<usize>,
    /// 1-based line where the document starts (YAML only).
    pub line: Option<u64>,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.file.is_empty() {
            parts.push(self.file.clone());
        }
        if let Some(d) = self.document {
            parts.push(format!("document {d}"));
        }
        if let Some(i) = self.item {
            parts.push(format!("item {i}"));
        }
        let mut out = parts.join(" ");
        if out.is_empty() {
            out.push_str("input");
        }
        if let Some(line) = self.line {
            out.push_str(&format!(" (line {line})"));
        }
        f.write_str(&out)
    }
}

/// One object and where it was read.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub object: Value,
    pub place: Place,
}

/// An object without a known place (built in code, or read elsewhere).
impl From<Value> for Manifest {
    fn from(object: Value) -> Self {
        Manifest {
            object,
            place: Place::default(),
        }
    }
}

/// What was read, with where it came from.
#[derive(Debug, Default)]
pub struct Manifests {
    pub objects: Vec<Manifest>,
    /// Every file read (`-` for standard input), in order.
    pub paths: Vec<String>,
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

fn files_in(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestsError> {
    let read = |e| ManifestsError::Read {
        path: dir.display().to_string(),
        error: e,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files_in(&entry, out)?;
        } else if is_manifest(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

fn parse_error(path: &str, message: impl Into<String>) -> ManifestsError {
    ManifestsError::Parse {
        path: path.into(),
        message: message.into(),
    }
}

/// Text from bytes: UTF-8 (a byte-order mark is dropped), or UTF-16 with a byte-order mark
/// (what some Windows shells write). Anything else is named with its line and byte.
pub fn decode(bytes: &[u8], path: &str) -> Result<String, ManifestsError> {
    let utf16 = |big_endian: bool| -> Result<String, ManifestsError> {
        let units = bytes[2..].chunks(2).map(|c| match (c, big_endian) {
            ([a, b], false) => u16::from_le_bytes([*a, *b]),
            ([a, b], true) => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFD,
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| parse_error(path, "not valid UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"))
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => decode(rest, path),
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(e) => {
                let at = e.valid_up_to();
                let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
                Err(parse_error(
                    path,
                    format!(
                        "not UTF-8 text: byte 0x{:02X} on line {line} (offset {at}); convert it first, e.g. with iconv -f LATIN1 -t UTF-8",
                        bytes[at]
                    ),
                ))
            }
        },
    }
}

/// The first line of a YAML error, without the parser's `error: ` prefix.
fn yaml_message(e: &serde_saphyr::Error, limits: &Limits) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let line = e
        .location()
        .map(|l| format!("line {}: ", l.line()))
        .unwrap_or_default();
    let e = e.without_snippet();
    if let serde_saphyr::Error::Budget { breach, .. } = e {
        let what = match breach {
            BudgetBreach::Documents { .. } => {
                format!("more than {} YAML documents", limits.documents)
            }
            BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => format!(
                "more than {} YAML values (every scalar, list and map counts)",
                limits.nodes
            ),
            BudgetBreach::Depth { .. } => {
                format!("lists and maps nested more than {} deep", limits.depth)
            }
            BudgetBreach::ScalarBytes { .. } => format!(
                "more than {} MiB of text in values",
                limits.file_bytes / MIB
            ),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. }
            | BudgetBreach::MergeKeys { .. } => {
                "too many YAML anchors, aliases or merge keys (they could expand without end)"
                    .to_string()
            }
            _ => "too large or too complex a YAML structure".to_string(),
        };
        return format!("{line}{what} ({LIMIT_OF})");
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("not valid YAML");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn yaml_documents(
    text: &str,
    path: &str,
    limits: &Limits,
) -> Result<Vec<(Value, Place)>, ManifestsError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: limits.documents,
            max_nodes: limits.nodes,
            // Every node opens an event and containers close one: twice the nodes, and more.
            max_events: limits.nodes.saturating_mul(3),
            max_depth: limits.depth,
            max_total_scalar_bytes: limits.file_bytes,
        },
        emit_comments: false,
    };
    let documents =
        serde_saphyr::from_multiple_with_options::<serde_saphyr::Spanned<Value>>(text, options)
            .map_err(|e| parse_error(path, yaml_message(&e, limits)))?;
    Ok(documents
        .into_iter()
        .enumerate()
        .map(|(n, d)| {
            let line = d.referenced.line();
            (
                d.value,
                Place {
                    file: path.into(),
                    document: Some(n + 1),
                    item: None,
                    line: (line > 0).then_some(line),
                },
            )
        })
        .collect())
}

/// Objects in one text: JSON when it starts like JSON, else YAML documents.
pub fn parse(text: &str, path: &str) -> Result<Vec<Manifest>, ManifestsError> {
    parse_with(text, path, &LIMITS)
}

/// Checks JSON text against the value and depth limits before it is parsed (serde_json has
/// no budget: 64 MiB of `[[],[],…]` would be twenty million values in memory). Text that is
/// not JSON passes: the parser says what is wrong with it.
fn json_within(text: &str, path: &str, limits: &Limits) -> Result<(), ManifestsError> {
    let (mut in_string, mut escaped) = (false, false);
    let (mut depth, mut values, mut line) = (0usize, 1usize, 1usize);
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limits.depth {
                    return Err(parse_error(
                        path,
                        format!(
                            "line {line}: lists and maps nested more than {} deep ({LIMIT_OF})",
                            limits.depth
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b':' => {
                values += 1;
                if values > limits.nodes {
                    return Err(parse_error(
                        path,
                        format!(
                            "line {line}: more than {} JSON values ({LIMIT_OF})",
                            limits.nodes
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// [`parse`] with other limits.
pub fn parse_with(
    text: &str,
    path: &str,
    limits: &Limits,
) -> Result<Vec<Manifest>, ManifestsError> {
    if text.len() > limits.file_bytes {
        return Err(too_large(path, limits));
    }
    let trimmed = text.trim_start();
    let looks_like_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    if looks_like_json {
        json_within(text, path, limits)?;
    }
    let json = looks_like_json.then(|| serde_json::from_str::<Value>(text));
    let place = |document, item| Place {
        file: path.into(),
        document,
        item,
        line: None,
    };
    let documents: Vec<(Value, Place)> = match json {
        Some(Ok(Value::Array(items))) => {
            if items.len() > limits.documents {
                return Err(parse_error(
                    path,
                    format!("more than {} objects ({LIMIT_OF})", limits.documents),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(n, v)| (v, place(None, Some(n + 1))))
                .collect()
        }
        Some(Ok(v)) => vec![(v, place(Some(1), None))],
        // JSON is what .json files hold; elsewhere a `{` may start a YAML flow mapping.
        Some(Err(e)) if path.ends_with(".json") => {
            return Err(parse_error(
                path,
                format!("line {}, column {}: {e}", e.line(), e.column()),
            ));
        }
        _ => yaml_documents(text, path, limits)?,
    };
    let mut objects = Vec::new();
    for (document, place) in documents {
        match document {
            Value::Null => {}
            Value::Object(_) => flatten(document, place, &mut objects),
            other => {
                return Err(parse_error(
                    path,
                    format!(
                        "{} is not a Kubernetes object (it is {})",
                        Place {
                            file: String::new(),
                            ..place
                        },
                        match other {
                            Value::Array(_) => "a list",
                            Value::String(_) => "a string",
                            _ => "a scalar",
                        }
                    ),
                ));
            }
        }
    }
    Ok(objects)
}

/// Lists' items, recursively; anything else as it is. `kind: List` items carry their own kind;
/// a typed list's items (`ValidatingWebhookConfigurationList`, as the apiserver returns them)
/// may not, and take the list's kind without `List` and the list's apiVersion.
fn flatten(object: Value, place: Place, out: &mut Vec<Manifest>) {
    let list_kind = object["kind"]
        .as_str()
        .filter(|k| k.ends_with("List") && object["items"].is_array())
        .map(str::to_string);
    let Some(list_kind) = list_kind else {
        out.push(Manifest { object, place });
        return;
    };
    let item_kind = list_kind
        .strip_suffix("List")
        .unwrap_or_default()
        .to_string();
    let api_version = object["apiVersion"].clone();
    let Value::Object(mut list) = object else {
        return;
    };
    let Some(Value::Array(items)) = list.remove("items") else {
        return;
    };
    for (n, mut item) in items.into_iter().enumerate() {
        if let Value::Object(fields) = &mut item
            && !item_kind.is_empty()
        {
            if !fields.contains_key("kind") {
                fields.insert("kind".into(), Value::String(item_kind.clone()));
            }
            if !fields.contains_key("apiVersion") && api_version.is_string() {
                fields.insert("apiVersion".into(), api_version.clone());
            }
        }
        let item_place = Place {
            // An item of an item (a List in a List) is named by its innermost index.
            item: Some(n + 1),
            ..place.clone()
        };
        flatten(item, item_place, out);
    }
}

fn too_large(path: &str, limits: &Limits) -> ManifestsError {
    parse_error(
        path,
        format!("larger than {} MiB ({LIMIT_OF})", limits.file_bytes / MIB),
    )
}

/// Reads at most the limit (and one byte more, to tell that it was passed).
fn read_bounded(reader: impl Read, path: &str, limits: &Limits) -> Result<Vec<u8>, ManifestsError> {
    let mut bytes = Vec::new();
    reader
        .take(limits.file_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ManifestsError::Read {
            path: path.into(),
            error: e,
        })?;
    if bytes.len() > limits.file_bytes {
        return Err(too_large(path, limits));
    }
    Ok(bytes)
}

/// Reads every path: files, folders, `-` (standard input, once).
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestsError> {
    load_with(paths, &LIMITS)
}

/// [`load`] with other limits.
pub fn load_with(paths: &[PathBuf], limits: &Limits) -> Result<Manifests, ManifestsError> {
    let mut manifests = Manifests::default();
    let mut total = 0usize;
    let mut add = |bytes: &[u8], shown: &str, manifests: &mut Manifests| {
        total += bytes.len();
        if total > limits.total_bytes {
            return Err(parse_error(
                shown,
                format!(
                    "with it, the input passes {} MiB in all ({LIMIT_OF})",
                    limits.total_bytes / MIB
                ),
            ));
        }
        let text = decode(bytes, shown)?;
        let objects = parse_with(&text, shown, limits)?;
        let count = objects.len();
        manifests.objects.extend(objects);
        Ok(count)
    };
    for path in paths {
        if path.as_os_str() == "-" {
            let shown = "standard input";
            let bytes = read_bounded(std::io::stdin().lock(), shown, limits)?;
            let count = add(&bytes, shown, &mut manifests)?;
            manifests.paths.push("-".into());
            if count == 0 {
                return Err(no_objects(shown, &bytes));
            }
            continue;
        }
        let given = path.display().to_string();
        let files = if path.is_dir() {
            let mut files = Vec::new();
            files_in(path, &mut files)?;
            if files.is_empty() {
                return Err(ManifestsError::EmptyFolder { path: given });
            }
            files
        } else {
            vec![path.clone()]
        };
        let mut count = 0;
        let mut last = Vec::new();
        for file in files {
            let shown = file.display().to_string();
            let opened = std::fs::File::open(&file).map_err(|e| ManifestsError::Read {
                path: shown.clone(),
                error: e,
            })?;
            let bytes = read_bounded(opened, &shown, limits)?;
            count += add(&bytes, &shown, &mut manifests)?;
            manifests.paths.push(shown);
            last = bytes;
        }
        if count == 0 {
            return Err(if path.is_dir() {
                ManifestsError::NoObjects {
                    path: given,
                    why: " (its .yaml, .yml and .json files hold none)",
                }
            } else {
                no_objects(&given, &last)
            });
        }
    }
    Ok(manifests)
}

/// `no Kubernetes objects in F`, with what F held instead.
fn no_objects(path: &str, bytes: &[u8]) -> ManifestsError {
    let why = if bytes.is_empty() {
        " (it is empty)"
    } else if bytes.iter().all(u8::is_ascii_whitespace) {
        " (only blank lines)"
    } else {
        " (only comments, `---` separators or empty Lists)"
    };
    ManifestsError::NoObjects {
        path: path.into(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_held_to_the_same_limits_as_yaml() {
        let limits = Limits {
            nodes: 1_000,
            depth: 10,
            ..LIMITS
        };
        let many = format!("[{}]", vec!["[]"; 2_000].join(","));
        let e = parse_with(&many, "many.json", &limits)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than 1000 JSON values (the limit of kube-rescue check --file)"),
            "{e}"
        );
        let deep = format!("{}{}", "[".repeat(11), "]".repeat(11));
        let e = parse_with(&deep, "deep.json", &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested more than 10 deep"), "{e}");
        // Brackets and commas inside strings are text.
        let text = r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"a":"[[[[[[[[[[[[,,,,"}}"#;
        assert!(parse_with(text, "ok.json", &limits).is_ok());
    }

    #[test]
    fn yaml_documents_json_and_lists() {
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: a}}\n- {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Pod, metadata: {name: p}}]}\n";
        let objects = parse(yaml, "x.yaml").unwrap();
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o.object["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Namespace", "Service", "Pod"]);
        let json = r#"[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}]"#;
        assert_eq!(parse(json, "x.json").unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_file() {
        let e = parse("{not json", "bad.json").unwrap_err().to_string();
        assert!(e.starts_with("bad.json: line 1"), "{e}");
        let e = parse("a: [1,\n", "bad.yaml").unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml: "), "{e}");
        let e = parse("- 1\n- 2\n", "list.yaml").unwrap_err().to_string();
        assert_eq!(
            e,
            "list.yaml: document 1 (line 1) is not a Kubernetes object (it is a list)"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
        assert!(
            e.ends_with("no .yaml, .yml or .json files in this folder"),
            "{e}"
        );
        let e = load(&[dir.path().join("missing.yaml")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("could not read "), "{e}");
    }

    #[test]
    fn folders_are_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "{apiVersion: v1, kind: Namespace, metadata: {name: b}}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let m = load(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<&str> = m
            .objects
            .iter()
            .map(|o| o.object["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(m.paths.len(), 2);
    }

    #[test]
    fn typed_lists_give_items_their_kind_and_places_count_from_one() {
        let json = r#"{"kind":"ValidatingWebhookConfigurationList","apiVersion":"admissionregistration.k8s.io/v1",
            "items":[{"metadata":{"name":"a"}},{"kind":"ValidatingWebhookConfiguration","metadata":{"name":"b"}}]}"#;
        let objects = parse(json, "vwc.json").unwrap();
        assert_eq!(objects.len(), 2);
        for m in &objects {
            assert_eq!(m.object["kind"], "ValidatingWebhookConfiguration");
            assert_eq!(m.object["apiVersion"], "admissionregistration.k8s.io/v1");
        }
        assert_eq!(objects[1].place.to_string(), "vwc.json document 1 item 2");
        let yaml = "# head\n\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: s, namespace: a}\n";
        let objects = parse(yaml, "x.yaml").unwrap();
        assert_eq!(objects[0].place.to_string(), "x.yaml document 1 (line 3)");
        assert_eq!(
            objects[1].place.to_string(),
            "x.yaml document 2 item 1 (line 7)"
        );
        assert_eq!(objects[1].object["kind"], "Service");
        assert_eq!(objects[1].object["apiVersion"], "v1");
    }

    fn small() -> Limits {
        Limits {
            file_bytes: 1000,
            total_bytes: 1500,
            documents: 3,
            nodes: 20,
            depth: 5,
        }
    }

    #[test]
    fn limits_are_named_in_the_product_s_words_with_file_and_line() {
        let limits = small();
        let e = parse_with(
            "a: 1\n---\nb: 1\n---\nc: 1\n---\nd: 1\n",
            "docs.yaml",
            &limits,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("docs.yaml: line ")
                && e.ends_with(
                    "more than 3 YAML documents (the limit of kube-rescue check --file)"
                ),
            "{e}"
        );
        let e = parse_with(
            &format!("a: [{}]\n", ["1"; 30].join(",")),
            "nodes.yaml",
            &limits,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("nodes.yaml: line 1: more than 20 YAML values"),
            "{e}"
        );
        assert!(!e.contains("budget") && !e.contains("Nodes {"), "{e}");
        let e = parse_with("a: [[[[[[[1]]]]]]]\n", "deep.yaml", &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nested more than 5 deep"), "{e}");
        let e = parse_with(&"#".repeat(1001), "big.yaml", &limits)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "big.yaml: larger than 0 MiB (the limit of kube-rescue check --file)"
        );
        let json = format!("[{}]", ["{}"; 4].join(","));
        let e = parse_with(&json, "many.json", &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 3 objects"), "{e}");
    }

    #[test]
    fn reads_are_bounded_per_file_and_in_all() {
        let dir = tempfile::tempdir().unwrap();
        let limits = small();
        let doc = format!(
            "{{apiVersion: v1, kind: Namespace, metadata: {{name: n}}}}\n#{}\n",
            "x".repeat(700)
        );
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(&a, &doc).unwrap();
        std::fs::write(&b, &doc).unwrap();
        assert_eq!(
            load_with(std::slice::from_ref(&a), &limits)
                .unwrap()
                .objects
                .len(),
            1
        );
        let e = load_with(&[a.clone(), b], &limits).unwrap_err().to_string();
        assert!(e.contains("b.yaml: with it, the input passes"), "{e}");
        std::fs::write(&a, "#".repeat(1001)).unwrap();
        let e = load_with(&[a], &limits).unwrap_err().to_string();
        assert!(e.contains("a.yaml: larger than"), "{e}");
    }

    #[test]
    fn text_is_utf8_or_utf16_with_a_byte_order_mark() {
        assert_eq!(decode(b"\xEF\xBB\xBFa: 1", "f").unwrap(), "a: 1");
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("a: é".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&utf16be, "f").unwrap(), "a: é");
        let e = decode(b"a: 1\nb: \xFF\n", "latin.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("latin.yaml: not UTF-8 text: byte 0xFF on line 2 (offset 8)"),
            "{e}"
        );
    }

    #[test]
    fn empty_input_has_no_objects_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        for (text, why) in [
            ("", "(it is empty)"),
            ("\n\n", "(only blank lines)"),
            ("# c\n---\n", "(only comments"),
            ("{kind: List, apiVersion: v1, items: []}", "empty Lists"),
        ] {
            let f = dir.path().join("e.yaml");
            std::fs::write(&f, text).unwrap();
            let e = load(&[f]).unwrap_err().to_string();
            assert!(
                e.starts_with("no Kubernetes objects in ") && e.contains(why),
                "{e}"
            );
        }
    }
}
