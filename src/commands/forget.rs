use anyhow::Result;
use d1snap_engine::forget::{ForgetPolicy, ForgetReport, forget};

use super::Context;
use crate::cli::ForgetArgs;
use crate::exit;
use crate::render;

pub fn policy(args: &ForgetArgs) -> ForgetPolicy {
    ForgetPolicy {
        keep_last: args.keep_last,
        keep_hourly: args.keep_hourly,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_within: args.keep_within,
        keep_labels: args.keep_labels.clone(),
    }
}

pub fn run(context: &Context, args: &ForgetArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let report = forget(&repo, &policy(args), args.dry_run)?;
    let pruned = if args.prune && !args.dry_run { Some(d1snap_engine::prune::prune(&repo, false)?) } else { None };
    super::record_history(&repo, "forget", true, 0, None, 0, 0, &report);
    if context.json {
        render::json(&serde_json::json!({ "forget": report, "prune": pruned }));
        return Ok(exit::OK);
    }
    print_report(&report);
    if let Some(pruned) = &pruned {
        super::prune::print_report(pruned);
    }
    Ok(exit::OK)
}

pub fn print_report(report: &ForgetReport) {
    let mut source = "";
    for decision in &report.decisions {
        if decision.source != source {
            source = &decision.source;
            println!("{source}");
        }
        let labels = if decision.labels.is_empty() { String::new() } else { format!(" [{}]", decision.labels.join(", ")) };
        let verdict = if decision.keep { format!("keep    {}", decision.reasons.join(", ")) } else { "remove".to_string() };
        println!("  {}  {}{labels}  {verdict}", render::short(&decision.id.to_hex()), render::time_ms(decision.time_ms));
    }
    let verb = if report.dry_run { "would remove" } else { "removed" };
    println!("{verb} {} snapshot(s), kept {}", report.removed, report.kept);
}
