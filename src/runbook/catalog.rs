//! The runbooks one run can use: the shipped ones (embedded in the binary), then each
//! `--runbooks DIR` in order, a runbook overriding an earlier one with the same id. Broken
//! runbooks stay in the catalog with their problems so that a screen can list them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::parse::{Runbook, parse};
use super::{Error, FINDING_IDS, MAX_FILE_BYTES, Problem, Result};
use crate::diagnose::Finding;

/// The shipped runbooks: file name in `runbooks/` and text. A test checks that every file of
/// `runbooks/` is here.
const SHIPPED: &[(&str, &str)] = &[
    (
        "aggregated-api.md",
        include_str!("../../runbooks/aggregated-api.md"),
    ),
    (
        "apiserver-credentials.md",
        include_str!("../../runbooks/apiserver-credentials.md"),
    ),
    (
        "apiserver-down.md",
        include_str!("../../runbooks/apiserver-down.md"),
    ),
    (
        "apiserver-not-ready.md",
        include_str!("../../runbooks/apiserver-not-ready.md"),
    ),
    (
        "apiserver-overloaded.md",
        include_str!("../../runbooks/apiserver-overloaded.md"),
    ),
    (
        "apiserver-slow.md",
        include_str!("../../runbooks/apiserver-slow.md"),
    ),
    (
        "node-repair-loop.md",
        include_str!("../../runbooks/node-repair-loop.md"),
    ),
    (
        "observation-incomplete.md",
        include_str!("../../runbooks/observation-incomplete.md"),
    ),
    (
        "policy-denial.md",
        include_str!("../../runbooks/policy-denial.md"),
    ),
    (
        "webhook-hardening.md",
        include_str!("../../runbooks/webhook-hardening.md"),
    ),
    (
        "webhook-outage.md",
        include_str!("../../runbooks/webhook-outage.md"),
    ),
];

/// The shipped runbook files: name and text.
pub fn shipped_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHIPPED.iter().copied()
}

