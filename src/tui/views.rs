//! Drawing: the whole screen from a `&Model`, and nothing else. No I/O, no clock (ages are
//! relative to `model.now`), no state kept between frames.

use crate::remediate::audit::Attempt;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Borders, Cell, Paragraph, Row, Sparkline, StatefulWidget, Table, TableState, Widget,
    Wrap,
};

use super::dialog::{self as dialogs, Dialog};
use super::model::{MIN_HEIGHT, MIN_WIDTH, Model, View};
use super::rows::{self, WebhookRow, age, ago, clock, latency};
use super::runbook::{self as steps, Pinned, StepState};
use crate::cluster::Source;
use crate::cluster::probe::ProbeState;
use crate::cluster::snapshot::WebhookMetrics;
use crate::diagnose::{Finding, Severity};
use crate::report::describe_action;

const DIM: Style = Style::new().add_modifier(Modifier::DIM);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

impl Widget for &Model {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            too_small(area, buf);
            return;
        }
        let [header_area, tabs_area, body_area, footer_area] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        header(self, header_area, buf);
        tabs(self, tabs_area, buf);
        match self.view {
            View::Findings => findings(self, body_area, buf),
            View::Webhooks => webhooks(self, body_area, buf),
            View::Nodes => nodes(self, body_area, buf),
            View::Health => health(self, body_area, buf),
            View::Events => events(self, body_area, buf),
            View::Audit => audit(self, body_area, buf),
            View::Help => help(self, body_area, buf),
        }
        footer(self, footer_area, buf);
        if let Some(d) = &self.dialog {
            dialog(self, d, body_area, buf);
        }
    }
}

fn too_small(area: Rect, buf: &mut Buffer) {
    let text = vec![
        Line::from("Terminal too small".bold()),
        Line::from(format!(
            "{}x{} here; kube-rescue needs at least {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        )),
        Line::from("Enlarge the window, or press q to quit."),
    ];
    render_wrapped(Paragraph::new(text).wrap(Wrap { trim: true }), area, buf);
}

/// A list as a table under a bold header: only the rows that fit are built and drawn, around
/// `selected`, which is highlighted. `row` gives an item's cells and the row's style; a cell
/// too long for its column ends with `…`.
fn list_table<T>(
    items: &[T],
    selected: usize,
    header: &[&'static str],
    widths: &[Constraint],
    row: impl Fn(&T) -> (Vec<Line<'static>>, Style),
    area: Rect,
    buf: &mut Buffer,
) {
    let shown = window(selected, items.len(), area.height);
    let columns = column_widths(widths, area.width);
    let rows = items[shown.clone()].iter().map(|item| {
        let (cells, style) = row(item);
        fitted_row(cells, &columns).style(style)
    });
    let header = header.iter().map(|h| Line::from(*h)).collect();
    let table = Table::new(rows, widths.to_vec())
        .header(fitted_row(header, &columns).style(Style::new().bold()))
        .row_highlight_style(SELECTED);
    let mut state = TableState::default().with_selected(Some(selected - shown.start));
    StatefulWidget::render(table, area, buf, &mut state);
}

/// The rows of a list that fit in `height` lines under its header, keeping `selected` in
/// sight: only these are built and drawn (a 5,000-node list would otherwise cost a frame).
fn window(selected: usize, len: usize, height: u16) -> std::ops::Range<usize> {
    let fits = usize::from(height.saturating_sub(1)).max(1);
    let start = (selected + 1)
        .saturating_sub(fits)
        .min(len.saturating_sub(1));
    start..len.min(start + fits)
}

/// At most `max` characters of `text`, with `…` where it was cut: a runbook's title or
/// step may be as long as its file.
fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some(_) => text
            .chars()
            .take(max.saturating_sub(1))
            .chain(['…'])
            .collect::<String>()
            .into(),
    }
}

/// How many columns `c` takes on a terminal.
fn char_width(c: char) -> usize {
    let mut bytes = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut bytes)).width()
}

/// `line` as it fits in `width` columns: whole, or cut with `…` (styled as the text it ends).
/// Nothing on the screen is cut silently: the edge of an area cuts only what this already
/// shortened.
fn fit_line(line: Line<'_>, width: usize) -> Line<'_> {
    // Blanks at its end say nothing: the edge may take them.
    let blanks: usize = line
        .spans
        .iter()
        .rev()
        .flat_map(|s| s.content.chars().rev())
        .take_while(|c| *c == ' ')
        .count();
    if line.width().saturating_sub(blanks) <= width {
        return line;
    }
    let Line {
        spans,
        style,
        alignment,
        ..
    } = line;
    let room = width.saturating_sub(1);
    let mut used = 0;
    let mut out: Vec<Span> = Vec::new();
    let mut last_style = Style::new();
    for span in spans {
        if used >= room {
            break;
        }
        last_style = span.style;
        let mut kept = String::new();
        for c in span.content.chars() {
            let w = char_width(c);
            if used + w > room {
                used = room;
                break;
            }
            kept.push(c);
            used += w;
        }
        out.push(Span::styled(kept, span.style));
    }
    if width > 0 {
        out.push(Span::styled("…", last_style));
    }
    let mut fitted = Line::from(out).style(style);
    fitted.alignment = alignment;
    fitted
}

/// Each of `lines` fitted to `width` columns.
fn fit_lines<'a>(lines: impl IntoIterator<Item = Line<'a>>, width: u16) -> Vec<Line<'a>> {
    lines
        .into_iter()
        .map(|l| fit_line(l, usize::from(width)))
        .collect()
}

/// Draws one line in `area`, shortened with `…` when it does not fit.
fn render_line(line: Line<'_>, area: Rect, buf: &mut Buffer) {
    fit_line(line, usize::from(area.width)).render(area, buf);
}

/// Draws a paragraph that wraps its lines; when more lines follow than `area` holds, the last
/// line shown ends with `…`.
fn render_wrapped(paragraph: Paragraph<'_>, area: Rect, buf: &mut Buffer) {
    if area.is_empty() {
        return;
    }
    // One line more than the area: whether anything is left below.
    let mut scratch = Buffer::empty(Rect {
        height: area.height + 1,
        ..area
    });
    paragraph.render(scratch.area, &mut scratch);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            buf[(x, y)] = scratch[(x, y)].clone();
        }
    }
    let below = area.bottom();
    if (area.left()..area.right()).any(|x| scratch[(x, below)].symbol().trim() != "") {
        mark_more(buf, area, below - 1);
    }
}

/// Draws `block`, and inside it a paragraph that wraps its lines (see [`render_wrapped`]).
fn render_block_wrapped(block: Block<'_>, paragraph: Paragraph<'_>, area: Rect, buf: &mut Buffer) {
    let inner = block.inner(area);
    block.render(area, buf);
    render_wrapped(paragraph, inner, buf);
}

/// Ends row `y` of `area` with `…`: right after its text, or over its last column.
fn mark_more(buf: &mut Buffer, area: Rect, y: u16) {
    let last = (area.left()..area.right())
        .rev()
        .find(|&x| buf[(x, y)].symbol().trim() != "");
    let x = match last {
        Some(x) if x + 1 < area.right() => x + 1,
        Some(x) => x,
        None => area.left(),
    };
    let style = last.map_or(Style::new(), |l| buf[(l, y)].style());
    buf[(x, y)].set_symbol("…").set_style(style);
}

/// The widths a Table gives its columns in `width` columns (spacing 1, no selection symbol).
fn column_widths(widths: &[Constraint], width: u16) -> Vec<u16> {
    Layout::horizontal(widths.to_vec())
        .flex(ratatui::layout::Flex::Start)
        .spacing(1)
        .split(Rect::new(0, 0, width, 1))
        .iter()
        .map(|r| r.width)
        .collect()
}

/// A table row whose cells are fitted to `columns`: text too long for its column ends with
/// `…`.
fn fitted_row(cells: Vec<Line<'static>>, columns: &[u16]) -> Row<'static> {
    Row::new(
        cells
            .into_iter()
            .zip(columns)
            .map(|(line, w)| Cell::from(fit_line(line, usize::from(*w)))),
    )
}

/// The width of a name column: its longest name, kept between `min` and `max`.
fn name_width<'a>(names: impl Iterator<Item = &'a str>, min: u16, max: u16) -> u16 {
    let longest = names.map(|n| n.chars().count()).max().unwrap_or(0);
    u16::try_from(longest)
        .unwrap_or(u16::MAX)
        .clamp(min, max.max(min))
}

/// `name` cut to `width` characters in its middle, so that its start and its end (where
/// generated names keep what tells them apart) both stay readable: `gke-prod-p…2f1a-8xkq`.
fn fit_middle(name: &str, width: u16) -> String {
    let width = usize::from(width);
    let len = name.chars().count();
    if len <= width || width < 5 {
        return name.to_string();
    }
    let tail = (width - 1) / 2;
    let head = width - 1 - tail;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(len - tail).collect();
    format!("{start}…{end}")
}

