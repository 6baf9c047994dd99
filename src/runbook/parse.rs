//! One runbook file: front matter, introduction, steps with their check and action. Every
//! problem found is kept with its line; parsing goes on past it where it can.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::markdown::{self, Block, Located};
use super::{ACTIONS, FINDING_IDS, MAX_NESTING, MAX_STEPS, Problem, STEP_BLOCK};
use crate::diagnose::Severity;

/// Where a runbook applies. `Any` (the default) is every platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Gke,
    Eks,
    Aks,
    SelfManaged,
    Any,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::Gke,
        Platform::Eks,
        Platform::Aks,
        Platform::SelfManaged,
        Platform::Any,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Gke => "gke",
            Platform::Eks => "eks",
            Platform::Aks => "aks",
            Platform::SelfManaged => "self-managed",
            Platform::Any => "any",
        }
    }

    fn from_name(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What `kube-rescue check` should report once a step is done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The finding must be gone.
    Gone(String),
    /// The finding must be reported (a step that confirms a diagnosis).
    Present(String),
}

impl Check {
    pub fn finding(&self) -> &str {
        match self {
            Check::Gone(id) | Check::Present(id) => id,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Gone(id) => write!(f, "{id} is gone"),
            Check::Present(id) => write!(f, "{id} is reported"),
        }
    }
}

/// A remediation action a step offers; its target is the finding's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRef {
    /// An action name of DESIGN.md (`fail-open`, `delete`, ...).
    pub name: String,
    /// For `set-timeout`: the timeoutSeconds to set (1..=30).
    pub seconds: Option<u32>,
}

/// One step: a level-2 heading and what follows it up to the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub title: String,
    /// The heading's line in the file.
    pub line: usize,
    pub body: Vec<Block>,
    pub check: Option<Check>,
    pub action: Option<ActionRef>,
}

/// A parsed runbook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    /// Finding ids it answers.
    pub findings: Vec<String>,
    pub severity: Severity,
    pub applies_to: Vec<Platform>,
    /// Everything before the first step.
    pub intro: Vec<Block>,
    pub steps: Vec<Step>,
    /// The file it was read from (`runbooks/NAME.md` for a shipped one).
    pub file: PathBuf,
    /// The line of its `id:` (where a duplicate id is reported).
    pub id_line: usize,
}

/// What parsing a file gave: the runbook as far as it could be read (None when its front
/// matter could not be read at all) and every problem found. A runbook with problems is broken.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub runbook: Option<Runbook>,
    pub problems: Vec<Problem>,
}

/// A string or a list of strings, each with its line (0 when given as one string).
struct Items(Vec<(String, usize)>);

impl Items {
    /// Each name with its line in the file: its own, or the list's when given as one string.
    fn placed(list: Spanned<Items>, first_line: usize) -> (usize, Vec<(String, usize)>) {
        let list_line = line_of(&list, first_line);
        let items = list
            .value
            .0
            .into_iter()
            .map(|(name, line)| {
                let line = if line == 0 {
                    list_line
                } else {
                    first_line + line - 1
                };
                (name, line)
            })
            .collect();
        (list_line, items)
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Items, E> {
                Ok(Items(vec![(v.to_string(), 0)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Items, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    out.push((item.value, item.referenced.line() as usize));
                }
                Ok(Items(out))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFront {
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    findings: Option<Spanned<Items>>,
    severity: Option<Spanned<String>>,
    #[serde(rename = "applies-to")]
    applies_to: Option<Spanned<Items>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    action: Option<Spanned<String>>,
    seconds: Option<Spanned<serde_json::Value>>,
    check: Option<Spanned<serde_json::Value>>,
}

/// Collects problems for one file, with lines counted from the YAML's place in the file.
struct Problems<'a> {
    file: &'a Path,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, line: usize, reason: impl Into<String>) {
        self.list.push(Problem::at(self.file, line, reason));
    }
}

/// Parses YAML into `T`, reporting a syntax or type error at its line in the file (`first_line`
/// is the file line of the YAML's first line) with the field it was in.
fn yaml<T: for<'de> Deserialize<'de>>(
    text: &str,
    first_line: usize,
    what: &str,
    problems: &mut Problems<'_>,
) -> Option<T> {
    let mut failed_at = String::new();
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            failed_at = field_path(e.path());
            e.into_inner()
        })
    });
    match parsed {
        Ok(value) => Some(value),
        Err(e) => {
            let plain = e.without_snippet().to_string();
            let (line, message) = match e.location() {
                Some(loc) => {
                    let suffix = format!(" at line {}, column {}", loc.line(), loc.column());
                    let message = plain.strip_suffix(&suffix).unwrap_or(&plain).to_string();
                    (first_line + (loc.line() as usize).max(1) - 1, message)
                }
                None => (first_line, plain),
            };
            let field = if failed_at.is_empty() {
                String::new()
            } else {
                format!("{failed_at}: ")
            };
            problems.add(line, format!("{what}: {field}{message}"));
            None
        }
    }
}

