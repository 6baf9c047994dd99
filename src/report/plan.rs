//! A remediation plan as text, for `fix` and `restore` (the screen draws its own).

use std::fmt::Write as _;

use crate::remediate::{DryRun, Plan, Rbac};

/// The plan as a person reads it before confirming: what, where, what it gives up, whether
/// the apiserver and RBAC would accept it, the kubectl equivalent, and the diff.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let shown = plan.target.display();
    let _ = writeln!(out, "Plan: {} {shown}", plan.action);
    let user = if plan.user.is_empty() {
        String::new()
    } else {
        format!(", user {}", plan.user)
    };
    let _ = writeln!(
        out,
        "  cluster    context {} ({}){user}",
        plan.context, plan.server
    );
    if let Some(file) = &plan.restore_from {
        let _ = writeln!(out, "  from       {}", file.display());
    }
    if let Some(integrity) = &plan.integrity {
        let _ = writeln!(out, "  backup     {integrity}");
    }
    if let Some(later) = &plan.later {
        let _ = writeln!(
            out,
            "  CHANGED    since kube-rescue's change, by {}: {}",
            later.managers.join(", "),
            later.paths.join(", ")
        );
        let rows: Vec<[&str; 4]> =
            std::iter::once(["field", "backup", "after the change", "live now"])
                .chain(
                    later
                        .three_way
                        .iter()
                        .map(|(p, b, a, l)| [p.as_str(), b.as_str(), a.as_str(), l.as_str()]),
                )
                .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for [p, b, a, l] in &rows {
            let _ = writeln!(out, "             {p:<w0$}  {b:<w1$}  {a:<w2$}  {l}");
        }
        let restores = if later.overwritten {
            "the whole backup, over the later changes (--overwrite-later-changes)".to_string()
        } else {
            let contested = if later.contested.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} changed again since and are left as they are",
                    later.contested.join(", ")
                )
            };
            format!(
                "only the fields kube-rescue's change set{contested}; the later changes stay (--overwrite-later-changes, or Ctrl-O on the screen, puts the whole backup back)"
            )
        };
        let _ = writeln!(out, "  restores   {restores}");
    }
    if let Some(via) = &plan.via {
        let _ = writeln!(out, "  found via  {via}");
    }
    if plan.before.is_some() {
        let _ = writeln!(
            out,
            "  object     {shown}, uid {}, resourceVersion {} (as read; a change since is refused)",
            plan.uid, plan.resource_version
        );
    } else {
        let _ = writeln!(
            out,
            "  object     {shown} does not exist: it will be created"
        );
    }
    let _ = writeln!(out, "  gives up   {}", plan.gives_up);
    let dry_run = match &plan.dry_run {
        DryRun::Passed => "passed (server-side, dryRun=All: nothing was stored)".to_string(),
        DryRun::Failed(why) => format!("FAILED: {why}"),
        DryRun::Skipped(why) => format!("skipped ({why})"),
    };
    let _ = writeln!(out, "  dry run    {dry_run}");
    let rbac = match &plan.rbac {
        Rbac::Allowed => "allowed (SelfSubjectAccessReview)".to_string(),
        Rbac::Denied(why) => format!("DENIED: {why}"),
        Rbac::NotChecked(why) => format!("not checked ({why})"),
        Rbac::Unknown(why) => format!("could not check: {why}"),
    };
    let _ = writeln!(out, "  RBAC       {rbac}");
    let _ = writeln!(out, "  kubectl    {}", plan.kubectl);
    if plan.read_only {
        let _ = writeln!(
            out,
            "  read-only  this is the plan only: read-only mode sends no write, so it cannot be applied"
        );
    }
    let _ = writeln!(out);
    out.push_str(&plan.diff);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}
