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
        Layout::full(width),
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
        // An id is as long as its file lets it be: a broken one does not widen every line.
        .min(40)
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

/// How blocks are laid out: `runbooks show` takes every line as it is (code never cut, so
/// that it can be copied); a screen takes only the lines it can show, each at most `width`
/// wide (a word longer than that is broken), so that drawing costs what is visible, not what
/// the runbook holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub width: usize,
    /// Lines wanted at most.
    pub max_lines: usize,
    /// Whether lines are held to `width` (else long code and long words stay whole).
    pub clip: bool,
}

impl Layout {
    /// Every line, `width` wide where prose can wrap.
    pub fn full(width: usize) -> Layout {
        Layout {
            width,
            max_lines: usize::MAX,
            clip: false,
        }
    }

    /// The first `height` lines of a screen area `width` wide.
    pub fn visible(width: usize, height: usize) -> Layout {
        Layout {
            width,
            max_lines: height,
            clip: true,
        }
    }

    fn narrower(self, by: usize, lines_left: usize) -> Layout {
        Layout {
            width: self.width.saturating_sub(by),
            max_lines: lines_left,
            ..self
        }
    }
}

/// Blocks as lines, `width` wide; a blank line between blocks when `spaced`.
pub fn blocks(list: &[Block], width: usize, spaced: bool) -> Vec<String> {
    laid_out(list, Layout::full(width), spaced)
}

/// Blocks as lines as `layout` says; a blank line between blocks when `spaced`.
pub fn laid_out(list: &[Block], layout: Layout, spaced: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (i, block) in list.iter().enumerate() {
        if out.len() >= layout.max_lines {
            break;
        }
        if spaced && i > 0 {
            out.push(String::new());
        }
        let left = layout.max_lines - out.len();
        out.extend(block_lines(
            block,
            Layout {
                max_lines: left,
                ..layout
            },
        ));
    }
    out.truncate(layout.max_lines);
    out
}

fn block_lines(block: &Block, layout: Layout) -> Vec<String> {
    match block {
        Block::Heading { spans, .. } | Block::Paragraph(spans) => wrap(spans, layout),
        Block::Code { text, .. } => text
            .lines()
            .take(layout.max_lines)
            .map(|l| {
                if layout.clip {
                    // A line too long for the screen says so; `runbooks show` has it whole.
                    let room = layout.width.saturating_sub(4);
                    if l.chars().nth(room).is_some() {
                        let kept: String = l.chars().take(room.saturating_sub(1)).collect();
                        format!("    {kept}…")
                    } else {
                        format!("    {l}")
                    }
                } else {
                    format!("    {l}")
                }
            })
            .collect(),
        Block::Quote(inner) => laid_out(inner, layout.narrower(2, layout.max_lines), true)
            .into_iter()
            .map(|l| format!("> {l}").trim_end().to_string())
            .collect(),
        Block::Rule => vec!["-".repeat(layout.width.min(20))],
        Block::List { start, items } => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if out.len() >= layout.max_lines {
                    break;
                }
                let marker = match start {
                    Some(n) => format!("{}. ", n.saturating_add(i as u64)),
                    None => "- ".to_string(),
                };
                let pad = " ".repeat(marker.chars().count());
                let inner = layout.narrower(pad.len(), layout.max_lines - out.len());
                let lines = laid_out(item, inner, false);
                for (j, line) in lines.iter().enumerate() {
                    let lead = if j == 0 { &marker } else { &pad };
                    out.push(indented(lead, line));
                }
            }
            out
        }
    }
}

/// Lines being filled word by word, greedily.
struct Filler {
    layout: Layout,
    lines: Vec<String>,
    line: String,
    line_chars: usize,
    /// The word being read: more text may still be glued to it.
    word: String,
    word_chars: usize,
}

impl Filler {
    fn full(&self) -> bool {
        self.lines.len() >= self.layout.max_lines
    }

    /// Adds a character to the word being read, or starts a new word with it. On a screen, a
    /// word as wide as the line is placed at once and the rest goes on as a new word.
    fn push(&mut self, c: char, glue: bool) {
        if !glue || (self.layout.clip && self.word_chars >= self.layout.width.max(1)) {
            self.place_word();
        }
        self.word.push(c);
        self.word_chars += 1;
    }

