//! Manifests for offline checks: files, folders (every .yaml, .yml and .json in them, in name
//! order) and `-` for standard input; multi-document YAML, JSON (one object or an array), and
//! `kind: List` flattened. Errors name the file and the document.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    #[error("could not read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: no .yaml, .yml or .json files in this folder")]
    EmptyFolder { path: String },
}

/// What was read, with where it came from.
#[derive(Debug, Default)]
pub struct Manifests {
    pub objects: Vec<Value>,
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
        source: e,
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

/// Objects in one text: JSON when it starts like JSON, else YAML documents.
pub fn parse(text: &str, path: &str) -> Result<Vec<Value>, ManifestsError> {
    let trimmed = text.trim_start();
    let looks_like_json = trimmed.starts_with('{') || trimmed.starts_with('[');
    let json = looks_like_json.then(|| serde_json::from_str::<Value>(text));
    let documents: Vec<Value> = match json {
        Some(Ok(Value::Array(items))) => items,
        Some(Ok(v)) => vec![v],
        // JSON is what .json files hold; elsewhere a `{` may start a YAML flow mapping.
        Some(Err(e)) if path.ends_with(".json") => {
            return Err(ManifestsError::Parse {
                path: path.into(),
                message: format!("line {}, column {}: {e}", e.line(), e.column()),
            });
        }
        _ => serde_saphyr::from_multiple::<Value>(text).map_err(|e| ManifestsError::Parse {
            path: path.into(),
            message: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("not valid YAML")
                .to_string(),
        })?,
    };
    let mut objects = Vec::new();
    for (n, document) in documents.into_iter().enumerate() {
        match document {
            Value::Null => {}
            Value::Object(_) => flatten(document, &mut objects),
            other => {
                return Err(ManifestsError::Parse {
                    path: path.into(),
                    message: format!(
                        "document {} is not a Kubernetes object (it is {})",
                        n + 1,
                        match other {
                            Value::Array(_) => "a list",
                            Value::String(_) => "a string",
                            _ => "a scalar",
                        }
                    ),
                });
            }
        }
    }
    Ok(objects)
}

/// `kind: List` (and `*List`) items, recursively; anything else as it is.
fn flatten(object: Value, out: &mut Vec<Value>) {
    let is_list = object["kind"]
        .as_str()
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && object["items"].is_array();
    if is_list {
        if let Value::Array(items) = object["items"].clone() {
            for item in items {
                flatten(item, out);
            }
        }
    } else {
        out.push(object);
    }
}

/// Reads every path: files, folders, `-` (standard input, once).
pub fn load(paths: &[PathBuf]) -> Result<Manifests, ManifestsError> {
    let mut manifests = Manifests::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ManifestsError::Read {
                    path: "standard input".into(),
                    source: e,
                })?;
            manifests.objects.extend(parse(&text, "standard input")?);
            manifests.paths.push("-".into());
            continue;
        }
        let files = if path.is_dir() {
            let mut files = Vec::new();
            files_in(path, &mut files)?;
            if files.is_empty() {
                return Err(ManifestsError::EmptyFolder {
                    path: path.display().to_string(),
                });
            }
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let shown = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| ManifestsError::Read {
                path: shown.clone(),
                source: e,
            })?;
            manifests.objects.extend(parse(&text, &shown)?);
            manifests.paths.push(shown);
        }
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_json_and_lists() {
        let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: a}}\n- {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Pod, metadata: {name: p}}]}\n";
        let objects = parse(yaml, "x.yaml").unwrap();
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
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
            "list.yaml: document 1 is not a Kubernetes object (it is a list)"
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
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(m.paths.len(), 2);
    }
}