/// The field an error is in, as the runbook names it: `findings[1]`. Every field of the front
/// matter and the step block is a `Spanned`, whose own `value` is left out (no runbook field is
/// called `value`).
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Map { key } if key == "value" => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    out
}

/// The line of a spanned value in the file.
fn line_of<T>(spanned: &Spanned<T>, first_line: usize) -> usize {
    first_line + (spanned.referenced.line() as usize).max(1) - 1
}

fn is_kebab_case(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn one_of(names: &[&str]) -> String {
    names.join(", ")
}

/// The front matter's YAML, its first line, the body and the body's first line.
fn split_front_matter(text: &str) -> Result<(&str, usize, &str, usize), (usize, String)> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "---" {
        return Err((
            1,
            "no front matter: a runbook starts with a `---` line, then YAML (id, title, findings, \
             severity), then `---`"
                .into(),
        ));
    }
    let yaml_start = first.len();
    let mut offset = yaml_start;
    for (i, line) in lines.enumerate() {
        if line.trim_end() == "---" {
            let closing_line = i + 2;
            return Ok((
                &text[yaml_start..offset],
                2,
                &text[offset + line.len()..],
                closing_line + 1,
            ));
        }
        offset += line.len();
    }
    Err((
        1,
        "the front matter opened here is never closed: end it with a `---` line".into(),
    ))
}

/// Parses one runbook. `path` is where it came from; it starts every problem.
pub fn parse(text: &str, path: &Path) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut problems = Problems {
        file: path,
        list: Vec::new(),
    };
    let (front, front_line, body, body_line) = match split_front_matter(text) {
        Ok(parts) => parts,
        Err((line, reason)) => {
            problems.add(line, reason);
            return Parsed {
                runbook: None,
                problems: problems.list,
            };
        }
    };
    let raw: Option<RawFront> = if front.trim().is_empty() {
        problems.add(
            front_line,
            "empty front matter: give id, title, findings and severity",
        );
        None
    } else {
        yaml(front, front_line, "front matter", &mut problems)
    };
    let Some(raw) = raw else {
        return Parsed {
            runbook: None,
            problems: problems.list,
        };
    };
    let mut runbook = front_matter(raw, path, front_line, body_line - 1, &mut problems);
    body_into(&mut runbook, body, body_line, &mut problems);
    problems.list.sort_by_key(|p| p.line);
    Parsed {
        runbook: Some(runbook),
        problems: problems.list,
    }
}

