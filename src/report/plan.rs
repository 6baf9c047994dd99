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
