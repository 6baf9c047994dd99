//! The state of the screen and the only function that changes it. Pure: no I/O, no clock but
//! the timestamps the actions carry, so tests drive it with fixed times.

use std::sync::Arc;

use jiff::Timestamp;

use super::dialog::{self, Choice, Dialog};
use super::rows::{self, EventRow, NodeRow, WebhookRow};
use super::runbook::{self as steps, Pinned};
use crate::cluster::Snapshot;
use crate::cluster::snapshot::WebhookMetrics;
use crate::diagnose::{self, Finding, Inventory};
use crate::remediate::audit::{Attempt, Log};
use crate::remediate::{self, Outcome, Plan};

/// The views, in Tab order; the number is the key that opens it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    Findings,
    Webhooks,
    Nodes,
    Health,
    Events,
    Audit,
    Help,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Findings,
        View::Webhooks,
        View::Nodes,
        View::Health,
        View::Events,
        View::Audit,
        View::Help,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Findings => "Findings",
            View::Webhooks => "Webhooks",
            View::Nodes => "Nodes",
            View::Health => "Health",
            View::Events => "Events",
            View::Audit => "Audit",
            View::Help => "Help",
        }
    }

    /// The view a `:` command names: its title or any prefix of it, in any case
    /// (`:no`, `:Nodes`), and k9s' names for the same lists (`:ev`, `:hooks`).
    pub fn from_name(name: &str) -> Option<View> {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            return None;
        }
        let alias = match name.as_str() {
            "vwc"
            | "mwc"
            | "hooks"
            | "validatingwebhookconfigurations"
            | "mutatingwebhookconfigurations" => Some(View::Webhooks),
            "no" | "node" => Some(View::Nodes),
            "ev" | "event" => Some(View::Events),
            "undo" | "changes" | "log" => Some(View::Audit),
            "livez" | "readyz" | "metrics" => Some(View::Health),
            _ => None,
        };
        alias.or_else(|| {
            View::ALL
                .into_iter()
                .find(|v| v.title().to_lowercase().starts_with(&name))
        })
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// The view for the digit key `n` (1-based).
    pub fn from_number(n: usize) -> Option<View> {
        n.checked_sub(1).and_then(|i| View::ALL.get(i).copied())
    }
}

/// What the connection was built with: known once the kubeconfig was read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    pub context: String,
    pub server: String,
    pub read_only: bool,
}

/// What background work reports to the screen.
#[derive(Debug)]
pub enum Update {
    /// The kubeconfig was read and a client built (no request sent yet).
    Connected(Connection),
    /// The kubeconfig could not be used: nothing will be refreshed.
    ConnectFailed(String),
    /// One refresh finished.
    Snapshot(Arc<Snapshot>),
    /// The plan asked for, or why there is none.
    Planned(Result<Box<Plan>, String>),
    /// One step of the change being applied.
    ApplyStep(String),
    /// The change ended (done, refused or failed).
    Applied(Box<Outcome>),
    /// The audit log as read.
    Audit(Log),
    /// The runbooks with the `--runbooks` folders read (in the background: a folder of large
    /// files never holds up the screen).
    Runbooks(Arc<crate::runbook::Catalog>),
}

/// Everything that can happen to the model. Keys, background reports and the clock all become
/// Actions; tests send the same ones.
#[derive(Debug)]
pub enum Action {
    Quit,
    NextView,
    PrevView,
    GoTo(View),
    ToggleHelp,
    Up,
    Down,
    Top,
    Bottom,
    /// Open the detail of the selected row.
    Detail,
    /// Close the detail, the help or the filter; clear the filter.
    Back,
    StartFilter,
    FilterInput(char),
    FilterBackspace,
    /// Keep the filter and go back to moving in the list.
    FilterDone,
    /// Open the `:` prompt (jump to a view by name).
    StartCommand,
    CommandInput(char),
    CommandBackspace,
    /// Run what the `:` prompt holds.
    CommandDone,
    /// Refresh now instead of waiting for the next interval.
    RefreshNow,
    /// Open the action menu of the selected row.
    OpenActions,
    /// In a finding's detail: run the selected runbook step's action (plan first).
    RunStep,
    /// In a finding's detail: mark the selected runbook step done by hand, or not.
    MarkStep,
    /// Undo the selected change of the audit view (restore its backup).
    Undo,
    /// In a restore's plan: plan again, putting the whole backup back over later changes.
    OverwriteLater,
    /// A key typed into the dialog's text field.
    Type(char),
    TypeBackspace,
    /// Enter in a dialog: choose, or apply when the typed name is right.
    Submit,
    PageUp,
    PageDown,
    Update(Update),
    /// The clock moved (ages are drawn relative to it).
    Tick(Timestamp),
    Resize(u16, u16),
    /// Something went wrong on the screen's side (e.g. reading the terminal).
    Error(String),
}