/// Where a runbook came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Embedded in the binary from `runbooks/`.
    Shipped,
    /// A `--runbooks` folder.
    Folder(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Shipped => f.write_str("shipped"),
            Source::Folder(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// One runbook file of the catalog, broken or not.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The runbook's id, or the file name without `.md` when its front matter has none.
    pub id: String,
    pub file: PathBuf,
    pub source: Source,
    /// As far as it could be read; None when even its front matter could not be.
    pub runbook: Option<Runbook>,
    /// Empty for a good runbook.
    pub problems: Vec<Problem>,
    /// The source of the runbook with the same id that this one replaced.
    pub overrides: Option<Source>,
}

impl Entry {
    fn new(file: PathBuf, source: Source, text: &str) -> Entry {
        let parsed = parse(text, &file);
        let id = match &parsed.runbook {
            Some(r) => r.id.clone(),
            None => stem(&file),
        };
        Entry {
            id,
            file,
            source,
            runbook: parsed.runbook,
            problems: parsed.problems,
            overrides: None,
        }
    }

    pub fn is_broken(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The runbook's title, or its id when it has none.
    pub fn title(&self) -> &str {
        self.runbook.as_ref().map_or(&self.id, |r| &r.title)
    }

    /// The finding ids it answers (none when its front matter could not be read).
    pub fn findings(&self) -> &[String] {
        self.runbook.as_ref().map_or(&[], |r| &r.findings)
    }
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every `.md` file directly in `dir`, by name, parsed; an id used by more than one file is a
/// problem of each, naming the other.
pub fn load_dir(dir: &Path) -> Result<Vec<Entry>> {
    load_dir_while(dir, &|| true)
}

/// [`load_dir`], reading no more files once `go_on` says no (the screen was closed).
fn load_dir_while(dir: &Path, go_on: &dyn Fn() -> bool) -> Result<Vec<Entry>> {
    let read_error = |source| Error::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for item in std::fs::read_dir(dir).map_err(read_error)? {
        let path = item.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "md") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let source = Source::Folder(dir.to_path_buf());
    let mut entries: Vec<Entry> = files
        .into_iter()
        .take_while(|_| go_on())
        .map(|file| match read_capped(&file) {
            Ok(Capped { text, cut_at: None }) => Entry::new(file, source.clone(), &text),
            Ok(Capped {
                text,
                cut_at: Some(line),
            }) => {
                let mut entry = Entry::new(file, source.clone(), &text);
                entry.problems.push(Problem::at(
                    &entry.file,
                    line,
                    "larger than 1 MiB: only its first 1 MiB is read, up to this line; keep a runbook short and link to longer material",
                ));
                entry.problems.sort_by_key(|p| p.line);
                entry
            }
            Err(e) => Entry {
                id: stem(&file),
                problems: vec![Problem::whole(&file, format!("could not read it: {e}"))],
                file,
                source: source.clone(),
                runbook: None,
                overrides: None,
            },
        })
        .collect();
    mark_duplicates(&mut entries);
    Ok(entries)
}

/// A runbook file as far as it is read.
struct Capped {
    /// The whole file, or its lines that fit in [`MAX_FILE_BYTES`].
    text: String,
    /// For a longer file: the line the cap falls in (the first one left out).
    cut_at: Option<usize>,
}

/// Reads at most [`MAX_FILE_BYTES`] (and one byte more, to know) of a file: a runbook of
/// gigabytes costs no more than one of a megabyte. A longer file is cut after its last whole
/// line within the cap.
fn read_capped(file: &Path) -> std::io::Result<Capped> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    let mut cut_at = None;
    if bytes.len() > MAX_FILE_BYTES {
        let kept = &bytes[..MAX_FILE_BYTES];
        cut_at = Some(kept.iter().filter(|b| **b == b'\n').count() + 1);
        let whole_lines = kept.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(whole_lines);
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })?;
    Ok(Capped { text, cut_at })
}

fn mark_duplicates(entries: &mut [Entry]) {
    let mut by_id: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.runbook.is_some() {
            by_id.entry(e.id.clone()).or_default().push(i);
        }
    }
    for (id, indexes) in by_id {
        if indexes.len() < 2 {
            continue;
        }
        for &i in &indexes {
            let others: Vec<String> = indexes
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| entries[j].file.display().to_string())
                .collect();
            let line = entries[i].runbook.as_ref().map_or(1, |r| r.id_line);
            let problem = Problem::at(
                &entries[i].file,
                line,
                format!("duplicate id {id:?}: also in {}", others.join(", ")),
            );
            entries[i].problems.push(problem);
            entries[i].problems.sort_by_key(|p| p.line);
        }
    }
}

/// What `runbooks lint DIR` found.
#[derive(Clone, Debug)]
pub struct LintReport {
    /// How many runbook files were read.
    pub runbooks: usize,
    /// Every problem, file by file, in line order.
    pub problems: Vec<Problem>,
}

/// Lints every runbook of `dir`. With `complete`, every finding id must be answered by a
/// runbook of the folder (as the shipped set must be). Only an unreadable folder is an error.
pub fn lint_dir(dir: &Path, complete: bool) -> Result<LintReport> {
    let entries = load_dir(dir)?;
    let mut problems: Vec<Problem> = entries.iter().flat_map(|e| e.problems.clone()).collect();
    if entries.is_empty() {
        problems.push(Problem::whole(
            dir,
            "no runbooks here (a runbook is a .md file)",
        ));
    }
    if complete {
        for id in unanswered(&entries) {
            problems.push(Problem::whole(
                dir,
                format!("no runbook answers finding {id}"),
            ));
        }
    }
    Ok(LintReport {
        runbooks: entries.len(),
        problems,
    })
}

/// The finding ids that no runbook of `entries` names in its `findings`.
fn unanswered(entries: &[Entry]) -> Vec<&'static str> {
    FINDING_IDS
        .iter()
        .copied()
        .filter(|id| !entries.iter().any(|e| e.findings().iter().any(|f| f == id)))
        .collect()
}