/// The runbook's fields from its front matter; a missing one is reported at `closing_line` and
/// filled in (the id from the file name) so that the rest can still be read.
fn front_matter(
    raw: RawFront,
    path: &Path,
    first_line: usize,
    closing_line: usize,
    problems: &mut Problems<'_>,
) -> Runbook {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let missing = |field: &str, problems: &mut Problems<'_>| {
        problems.add(closing_line, format!("missing required field `{field}`"));
    };
    let (id, id_line) = match raw.id {
        Some(id) => {
            let line = line_of(&id, first_line);
            if !is_kebab_case(&id.value) {
                problems.add(
                    line,
                    format!(
                        "id {:?} is not kebab-case (lowercase letters and digits joined by single dashes)",
                        id.value
                    ),
                );
            }
            (id.value, line)
        }
        None => {
            missing("id", problems);
            (stem, closing_line)
        }
    };
    let title = match raw.title {
        Some(t) if t.value.trim().is_empty() => {
            problems.add(line_of(&t, first_line), "title is empty");
            id.clone()
        }
        Some(t) => t.value,
        None => {
            missing("title", problems);
            id.clone()
        }
    };
    let mut findings = Vec::new();
    match raw.findings {
        Some(list) => {
            let (list_line, items) = Items::placed(list, first_line);
            if items.is_empty() {
                problems.add(
                    list_line,
                    "findings is empty: name the finding ids this runbook answers",
                );
            }
            for (finding, line) in items {
                if !FINDING_IDS.contains(&finding.as_str()) {
                    problems.add(
                        line,
                        format!(
                            "unknown finding id {finding:?} (known: {})",
                            one_of(FINDING_IDS)
                        ),
                    );
                }
                findings.push(finding);
            }
        }
        None => missing("findings", problems),
    }
    let severity = match raw.severity {
        Some(s) => match s.value.as_str() {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            other => {
                problems.add(
                    line_of(&s, first_line),
                    format!("unknown severity {other:?} (use critical, warning or info)"),
                );
                Severity::Warning
            }
        },
        None => {
            missing("severity", problems);
            Severity::Warning
        }
    };
    let mut applies_to = Vec::new();
    if let Some(list) = raw.applies_to {
        for (name, line) in Items::placed(list, first_line).1 {
            match Platform::from_name(&name) {
                Some(p) => applies_to.push(p),
                None => problems.add(
                    line,
                    format!(
                        "unknown applies-to {name:?} (use {})",
                        one_of(&Platform::ALL.map(Platform::as_str))
                    ),
                ),
            }
        }
    }
    if applies_to.is_empty() {
        applies_to.push(Platform::Any);
    }
    Runbook {
        id,
        title,
        findings,
        severity,
        applies_to,
        intro: Vec::new(),
        steps: Vec::new(),
        file: path.to_path_buf(),
        id_line,
    }
}

/// The introduction and the steps, from the Markdown after the front matter.
fn body_into(runbook: &mut Runbook, body: &str, body_line: usize, problems: &mut Problems<'_>) {
    let document = markdown::parse(body, body_line, STEP_BLOCK);
    for line in document.nested {
        problems.add(
            line,
            "a step block inside a list or quote: put it at the top level, right under its step's heading",
        );
    }
    for line in document.too_deep {
        problems.add(
            line,
            format!(
                "lists and block quotes nested more than {MAX_NESTING} deep: the deeper levels are shown flattened; nest at most {MAX_NESTING}"
            ),
        );
    }
    let mut seen_block_in_step = false;
    for Located { line, block } in document.blocks {
        match block {
            Block::Heading { level: 2, .. } if runbook.steps.len() == MAX_STEPS => {
                problems.add(
                    line,
                    format!(
                        "more than {MAX_STEPS} steps: this one and those after it are left out; split the runbook"
                    ),
                );
                break;
            }
            Block::Heading { level: 2, spans } => {
                let title = markdown::plain_text(&spans).trim().to_string();
                if title.is_empty() {
                    problems.add(line, "a step heading with no title");
                }
                runbook.steps.push(Step {
                    title,
                    line,
                    body: Vec::new(),
                    check: None,
                    action: None,
                });
                seen_block_in_step = false;
            }
            Block::Code { info, text } if info.split_whitespace().next() == Some(STEP_BLOCK) => {
                let Some(step) = runbook.steps.last_mut() else {
                    problems.add(
                        line,
                        "a step block before the first step: give it a `## ` heading of its own",
                    );
                    continue;
                };
                if seen_block_in_step {
                    problems.add(
                        line,
                        format!(
                            "a second step block in step {:?}: put its action and check in one block",
                            step.title
                        ),
                    );
                    continue;
                }
                seen_block_in_step = true;
                step_block(step, &text, line + 1, line, problems);
            }
            block => match runbook.steps.last_mut() {
                Some(step) => step.body.push(block),
                None => runbook.intro.push(block),
            },
        }
    }
    if runbook.steps.is_empty() {
        problems.add(
            body_line.saturating_sub(1).max(1),
            "no steps: each step is a level-2 heading (`## `)",
        );
    }
}