fn severity_span(severity: Severity) -> Span<'static> {
    match severity {
        Severity::Critical => Span::styled("CRIT", Style::new().fg(Color::Red).bold()),
        Severity::Warning => Span::styled("WARN", Style::new().fg(Color::Yellow).bold()),
        Severity::Info => Span::styled("INFO", Style::new().fg(Color::Blue)),
    }
}

/// What a view shows before the first snapshot arrives.
fn waiting_for_first_refresh(area: Rect, buf: &mut Buffer) {
    render_wrapped(
        Paragraph::new(" Waiting for the first refresh…")
            .style(DIM)
            .wrap(Wrap { trim: false }),
        area,
        buf,
    );
}

/// Why a list shows no row: its source could not be read, there is nothing, or the filter
/// hides everything (`says` in that order).
fn nothing_listed(unread: bool, none: bool, says: [&str; 3], area: Rect, buf: &mut Buffer) {
    let text = if unread {
        says[0]
    } else if none {
        says[1]
    } else {
        says[2]
    };
    render_wrapped(
        Paragraph::new(format!(" {text}")).wrap(Wrap { trim: false }),
        area,
        buf,
    );
}

/// One yellow line per source whose value is stale or missing: ` name: note`.
fn stale_notes<const N: usize>(notes: [(&str, Option<String>); N]) -> Vec<Line<'static>> {
    notes
        .into_iter()
        .filter_map(|(name, note)| {
            let note = note?;
            Some(Line::from(Span::styled(
                format!(" {name}: {note}"),
                Style::new().fg(Color::Yellow),
            )))
        })
        .collect()
}

/// `stale, 35s old: readyz: timeout after 3 s` for a source whose latest attempt failed.
fn staleness<T>(source: &Source<T>, now: jiff::Timestamp) -> Option<String> {
    let error = source.error.as_ref()?;
    let old = source
        .fetched_at
        .map_or_else(|| age(source.age), |t| ago(t, now));
    Some(if source.stale {
        format!("stale, {old} old: {}", error.message)
    } else {
        format!("could not be read: {}", error.message)
    })
}

// ---------------------------------------------------------------------------------------------
// Header

fn header(model: &Model, area: Rect, buf: &mut Buffer) {
    let [l1, l2, l3, l4] = Layout::vertical([Constraint::Length(1); 4]).areas(area);
    let c = &model.connection;
    let name = if c.context.is_empty() {
        " kube-rescue ".to_string()
    } else {
        format!(" {} ", c.context)
    };
    let mut first = vec![("", name, Style::new().bold().reversed())];
    if model.connection.read_only {
        first.push((
            " ",
            " READ-ONLY ".to_string(),
            Style::new().fg(Color::Black).bg(Color::Yellow).bold(),
        ));
    }
    // The version before the server: on a narrow terminal the server gives up its room first.
    if let Some(v) = model
        .snapshot
        .as_ref()
        .and_then(|s| s.apiserver_version.value.as_ref())
    {
        first.push((" ", v.git_version.clone(), Style::new()));
    }
    if !c.server.is_empty() {
        let server = c.server.strip_prefix("https://").unwrap_or(&c.server);
        first.push((" ", server.to_string(), DIM));
    }
    let refresh = refresh_line(model);
    let [left, right] = Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(refresh.width() as u16),
    ])
    .areas(l1);
    Line::from(fit_pieces(first, usize::from(left.width))).render(left, buf);
    refresh.right_aligned().render(right, buf);

    render_line(Line::from(apiserver_status(model)), l2, buf);
    render_line(Line::from(write_probe_line(model)), l3, buf);
    latency_line(model, l4, buf);
}

/// Pieces of text (each after its separator) in `width` columns: whole when they all fit;
/// else each keeps at least its first character and a `…`, and the room left goes to the
/// earlier ones first.
fn fit_pieces(pieces: Vec<(&'static str, String, Style)>, width: usize) -> Vec<Span<'static>> {
    let full: Vec<usize> = pieces
        .iter()
        .map(|(sep, text, _)| sep.len() + Span::raw(text.as_str()).width())
        .collect();
    let least: Vec<usize> = pieces
        .iter()
        .zip(&full)
        .map(|((sep, _, _), f)| (*f).min(sep.len() + 2))
        .collect();
    let mut room = width.saturating_sub(least.iter().sum());
    let mut spans = Vec::new();
    for (((sep, text, style), f), l) in pieces.into_iter().zip(&full).zip(&least) {
        let extra = (f - l).min(room);
        room -= extra;
        let given = (l + extra).min(width.saturating_sub(spans_width(&spans)));
        if given <= sep.len() {
            break;
        }
        spans.push(Span::raw(sep));
        let text = fit_line(Line::from(text), given - sep.len());
        spans.extend(
            text.spans
                .into_iter()
                .map(|s| Span::styled(s.content.into_owned(), style)),
        );
    }
    spans
}

fn spans_width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

fn refresh_line(model: &Model) -> Line<'static> {
    let Some(s) = &model.snapshot else {
        return Line::from(format!("started {} ago ", ago(model.started, model.now))).style(DIM);
    };
    let when = s
        .taken_at
        .map_or_else(|| "?".to_string(), |t| ago(t, model.now));
    let mut spans = vec![Span::raw(format!(
        "  #{} · {} req · {when} ago",
        s.sequence, s.requests
    ))];
    if model.refresh_requested.is_some() {
        spans.push(Span::styled(" · refreshing…", Style::new().fg(Color::Cyan)));
    } else if let Some(b) = s.backoff {
        spans.push(Span::styled(
            format!(" · backoff {}", age(b)),
            Style::new().fg(Color::Yellow),
        ));
    }
    spans.push(" ".into());
    Line::from(spans)
}

fn apiserver_status(model: &Model) -> Vec<Span<'static>> {
    let label = Span::styled(" apiserver ", Style::new().bold());
    let Some(s) = &model.snapshot else {
        if let Some(e) = &model.connect_error {
            return vec![
                label,
                Span::styled(format!("cannot connect: {e}"), Style::new().fg(Color::Red)),
            ];
        }
        return vec![
            label,
            Span::styled(
                format!("connecting… {}", ago(model.started, model.now)),
                Style::new().fg(Color::Yellow),
            ),
        ];
    };
    if let Some(note) = model
        .blind_note
        .as_ref()
        .filter(|n| n.starts_with("credentials"))
    {
        // Nothing past the credentials can be trusted: say that first.
        return vec![
            label,
            Span::styled(note.to_uppercase(), Style::new().fg(Color::Red).bold()),
        ];
    }
    if let Some(since) = model.unreachable_since {
        let cause = s
            .readyz
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        return vec![
            label,
            Span::styled(
                format!(
                    "UNREACHABLE since {} ({} ago)",
                    clock(since),
                    ago(since, model.now)
                ),
                Style::new().fg(Color::Red).bold(),
            ),
            Span::raw(format!(" readyz: {cause}")),
        ];
    }
    let mut out = vec![label];
    match &s.readyz.value {
        Some(h) => {
            let style = if s.readyz.stale { DIM } else { Style::new() };
            if h.passed() {
                out.push(Span::styled("ready", style.fg(Color::Green).bold()));
            } else {
                let failing: Vec<&str> = h.failing().collect();
                out.push(Span::styled(
                    format!("NOT READY ({})", h.code),
                    style.fg(Color::Red).bold(),
                ));
                if !failing.is_empty() {
                    out.push(Span::styled(
                        format!(" failing: {}", failing.join(", ")),
                        style.fg(Color::Red),
                    ));
                }
            }
            if let Some(note) = staleness(&s.readyz, model.now) {
                out.push(Span::styled(format!(" ({note})"), DIM));
            }
        }
        None => {
            let why = s
                .readyz
                .error
                .as_ref()
                .map_or("not read yet".to_string(), |e| e.message.clone());
            out.push(Span::styled(
                format!("readyz unknown: {why}"),
                Style::new().fg(Color::Yellow),
            ));
        }
    }
    if let Some(note) = &model.blind_note {
        out.push(Span::styled(
            format!(" · {note}"),
            Style::new().fg(Color::Red).bold(),
        ));
    }
    if let Some(l) = &s.livez.value
        && !l.passed()
    {
        out.push(Span::styled(
            format!(
                " · livez failing: {}",
                l.failing().collect::<Vec<_>>().join(", ")
            ),
            Style::new().fg(Color::Red),
        ));
    }
    out
}