/// What the screen asks background work to do. The loop drains them after every update;
/// the model itself never does I/O.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Start a refresh now (the next one is brought forward; never two at once).
    RefreshNow,
    /// Make the plan of a change (reads; unless read-only, a dry run and an access review).
    Plan(remediate::Request),
    /// Apply a plan with the name the user typed.
    Apply {
        plan: Box<Plan>,
        confirmation: String,
    },
    /// Read the audit log again.
    ReadAudit,
    /// Append to the incident journal.
    Journal(crate::journal::Entry),
}

/// How far the help scrolls without the broken runbooks' errors: its last lines stay in
/// sight at the bottom.
const HELP_LINES: usize = 18;

/// The smallest terminal the views are laid out for.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Selected row per list view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub findings: usize,
    pub webhooks: usize,
    pub nodes: usize,
    pub health: usize,
    pub events: usize,
    pub audit: usize,
    /// First line of the help shown.
    pub help: usize,
}

/// The whole state of the screen.
#[derive(Debug)]
pub struct Model {
    /// The flags the screen was opened with; replaced by what the kubeconfig said once
    /// connected.
    pub connection: Connection,
    pub connected: bool,
    pub connect_error: Option<String>,
    /// The latest Snapshot and what was derived from it.
    pub snapshot: Option<Arc<Snapshot>>,
    pub findings: Vec<Finding>,
    pub webhook_rows: Vec<WebhookRow>,
    pub node_rows: Vec<NodeRow>,
    pub event_rows: Vec<EventRow>,
    /// Registrations of nodes (first ones and recreations) seen in the events and across
    /// refreshes: the churn chart.
    pub node_registrations: Vec<Timestamp>,
    /// The admission webhook metrics' increase since the previous refresh, per webhook.
    pub webhook_metric_deltas: std::collections::BTreeMap<String, WebhookMetrics>,
    /// What the latest refresh could not see, for the header: `credentials rejected (401)`,
    /// `blind: events, leases (403)`.
    pub blind_note: Option<String>,
    /// When the apiserver stopped answering (None while it answers).
    pub unreachable_since: Option<Timestamp>,
    /// When it last answered anything.
    pub last_answer: Option<Timestamp>,
    pub view: View,
    /// The view to go back to when help closes.
    pub previous_view: View,
    pub selection: Selection,
    pub filter: String,
    pub filtering: bool,
    /// The `:` prompt's text while it is open.
    pub command: Option<String>,
    /// When `r` asked for a refresh that has not arrived yet.
    pub refresh_requested: Option<Timestamp>,
    /// What background work should do next (drained by the loop).
    pub requests: Vec<Request>,
    /// The remediation dialog, when open.
    pub dialog: Option<Dialog>,
    /// The audit log's attempts, newest first.
    pub audit: Vec<Attempt>,
    /// What could not be read of the audit log (a torn last line, an unreadable file).
    pub audit_problems: Vec<String>,
    /// What the journal was last told.
    pub tracker: super::journal::Tracker,
    /// The runbooks this run can use (shipped, then each --runbooks folder).
    pub runbooks: Arc<crate::runbook::Catalog>,
    /// The --runbooks folders are being read: until then only the shipped runbooks are known.
    pub runbooks_pending: bool,
    /// The finding whose detail is open, with its runbook.
    pub pinned: Option<Pinned>,
    /// The id of every finding raised at any refresh since the screen opened.
    pub seen: std::collections::BTreeSet<String>,
    /// The actions applied (and done) since the screen opened.
    pub applied: std::collections::BTreeSet<String>,
    /// Runbook steps marked done by hand: (runbook id, step index).
    pub marks: std::collections::BTreeSet<(String, usize)>,
    /// Per opened runbook, the steps its checks said were done at the last look (to journal
    /// a step when its check starts passing).
    pub checked: std::collections::BTreeMap<String, std::collections::BTreeSet<usize>>,
    pub detail: bool,
    pub too_small: bool,
    pub started: Timestamp,
    pub now: Timestamp,
    pub last_error: Option<String>,
    pub running: bool,
}