/// The runbooks one run can use.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// By id; a duplicate id within one folder keeps both, in file order.
    entries: Vec<Entry>,
    /// Folders that could not be read (the catalog goes on without them).
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// The shipped runbooks alone.
    pub fn shipped() -> Catalog {
        let mut catalog = Catalog::default();
        let mut entries: Vec<Entry> = SHIPPED
            .iter()
            .map(|(name, text)| Entry::new(Path::new("runbooks").join(name), Source::Shipped, text))
            .collect();
        mark_duplicates(&mut entries);
        catalog.add(entries);
        catalog
    }

    /// The shipped runbooks, then each folder in order (`--runbooks DIR`...). Never fails: a
    /// folder that cannot be read is in [`Catalog::problems`], a broken runbook in its entry.
    pub fn load(dirs: &[PathBuf]) -> Catalog {
        Catalog::load_while(dirs, &|| true)
    }

    /// [`Catalog::load`], reading no more files once `go_on` says no.
    pub fn load_while(dirs: &[PathBuf], go_on: &dyn Fn() -> bool) -> Catalog {
        let mut catalog = Catalog::shipped();
        for dir in dirs {
            match load_dir_while(dir, go_on) {
                Ok(entries) => catalog.add(entries),
                Err(e) => catalog.problems.push(Problem::whole(dir, e.to_string())),
            }
        }
        catalog
    }

    /// Adds the entries of one source; each replaces the entries with its id from earlier
    /// sources.
    fn add(&mut self, entries: Vec<Entry>) {
        for mut entry in entries {
            let mut replaced = None;
            self.entries.retain(|e| {
                let earlier = e.id == entry.id && e.source != entry.source;
                if earlier {
                    replaced = Some(e.source.clone());
                }
                !earlier
            });
            entry.overrides = replaced;
            self.entries.push(entry);
        }
        self.entries.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Every entry, by id.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The ids, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.id.as_str()).collect()
    }

    /// The runbook with this id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The runbooks for a finding id: the one the finding links (`linked`, its `runbook`
    /// field) first, then every runbook whose `findings` names the id, each once.
    pub fn for_finding_id(&self, finding_id: &str, linked: Option<&str>) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = linked.and_then(|id| self.get(id)).into_iter().collect();
        for entry in &self.entries {
            let answers = entry.findings().iter().any(|f| f == finding_id);
            if answers && !out.iter().any(|e| std::ptr::eq(*e, entry)) {
                out.push(entry);
            }
        }
        out
    }

    /// The runbooks for a finding, the one it links first.
    pub fn for_finding(&self, finding: &Finding) -> Vec<&Entry> {
        self.for_finding_id(&finding.id, Some(&finding.runbook))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_runbooks_is_shipped() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let shipped: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            on_disk, shipped,
            "SHIPPED must list every file of runbooks/, by name"
        );
        for (name, text) in SHIPPED {
            let file = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(&file, text, "{name}");
        }
    }

    #[test]
    fn the_shipped_runbooks_are_good_and_answer_every_finding() {
        let catalog = Catalog::shipped();
        for e in catalog.entries() {
            assert!(!e.is_broken(), "{}: {:?}", e.id, e.problems);
            assert_eq!(e.file, Path::new("runbooks").join(format!("{}.md", e.id)));
        }
        assert_eq!(unanswered(catalog.entries()), Vec::<&str>::new());
        for id in FINDING_IDS {
            assert!(!catalog.for_finding_id(id, None).is_empty(), "{id}");
        }
    }

    #[test]
    fn a_finding_gets_its_linked_runbook_first_then_the_others() {
        let catalog = Catalog::shipped();
        let ids = |v: Vec<&Entry>| v.into_iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        let linked = ids(catalog.for_finding_id("webhook-blocking-writes", Some("webhook-outage")));
        assert_eq!(linked[0], "webhook-outage");
        assert_eq!(
            linked.iter().filter(|id| *id == "webhook-outage").count(),
            1,
            "{linked:?}"
        );
        let unlinked = ids(catalog.for_finding_id("apiserver-slow", Some("no-such-runbook")));
        assert_eq!(unlinked, ["apiserver-slow"]);
        assert!(catalog.get("no-such-runbook").is_none());
    }

    fn entries_with_id(catalog: &Catalog, id: &str) -> usize {
        catalog.ids().iter().filter(|i| **i == id).count()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const TEAM: &str = "---\nid: webhook-outage\ntitle: Team version\nfindings: [webhook-blocking-writes]\nseverity: critical\n---\n## Page the team\n";

    #[test]
    fn folders_override_earlier_runbooks_and_keep_broken_ones() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write(first.path(), "outage.md", TEAM);
        write(first.path(), "notes.txt", "not a runbook");
        write(
            second.path(),
            "extra.md",
            "---\nid: extra\ntitle: Extra\nfindings: [webhook-blocking-writes]\nseverity: info\n---\n## S\n",
        );
        write(second.path(), "broken.md", "no front matter\n");
        let missing = first.path().join("missing");
        let catalog = Catalog::load(&[
            first.path().to_path_buf(),
            missing.clone(),
            second.path().to_path_buf(),
        ]);
        let outage = catalog.get("webhook-outage").unwrap();
        assert_eq!(outage.title(), "Team version");
        assert_eq!(outage.source, Source::Folder(first.path().to_path_buf()));
        assert_eq!(outage.overrides, Some(Source::Shipped));
        assert_eq!(entries_with_id(&catalog, "webhook-outage"), 1);
        let broken = catalog.get("broken").unwrap();
        assert!(broken.is_broken());
        assert!(broken.runbook.is_none());
        assert_eq!(broken.problems[0].line, Some(1));
        assert_eq!(catalog.problems.len(), 1);
        assert_eq!(catalog.problems[0].file, missing);
        let for_blocking: Vec<&str> = catalog
            .for_finding_id("webhook-blocking-writes", Some("webhook-outage"))
            .iter()
            .map(|e| e.title())
            .collect();
        assert_eq!(for_blocking, ["Team version", "Extra"]);
    }

    #[test]
    fn duplicate_ids_in_one_folder_name_each_other_and_both_stay() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.md", TEAM);
        write(dir.path(), "b.md", TEAM);
        let report = lint_dir(dir.path(), false).unwrap();
        let lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        let (a, b) = (dir.path().join("a.md"), dir.path().join("b.md"));
        assert_eq!(
            lines,
            [
                format!(
                    "{}:2: duplicate id \"webhook-outage\": also in {}",
                    a.display(),
                    b.display()
                ),
                format!(
                    "{}:2: duplicate id \"webhook-outage\": also in {}",
                    b.display(),
                    a.display()
                ),
            ]
        );
        let catalog = Catalog::load(&[dir.path().to_path_buf()]);
        assert_eq!(entries_with_id(&catalog, "webhook-outage"), 2);
        assert_eq!(catalog.get("webhook-outage").unwrap().file, a);
    }

    #[test]
    fn a_file_past_the_size_cap_is_read_up_to_its_last_whole_line_within_it() {
        let dir = tempfile::tempdir().unwrap();
        let line = "x".repeat(99) + "\n";
        let text = format!("{TEAM}{}", line.repeat(20_000));
        write(dir.path(), "big.md", &text);
        let capped = read_capped(&dir.path().join("big.md")).unwrap();
        let at_cap = text.as_bytes()[..MAX_FILE_BYTES]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        assert_eq!(capped.cut_at, Some(at_cap));
        assert!(capped.text.len() <= MAX_FILE_BYTES && capped.text.ends_with('\n'));
        assert_eq!(capped.text.lines().count(), at_cap - 1);
        let entry = &load_dir(dir.path()).unwrap()[0];
        assert_eq!(entry.title(), "Team version");
        assert_eq!(entry.problems.len(), 1, "{:?}", entry.problems);
        assert_eq!(entry.problems[0].line, Some(at_cap));
        // At the cap exactly: whole.
        write(dir.path(), "big.md", &"y".repeat(MAX_FILE_BYTES));
        let capped = read_capped(&dir.path().join("big.md")).unwrap();
        assert_eq!((capped.text.len(), capped.cut_at), (MAX_FILE_BYTES, None));
    }

    #[test]
    fn lint_of_an_empty_or_incomplete_folder() {
        let dir = tempfile::tempdir().unwrap();
        let report = lint_dir(dir.path(), false).unwrap();
        assert_eq!(report.runbooks, 0);
        assert_eq!(report.problems.len(), 1);
        write(dir.path(), "a.md", TEAM);
        assert!(lint_dir(dir.path(), false).unwrap().problems.is_empty());
        let complete = lint_dir(dir.path(), true).unwrap();
        assert_eq!(complete.problems.len(), FINDING_IDS.len() - 1);
        assert!(lint_dir(&dir.path().join("nope"), false).is_err());
    }
}