fn write_probe_line(model: &Model) -> Vec<Span<'static>> {
    let label = Span::styled(" writes    ", Style::new().bold());
    let read_only = model.connection.read_only;
    let Some(report) = model.snapshot.as_ref().and_then(|s| s.write_probe.as_ref()) else {
        let text = if read_only {
            "not probed (read-only: no dry-run write is sent)"
        } else if model.unreachable_since.is_some() {
            "not probed (the apiserver does not answer)"
        } else {
            "dry-run write probe not run yet"
        };
        return vec![label, Span::styled(text, DIM)];
    };
    // The namespace that tells the most: a failure, then a wait, then the rest.
    let worst = report.namespaces.iter().max_by_key(|n| match &n.state {
        ProbeState::Failed { failure, .. } if failure.webhook().is_some() => 4,
        ProbeState::Failed { .. } => 3,
        ProbeState::Waiting { .. } => 2,
        ProbeState::Passed { .. } => 1,
        ProbeState::Skipped { .. } => 0,
    });
    let Some(n) = worst else {
        return vec![label, Span::styled("no namespace probed", DIM)];
    };
    let style = match n.state {
        ProbeState::Failed { .. } => Style::new().fg(Color::Red),
        ProbeState::Waiting { .. } => Style::new().fg(Color::Yellow),
        // A write that passes only after waiting out a webhook's timeout is not healthy yet.
        ProbeState::Passed { took } if took > crate::diagnose::apiserver::SLOW_WRITE => {
            Style::new().fg(Color::Yellow)
        }
        ProbeState::Passed { .. } => Style::new().fg(Color::Green),
        ProbeState::Skipped { .. } => DIM,
    };
    // A wait keeps counting between snapshots: the probe is still out there.
    let described = match (&n.state, model.snapshot.as_ref().and_then(|s| s.taken_at)) {
        (ProbeState::Waiting { waited }, Some(taken)) => {
            let since = model.now.duration_since(taken).unsigned_abs();
            let mut ticking = n.clone();
            ticking.state = ProbeState::Waiting {
                waited: *waited + since,
            };
            ticking.describe()
        }
        _ => n.describe(),
    };
    let mut out = vec![
        label,
        Span::styled(format!("{}: {described}", n.namespace), style),
    ];
    let others = report.namespaces.len() - 1;
    if others > 0 {
        out.push(Span::styled(
            format!(
                " (+{others} more namespace{})",
                if others == 1 { "" } else { "s" }
            ),
            DIM,
        ));
    }
    out
}

fn latency_line(model: &Model, area: Rect, buf: &mut Buffer) {
    let [read_label, read_spark, write_label, write_spark, rest] = Layout::horizontal([
        Constraint::Length(18),
        Constraint::Length(20),
        Constraint::Length(18),
        Constraint::Length(12),
        Constraint::Min(0),
    ])
    .areas(area);
    let Some(s) = &model.snapshot else {
        Span::styled(" latency   no sample yet", DIM).render(area, buf);
        return;
    };
    let read_verb = if s.latency.verbs.contains_key("list") {
        "list"
    } else {
        "get"
    };
    for (verb, name, label_area, spark_area) in [
        (read_verb, "read ", read_label, read_spark),
        ("create", "write", write_label, write_spark),
    ] {
        let samples: Vec<u64> = s
            .latency
            .samples(verb)
            .map(|x| u64::try_from(x.took.as_millis()).unwrap_or(u64::MAX))
            .collect();
        let last = s.latency.latest(verb);
        let text = match last {
            Some(x) if x.answered => latency(x.took),
            Some(x) => format!("✗ {}", latency(x.took)),
            None => "-".to_string(),
        };
        let style = match last {
            Some(x) if !x.answered => Style::new().fg(Color::Red),
            Some(x) if x.took.as_millis() >= 1000 => Style::new().fg(Color::Yellow),
            _ => Style::new(),
        };
        Line::from(vec![
            Span::styled(format!(" {name} "), Style::new().bold()),
            Span::styled(format!("{text:>10} "), style),
        ])
        .render(label_area, buf);
        let width = usize::from(spark_area.width.saturating_sub(1));
        let start = samples.len().saturating_sub(width);
        Sparkline::default()
            .data(&samples[start..])
            .style(Style::new().fg(Color::Cyan))
            .render(spark_area, buf);
    }
    let _ = rest;
}

// ---------------------------------------------------------------------------------------------
// Tabs and footer

fn tabs(model: &Model, area: Rect, buf: &mut Buffer) {
    let mut spans = vec![Span::raw(" ")];
    for (i, view) in View::ALL.iter().enumerate() {
        let mut title = format!(" {} {} ", i + 1, view.title());
        if *view == View::Findings && !model.findings.is_empty() {
            title = format!(" {} {} ({}) ", i + 1, view.title(), model.findings.len());
        }
        let style = if *view == model.view {
            Style::new().bold().reversed()
        } else {
            Style::new()
        };
        spans.push(Span::styled(title, style));
        spans.push(" ".into());
    }
    render_line(
        Line::from(spans).style(Style::new().fg(Color::Cyan)),
        area,
        buf,
    );
}

fn footer(model: &Model, area: Rect, buf: &mut Buffer) {
    let line = if let Some(d) = &model.dialog {
        let keys = match d {
            Dialog::Menu { .. } => {
                " j/k choose · Enter see the plan (nothing changes yet) · Esc cancel"
            }
            Dialog::Confirm { plan, .. } if plan.read_only => " ↑/↓ PgUp/PgDn scroll · Esc close",
            Dialog::Confirm { plan, .. } if plan.later.as_ref().is_some_and(|l| !l.overwritten) => {
                " type the name, Enter apply · Ctrl-O overwrite the later changes too · ↑/↓ scroll · Esc cancel"
            }
            Dialog::Confirm { .. } => {
                " type the name, Enter apply · ↑/↓ PgUp/PgDn scroll · Esc cancel"
            }
            Dialog::Planning { .. } => " Esc cancel",
            Dialog::Applying { .. } => " applying: wait for it to end",
            Dialog::Finished { .. } | Dialog::Failed { .. } => " Enter/Esc close",
        };
        match &model.last_error {
            Some(e) => Line::from(Span::styled(format!(" {e}"), Style::new().fg(Color::Red))),
            None => Line::from(Span::styled(keys, DIM)),
        }
    } else if model.detail && model.view == View::Findings && model.last_error.is_none() {
        Line::from(Span::styled(
            " j/k step · Enter run the step's action · m mark done · a actions · Esc back · q quit",
            DIM,
        ))
    } else if let Some(command) = &model.command {
        Line::from(vec![
            Span::styled(" :", Style::new().bold()),
            Span::raw(format!("{command}▏")),
            Span::styled(
                "  Enter go · Esc cancel · findings webhooks nodes health events help",
                DIM,
            ),
        ])
    } else if model.filtering {
        Line::from(vec![
            Span::styled(" filter: ", Style::new().bold()),
            Span::raw(format!("{}▏", model.filter)),
            Span::styled("  Enter keep · Esc clear", DIM),
        ])
    } else if let Some(e) = &model.last_error {
        Line::from(Span::styled(format!(" {e}"), Style::new().fg(Color::Red)))
    } else {
        let mut spans = vec![];
        if !model.filter.is_empty() {
            spans.push(Span::styled(
                format!(" filter \"{}\" (Esc clears) ·", model.filter),
                Style::new().fg(Color::Yellow),
            ));
        }
        spans.push(Span::styled(
            " ? help · 1-7 views · : jump · / filter · a actions · r refresh · q quit",
            DIM,
        ));
        Line::from(spans)
    };
    render_line(line, area, buf);
}

// ---------------------------------------------------------------------------------------------
// Findings

fn findings(model: &Model, area: Rect, buf: &mut Buffer) {
    let visible = model.visible_findings();
    if model.snapshot.is_none() {
        waiting_for_first_refresh(area, buf);
        return;
    }
    if model.detail
        && let Some(p) = &model.pinned
    {
        detail_page(model, p, area, buf);
        return;
    }
    if visible.is_empty() {
        let text = if model.findings.is_empty() {
            " No findings: nothing wrong was observed."
        } else {
            " No finding matches the filter."
        };
        render_wrapped(Paragraph::new(text).wrap(Wrap { trim: false }), area, buf);
        return;
    }
    let list_height = (visible.len() as u16 + 1).clamp(3, area.height / 2);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
    let widths = [Constraint::Length(4), Constraint::Min(10)];
    let columns = column_widths(&widths, list_area.width);
    let rows = visible.iter().map(|f| {
        fitted_row(
            vec![
                Line::from(severity_span(f.severity)),
                Line::from(f.title.clone()),
            ],
            &columns,
        )
    });
    let header = fitted_row(
        vec![Line::from("SEV"), Line::from("FINDING (cause first)")],
        &columns,
    );
    let table = Table::new(rows, widths)
        .header(header.style(Style::new().bold()))
        .row_highlight_style(SELECTED);
    let mut state = TableState::default().with_selected(Some(model.selection.findings));
    StatefulWidget::render(table, list_area, buf, &mut state);
    if let Some(f) = model.selected_finding() {
        finding_detail(model, f, detail_area, buf);
    }
}