impl Model {
    pub fn new(connection: Connection, now: Timestamp) -> Self {
        Model {
            connection,
            connected: false,
            connect_error: None,
            snapshot: None,
            findings: Vec::new(),
            webhook_rows: Vec::new(),
            node_rows: Vec::new(),
            event_rows: Vec::new(),
            node_registrations: Vec::new(),
            webhook_metric_deltas: Default::default(),
            unreachable_since: None,
            last_answer: None,
            view: View::Findings,
            previous_view: View::Findings,
            selection: Selection::default(),
            filter: String::new(),
            filtering: false,
            command: None,
            blind_note: None,
            refresh_requested: None,
            requests: Vec::new(),
            dialog: None,
            audit: Vec::new(),
            audit_problems: Vec::new(),
            tracker: Default::default(),
            runbooks: Arc::new(crate::runbook::Catalog::shipped()),
            runbooks_pending: false,
            pinned: None,
            seen: Default::default(),
            applied: Default::default(),
            marks: Default::default(),
            checked: Default::default(),
            detail: false,
            too_small: false,
            started: now,
            now,
            last_error: None,
            running: true,
        }
    }

    /// Takes in one refresh: the findings and rows are derived here, once, not per frame.
    pub fn apply_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        let now = snapshot.taken_at.unwrap_or(self.now);
        let inventory = Inventory::from_snapshot(&snapshot);
        let context = diagnose::Context {
            inventory: &inventory,
            live: Some(&snapshot),
            now,
        };
        self.findings = diagnose::diagnose(&context);
        let unreachable = self
            .findings
            .iter()
            .any(|f| f.id == "apiserver-unreachable");
        self.blind_note = diagnose::observation::Observation::of(&snapshot, unreachable).note();
        for f in &self.findings {
            if !self.seen.contains(&f.id) {
                self.seen.insert(f.id.clone());
            }
        }
        self.webhook_rows = rows::webhook_rows(&inventory, &snapshot);
        self.node_rows = rows::node_rows(&snapshot, now);
        self.event_rows = rows::event_rows(&snapshot);
        self.node_registrations = rows::node_registrations(&snapshot);
        self.webhook_metric_deltas =
            rows::webhook_metric_deltas(self.snapshot.as_deref(), &snapshot);
        self.refresh_requested = None;
        if rows::unreachable(&snapshot) {
            self.unreachable_since
                .get_or_insert(self.last_answer.unwrap_or(self.started));
        } else {
            self.unreachable_since = None;
            self.last_answer = Some(now);
        }
        if !self.connected {
            self.connection.context = snapshot.context.clone();
            self.connection.server = snapshot.server.clone();
            self.connected = true;
        }
        for event in self
            .tracker
            .observe(&self.findings, &snapshot, &self.node_rows)
        {
            self.journal(now, event);
        }
        self.journal_checked_steps(now);
        self.snapshot = Some(snapshot);
        self.clamp_selection();
    }

    /// What the runbook steps' states are worked out from.
    pub fn progress(&self) -> steps::Progress<'_> {
        steps::Progress {
            findings: &self.findings,
            seen: &self.seen,
            applied: &self.applied,
        }
    }

    /// The runbook of the open detail, if it has one and it parsed.
    pub fn pinned_runbook(&self) -> Option<&crate::runbook::Runbook> {
        let id = self.pinned.as_ref()?.runbook.as_deref()?;
        self.runbooks.get(id)?.runbook.as_ref()
    }

    /// Journals each step of an opened runbook whose check started passing.
    fn journal_checked_steps(&mut self, now: Timestamp) {
        let mut events = Vec::new();
        let progress = steps::Progress {
            findings: &self.findings,
            seen: &self.seen,
            applied: &self.applied,
        };
        for (id, known) in self.checked.iter_mut() {
            let Some(runbook) = self.runbooks.get(id).and_then(|e| e.runbook.as_ref()) else {
                continue;
            };
            let passing = steps::passing_checks(runbook, &progress);
            for (i, why) in &passing {
                if !known.contains(i) {
                    events.push(crate::journal::Event::RunbookStep {
                        runbook: id.clone(),
                        step: runbook.steps[*i].title.clone(),
                        how: format!("check: {why}"),
                    });
                }
            }
            *known = passing.into_keys().collect();
        }
        for event in events {
            self.journal(now, event);
        }
    }

    /// Opens the detail of the selected finding with its runbook.
    fn open_detail(&mut self) {
        let Some(finding) = self.selected_finding().cloned() else {
            return;
        };
        let runbook = self.runbook_for(&finding);
        self.pinned = Some(Pinned {
            finding,
            runbook,
            step: 0,
        });
        self.detail = true;
    }

    /// The id of the runbook a finding opens with, its steps' start noted.
    fn runbook_for(&mut self, finding: &Finding) -> Option<String> {
        let runbook = self
            .runbooks
            .for_finding(finding)
            .first()
            .map(|e| e.id.clone());
        if let Some(id) = &runbook
            && !self.checked.contains_key(id)
            && let Some(rb) = self.runbooks.get(id).and_then(|e| e.runbook.as_ref())
        {
            // Steps already passing when it opens are where it starts, not progress.
            let done = steps::passing_checks(rb, &self.progress())
                .into_keys()
                .collect();
            self.checked.insert(id.clone(), done);
        }
        runbook
    }

    /// Takes in the catalog with the --runbooks folders. A team's runbook may replace one
    /// already opened: its steps are other steps, so the marks and checks noted for that id
    /// are dropped (and noted again for the one open), and the detail opens on its first step.
    fn take_runbooks(&mut self, catalog: Arc<crate::runbook::Catalog>) {
        let shipped = |catalog: &crate::runbook::Catalog, id: &str| {
            catalog
                .get(id)
                .is_some_and(|e| e.source == crate::runbook::Source::Shipped)
        };
        self.checked.retain(|id, _| shipped(&catalog, id));
        self.marks.retain(|(id, _)| shipped(&catalog, id));
        let kept = catalog.clone();
        let unchanged = move |id: &str| shipped(&kept, id);
        self.runbooks = catalog;
        self.runbooks_pending = false;
        if let Some(mut pinned) = self.pinned.take() {
            let runbook = self.runbook_for(&pinned.finding);
            if runbook != pinned.runbook || !runbook.as_deref().is_some_and(unchanged) {
                pinned.step = 0;
            }
            pinned.runbook = runbook;
            let steps = self.pinned_steps_of(&pinned);
            pinned.step = pinned.step.min(steps.saturating_sub(1));
            self.pinned = Some(pinned);
        }
    }

    fn pinned_steps_of(&self, pinned: &Pinned) -> usize {
        pinned
            .runbook
            .as_deref()
            .and_then(|id| self.runbooks.get(id)?.runbook.as_ref())
            .map_or(0, |rb| rb.steps.len())
    }

    fn journal(&mut self, time: Timestamp, event: crate::journal::Event) {
        self.requests
            .push(Request::Journal(crate::journal::Entry { time, event }));
    }

    /// How many rows the current view's list shows (after the filter).
    pub fn list_len(&self) -> usize {
        match self.view {
            View::Findings => self.visible_findings().len(),
            View::Webhooks => self.visible_webhooks().len(),
            View::Nodes => self.visible_nodes().len(),
            View::Health => rows::health_rows(self.snapshot.as_deref()).len(),
            View::Events => self.visible_events().len(),
            View::Audit => self.audit.len(),
            View::Help => HELP_LINES + self.runbook_problem_lines().len(),
        }
    }

    /// What the help says of runbooks that are wrong: each folder that could not be read, and
    /// the first few errors of each broken runbook (`runbooks lint` has them all), each cut
    /// to a length a screen can show.
    pub fn runbook_problem_lines(&self) -> Vec<String> {
        const PER_RUNBOOK: usize = 3;
        const LONGEST: usize = 300;
        let cut = |line: String| -> String {
            if line.chars().count() > LONGEST {
                line.chars().take(LONGEST - 1).chain(['…']).collect()
            } else {
                line
            }
        };
        let mut lines: Vec<String> = self
            .runbooks
            .problems
            .iter()
            .map(|p| cut(p.to_string()))
            .collect();
        for entry in self.runbooks.entries().iter().filter(|e| e.is_broken()) {
            for problem in entry.problems.iter().take(PER_RUNBOOK) {
                lines.push(cut(format!("{} (broken): {problem}", entry.id)));
            }
            if entry.problems.len() > PER_RUNBOOK {
                lines.push(format!(
                    "{} (broken): {} more errors: `kube-rescue runbooks lint {}` lists them",
                    entry.id,
                    entry.problems.len() - PER_RUNBOOK,
                    entry
                        .file
                        .parent()
                        .map_or_else(String::new, |d| d.display().to_string())
                ));
            }
        }
        lines
    }

    /// Takes what background work should do; the loop calls this after every update.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    fn selected_mut(&mut self) -> Option<&mut usize> {
        match self.view {
            View::Findings => Some(&mut self.selection.findings),
            View::Webhooks => Some(&mut self.selection.webhooks),
            View::Nodes => Some(&mut self.selection.nodes),
            View::Health => Some(&mut self.selection.health),
            View::Events => Some(&mut self.selection.events),
            View::Audit => Some(&mut self.selection.audit),
            View::Help => Some(&mut self.selection.help),
        }
    }

    /// The selected row of the current view.
    pub fn selected(&self) -> usize {
        match self.view {
            View::Findings => self.selection.findings,
            View::Webhooks => self.selection.webhooks,
            View::Nodes => self.selection.nodes,
            View::Health => self.selection.health,
            View::Events => self.selection.events,
            View::Audit => self.selection.audit,
            View::Help => self.selection.help,
        }
    }

    fn clamp_selection(&mut self) {
        let current = self.view;
        for view in View::ALL {
            self.view = view;
            let len = self.list_len();
            if let Some(s) = self.selected_mut() {
                *s = (*s).min(len.saturating_sub(1));
            }
        }
        self.view = current;
    }

    /// Whether `view`'s list is being filtered: it is shown and a filter is typed (the text a
    /// row is matched on is only built then).
    fn filters(&self, view: View) -> bool {
        self.view == view && !self.filter.is_empty()
    }

    fn matches(&self, text: &str) -> bool {
        text.to_lowercase().contains(&self.filter.to_lowercase())
    }

    pub fn visible_findings(&self) -> Vec<&Finding> {
        let filter = self.filters(View::Findings);
        self.findings
            .iter()
            .filter(|f| {
                !filter
                    || self.matches(&format!(
                        "{} {} {} {}",
                        f.id,
                        f.title,
                        f.subject.name,
                        f.subject.webhook.as_deref().unwrap_or("")
                    ))
            })
            .collect()
    }

    pub fn visible_webhooks(&self) -> Vec<&WebhookRow> {
        let filter = self.filters(View::Webhooks);
        self.webhook_rows
            .iter()
            .filter(|w| !filter || self.matches(&format!("{} {}", w.configuration, w.name)))
            .collect()
    }

    pub fn visible_nodes(&self) -> Vec<&NodeRow> {
        let filter = self.filters(View::Nodes);
        self.node_rows
            .iter()
            .filter(|n| !filter || self.matches(&n.name))
            .collect()
    }

    pub fn visible_events(&self) -> Vec<&EventRow> {
        let filter = self.filters(View::Events);
        self.event_rows
            .iter()
            .filter(|e| {
                !filter
                    || self.matches(&format!(
                        "{} {} {} {}",
                        e.namespace, e.object, e.reason, e.message
                    ))
            })
            .collect()
    }

    pub fn selected_finding(&self) -> Option<&Finding> {
        self.visible_findings()
            .get(self.selection.findings)
            .copied()
    }

    fn go_to(&mut self, view: View) {
        if view == self.view {
            return;
        }
        if view == View::Help {
            self.previous_view = self.view;
        }
        self.view = view;
        self.detail = false;
        self.pinned = None;
        self.filtering = false;
        self.filter.clear();
        self.clamp_selection();
    }
}

