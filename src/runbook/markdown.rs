//! The Markdown of a runbook, parsed once into plain blocks and styled spans that a terminal
//! renderer (the `runbooks show` text, the screen) can draw without knowing Markdown. Only
//! what runbooks use is kept: headings, paragraphs, lists, code blocks, block quotes, rules,
//! inline code, emphasis and links; raw HTML stays as text.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::MAX_NESTING;

/// A run of text with one style.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    /// Inline code: shown as is, never wrapped inside.
    pub code: bool,
    pub emphasis: bool,
    pub strong: bool,
    /// The target when this text is (part of) a link.
    pub link: Option<String>,
}

impl Span {
    pub fn plain(text: &str) -> Self {
        Span {
            text: text.to_string(),
            ..Span::default()
        }
    }
}

/// One block of Markdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Level 1 to 6 (level 2 headings of a runbook are its steps and do not appear here).
    Heading {
        level: u8,
        spans: Vec<Span>,
    },
    /// A paragraph; a hard line break is a `\n` in a span's text, a soft one a space.
    Paragraph(Vec<Span>),
    /// A list; `start` is the first number of an ordered list.
    List {
        start: Option<u64>,
        items: Vec<Vec<Block>>,
    },
    /// A code block: its info string (`sh`, `yaml`, empty) and its text, ending in `\n`.
    Code {
        info: String,
        text: String,
    },
    Quote(Vec<Block>),
    Rule,
}

/// The plain text of spans, styles dropped.
pub fn plain_text(spans: &[Span]) -> String {
    spans.iter().map(|s| s.text.as_str()).collect()
}

/// A top-level block and the 1-based line of the text it was parsed from where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub block: Block,
}

/// What [`parse`] found in a runbook's Markdown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// The top-level blocks with their lines.
    pub blocks: Vec<Located>,
    /// The lines of code blocks with the `nested_info` info string found inside another block
    /// (a list, a quote).
    pub nested: Vec<usize>,
    /// The lines where lists and block quotes nest past [`MAX_NESTING`]: one per run of
    /// too-deep containers, at its outermost one. What they hold is kept, flattened into the
    /// deepest level allowed.
    pub too_deep: Vec<usize>,
}

/// Parses Markdown into top-level blocks with their lines. `first_line` is the line number of
/// `text`'s first line in its file. The work is linear in the text: lines are counted as the
/// parser moves on, and containers deeper than [`MAX_NESTING`] are not built.
pub fn parse(text: &str, first_line: usize, nested_info: &str) -> Document {
    let mut lines = LineCounter::new(text, first_line);
    let mut builder = Builder::default();
    let mut document = Document::default();
    for (event, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        match &event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or(""),
                    CodeBlockKind::Indented => "",
                };
                if info == nested_info && builder.stack.len() > 1 {
                    document.nested.push(lines.at(range.start));
                }
            }
            Event::Start(tag @ (Tag::List(_) | Tag::BlockQuote(_) | Tag::Item))
                if builder.skipped > 0
                    || (!matches!(tag, Tag::Item) && builder.depth >= MAX_NESTING) =>
            {
                if builder.skipped == 0 {
                    document.too_deep.push(lines.at(range.start));
                }
                builder.skipped += 1;
                builder.close_implicit_paragraph();
                continue;
            }
            Event::End(TagEnd::List(_) | TagEnd::BlockQuote(_) | TagEnd::Item)
                if builder.skipped > 0 =>
            {
                builder.skipped -= 1;
                builder.close_implicit_paragraph();
                continue;
            }
            _ => {}
        }
        if builder.at_top() && matches!(event, Event::Start(_) | Event::Rule) {
            builder.top_line = lines.at(range.start);
        }
        builder.event(event);
    }
    document.blocks = builder.finish();
    document
}

/// The line of a byte offset, counted from the last offset asked about (the parser's offsets
/// mostly move forward), so that a long runbook is not scanned from its start again and again.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str, first_line: usize) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: first_line,
        }
    }

    fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        let newlines = |a: usize, b: usize| {
            self.text.as_bytes()[a..b]
                .iter()
                .filter(|c| **c == b'\n')
                .count()
        };
        if offset >= self.offset {
            self.line += newlines(self.offset, offset);
        } else {
            self.line -= newlines(offset, self.offset);
        }
        self.offset = offset;
        self.line
    }
}

/// A container being filled.
enum Frame {
    /// The document, a list item or a block quote: holds blocks.
    Blocks(Vec<Block>),
    /// A list (filled item by item) or a code block (filled with text).
    Open(Block),
    /// A paragraph or heading (level 0 for a paragraph): holds spans.
    Inline { level: u8, spans: Vec<Span> },
}

struct Builder {
    stack: Vec<Frame>,
    top: Vec<Located>,
    top_line: usize,
    emphasis: usize,
    strong: usize,
    links: Vec<String>,
    /// Lists and block quotes open.
    depth: usize,
    /// Containers past [`MAX_NESTING`] open, which were not built.
    skipped: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            stack: vec![Frame::Blocks(Vec::new())],
            top: Vec::new(),
            top_line: 1,
            emphasis: 0,
            strong: 0,
            links: Vec::new(),
            depth: 0,
            skipped: 0,
        }
    }
}

