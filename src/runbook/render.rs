//! A runbook as plain terminal text (`kube-rescue runbooks show`): title, introduction,
//! numbered steps with their action and check, paragraphs wrapped, code blocks indented and
//! never wrapped, so that commands can be copied as they are.

use super::catalog::{Catalog, Source};
use super::markdown::{Block, Span};
use super::parse::{ActionRef, Check, Runbook};
use crate::diagnose::Subject;

/// Renders `runbook` for a terminal `width` columns wide (at least 40 is used).
pub fn render_text(runbook: &Runbook, width: usize) -> String {
    let width = width.max(40);
    let mut out = Vec::new();
    out.push(runbook.title.clone());
    out.push("=".repeat(runbook.title.chars().count().min(width)));
    let platforms: Vec<&str> = runbook.applies_to.iter().map(|p| p.as_str()).collect();
    out.push(format!(
        "{} · {} · applies to {}",
        runbook.id,
        runbook.severity.as_str(),
        platforms.join(", ")
    ));
    out.extend(wrap(
        &[Span::plain(&format!(
            "answers: {}",
            runbook.findings.join(", ")
        ))],
        width,
    ));
    if !runbook.intro.is_empty() {
        out.push(String::new());
        out.extend(blocks(&runbook.intro, width, true));
    }
    for (i, step) in runbook.steps.iter().enumerate() {
        out.push(String::new());
        let number = format!("{}. ", i + 1);
        let indent = " ".repeat(number.chars().count());
        out.push(format!("{number}{}", step.title));
        let inner = width.saturating_sub(indent.len());
        let mut lines = blocks(&step.body, inner, true);
        if let Some(action) = &step.action {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.extend(action_lines(action));
        }
        if let Some(check) = &step.check {
            if step.action.is_none() && !lines.is_empty() {
                lines.push(String::new());
            }
            lines.push(check_line(check));
        }
        if !lines.is_empty() {
            out.push(String::new());
        }
        out.extend(lines.into_iter().map(|l| indented(&indent, &l)));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The catalog as text for `runbooks list`: per runbook its id and title, the findings it
/// answers, where it comes from (and what it overrides), and its errors if broken.
pub fn list_text(catalog: &Catalog) -> String {
    let column = catalog
        .entries()
        .iter()
        .map(|e| e.id.len())
        .max()
        .unwrap_or(0)
        + 2;
    let pad = " ".repeat(column);
    let mut out = String::new();
    for entry in catalog.entries() {
        let broken = if entry.is_broken() { "  (broken)" } else { "" };
        out.push_str(&format!("{:<column$}{}{broken}\n", entry.id, entry.title()));
        if !entry.findings().is_empty() {
            out.push_str(&format!("{pad}findings: {}\n", entry.findings().join(", ")));
        }
        let overrides = match &entry.overrides {
            Some(source) => format!(" (overrides {source})"),
            None => String::new(),
        };
        let source = match &entry.source {
            Source::Shipped => "shipped".to_string(),
            Source::Folder(_) => entry.file.display().to_string(),
        };
        out.push_str(&format!("{pad}source: {source}{overrides}\n"));
        for problem in &entry.problems {
            out.push_str(&format!("{pad}error: {problem}\n"));
        }
    }
    out
}

fn indented(indent: &str, line: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("{indent}{line}")
    }
}

/// What the action does, in the report's own words, with a stand-in for the target.
fn action_lines(action: &ActionRef) -> Vec<String> {
    let subject = match action.name.as_str() {
        "cordon" | "uncordon" => Subject::new("Node", "the finding's node"),
        _ => Subject::new("webhook configuration", "the finding names"),
    };
    let described = crate::report::describe_action(&action.name, &subject);
    let what = described
        .split_once(": ")
        .map_or(described.as_str(), |(_, what)| what);
    let name = match action.seconds {
        Some(s) => format!("{} to {s} s", action.name),
        None => action.name.clone(),
    };
    vec![format!("Action: {name}"), format!("  {what}")]
}

fn check_line(check: &Check) -> String {
    match check {
        Check::Gone(id) => format!("Check: `kube-rescue check` no longer reports {id}"),
        Check::Present(id) => format!("Check: `kube-rescue check` reports {id}"),
    }
}

/// Blocks as lines, `width` wide; a blank line between blocks when `spaced`.
pub fn blocks(list: &[Block], width: usize, spaced: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, block) in list.iter().enumerate() {
        if spaced && i > 0 {
            out.push(String::new());
        }
        out.extend(block_lines(block, width));
    }
    out
}