/// A step block's action and check. `first_line` is the file line of its YAML.
fn step_block(
    step: &mut Step,
    text: &str,
    first_line: usize,
    fence_line: usize,
    problems: &mut Problems<'_>,
) {
    if text.trim().is_empty() {
        problems.add(
            fence_line,
            "empty step block: give it an action, a check or both",
        );
        return;
    }
    let Some(raw) = yaml::<RawStep>(text, first_line, "step block", problems) else {
        return;
    };
    let mut action_name = None;
    if let Some(action) = &raw.action {
        if ACTIONS.contains(&action.value.as_str()) {
            action_name = Some(action.value.clone());
        } else {
            problems.add(
                line_of(action, first_line),
                format!(
                    "unknown action {:?} (known: {})",
                    action.value,
                    one_of(ACTIONS)
                ),
            );
        }
    }
    let mut seconds = None;
    if let Some(s) = &raw.seconds {
        let line = line_of(s, first_line);
        match s.value.as_u64().filter(|n| (1..=30).contains(n)) {
            Some(n) => seconds = Some(n as u32),
            None => problems.add(
                line,
                format!("bad seconds {}: give a whole number from 1 to 30", s.value),
            ),
        }
        if raw.action.as_ref().is_none_or(|a| a.value != "set-timeout") {
            problems.add(line, "seconds goes only with `action: set-timeout`");
        }
    }
    step.action = action_name.map(|name| ActionRef { name, seconds });
    if let Some(check) = &raw.check {
        step.check = parse_check(check, first_line, problems);
    }
    if raw.action.is_none() && raw.check.is_none() && raw.seconds.is_none() {
        problems.add(
            fence_line,
            "empty step block: give it an action, a check or both",
        );
    }
}