    /// Starts a word of its own (a link's target); what follows without a space is glued to it.
    fn push_word(&mut self, word: &str) {
        self.place_word();
        for c in word.chars() {
            self.push(c, true);
        }
    }

    fn place_word(&mut self) {
        if self.word_chars == 0 {
            return;
        }
        let needed = self.line_chars + 1 + self.word_chars;
        if self.line_chars > 0 && needed > self.layout.width {
            self.break_line();
        }
        if self.line_chars > 0 {
            self.line.push(' ');
            self.line_chars += 1;
        }
        self.line.push_str(&self.word);
        self.line_chars += self.word_chars;
        self.word.clear();
        self.word_chars = 0;
    }

    fn break_line(&mut self) {
        self.lines.push(std::mem::take(&mut self.line));
        self.line_chars = 0;
    }

    fn finish(mut self) -> Vec<String> {
        self.place_word();
        if self.line_chars > 0 || self.lines.is_empty() {
            self.break_line();
        }
        self.lines.truncate(self.layout.max_lines);
        self.lines
    }
}

/// Greedy word wrap. Inline code stays whole (shown in backticks); a link shows its target
/// after its text; a hard break starts a new line. Stops once `layout.max_lines` are filled.
fn wrap(spans: &[Span], layout: Layout) -> Vec<String> {
    let mut filler = Filler {
        layout,
        lines: Vec::new(),
        line: String::new(),
        line_chars: 0,
        word: String::new(),
        word_chars: 0,
    };
    let mut glue = false;
    for (i, span) in spans.iter().enumerate() {
        if filler.full() {
            break;
        }
        let link_ends =
            span.link.is_some() && spans.get(i + 1).map(|next| &next.link) != Some(&span.link);
        if span.code {
            let ticked = std::iter::once('`')
                .chain(span.text.chars())
                .chain(std::iter::once('`'));
            for (j, c) in ticked.enumerate() {
                filler.push(c, glue || j > 0);
                if filler.full() {
                    break;
                }
            }
            glue = true;
        } else {
            for c in span.text.chars() {
                if c == '\n' {
                    filler.place_word();
                    filler.break_line();
                    glue = false;
                } else if c.is_whitespace() {
                    filler.place_word();
                    glue = false;
                } else {
                    filler.push(c, glue);
                    glue = true;
                }
                if filler.full() {
                    break;
                }
            }
        }
        if let Some(url) = span
            .link
            .as_ref()
            .filter(|url| link_ends && **url != span.text)
        {
            filler.push_word(&format!("({url})"));
        }
    }
    filler.finish()
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
            wrap(&spans, Layout::full(40)),
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
    fn a_screen_gets_only_the_lines_it_shows_each_within_its_width() {
        let long_word = Block::Paragraph(vec![Span::plain(&"x".repeat(900_000))]);
        let prose = Block::Paragraph(vec![Span::plain(&"word ".repeat(200_000))]);
        let code = Block::Code {
            info: "sh".into(),
            text: format!("{}\n", "k".repeat(1_000)).repeat(1_000),
        };
        let item = Block::Paragraph(vec![Span::plain("an item of a long list")]);
        let list = Block::List {
            start: Some(u64::MAX - 1),
            items: vec![vec![item]; 50_000],
        };
        let quote = Block::Quote(vec![code.clone(), prose.clone()]);
        for block in [long_word, prose, code, list, quote] {
            let lines = laid_out(std::slice::from_ref(&block), Layout::visible(30, 12), true);
            assert_eq!(lines.len(), 12);
            for line in &lines {
                assert!(line.chars().count() <= 30, "{line:?}");
            }
        }
        // As `runbooks show` has it: code stays whole.
        let code = Block::Code {
            info: String::new(),
            text: format!("{}\n", "k".repeat(100)),
        };
        assert_eq!(blocks(&[code], 30, true)[0].len(), 104);
        let spans = [Span::plain("one two three four")];
        assert_eq!(
            wrap(&spans, Layout::visible(9, 1)),
            ["one two"],
            "the first line only"
        );
        assert_eq!(wrap(&spans, Layout::full(9)), ["one two", "three", "four"]);
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