/// Opens the action menu of the selected finding, webhook or node.
fn open_actions(model: &mut Model) {
    let (title, choices): (String, Vec<Choice>) = match model.view {
        View::Findings => match model
            .pinned
            .as_ref()
            .map(|p| &p.finding)
            .or(model.selected_finding())
        {
            Some(f) => (f.title.clone(), dialog::finding_choices(f)),
            None => (String::new(), Vec::new()),
        },
        View::Webhooks => match model.visible_webhooks().get(model.selection.webhooks) {
            Some(w) => (
                format!("webhook {} of {}", w.name, w.configuration),
                dialog::webhook_choices(w),
            ),
            None => (String::new(), Vec::new()),
        },
        View::Nodes => match model.visible_nodes().get(model.selection.nodes) {
            Some(n) => (format!("node {}", n.name), dialog::node_choices(n)),
            None => (String::new(), Vec::new()),
        },
        View::Audit => return undo(model),
        _ => {
            model.last_error =
                Some("actions are on the Findings, Webhooks, Nodes and Audit views".into());
            return;
        }
    };
    if choices.is_empty() {
        model.last_error = Some(if title.is_empty() {
            "nothing selected".into()
        } else {
            format!("no action applies to {title}")
        });
        return;
    }
    model.last_error = None;
    model.dialog = Some(Dialog::Menu {
        title,
        choices,
        selected: 0,
    });
}