/// A finding's detail and its runbook: side by side on a wide terminal, one above the other
/// on a narrow one.
fn detail_page(model: &Model, p: &Pinned, area: Rect, buf: &mut Buffer) {
    let (detail_area, runbook_area) = if area.width >= 120 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .spacing(1)
            .areas(area);
        (a, b)
    } else {
        let [a, b] =
            Layout::vertical([Constraint::Length(area.height * 2 / 5), Constraint::Min(0)])
                .areas(area);
        (a, b)
    };
    finding_detail(model, &p.finding, detail_area, buf);
    runbook_pane(model, p, runbook_area, buf);
}

fn step_marker(state: &StepState) -> Span<'static> {
    match state {
        StepState::DoneByCheck(_) => Span::styled("[✓]", Style::new().fg(Color::Green).bold()),
        StepState::DoneByHand => Span::styled("[✓]", Style::new().fg(Color::Cyan)),
        StepState::Pending(_) => Span::raw("[ ]"),
        StepState::NotNeeded(_) => Span::styled("[-]", DIM),
    }
}

fn runbook_pane(model: &Model, p: &Pinned, area: Rect, buf: &mut Buffer) {
    let block = Block::new().borders(Borders::TOP);
    let Some(id) = &p.runbook else {
        let why = if model.runbooks_pending {
            " Reading the --runbooks folders…"
        } else {
            " No runbook answers this finding (add one with --runbooks DIR)."
        };
        render_block_wrapped(
            block.title(" runbook "),
            Paragraph::new(Span::styled(why, DIM)).wrap(Wrap { trim: false }),
            area,
            buf,
        );
        return;
    };
    let entry = model.runbooks.get(id);
    let Some(runbook) = entry
        .and_then(|e| e.runbook.as_ref())
        .filter(|_| entry.is_some_and(|e| !e.is_broken()))
    else {
        let mut lines = vec![Line::from(Span::styled(
            format!("Runbook {id} is broken and cannot be followed:"),
            Style::new().fg(Color::Red).bold(),
        ))];
        // As many as the pane shows, each cut to what a few lines hold: a runbook can have
        // thousands (`runbooks lint` lists them all).
        let problems = entry.map(|e| e.problems.as_slice()).unwrap_or_default();
        let width = usize::from(area.width).max(20);
        let room = usize::from(area.height.saturating_sub(1));
        let mut used = 1;
        for (i, problem) in problems.iter().enumerate() {
            let line = clip(&format!("  {problem}"), width * 3).into_owned();
            // Words wrap, so a line takes a little more than its length says.
            let height = line.chars().count().div_ceil(width - 10).max(1);
            let last = i + 1 == problems.len();
            if used + height + usize::from(!last) > room {
                lines.push(Line::from(Span::styled(
                    format!(
                        "  … {} more: kube-rescue runbooks lint lists them",
                        problems.len() - i
                    ),
                    DIM,
                )));
                break;
            }
            used += height;
            lines.push(Line::from(line));
        }
        render_block_wrapped(
            block.title(" runbook "),
            Paragraph::new(lines).wrap(Wrap { trim: false }),
            area,
            buf,
        );
        return;
    };
    let states = steps::states(runbook, &model.progress(), &model.marks);
    let done = states.iter().filter(|s| s.is_done()).count();
    // The runbook's title gives up its room first: how many steps are done stays in sight.
    let count = format!(" · {done}/{} done ", runbook.steps.len());
    let room = usize::from(area.width).saturating_sub(" Runbook: ".len() + count.chars().count());
    let title = format!(" Runbook: {}{count}", clip(&runbook.title, room.max(2)));
    let title = fit_line(
        Line::from(Span::styled(title, Style::new().bold().fg(Color::Cyan))),
        usize::from(area.width),
    );
    let mut inner = block.inner(area);
    block.title(title).render(area, buf);
    if let Some(e) = entry
        && let crate::runbook::Source::Folder(_) = &e.source
    {
        let overrides = if e.overrides.is_some() {
            " (overrides the shipped one)"
        } else {
            ""
        };
        let [source_area, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        // The file's name first: a long folder is what the edge of the screen cuts.
        let name = e
            .file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let dir = e
            .file
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        render_line(
            Line::from(Span::styled(
                format!("from {name}{overrides} in {dir}"),
                DIM,
            )),
            source_area,
            buf,
        );
        inner = rest;
    }
    let list_height = (runbook.steps.len() as u16).min(inner.height / 2).max(1);
    let [list_area, step_area] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(inner);
    let shown = window(p.step, runbook.steps.len(), list_area.height + 1);
    let mut lines = Vec::new();
    for i in shown {
        let step = &runbook.steps[i];
        // The step's title gives up its room before its action's name.
        let number = format!(" {}. ", i + 1);
        let action = step.action.as_ref().map(|a| format!("  ▶ {}", a.name));
        let room = usize::from(list_area.width).saturating_sub(
            3 + number.chars().count() + action.as_ref().map_or(0, |a| a.chars().count()),
        );
        let mut spans = vec![
            step_marker(&states[i]),
            format!("{number}{}", clip(&step.title, room.max(2))).into(),
        ];
        if let Some(a) = action {
            spans.push(Span::styled(a, Style::new().fg(Color::Magenta)));
        }
        let line = fit_line(Line::from(spans), usize::from(list_area.width));
        lines.push(if i == p.step {
            line.style(SELECTED)
        } else {
            line
        });
    }
    Paragraph::new(lines).render(list_area, buf);
    let Some(step) = runbook.steps.get(p.step) else {
        return;
    };
    let mut text = vec![];
    let state = match &states[p.step] {
        StepState::DoneByCheck(why) => {
            Span::styled(format!("done: {why}"), Style::new().fg(Color::Green))
        }
        StepState::DoneByHand => {
            Span::styled("done (marked by hand)", Style::new().fg(Color::Cyan))
        }
        StepState::Pending(Some(why)) => {
            Span::styled(format!("pending: {why}"), Style::new().fg(Color::Yellow))
        }
        StepState::Pending(None) => Span::styled("pending (no check: m marks it done)", DIM),
        StepState::NotNeeded(why) => Span::styled(format!("not needed now: {why}"), DIM),
    };
    let mut keys = String::new();
    if let Some(a) = &step.action {
        keys.push_str(&format!(" · Enter: {} (plan first)", a.name));
    }
    keys.push_str(" · m: mark done");
    text.push(Line::from(state));
    text.push(Line::from(Span::styled(
        keys.trim_start_matches(" · ").to_string(),
        DIM,
    )));
    // Only the lines the pane shows are laid out, whatever the step holds, and one more to
    // tell whether the step goes on below.
    let width = usize::from(step_area.width.max(20));
    let room = usize::from(step_area.height).saturating_sub(text.len());
    let layout = crate::runbook::Layout::visible(width, room + 1);
    let mut body = crate::runbook::render::laid_out(&step.body, layout, true);
    let more = body.len() > room;
    body.truncate(room);
    for line in body {
        let style = if line.starts_with("    ") {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        text.push(Line::from(Span::styled(line, style)));
    }
    let shown = text.len().min(usize::from(step_area.height));
    Paragraph::new(fit_lines(text, step_area.width)).render(step_area, buf);
    if more && shown > 0 {
        mark_more(buf, step_area, step_area.top() + shown as u16 - 1);
    }
}

fn finding_detail(model: &Model, f: &Finding, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::from(vec![
        severity_span(f.severity),
        Span::raw(" "),
        Span::styled(f.title.clone(), Style::new().bold()),
    ])];
    let raised = model
        .findings
        .iter()
        .any(|g| g.id == f.id && g.subject == f.subject);
    if !raised {
        lines.push(Line::from(Span::styled(
            "no longer raised: the latest refresh does not report it",
            Style::new().fg(Color::Green).bold(),
        )));
    }
    let mut subject = format!("{} {}", f.subject.kind, f.subject.name);
    if let Some(w) = &f.subject.webhook {
        subject.push_str(&format!(" / webhook {w}"));
    }
    lines.push(Line::from(vec!["subject  ".bold(), subject.into()]));
    lines.push(Line::from(vec![
        "id       ".bold(),
        Span::styled(f.id.clone(), DIM),
    ]));
    if let Some(cause) = &f.caused_by {
        lines.push(Line::from(vec![
            "caused by ".bold(),
            Span::styled(cause.clone(), Style::new().fg(Color::Magenta)),
        ]));
    }
    lines.push(Line::from("evidence".bold()));
    for e in &f.evidence {
        lines.push(Line::from(format!("  • {e}")));
    }
    lines.push(Line::from(vec![
        "runbook  ".bold(),
        f.runbook.clone().into(),
    ]));
    if !f.actions.is_empty() {
        let mut title = vec![Span::styled("actions", Style::new().bold())];
        if model.connection.read_only {
            title.push(Span::styled(
                " (read-only: they only show what they would do)",
                Style::new().fg(Color::Yellow),
            ));
        }
        lines.push(Line::from(title));
        for a in &f.actions {
            lines.push(Line::from(format!(
                "  ▸ {}",
                describe_action(a, &f.subject)
            )));
        }
    }
    render_block_wrapped(
        Block::new().borders(Borders::TOP).title(" detail "),
        Paragraph::new(Text::from(lines)).wrap(Wrap { trim: false }),
        area,
        buf,
    );
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn webhooks(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(s) = &model.snapshot else {
        waiting_for_first_refresh(area, buf);
        return;
    };
    let notes = stale_notes([
        (
            "validatingwebhookconfigurations",
            staleness(&s.validating_webhooks, model.now),
        ),
        (
            "mutatingwebhookconfigurations",
            staleness(&s.mutating_webhooks, model.now),
        ),
    ]);
    let stale = s.validating_webhooks.stale || s.mutating_webhooks.stale;
    let visible = model.visible_webhooks();
    let list_height = (visible.len() as u16 + 1).clamp(3, area.height / 2);
    let [notes_area, list_area, detail_area] = Layout::vertical([
        Constraint::Length(notes.len() as u16),
        Constraint::Length(list_height),
        Constraint::Min(0),
    ])
    .areas(area);
    Paragraph::new(fit_lines(notes, notes_area.width)).render(notes_area, buf);
    if visible.is_empty() {
        let unread = s.validating_webhooks.value.is_none() || s.mutating_webhooks.value.is_none();
        let none = model.webhook_rows.is_empty();
        nothing_listed(
            none && unread,
            none,
            [
                "The webhook configurations could not be read (see above).",
                "No admission webhook is configured.",
                "No webhook matches the filter.",
            ],
            list_area,
            buf,
        );
        return;
    }
    list_table(
        &visible,
        model.selection.webhooks,
        &["", "WEBHOOK", "POLICY", "TIMEOUT", "READY", "KUBE-SYSTEM"],
        &[
            Constraint::Length(1),
            Constraint::Min(20),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(11),
        ],
        |w| {
            let policy_style = if w.fail_closed {
                Style::new().fg(Color::Red)
            } else {
                Style::new().fg(Color::Green)
            };
            let endpoints = match w.endpoints {
                Some((ready, total)) => {
                    let style = if ready == 0 {
                        Style::new().fg(Color::Red).bold()
                    } else {
                        Style::new()
                    };
                    Span::styled(format!("{ready}/{total}"), style)
                }
                None => Span::styled("?", DIM),
            };
            let cells = vec![
                Line::from(
                    w.kind
                        .chars()
                        .next()
                        .map(|c| c.to_ascii_uppercase())
                        .unwrap_or('?')
                        .to_string(),
                ),
                Line::from(w.name.clone()),
                Line::from(Span::styled(short_default(&w.failure_policy), policy_style)),
                Line::from(short_default(&w.timeout)),
                Line::from(endpoints),
                Line::from(kube_system_span(w)),
            ];
            (cells, if stale { DIM } else { Style::new() })
        },
        list_area,
        buf,
    );
    if let Some(w) = visible.get(model.selection.webhooks) {
        webhook_detail(model, w, detail_area, buf);
    }
}

/// `Fail (default)` as `Fail (def)`: the table's columns are narrow; the detail says it in full.
fn short_default(text: &str) -> String {
    text.replace(" (default)", " (def)")
}

fn kube_system_span(w: &WebhookRow) -> Span<'static> {
    if w.intercepts_kube_system {
        let style = if w.fail_closed {
            Style::new().fg(Color::Red)
        } else {
            Style::new().fg(Color::Yellow)
        };
        Span::styled("intercepted", style)
    } else {
        Span::styled("excluded", Style::new().fg(Color::Green))
    }
}

fn webhook_detail(model: &Model, w: &WebhookRow, area: Rect, buf: &mut Buffer) {
    let mut calls = vec!["calls       ".bold(), w.destination.clone().into()];
    if let Some((ready, total)) = w.endpoints {
        calls.push(format!(", {ready} of {total} endpoints ready").into());
    }
    let mut lines = vec![
        Line::from(vec![
            "config      ".bold(),
            format!(
                "{} ({}) · {} · timeout {}",
                w.configuration, w.kind, w.failure_policy, w.timeout
            )
            .into(),
        ]),
        Line::from(calls),
    ];
    if let Some(e) = &w.backend_error {
        lines.push(Line::from(vec![
            "backend     ".bold(),
            Span::styled(e.clone(), Style::new().fg(Color::Red)),
        ]));
    }
    let last = match &w.last_error {
        Some((e, when)) => {
            let when = when.map_or(String::new(), |t| format!("{} ago: ", ago(t, model.now)));
            Span::styled(format!("{when}{e}"), Style::new().fg(Color::Red))
        }
        None => Span::styled("none seen", DIM),
    };
    lines.push(Line::from(vec!["last error  ".bold(), last]));
    let metrics = match (&w.metrics, model.webhook_metric_deltas.get(&w.name)) {
        (None, _) => Span::styled("no calls counted in the apiserver's /metrics", DIM),
        (Some(m), delta) => {
            let mut text = metrics_summary(m);
            if let Some(d) = delta {
                text.push_str(&format!(
                    " · since last refresh: {} calls, {} errors",
                    d.requests, d.calling_errors
                ));
            }
            let style = if delta.is_some_and(|d| d.calling_errors > 0.0) {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            };
            Span::styled(text, style)
        }
    };
    lines.push(Line::from(vec!["metrics     ".bold(), metrics]));
    lines.push(Line::from(vec![
        "intercepts  ".bold(),
        w.intercepts.clone().into(),
        " · kube-system ".into(),
        kube_system_span(w),
    ]));
    for selector in &w.selectors {
        lines.push(Line::from(vec![
            "selector    ".bold(),
            Span::styled(selector.clone(), DIM),
        ]));
    }
    render_block_wrapped(
        Block::new().borders(Borders::TOP),
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        area,
        buf,
    );
}

/// `118 calls, 118 rejected (118 calling errors), 0 fail-open, mean 10.0s`.
fn metrics_summary(m: &WebhookMetrics) -> String {
    let mut text = format!(
        "{} calls, {} rejected ({} calling errors), {} fail-open",
        m.requests, m.rejections, m.calling_errors, m.fail_open
    );
    if let Some(mean) = m.mean_seconds() {
        text.push_str(&format!(
            ", mean {}",
            latency(std::time::Duration::from_secs_f64(mean))
        ));
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Nodes

fn nodes(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(s) = &model.snapshot else {
        waiting_for_first_refresh(area, buf);
        return;
    };
    let mut notes = stale_notes([
        ("nodes", staleness(&s.nodes, model.now)),
        ("leases", staleness(&s.node_leases, model.now)),
    ]);
    let recreated: usize = model.node_rows.iter().map(|n| n.recreations).sum();
    if recreated > 0 {
        notes.push(Line::from(Span::styled(
            format!(
                " {recreated} recreation(s) seen in the last {}",
                age(rows::RECREATION_WINDOW)
            ),
            Style::new().fg(Color::Red),
        )));
    }
    let [notes_area, churn_area, list_area] = Layout::vertical([
        Constraint::Length(notes.len() as u16),
        Constraint::Length(2),
        Constraint::Min(0),
    ])
    .areas(area);
    Paragraph::new(fit_lines(notes, notes_area.width)).render(notes_area, buf);
    churn_chart(model, churn_area, buf);
    let visible = model.visible_nodes();
    if visible.is_empty() {
        nothing_listed(
            s.nodes.value.is_none(),
            model.node_rows.is_empty(),
            [
                "The nodes could not be read (see above).",
                "The cluster has no nodes.",
                "No node matches the filter.",
            ],
            list_area,
            buf,
        );
        return;
    }
    let now = model.now;
    let name_w = name_width(
        visible.iter().map(|n| n.name.as_str()),
        12,
        area.width * 2 / 5,
    );
    list_table(
        &visible,
        model.selection.nodes,
        &["NODE", "READY", "AGE", "RECREATED", "LEASE", "TAINTS"],
        &[
            Constraint::Length(name_w),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(12),
            Constraint::Length(6),
            Constraint::Min(10),
        ],
        |n| {
            let ready_style = match n.ready.as_str() {
                "True" => Style::new().fg(Color::Green),
                "False" => Style::new().fg(Color::Red).bold(),
                _ => Style::new().fg(Color::Yellow),
            };
            let recreated = match (n.recreations, n.last_recreated) {
                (0, _) => Span::raw("-"),
                (k, Some(t)) => Span::styled(
                    format!("{k}× {} ago", ago(t, now)),
                    Style::new().fg(Color::Red),
                ),
                (k, None) => Span::styled(format!("{k}×"), Style::new().fg(Color::Red)),
            };
            let cells = vec![
                Line::from(fit_middle(&n.name, name_w)),
                Line::from(Span::styled(n.ready.clone(), ready_style)),
                Line::from(n.created.map_or("?".into(), |t| ago(t, now))),
                Line::from(recreated),
                Line::from(n.lease_renewed.map_or("-".into(), |t| ago(t, now))),
                Line::from(n.taints.join(", ")),
            ];
            (cells, if s.nodes.stale { DIM } else { Style::new() })
        },
        list_area,
        buf,
    );
}

/// How many minutes the churn chart spans, one bar each.
const CHURN_MINUTES: usize = 30;

/// Node registrations per minute over the last half hour: a repair loop shows as a steady
/// row of bars.
fn churn_chart(model: &Model, area: Rect, buf: &mut Buffer) {
    let [label_area, chart_area] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(0)]).areas(area);
    let counts = rows::churn(
        &model.node_registrations,
        model.now,
        CHURN_MINUTES,
        std::time::Duration::from_secs(60),
    );
    let total: u64 = counts.iter().sum();
    let style = if total > 0 {
        Style::new().fg(Color::Red)
    } else {
        DIM
    };
    let labels = vec![
        Line::from(" node registrations per minute".bold()),
        Line::from(Span::styled(
            format!(" {total} in the last {CHURN_MINUTES}m"),
            style,
        )),
    ];
    Paragraph::new(fit_lines(labels, label_area.width)).render(label_area, buf);
    let width = usize::from(chart_area.width.saturating_sub(8)).min(CHURN_MINUTES);
    let [spark_area, axis_area] =
        Layout::horizontal([Constraint::Length(width as u16), Constraint::Min(0)])
            .areas(chart_area);
    Sparkline::default()
        .data(&counts[CHURN_MINUTES - width..])
        .max(counts.iter().copied().max().unwrap_or(0).max(1))
        .style(style.remove_modifier(Modifier::DIM).fg(Color::Magenta))
        .render(spark_area, buf);
    let axis = vec![
        Line::from(format!(" max {}", counts.iter().max().unwrap_or(&0))),
        Line::from(Span::styled(" now", DIM)),
    ];
    Paragraph::new(fit_lines(axis, axis_area.width)).render(axis_area, buf);
}

// ---------------------------------------------------------------------------------------------
// Health

fn health(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(s) = &model.snapshot else {
        waiting_for_first_refresh(area, buf);
        return;
    };
    let mut notes = Vec::new();
    for (name, source) in [("livez", &s.livez), ("readyz", &s.readyz)] {
        let mut spans = vec![Span::styled(format!(" /{name} "), Style::new().bold())];
        match &source.value {
            Some(h) if h.passed() => spans.push(Span::styled(
                format!("{} ok", h.code),
                Style::new().fg(Color::Green),
            )),
            Some(h) => spans.push(Span::styled(
                format!("{} {}", h.code, h.summary),
                Style::new().fg(Color::Red),
            )),
            None => {}
        }
        if let Some(n) = staleness(source, model.now) {
            spans.push(Span::styled(
                format!(" {n}"),
                Style::new().fg(Color::Yellow),
            ));
        }
        notes.push(Line::from(spans));
    }
    let webhooks = s
        .metrics
        .value
        .as_ref()
        .map(|m| m.webhooks.len())
        .unwrap_or(0);
    let metrics_height = (webhooks as u16 + 2).clamp(3, area.height / 3);
    let [notes_area, list_area, metrics_area] = Layout::vertical([
        Constraint::Length(notes.len() as u16),
        Constraint::Min(3),
        Constraint::Length(metrics_height),
    ])
    .areas(area);
    Paragraph::new(fit_lines(notes, notes_area.width)).render(notes_area, buf);
    webhook_metrics(model, metrics_area, buf);
    let checks = rows::health_rows(Some(s));
    // The check's name as wide as the longest, leaving its detail at least 20 columns.
    let name_w = name_width(
        checks.iter().map(|(_, c)| c.name.as_str()),
        20,
        area.width.saturating_sub(6 + 3 + 20 + 3),
    );
    let widths = [
        Constraint::Length(6),
        Constraint::Length(3),
        Constraint::Length(name_w),
        Constraint::Min(10),
    ];
    let columns = column_widths(&widths, list_area.width);
    let rows = checks.iter().map(|(endpoint, c)| {
        let stale = if *endpoint == "livez" {
            s.livez.stale
        } else {
            s.readyz.stale
        };
        let (mark, style) = if c.ok {
            ("[+]", Style::new().fg(Color::Green))
        } else {
            ("[-]", Style::new().fg(Color::Red).bold())
        };
        let row = fitted_row(
            vec![
                Line::from(*endpoint),
                Line::from(Span::styled(mark, style)),
                Line::from(fit_middle(&c.name, name_w)),
                Line::from(c.detail.clone()),
            ],
            &columns,
        );
        if stale { row.style(DIM) } else { row }
    });
    let table = Table::new(rows, widths).row_highlight_style(SELECTED);
    let mut state = TableState::default().with_selected(Some(model.selection.health));
    StatefulWidget::render(table, list_area, buf, &mut state);
}

/// The apiserver's admission webhook metrics, one row per webhook, the busiest failing ones
/// first.
fn webhook_metrics(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(s) = &model.snapshot else {
        return;
    };
    let block = Block::new().borders(Borders::TOP).title(fit_line(
        Line::from(" admission webhook metrics (apiserver /metrics) "),
        usize::from(area.width),
    ));
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(metrics) = &s.metrics.value else {
        let why = staleness(&s.metrics, model.now).unwrap_or_else(|| "not read yet".into());
        render_wrapped(
            Paragraph::new(Span::styled(
                format!(" {why}"),
                Style::new().fg(Color::Yellow),
            ))
            .wrap(Wrap { trim: false }),
            inner,
            buf,
        );
        return;
    };
    if metrics.webhooks.is_empty() {
        render_wrapped(
            Paragraph::new(Span::styled(
                " No admission webhook was called since the apiserver started.",
                DIM,
            ))
            .wrap(Wrap { trim: false }),
            inner,
            buf,
        );
        return;
    }
    let widths = [
        Constraint::Min(20),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(6),
    ];
    let columns = column_widths(&widths, inner.width);
    let mut list: Vec<(&String, &WebhookMetrics)> = metrics.webhooks.iter().collect();
    list.sort_by(|a, b| {
        b.1.calling_errors
            .total_cmp(&a.1.calling_errors)
            .then(b.1.requests.total_cmp(&a.1.requests))
    });
    let rows = list.into_iter().map(|(name, m)| {
        let delta = model.webhook_metric_deltas.get(name);
        let error_style = if delta.is_some_and(|d| d.calling_errors > 0.0) {
            Style::new().fg(Color::Red).bold()
        } else if m.calling_errors > 0.0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        let row = fitted_row(
            vec![
                Line::from(name.clone()),
                Line::from(format!("{}", m.requests)),
                Line::from(delta.map_or("-".into(), |d| format!("+{}", d.requests))),
                Line::from(format!("{}", m.rejections)),
                Line::from(Span::styled(format!("{}", m.calling_errors), error_style)),
                Line::from(format!("{}", m.fail_open)),
                Line::from(m.mean_seconds().map_or("-".into(), |x| {
                    latency(std::time::Duration::from_secs_f64(x))
                })),
            ],
            &columns,
        );
        if s.metrics.stale { row.style(DIM) } else { row }
    });
    let header = [
        "WEBHOOK", "CALLS", "NEW", "DENIED", "ERRORS", "OPEN", "MEAN",
    ]
    .into_iter()
    .map(Line::from)
    .collect();
    let table =
        Table::new(rows, widths).header(fitted_row(header, &columns).style(Style::new().bold()));
    Widget::render(table, inner, buf);
}

// ---------------------------------------------------------------------------------------------
// Events

fn events(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(s) = &model.snapshot else {
        waiting_for_first_refresh(area, buf);
        return;
    };
    let notes = stale_notes([("events", staleness(&s.warning_events, model.now))]);
    let visible = model.visible_events();
    // The list gets what it needs; the detail of the selected event at least 6 lines.
    let room = area.height.saturating_sub(notes.len() as u16 + 6).max(3);
    let list_height = (visible.len() as u16 + 1).clamp(3, room);
    let [notes_area, list_area, detail_area] = Layout::vertical([
        Constraint::Length(notes.len() as u16),
        Constraint::Length(list_height),
        Constraint::Min(0),
    ])
    .areas(area);
    Paragraph::new(fit_lines(notes, notes_area.width)).render(notes_area, buf);
    if visible.is_empty() {
        nothing_listed(
            s.warning_events.value.is_none(),
            model.event_rows.is_empty(),
            [
                "The events could not be read (see above).",
                "No Warning events.",
                "No event matches the filter.",
            ],
            list_area,
            buf,
        );
        return;
    }
    let now = model.now;
    let object_w = name_width(
        visible.iter().map(|e| e.object.as_str()),
        20,
        (area.width / 3).max(30),
    );
    list_table(
        &visible,
        model.selection.events,
        &["AGE", "REASON", "OBJECT", "COUNT", "MESSAGE"],
        &[
            Constraint::Length(6),
            Constraint::Length(16),
            Constraint::Length(object_w),
            Constraint::Length(5),
            Constraint::Min(15),
        ],
        |e| {
            let cells = vec![
                Line::from(e.last_seen.map_or("?".into(), |t| ago(t, now))),
                Line::from(Span::styled(
                    e.reason.clone(),
                    Style::new().fg(Color::Yellow),
                )),
                Line::from(fit_middle(&e.object, object_w)),
                Line::from(if e.count > 1 {
                    format!("×{}", e.count)
                } else {
                    String::new()
                }),
                Line::from(e.message.clone()),
            ];
            (
                cells,
                if s.warning_events.stale {
                    DIM
                } else {
                    Style::new()
                },
            )
        },
        list_area,
        buf,
    );
    if let Some(e) = visible.get(model.selection.events) {
        let mut about = vec![Span::styled(e.object.clone(), Style::new().bold())];
        if !e.namespace.is_empty() {
            about.push(format!(" in {}", e.namespace).into());
        }
        if !e.source.is_empty() {
            about.push(Span::styled(format!(" · from {}", e.source), DIM));
        }
        render_block_wrapped(
            Block::new().borders(Borders::TOP),
            Paragraph::new(vec![Line::from(about), Line::from(e.message.clone())])
                .wrap(Wrap { trim: false }),
            detail_area,
            buf,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Audit

fn audit(model: &Model, area: Rect, buf: &mut Buffer) {
    let area = if model.audit_problems.is_empty() {
        area
    } else {
        let lines: Vec<Line> = model
            .audit_problems
            .iter()
            .map(|p| {
                Line::from(Span::styled(
                    format!(" ! {p}"),
                    Style::new().fg(Color::Yellow),
                ))
            })
            .collect();
        let height = (lines.len() as u16).min(3);
        let [top, rest] =
            Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
        let more = lines.len() > usize::from(top.height);
        Paragraph::new(fit_lines(lines, top.width)).render(top, buf);
        if more && top.height > 0 {
            mark_more(buf, top, top.bottom() - 1);
        }
        rest
    };
    if model.audit.is_empty() {
        let text = Paragraph::new(vec![
            Line::from(" No change recorded yet."),
            Line::from(Span::styled(
                " Every attempted change (done, refused or failed) is appended to <state dir>/audit.jsonl; press a on a finding, webhook or node to make one.",
                DIM,
            )),
        ]);
        render_wrapped(text.wrap(Wrap { trim: false }), area, buf);
        return;
    }
    let result_style = |r: &Attempt| {
        if r.interrupted {
            Style::new().fg(Color::Yellow).bold()
        } else if r.result == "done" {
            Style::new().fg(Color::Green)
        } else {
            Style::new().fg(Color::Red)
        }
    };
    let room = area.height.saturating_sub(7).max(3);
    let list_height = (model.audit.len() as u16 + 1).clamp(3, room);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(area);
    list_table(
        &model.audit,
        model.selection.audit,
        &["TIME", "ACTION", "TARGET", "RESULT"],
        &[
            Constraint::Length(8),
            Constraint::Length(16),
            Constraint::Min(24),
            Constraint::Length(28),
        ],
        |r| {
            let cells = vec![
                Line::from(r.time.get(11..19).unwrap_or(&r.time).to_string()),
                Line::from(r.action.clone()),
                Line::from(r.target.clone()),
                Line::from(Span::styled(r.result.clone(), result_style(r))),
            ];
            (cells, Style::new())
        },
        list_area,
        buf,
    );
    let Some(r) = model.audit.get(model.selection.audit) else {
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            "change   ".bold(),
            format!("{} {}: ", r.action, r.target).into(),
            Span::styled(r.result.clone(), result_style(r)),
        ]),
        Line::from(vec![
            "when     ".bold(),
            format!("{} by {}", r.time, r.user).into(),
        ]),
        Line::from(vec![
            "cluster  ".bold(),
            format!("{} ({})", r.context, r.server).into(),
        ]),
    ];
    if r.interrupted {
        lines.push(Line::from(Span::styled(
            "         the run stopped after the attempt was recorded and before its outcome: the change may or may not have been made; read the object, or restore the backup",
            Style::new().fg(Color::Yellow),
        )));
    }
    if let Some(v) = &r.verification {
        lines.push(Line::from(vec!["verified ".bold(), v.clone().into()]));
    }
    match &r.backup {
        Some(b) => {
            lines.push(Line::from(vec!["backup   ".bold(), b.clone().into()]));
            lines.push(Line::from(Span::styled(
                "u: undo — restore this backup (a plan first, then the name to confirm)",
                Style::new().fg(Color::Cyan),
            )));
        }
        None => lines.push(Line::from(vec![
            "backup   ".bold(),
            Span::styled("none (nothing was changed)", DIM),
        ])),
    }
    render_block_wrapped(
        Block::new().borders(Borders::TOP),
        Paragraph::new(lines).wrap(Wrap { trim: false }),
        detail_area,
        buf,
    );
}

// ---------------------------------------------------------------------------------------------
// The remediation dialog

/// A plan's text, the diff coloured.
fn plan_lines(plan: &crate::remediate::Plan) -> Vec<Line<'static>> {
    crate::report::plan::plan_text(plan)
        .lines()
        .map(|l| {
            let style = if l.starts_with("+++") || l.starts_with("---") {
                Style::new().bold()
            } else if l.starts_with('+') {
                Style::new().fg(Color::Green)
            } else if l.starts_with('-') {
                Style::new().fg(Color::Red)
            } else if l.starts_with("@@") {
                Style::new().fg(Color::Cyan)
            } else if l.contains("DENIED") || l.contains("FAILED") {
                Style::new().fg(Color::Red).bold()
            } else {
                Style::new()
            };
            Line::from(Span::styled(l.to_string(), style))
        })
        .collect()
}

fn dialog(model: &Model, d: &Dialog, body: Rect, buf: &mut Buffer) {
    let area = body;
    ratatui::widgets::Clear.render(area, buf);
    let (title, border) = match d {
        Dialog::Menu { .. } => (" Actions ".to_string(), Color::Cyan),
        Dialog::Planning { .. } => (" Planning ".to_string(), Color::Cyan),
        Dialog::Confirm { plan, .. } => (
            format!(" Plan: {} {} ", plan.action, plan.target.display()),
            if plan.read_only {
                Color::Yellow
            } else {
                Color::Magenta
            },
        ),
        Dialog::Applying { plan, .. } => (
            format!(" Applying {} {} ", plan.action, plan.target.display()),
            Color::Magenta,
        ),
        Dialog::Finished { outcome, .. } => (
            format!(" {} ", dialogs::verdict_line(outcome)),
            if matches!(outcome.verdict, crate::remediate::Verdict::Done) {
                Color::Green
            } else {
                Color::Red
            },
        ),
        Dialog::Failed { .. } => (" No plan ".to_string(), Color::Red),
    };
    let title = fit_line(
        Line::from(Span::styled(title, Style::new().bold())),
        usize::from(area.width.saturating_sub(2)),
    );
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(border))
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let read_only = model.connection.read_only;
    match d {
        Dialog::Menu {
            title,
            choices,
            selected,
        } => {
            let mut lines = vec![
                Line::from(vec![
                    "for ".into(),
                    Span::styled(title.clone(), Style::new().bold()),
                ]),
                Line::from(""),
            ];
            for (i, c) in choices.iter().enumerate() {
                let style = if i == *selected {
                    SELECTED
                } else {
                    Style::new()
                };
                lines.push(Line::from(Span::styled(format!(" {} ", c.label), style)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "Enter shows the plan first: the diff, the dry run, the kubectl command. Nothing changes until you type the object's name.",
                DIM,
            )));
            if read_only {
                lines.push(Line::from(Span::styled(
                    "READ-ONLY: the plan can be read, not applied.",
                    Style::new().fg(Color::Yellow),
                )));
            }
            render_wrapped(Paragraph::new(lines).wrap(Wrap { trim: false }), inner, buf);
        }
        Dialog::Planning { what, since } => {
            let text = Paragraph::new(vec![
                Line::from(format!("{what}…")),
                Line::from(Span::styled(
                    format!(
                        "reading the object{} · {}",
                        if read_only {
                            ""
                        } else {
                            ", a server-side dry run and an access review"
                        },
                        ago(*since, model.now)
                    ),
                    DIM,
                )),
            ]);
            render_wrapped(text.wrap(Wrap { trim: false }), inner, buf);
        }
        Dialog::Confirm {
            plan,
            typed,
            scroll,
            note,
            ..
        } => {
            let [text_area, note_area, input_area] = Layout::vertical([
                Constraint::Min(1),
                Constraint::Length(1),
                Constraint::Length(1),
            ])
            .areas(inner);
            render_wrapped(
                Paragraph::new(plan_lines(plan))
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0)),
                text_area,
                buf,
            );
            if let Some(n) = note {
                render_line(
                    Line::from(Span::styled(n.clone(), Style::new().fg(Color::Red))),
                    note_area,
                    buf,
                );
            }
            let input = if plan.read_only {
                Line::from(Span::styled(
                    "READ-ONLY: nothing can be applied from here; the kubectl command above does it with the rights.",
                    Style::new().fg(Color::Yellow).bold(),
                ))
            } else {
                Line::from(vec![
                    Span::styled("Type ", Style::new().bold()),
                    Span::styled(
                        plan.confirm_name().to_string(),
                        Style::new().fg(Color::Magenta).bold(),
                    ),
                    Span::styled(" to apply: ", Style::new().bold()),
                    Span::raw(format!("{typed}▏")),
                ])
            };
            render_line(input, input_area, buf);
        }
        Dialog::Applying { steps, since, .. } => {
            let mut lines: Vec<Line> = steps.iter().map(|s| Line::from(format!("• {s}"))).collect();
            lines.push(Line::from(Span::styled(
                format!("… working ({})", ago(*since, model.now)),
                Style::new().fg(Color::Yellow),
            )));
            render_wrapped(Paragraph::new(lines).wrap(Wrap { trim: false }), inner, buf);
        }
        Dialog::Finished { steps, outcome, .. } => {
            let mut lines: Vec<Line> = steps.iter().map(|s| Line::from(format!("• {s}"))).collect();
            let (text, style) = match &outcome.verdict {
                crate::remediate::Verdict::Done => {
                    ("done".to_string(), Style::new().fg(Color::Green).bold())
                }
                other => (other.describe(), Style::new().fg(Color::Red).bold()),
            };
            lines.push(Line::from(Span::styled(text, style)));
            if let Some(v) = &outcome.verification {
                lines.push(Line::from(format!("verified: {}", v.summary())));
            }
            if let Some(b) = &outcome.backup {
                lines.push(Line::from(format!(
                    "backup: {} (undo from the Audit view, key 6)",
                    b.display()
                )));
            }
            match &outcome.audit {
                Ok(path) => lines.push(Line::from(Span::styled(
                    format!("audited in {}", path.display()),
                    DIM,
                ))),
                Err(e) => lines.push(Line::from(Span::styled(
                    format!("the audit log could not be written: {e}"),
                    Style::new().fg(Color::Red),
                ))),
            }
            render_wrapped(Paragraph::new(lines).wrap(Wrap { trim: false }), inner, buf);
        }
        Dialog::Failed { what, error } => {
            let text = Paragraph::new(vec![
                Line::from(what.clone()),
                Line::from(Span::styled(error.clone(), Style::new().fg(Color::Red))),
                Line::from(Span::styled("nothing was changed", DIM)),
            ]);
            render_wrapped(text.wrap(Wrap { trim: false }), inner, buf);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Help

fn help(model: &Model, area: Rect, buf: &mut Buffer) {
    let keys = [
        ("?", "this help (again to close)"),
        ("Tab / Shift-Tab", "next / previous view"),
        (
            "1-7",
            "Findings, Webhooks, Nodes, Health, Events, Audit, Help",
        ),
        (
            ":name",
            "jump to a view by name or prefix (:no, :ev, :hooks); :q quits",
        ),
        ("j k / ↓ ↑", "move in a list; g G first / last"),
        ("Enter", "detail of the selected finding, with its runbook"),
        (
            "in the detail",
            "j/k a runbook step · Enter run its action · m mark it done",
        ),
        ("Esc", "back: close the detail or help, clear the filter"),
        ("/", "filter the list (Enter keeps it, Esc clears it)"),
        ("r", "refresh now instead of at the next interval"),
        (
            "a",
            "actions on the selected finding, webhook or node: plan, type the name, apply",
        ),
        (
            "u",
            "in Audit: undo the selected change (restore its backup, same confirmation)",
        ),
        (
            "Ctrl-O",
            "in an undo's plan: put all of the backup back, over others' later changes",
        ),
        ("q / Ctrl-C", "quit"),
    ];
    let mut lines = vec![Line::from(" Keys".bold())];
    for (k, what) in keys {
        lines.push(Line::from(vec![
            Span::styled(format!("   {k:<16}"), Style::new().fg(Color::Cyan)),
            Span::raw(what),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(" Reading the screen".bold()));
    for text in [
        "Findings are ranked cause first: fix the top one and the rest often follow.",
        "Dimmed values are stale: the last refresh failed; their age says how old.",
        "The cluster is refreshed every 5 s in the background, slower while it struggles.",
        "READ-ONLY: nothing is written; actions only show what they would do.",
    ] {
        lines.push(Line::from(format!("   {text}")));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(" Runbooks".bold()));
    let entries = model.runbooks.entries();
    let from_folders = entries
        .iter()
        .filter(|e| matches!(e.source, crate::runbook::Source::Folder(_)))
        .count();
    lines.push(Line::from(format!(
        "   {} runbooks: {} shipped, {from_folders} from --runbooks folders",
        entries.len(),
        entries.len() - from_folders
    )));
    if model.runbooks_pending {
        lines.push(Line::from(Span::styled(
            "   reading the --runbooks folders…",
            DIM,
        )));
    }
    let red = Style::new().fg(Color::Red);
    for problem in model.runbook_problem_lines() {
        lines.push(Line::from(Span::styled(format!("   ✗ {problem}"), red)));
    }
    lines.push(Line::from(Span::styled("   j/k scroll this help", DIM)));
    render_wrapped(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((model.selection.help as u16, 0)),
        area,
        buf,
    );
}

#[cfg(test)]
mod tests {
    use super::{Color, Line, Span, Style, fit_line, fit_middle, fit_pieces, name_width, window};

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_line_too_long_ends_with_an_ellipsis_in_the_style_it_cuts() {
        let red = Style::new().fg(Color::Red);
        let line = Line::from(vec![
            Span::raw("apiserver "),
            Span::styled("NOT READY", red),
        ]);
        assert_eq!(text(&fit_line(line.clone(), 19)), "apiserver NOT READY");
        let cut = fit_line(line, 14);
        assert_eq!(text(&cut), "apiserver NOT…");
        assert_eq!(cut.width(), 14);
        assert_eq!(cut.spans.last().unwrap().style, red);
        // Blanks at the end are not text: the edge takes them, nothing is said.
        assert_eq!(text(&fit_line(Line::from("7 Help "), 6)), "7 Help ");
        assert_eq!(text(&fit_line(Line::from("kube-system"), 1)), "…");
    }

    #[test]
    fn the_header_keeps_a_character_of_every_piece_and_gives_the_rest_in_order() {
        let pieces = || {
            vec![
                ("", " prod-cluster ".to_string(), Style::new()),
                (" ", "v1.31.4-gke.1000".to_string(), Style::new()),
                (" ", "10.0.0.1:443".to_string(), Style::new()),
            ]
        };
        let joined = |width| {
            fit_pieces(pieces(), width)
                .iter()
                .map(|s| s.content.to_string())
                .collect::<String>()
        };
        assert_eq!(joined(60), " prod-cluster  v1.31.4-gke.1000 10.0.0.1:443");
        assert_eq!(joined(40), " prod-cluster  v1.31.4-gke.1000 10.0.0.…");
        assert_eq!(joined(25), " prod-cluster  v1.31.… 1…");
        assert_eq!(joined(20), " prod-cluster  v… 1…");
    }

    #[test]
    fn a_long_name_keeps_its_start_and_its_end() {
        let name = "gke-prod-pool-1-7c4d2f1a-8xkq";
        assert_eq!(fit_middle(name, 29), name);
        assert_eq!(fit_middle(name, 40), name);
        let cut = fit_middle(name, 20);
        assert_eq!(cut, "gke-prod-p…2f1a-8xkq");
        assert_eq!(cut.chars().count(), 20);
    }

    #[test]
    fn a_name_column_is_as_wide_as_its_longest_name_within_bounds() {
        let names = ["a", "gke-prod-pool-1-7c4d2f1a-8xkq"];
        assert_eq!(name_width(names.into_iter(), 12, 40), 29);
        assert_eq!(name_width(names.into_iter(), 12, 20), 20);
        assert_eq!(name_width(["a"].into_iter(), 12, 40), 12);
        assert_eq!(name_width(std::iter::empty(), 12, 40), 12);
        // A terminal too narrow for the minimum still gets the minimum.
        assert_eq!(name_width(names.into_iter(), 12, 4), 12);
    }

    #[test]
    fn the_window_keeps_the_selection_in_sight() {
        // 10 lines: a header and 9 rows.
        assert_eq!(window(0, 5000, 10), 0..9);
        assert_eq!(window(8, 5000, 10), 0..9);
        assert_eq!(window(9, 5000, 10), 1..10);
        assert_eq!(window(4999, 5000, 10), 4991..5000);
        assert_eq!(window(2, 3, 10), 0..3);
        assert_eq!(window(0, 1, 1), 0..1);
    }
}