fn block_lines(block: &Block, width: usize) -> Vec<String> {
    match block {
        Block::Heading { spans, .. } | Block::Paragraph(spans) => wrap(spans, width),
        Block::Code { text, .. } => text.lines().map(|l| format!("    {l}")).collect(),
        Block::Quote(inner) => blocks(inner, width.saturating_sub(2), true)
            .into_iter()
            .map(|l| format!("> {l}").trim_end().to_string())
            .collect(),
        Block::Rule => vec!["-".repeat(width.min(20))],
        Block::List { start, items } => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let marker = match start {
                    Some(n) => format!("{}. ", n + i as u64),
                    None => "- ".to_string(),
                };
                let pad = " ".repeat(marker.chars().count());
                let lines = blocks(item, width.saturating_sub(pad.len()), false);
                for (j, line) in lines.iter().enumerate() {
                    let lead = if j == 0 { &marker } else { &pad };
                    out.push(indented(lead, line));
                }
            }
            out
        }
    }
}

/// Greedy word wrap. Inline code stays whole (shown in backticks); a link shows its target
/// after its text; a hard break starts a new line.
fn wrap(spans: &[Span], width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut glue = false;
    for (i, span) in spans.iter().enumerate() {
        let link_ends =
            span.link.is_some() && spans.get(i + 1).map(|next| &next.link) != Some(&span.link);
        if span.code {
            let text = format!("`{}`", span.text);
            match words.last_mut() {
                Some(last) if glue => last.push_str(&text),
                _ => words.push(text),
            }
            glue = true;
        } else {
            for c in span.text.chars() {
                if c == '\n' {
                    words.push("\n".into());
                    glue = false;
                } else if c.is_whitespace() {
                    glue = false;
                } else {
                    match words.last_mut() {
                        Some(last) if glue => last.push(c),
                        _ => words.push(c.to_string()),
                    }
                    glue = true;
                }
            }
        }
        if let Some(url) = span
            .link
            .as_ref()
            .filter(|url| link_ends && **url != span.text)
        {
            words.push(format!("({url})"));
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words {
        if word == "\n" {
            lines.push(std::mem::take(&mut line));
            continue;
        }
        let needed = line.chars().count() + 1 + word.chars().count();
        if !line.is_empty() && needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_code_whole_and_shows_link_targets() {
        let spans = [
            Span::plain("Run "),
            Span {
                text: "kubectl get --raw '/readyz?verbose'".into(),
                code: true,
                ..Span::default()
            },
            Span::plain(", then read "),
            Span {
                text: "the docs".into(),
                link: Some("https://kubernetes.io/docs".into()),
                ..Span::default()
            },
            Span::plain(".\nNext line."),
        ];
        assert_eq!(
            wrap(&spans, 40),
            [
                "Run",
                "`kubectl get --raw '/readyz?verbose'`,",
                "then read the docs",
                "(https://kubernetes.io/docs).",
                "Next line."
            ]
        );
    }

    #[test]
    fn a_runbook_renders_with_numbered_steps_actions_checks_and_indented_code() {
        let text = "---
id: demo
title: Demo
findings: [webhook-long-timeout]
severity: warning
---
Why it matters.

- first
- second

## Look

```sh
kubectl get validatingwebhookconfigurations -o yaml
```

## Lower the timeout

```step
action: set-timeout
seconds: 3
check: {gone: webhook-long-timeout}
```
";
        let parsed = super::super::parse(text, std::path::Path::new("demo.md"));
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let shown = render_text(&parsed.runbook.unwrap(), 80);
        assert_eq!(
            shown,
            "Demo
====
demo · warning · applies to any
answers: webhook-long-timeout

Why it matters.

- first
- second

1. Look

       kubectl get validatingwebhookconfigurations -o yaml

2. Lower the timeout

   Action: set-timeout to 3 s
     lower timeoutSeconds (e.g. to 3)
   Check: `kube-rescue check` no longer reports webhook-long-timeout
"
        );
    }
}