/// Plans restoring the backup of the selected audited change.
fn undo(model: &mut Model) {
    if model.view != View::Audit {
        return;
    }
    let Some(record) = model.audit.get(model.selection.audit) else {
        model.last_error = Some("no change recorded yet".into());
        return;
    };
    let Some(backup) = &record.backup else {
        model.last_error = Some(format!(
            "{} {} wrote no backup ({}): nothing to restore",
            record.action, record.target, record.result
        ));
        return;
    };
    let choice = dialog::undo_choice(backup, record);
    plan(model, choice);
}

fn plan(model: &mut Model, choice: Choice) {
    model.dialog = Some(Dialog::Planning {
        what: choice.label,
        since: model.now,
    });
    model.requests.push(Request::Plan(choice.request));
}

/// Keys while the dialog is open.
fn update_dialog(model: &mut Model, action: Action) -> Option<Action> {
    match model.dialog.as_mut()? {
        Dialog::Menu {
            choices, selected, ..
        } => match action {
            Action::Up => *selected = selected.saturating_sub(1),
            Action::Down => *selected = (*selected + 1).min(choices.len().saturating_sub(1)),
            Action::Top => *selected = 0,
            Action::Bottom => *selected = choices.len().saturating_sub(1),
            Action::Submit => {
                let choice = choices[*selected].clone();
                plan(model, choice);
            }
            Action::Back => model.dialog = None,
            _ => {}
        },
        Dialog::Confirm {
            plan,
            typed,
            scroll,
            note,
            confirmed_once,
        } => match action {
            Action::Up => *scroll = scroll.saturating_sub(1),
            Action::Down => *scroll = scroll.saturating_add(1),
            Action::PageUp => *scroll = scroll.saturating_sub(10),
            Action::PageDown => *scroll = scroll.saturating_add(10),
            Action::Type(c) if !plan.read_only => {
                typed.push(c);
                *note = None;
            }
            Action::TypeBackspace => {
                typed.pop();
                *note = None;
            }
            Action::Submit if plan.read_only => {
                *note = Some(
                    "read-only: this screen cannot apply; someone with the rights can run the kubectl command above".into(),
                );
            }
            Action::OverwriteLater => match (&plan.later, &plan.restore_from) {
                (Some(later), Some(file)) if !later.overwritten => {
                    let choice = Choice {
                        label: format!(
                            "restore all of {} from {}, over the later changes",
                            plan.target.display(),
                            file.display()
                        ),
                        request: crate::remediate::Request::Restore {
                            file: file.clone(),
                            recorded: Some(later.recorded.clone()),
                            overwrite_later_changes: true,
                        },
                    };
                    self::plan(model, choice);
                }
                _ => {
                    *note = Some("there are no later changes by others to overwrite".into());
                }
            },
            Action::Submit
                if typed.as_str() == plan.confirm_name()
                    && plan.later.as_ref().is_some_and(|l| l.overwritten)
                    && !*confirmed_once =>
            {
                *confirmed_once = true;
                typed.clear();
                let who = plan
                    .later
                    .as_ref()
                    .map(|l| l.managers.join(", "))
                    .unwrap_or_default();
                *note = Some(format!(
                    "this undoes the later changes by {who}: type {} again to confirm",
                    plan.confirm_name()
                ));
            }
            Action::Submit if typed.as_str() == plan.confirm_name() => {
                let plan = plan.clone();
                let confirmation = std::mem::take(typed);
                model.requests.push(Request::Apply {
                    plan: plan.clone(),
                    confirmation,
                });
                model.dialog = Some(Dialog::Applying {
                    plan,
                    steps: Vec::new(),
                    since: model.now,
                });
            }
            Action::Submit => {
                *note = Some(if typed.is_empty() {
                    format!("type {} to apply, or Esc to cancel", plan.confirm_name())
                } else {
                    format!(
                        "\"{typed}\" is not \"{}\": type the name exactly, or Esc to cancel",
                        plan.confirm_name()
                    )
                });
            }
            Action::Back => model.dialog = None,
            _ => {}
        },
        Dialog::Applying { .. } => {
            if matches!(action, Action::Back) {
                model.last_error = Some("the change is being applied: wait for it to end".into());
            }
        }
        Dialog::Planning { .. } | Dialog::Finished { .. } | Dialog::Failed { .. } => {
            if matches!(action, Action::Back | Action::Submit) {
                model.dialog = None;
            }
        }
    }
    None
}