fn parse_check(
    check: &Spanned<serde_json::Value>,
    first_line: usize,
    problems: &mut Problems<'_>,
) -> Option<Check> {
    let line = line_of(check, first_line);
    let usage = "check takes one of `{gone: FINDING}` or `{present: FINDING}`";
    let Some((kind, finding)) = check
        .value
        .as_object()
        .filter(|map| map.len() == 1)
        .and_then(|map| map.iter().next())
    else {
        problems.add(line, usage);
        return None;
    };
    let Some(finding) = finding.as_str() else {
        problems.add(line, usage);
        return None;
    };
    if !FINDING_IDS.contains(&finding) {
        problems.add(
            line,
            format!(
                "unknown finding id {finding:?} in check (known: {})",
                one_of(FINDING_IDS)
            ),
        );
        return None;
    }
    match kind.as_str() {
        "gone" => Some(Check::Gone(finding.to_string())),
        "present" => Some(Check::Present(finding.to_string())),
        other => {
            problems.add(
                line,
                format!("unknown check kind {other:?} (use gone or present)"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::markdown::Span;

    fn parsed(text: &str) -> Parsed {
        parse(text, Path::new("t.md"))
    }

    fn problems(text: &str) -> Vec<String> {
        parsed(text)
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    const GOOD: &str = "---
id: webhook-outage
title: A webhook blocks writes
findings: [webhook-blocking-writes, webhook-backend-unavailable]
severity: critical
applies-to: [gke, self-managed]
---
The **webhook** does not answer. See [the docs](https://kubernetes.io/x).

- one `kubectl get vwc`
- two

## Confirm it

```sh
kubectl get --raw '/readyz?verbose'
```

## Fail open

```step
action: fail-open
check: {gone: webhook-blocking-writes}
```

Writes pass again.

## Lower the timeout

```step
action: set-timeout
seconds: 3
check:
  present: webhook-long-timeout
```
";

    #[test]
    fn a_good_runbook_parses_with_its_front_matter_steps_checks_and_actions() {
        let p = parsed(GOOD);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let r = p.runbook.unwrap();
        assert_eq!(r.id, "webhook-outage");
        assert_eq!(r.id_line, 2);
        assert_eq!(r.title, "A webhook blocks writes");
        assert_eq!(
            r.findings,
            ["webhook-blocking-writes", "webhook-backend-unavailable"]
        );
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.applies_to, [Platform::Gke, Platform::SelfManaged]);
        let titles: Vec<_> = r.steps.iter().map(|s| (s.title.as_str(), s.line)).collect();
        assert_eq!(
            titles,
            [
                ("Confirm it", 13),
                ("Fail open", 19),
                ("Lower the timeout", 28)
            ]
        );
        assert_eq!(r.steps[0].check, None);
        assert_eq!(r.steps[0].action, None);
        assert_eq!(
            r.steps[0].body,
            [Block::Code {
                info: "sh".into(),
                text: "kubectl get --raw '/readyz?verbose'\n".into()
            }]
        );
        assert_eq!(
            r.steps[1].action,
            Some(ActionRef {
                name: "fail-open".into(),
                seconds: None
            })
        );
        assert_eq!(
            r.steps[1].check,
            Some(Check::Gone("webhook-blocking-writes".into()))
        );
        assert_eq!(
            r.steps[1].body.len(),
            1,
            "the step block is not in the body"
        );
        assert_eq!(
            r.steps[2].action,
            Some(ActionRef {
                name: "set-timeout".into(),
                seconds: Some(3)
            })
        );
        assert_eq!(
            r.steps[2].check,
            Some(Check::Present("webhook-long-timeout".into()))
        );
    }

    #[test]
    fn markdown_pieces_are_kept_as_blocks_and_spans() {
        let r = parsed(GOOD).runbook.unwrap();
        let Block::Paragraph(spans) = &r.intro[0] else {
            panic!("a paragraph first: {:?}", r.intro);
        };
        assert_eq!(
            markdown::plain_text(spans),
            "The webhook does not answer. See the docs."
        );
        assert!(spans.iter().any(|s| s.strong && s.text == "webhook"));
        assert!(
            spans
                .iter()
                .any(|s| s.link.as_deref() == Some("https://kubernetes.io/x")
                    && s.text == "the docs")
        );
        let Block::List { start: None, items } = &r.intro[1] else {
            panic!("a list second: {:?}", r.intro);
        };
        assert_eq!(items.len(), 2);
        let Block::Paragraph(first) = &items[0][0] else {
            panic!("{:?}", items[0]);
        };
        assert_eq!(
            first[1],
            Span {
                text: "kubectl get vwc".into(),
                code: true,
                ..Span::default()
            }
        );
    }

    #[test]
    fn one_name_is_a_list_of_one_and_applies_to_defaults_to_any() {
        let text =
            "---\nid: a\ntitle: A\nfindings: apiserver-slow\nseverity: info\n---\n## Do it\n";
        let p = parsed(text);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let r = p.runbook.unwrap();
        assert_eq!(r.findings, ["apiserver-slow"]);
        assert_eq!(r.applies_to, [Platform::Any]);
        assert_eq!(r.severity, Severity::Info);
        let text = "---\nid: a\ntitle: A\nfindings: [apiserver-slow]\nseverity: info\napplies-to: eks\n---\n## Do it\n";
        assert_eq!(parsed(text).runbook.unwrap().applies_to, [Platform::Eks]);
    }

    #[test]
    fn front_matter_problems_have_their_lines() {
        assert_eq!(
            problems("# Title\n"),
            [
                "t.md:1: no front matter: a runbook starts with a `---` line, then YAML (id, title, findings, severity), then `---`"
            ]
        );
        assert_eq!(
            problems("---\nid: a\n"),
            ["t.md:1: the front matter opened here is never closed: end it with a `---` line"]
        );
        let broken = problems("---\nid: a\ntitle: [unclosed\n---\n## S\n");
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(
            broken[0].starts_with("t.md:3: front matter: "),
            "{broken:?}"
        );
        assert_eq!(
            problems("---\nid: Bad_Id\ntitle: T\nfindings:\n  - apiserver-slow\n  - nope\nseverity: loud\napplies-to: [gke, mars]\n---\n## S\n"),
            [
                "t.md:2: id \"Bad_Id\" is not kebab-case (lowercase letters and digits joined by single dashes)".to_string(),
                format!("t.md:6: unknown finding id \"nope\" (known: {})", FINDING_IDS.join(", ")),
                "t.md:7: unknown severity \"loud\" (use critical, warning or info)".into(),
                "t.md:8: unknown applies-to \"mars\" (use gke, eks, aks, self-managed, any)".into(),
            ]
        );
        assert_eq!(
            problems("---\ntitle: T\n---\n## S\n"),
            [
                "t.md:3: missing required field `id`",
                "t.md:3: missing required field `findings`",
                "t.md:3: missing required field `severity`",
            ]
        );
        let unknown = problems("---\nid: a\ntitel: T\n---\n## S\n");
        assert!(
            unknown[0].starts_with("t.md:3: front matter: "),
            "{unknown:?}"
        );
        assert!(unknown[0].contains("titel"), "{unknown:?}");
    }

    #[test]
    fn step_problems_have_their_lines() {
        let head =
            "---\nid: a\ntitle: A\nfindings: [webhook-long-timeout]\nseverity: warning\n---\n";
        let body = "Intro.

```step
action: delete
```

## One

```step
action: reboot
check: {vanished: webhook-long-timeout}
```

## Two

```step
action: fail-open
seconds: 3
check: {gone: no-such-finding}
```

```step
action: delete
```

## Three

```step
action: set-timeout
seconds: 90
check: webhook-long-timeout
```

- item

  ```step
  action: delete
  ```
";
        assert_eq!(
            problems(&format!("{head}{body}")),
            [
                "t.md:9: a step block before the first step: give it a `## ` heading of its own".to_string(),
                format!("t.md:16: unknown action \"reboot\" (known: {})", ACTIONS.join(", ")),
                "t.md:17: unknown check kind \"vanished\" (use gone or present)".into(),
                "t.md:24: seconds goes only with `action: set-timeout`".into(),
                format!("t.md:25: unknown finding id \"no-such-finding\" in check (known: {})", FINDING_IDS.join(", ")),
                "t.md:28: a second step block in step \"Two\": put its action and check in one block".into(),
                "t.md:36: bad seconds 90: give a whole number from 1 to 30".into(),
                "t.md:37: check takes one of `{gone: FINDING}` or `{present: FINDING}`".into(),
                "t.md:42: a step block inside a list or quote: put it at the top level, right under its step's heading".into(),
            ]
        );
    }

    #[test]
    fn a_runbook_without_steps_is_reported_and_headings_in_code_are_not_steps() {
        let text = "---\nid: a\ntitle: A\nfindings: [apiserver-slow]\nseverity: info\n---\nIntro.\n\n```md\n## not a step\n```\n";
        assert_eq!(
            problems(text),
            ["t.md:6: no steps: each step is a level-2 heading (`## `)"]
        );
        let r = parsed(text).runbook.unwrap();
        assert_eq!(r.intro.len(), 2);
    }

    #[test]
    fn steps_past_the_cap_are_left_out_and_named_at_the_first_one() {
        let mut text =
            "---\nid: a\ntitle: A\nfindings: [apiserver-slow]\nseverity: info\n---\n".to_string();
        for i in 1..=50_000 {
            text.push_str(&format!("## Step {i}\n"));
        }
        let p = parsed(&text);
        assert_eq!(p.runbook.unwrap().steps.len(), MAX_STEPS);
        assert_eq!(
            p.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            [format!(
                "t.md:{}: more than {MAX_STEPS} steps: this one and those after it are left out; split the runbook",
                7 + MAX_STEPS
            )]
        );
    }

    #[test]
    fn deeply_nested_yaml_in_the_front_matter_is_an_error_not_a_crash() {
        for deep in [
            "[".repeat(100_000),
            "{a: ".repeat(100_000),
            "- ".repeat(100_000),
        ] {
            let text =
                format!("---\nid: a\ntitle: A\nfindings: {deep}\nseverity: info\n---\n## S\n");
            let p = parsed(&text);
            assert!(!p.problems.is_empty(), "{:.40}", deep);
        }
    }

    #[test]
    fn kebab_case() {
        assert!(is_kebab_case("webhook-outage"));
        assert!(is_kebab_case("apiserver-503s"));
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "a b"] {
            assert!(!is_kebab_case(bad), "{bad}");
        }
    }
}