impl Builder {
    /// Whether the next block starts at the top level (no container open but the document).
    fn at_top(&self) -> bool {
        self.stack.len() == 1
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text),
            Event::Code(text) => {
                let mut span = self.styled(&text);
                span.code = true;
                self.push_span(span);
            }
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.text(&t),
            Event::FootnoteReference(label) => self.text(&format!("[{label}]")),
            Event::SoftBreak => self.text(" "),
            Event::HardBreak => self.text("\n"),
            Event::Rule => self.push_block(Block::Rule),
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.open_inline(0),
            Tag::Heading { level, .. } => self.open_inline(heading_level(level)),
            Tag::BlockQuote(_) | Tag::Item => {
                self.close_implicit_paragraph();
                if matches!(tag, Tag::BlockQuote(_)) {
                    self.depth += 1;
                }
                self.stack.push(Frame::Blocks(Vec::new()));
            }
            Tag::List(start) => {
                self.close_implicit_paragraph();
                self.depth += 1;
                self.stack.push(Frame::Open(Block::List {
                    start,
                    items: Vec::new(),
                }));
            }
            Tag::CodeBlock(kind) => {
                self.close_implicit_paragraph();
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.trim().to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.stack.push(Frame::Open(Block::Code {
                    info,
                    text: String::new(),
                }));
            }
            Tag::Emphasis => self.emphasis += 1,
            Tag::Strong => self.strong += 1,
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.links.push(dest_url.to_string())
            }
            Tag::HtmlBlock => self.open_inline(0),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::HtmlBlock => self.close_inline(),
            TagEnd::BlockQuote(_) => {
                self.close_implicit_paragraph();
                self.depth = self.depth.saturating_sub(1);
                if let Some(Frame::Blocks(blocks)) = self.stack.pop() {
                    self.push_block(Block::Quote(blocks));
                }
            }
            TagEnd::Item => {
                self.close_implicit_paragraph();
                if let Some(Frame::Blocks(blocks)) = self.stack.pop()
                    && let Some(Frame::Open(Block::List { items, .. })) = self.stack.last_mut()
                {
                    items.push(blocks);
                }
            }
            TagEnd::List(_) | TagEnd::CodeBlock => {
                if matches!(tag, TagEnd::List(_)) {
                    self.depth = self.depth.saturating_sub(1);
                }
                if let Some(Frame::Open(block)) = self.stack.pop() {
                    self.push_block(block);
                }
            }
            TagEnd::Emphasis => self.emphasis = self.emphasis.saturating_sub(1),
            TagEnd::Strong => self.strong = self.strong.saturating_sub(1),
            TagEnd::Link | TagEnd::Image => {
                self.links.pop();
            }
            _ => {}
        }
    }

    fn styled(&self, text: &str) -> Span {
        Span {
            text: text.to_string(),
            code: false,
            emphasis: self.emphasis > 0,
            strong: self.strong > 0,
            link: self.links.last().cloned(),
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(Frame::Open(Block::Code { text: code, .. })) = self.stack.last_mut() {
            code.push_str(text);
            return;
        }
        let span = self.styled(text);
        self.push_span(span);
    }

    /// Adds a span to the open paragraph or heading; text straight in a list item (a tight
    /// list) opens a paragraph of its own.
    fn push_span(&mut self, span: Span) {
        if !matches!(self.stack.last(), Some(Frame::Inline { .. })) {
            self.open_inline(0);
        }
        if let Some(Frame::Inline { spans, .. }) = self.stack.last_mut() {
            match spans.last_mut() {
                Some(last)
                    if !span.code
                        && !last.code
                        && last.emphasis == span.emphasis
                        && last.strong == span.strong
                        && last.link == span.link =>
                {
                    last.text.push_str(&span.text)
                }
                _ => spans.push(span),
            }
        }
    }

    fn open_inline(&mut self, level: u8) {
        self.close_implicit_paragraph();
        self.stack.push(Frame::Inline {
            level,
            spans: Vec::new(),
        });
    }

    fn close_inline(&mut self) {
        if let Some(Frame::Inline { level, spans }) = self.stack.pop() {
            let spans = trim_spans(spans);
            let block = match level {
                0 if spans.is_empty() => return,
                0 => Block::Paragraph(spans),
                level => Block::Heading { level, spans },
            };
            self.push_block(block);
        }
    }

    /// A paragraph opened for a tight list item's text ends where the next block starts.
    fn close_implicit_paragraph(&mut self) {
        let n = self.stack.len();
        if n > 2
            && matches!(self.stack[n - 1], Frame::Inline { level: 0, .. })
            && matches!(self.stack[n - 2], Frame::Blocks(_))
        {
            self.close_inline();
        }
    }

    fn push_block(&mut self, block: Block) {
        if self.stack.len() == 1 {
            self.top.push(Located {
                line: self.top_line,
                block,
            });
            return;
        }
        match self.stack.last_mut() {
            Some(Frame::Blocks(blocks)) => blocks.push(block),
            Some(Frame::Open(Block::List { items, .. })) => items.push(vec![block]),
            _ => {}
        }
    }

    fn finish(mut self) -> Vec<Located> {
        while self.stack.len() > 1 {
            match self.stack.last() {
                Some(Frame::Inline { .. }) => self.close_inline(),
                _ => {
                    self.stack.pop();
                }
            }
        }
        self.top
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Drops leading and trailing white space of a paragraph (raw HTML blocks end in newlines).
fn trim_spans(mut spans: Vec<Span>) -> Vec<Span> {
    if let Some(first) = spans.first_mut() {
        first.text = first.text.trim_start().to_string();
    }
    if let Some(last) = spans.last_mut() {
        last.text = last.text.trim_end().to_string();
    }
    spans.retain(|s| !s.text.is_empty());
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> Vec<Block> {
        parse(text, 1, "step")
            .blocks
            .into_iter()
            .map(|l| l.block)
            .collect()
    }

    #[test]
    fn lists_nest_and_keep_their_numbers() {
        let parsed = blocks("3. first\n   - inner `code`\n4. second\n\n   more text\n");
        let para = |t: &str| Block::Paragraph(vec![Span::plain(t)]);
        assert_eq!(
            parsed,
            [Block::List {
                start: Some(3),
                items: vec![
                    vec![
                        para("first"),
                        Block::List {
                            start: None,
                            items: vec![vec![Block::Paragraph(vec![
                                Span::plain("inner "),
                                Span {
                                    text: "code".into(),
                                    code: true,
                                    ..Span::default()
                                }
                            ])]]
                        }
                    ],
                    vec![para("second"), para("more text")],
                ]
            }]
        );
    }

    #[test]
    fn headings_quotes_rules_breaks_and_emphasis() {
        let parsed = blocks("### Deeper\n\n> quoted *text*\n\n---\n\nline one  \nline two\nsoft\n");
        assert_eq!(parsed.len(), 4, "{parsed:?}");
        assert_eq!(
            parsed[0],
            Block::Heading {
                level: 3,
                spans: vec![Span::plain("Deeper")]
            }
        );
        let Block::Quote(inner) = &parsed[1] else {
            panic!("{parsed:?}");
        };
        let Block::Paragraph(spans) = &inner[0] else {
            panic!("{inner:?}");
        };
        assert!(spans[1].emphasis && spans[1].text == "text", "{spans:?}");
        assert_eq!(parsed[2], Block::Rule);
        assert_eq!(
            parsed[3],
            Block::Paragraph(vec![Span::plain("line one\nline two soft")])
        );
    }

    #[test]
    fn top_level_blocks_know_their_lines_and_nested_step_blocks_are_reported() {
        let document = parse(
            "Intro.\n\n## Step\n\n- x\n\n  ```step\n  a: b\n  ```\n",
            10,
            "step",
        );
        let lines: Vec<usize> = document.blocks.iter().map(|l| l.line).collect();
        assert_eq!(lines, [10, 12, 14]);
        assert_eq!(document.nested, [16]);
        assert!(document.too_deep.is_empty());
    }

    /// How deep lists and quotes nest in `blocks`.
    fn depth(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .map(|b| match b {
                Block::List { items, .. } => 1 + items.iter().map(|i| depth(i)).max().unwrap_or(0),
                Block::Quote(inner) => 1 + depth(inner),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn containers_past_the_cap_are_flattened_and_named_by_line() {
        for (text, line) in [
            (format!("Intro.\n\n{}deep\n", "- ".repeat(10_000)), 3),
            (format!("{}deeper\n", "> ".repeat(10_000)), 1),
            (format!("{}deep\n", "> - 1. ".repeat(3_000)), 1),
            (
                (0..40)
                    .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
                    .collect::<String>(),
                1 + MAX_NESTING,
            ),
        ] {
            let document = parse(&text, 1, "step");
            assert_eq!(document.too_deep, [line], "{:.60}", text);
            let blocks: Vec<Block> = document.blocks.into_iter().map(|l| l.block).collect();
            assert_eq!(depth(&blocks), MAX_NESTING, "{:.60}", text);
            let shown = super::super::render::blocks(&blocks, 80, true).join("\n");
            assert!(
                shown.contains("deep") || shown.contains("level 39"),
                "{shown}"
            );
        }
        // At the cap exactly: nothing to say.
        let document = parse(&format!("{}x\n", "- ".repeat(MAX_NESTING)), 1, "step");
        assert!(document.too_deep.is_empty());
        // Two separate runs too deep: each named.
        let two = format!("{0}a\n\ntext\n\n{0}b\n", "> ".repeat(20));
        assert_eq!(parse(&two, 5, "step").too_deep, [5, 9]);
    }

    #[test]
    fn lines_are_counted_forward_and_back() {
        let text = "a\nb\nc\nd\n";
        let mut lines = LineCounter::new(text, 7);
        assert_eq!(lines.at(4), 9);
        assert_eq!(lines.at(2), 8);
        assert_eq!(lines.at(100), 11);
        assert_eq!(lines.at(0), 7);
    }
}