/// Applies one Action; returns a follow-up Action when there is one.
pub fn update(model: &mut Model, action: Action) -> Option<Action> {
    if model.dialog.is_some()
        && matches!(
            action,
            Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::PageUp
                | Action::PageDown
                | Action::Type(_)
                | Action::TypeBackspace
                | Action::Submit
                | Action::Back
                | Action::OverwriteLater
        )
    {
        return update_dialog(model, action);
    }
    match action {
        Action::Quit => {
            if model.running && model.connected {
                // Not before the last refresh's entries: the clock only moves with the ticks.
                let taken = model.snapshot.as_ref().and_then(|s| s.taken_at);
                let at = taken.map_or(model.now, |t| t.max(model.now));
                model.journal(at, crate::journal::Event::Stopped);
            }
            model.running = false;
        }
        Action::NextView | Action::PrevView => {
            let n = View::ALL.len();
            let i = model.view.index();
            let next = if matches!(action, Action::NextView) {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            model.go_to(View::ALL[next]);
        }
        Action::GoTo(view) => model.go_to(view),
        Action::ToggleHelp => {
            if model.view == View::Help {
                let back = model.previous_view;
                model.go_to(back);
            } else {
                model.go_to(View::Help);
            }
        }
        Action::Up | Action::Down | Action::Top | Action::Bottom
            if model.detail && model.view == View::Findings =>
        {
            let len = model.pinned_runbook().map_or(0, |rb| rb.steps.len());
            if let Some(p) = &mut model.pinned {
                p.step = match action {
                    Action::Up => p.step.saturating_sub(1),
                    Action::Down => (p.step + 1).min(len.saturating_sub(1)),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
            }
        }
        Action::Up | Action::Down | Action::Top | Action::Bottom => {
            let len = model.list_len();
            if let Some(s) = model.selected_mut() {
                *s = match action {
                    Action::Up => s.saturating_sub(1),
                    Action::Down => (*s + 1).min(len.saturating_sub(1)),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
            }
        }
        Action::Detail => {
            if model.view == View::Findings {
                model.open_detail();
            }
        }
        Action::RunStep => {
            let Some(pinned) = &model.pinned else {
                return None;
            };
            let Some(step) = model
                .pinned_runbook()
                .and_then(|rb| rb.steps.get(pinned.step))
            else {
                model.last_error = Some("no runbook step selected".into());
                return None;
            };
            match steps::step_choice(step, &pinned.finding) {
                Ok(choice) => {
                    model.last_error = None;
                    plan(model, choice);
                }
                Err(why) => model.last_error = Some(why),
            }
        }
        Action::MarkStep => {
            let (id, step) = model
                .pinned
                .as_ref()
                .and_then(|p| Some((p.runbook.clone()?, p.step)))?;
            let title = model
                .pinned_runbook()
                .and_then(|rb| rb.steps.get(step))
                .map(|s| s.title.clone())?;
            let key = (id.clone(), step);
            if !model.marks.remove(&key) {
                model.marks.insert(key);
                model.journal(
                    model.now,
                    crate::journal::Event::RunbookStep {
                        runbook: id,
                        step: title,
                        how: "by hand".into(),
                    },
                );
            }
        }
        Action::Back => {
            if model.command.is_some() {
                model.command = None;
            } else if model.detail {
                model.detail = false;
                model.pinned = None;
            } else if model.view == View::Help {
                return Some(Action::ToggleHelp);
            } else if !model.filter.is_empty() {
                model.filter.clear();
                model.clamp_selection();
            } else {
                model.last_error = None;
            }
        }
        Action::StartFilter => {
            if model.view != View::Help {
                model.filtering = true;
                model.detail = false;
            }
        }
        Action::FilterInput(c) => {
            model.filter.push(c);
            if let Some(s) = model.selected_mut() {
                *s = 0;
            }
        }
        Action::FilterBackspace => {
            model.filter.pop();
        }
        Action::FilterDone => {
            model.filtering = false;
            model.clamp_selection();
        }
        Action::StartCommand => {
            model.command = Some(String::new());
            model.filtering = false;
        }
        Action::CommandInput(c) => {
            if let Some(command) = &mut model.command {
                command.push(c);
            }
        }
        Action::CommandBackspace => {
            if let Some(command) = &mut model.command {
                command.pop();
            }
        }
        Action::CommandDone => {
            let command = model.command.take().unwrap_or_default();
            let command = command.trim();
            match command {
                "" => {}
                "q" | "q!" | "quit" => return Some(Action::Quit),
                "r" | "refresh" => return Some(Action::RefreshNow),
                "?" | "h" | "help" => model.go_to(View::Help),
                name => match View::from_name(name) {
                    Some(view) => model.go_to(view),
                    None => {
                        model.last_error = Some(format!(
                            "no view named \"{name}\"; try {}",
                            View::ALL
                                .iter()
                                .map(|v| v.title().to_lowercase())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        return None;
                    }
                },
            }
            model.last_error = None;
        }
        Action::RefreshNow => {
            if model.connected && model.connect_error.is_none() {
                model.refresh_requested.get_or_insert(model.now);
                model.requests.push(Request::RefreshNow);
            }
        }
        Action::Update(Update::Connected(connection)) => {
            model.journal(
                model.now,
                crate::journal::Event::Started {
                    context: connection.context.clone(),
                    server: connection.server.clone(),
                    read_only: connection.read_only,
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            );
            model.connection = connection;
            model.connected = true;
            model.connect_error = None;
        }
        Action::Update(Update::ConnectFailed(reason)) => {
            model.connect_error = Some(reason);
        }
        Action::Update(Update::Snapshot(snapshot)) => model.apply_snapshot(snapshot),
        Action::OpenActions => open_actions(model),
        Action::Undo => undo(model),
        Action::OverwriteLater => {}
        Action::Type(_)
        | Action::TypeBackspace
        | Action::Submit
        | Action::PageUp
        | Action::PageDown => {}
        Action::Update(Update::Planned(result)) => {
            if let Some(Dialog::Planning { what, .. }) = &model.dialog {
                model.dialog = Some(match result {
                    Ok(plan) => Dialog::Confirm {
                        plan,
                        typed: String::new(),
                        scroll: 0,
                        note: None,
                        confirmed_once: false,
                    },
                    Err(error) => Dialog::Failed {
                        what: what.clone(),
                        error,
                    },
                });
            }
        }
        Action::Update(Update::ApplyStep(step)) => {
            if let Some(Dialog::Applying { steps, .. }) = &mut model.dialog {
                steps.push(step);
            }
        }
        Action::Update(Update::Applied(outcome)) => {
            model.last_error = None;
            if let Some(Dialog::Applying { plan, since, .. }) = &model.dialog {
                let confirmed = *since;
                if matches!(outcome.verdict, crate::remediate::Verdict::Done) {
                    model.applied.insert(plan.action.clone());
                }
                let event = crate::journal::Event::Action {
                    action: plan.action.clone(),
                    target: plan.target.display(),
                    result: outcome.verdict.describe(),
                    backup: outcome.backup.as_ref().map(|b| b.display().to_string()),
                    verification: outcome.verification.as_ref().map(|v| v.summary()),
                };
                // Dated when it was confirmed: the change itself goes out at once, the
                // verification after it takes seconds.
                model.journal(confirmed, event);
            }
            if let Some(v) = &outcome.verification
                && let Some(passing) = v.writes_verdict()
                && let Some(event) = model.tracker.writes_probed(passing, &v.writes)
            {
                model.journal(model.now, event);
            }
            match model.dialog.take() {
                Some(Dialog::Applying { plan, steps, .. }) => {
                    model.dialog = Some(Dialog::Finished {
                        plan,
                        steps,
                        outcome,
                    });
                }
                other => {
                    model.dialog = other;
                    model.last_error = Some(dialog::verdict_line(&outcome));
                }
            }
            // What changed shows in the findings as soon as the cluster is read again.
            model.requests.push(Request::ReadAudit);
            return Some(Action::RefreshNow);
        }
        Action::Update(Update::Runbooks(catalog)) => model.take_runbooks(catalog),
        Action::Update(Update::Audit(log)) => {
            model.audit_problems = log.problems();
            model.audit = log.attempts.into_iter().rev().collect();
            model.clamp_selection();
        }
        Action::Tick(now) => model.now = now,
        Action::Resize(width, height) => {
            model.too_small = width < MIN_WIDTH || height < MIN_HEIGHT;
        }
        Action::Error(message) => model.last_error = Some(message),
    }
    None
}
