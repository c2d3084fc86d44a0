use anyhow::{Context as _, Result};
use d1snap_ops::report::{ReportInput, render_html};

use super::Context;
use super::config::observe;
use crate::cli::ReportArgs;
use crate::exit;
use crate::render;

pub fn run(context: &Context, args: &ReportArgs) -> Result<u8> {
    let super::config::Observed { repo, events, status } = observe(context, &args.config, args.clock.now)?;
    let records: Vec<_> = repo.snapshots()?.into_iter().filter_map(|(id, record)| record.ok().map(|r| (id, r))).collect();
    let html = render_html(&ReportInput { status: &status, records: &records, events: &events });
    d1snap_ops::metrics::write_public_file(&args.html, html.as_bytes()).with_context(|| format!("writing the report to {}", args.html.display()))?;
    let drills = events.iter().filter(|e| e.kind == "drill").count();
    if context.json {
        render::json(&serde_json::json!({ "report": args.html, "bytes": html.len(), "snapshots": records.len(), "drills": drills, "breaches": status.breaches.len() }));
    } else {
        println!("wrote {} ({}): {} snapshots, {} drills, {} breach(es)", args.html.display(), render::bytes(html.len() as u64), records.len(), drills, status.breaches.len());
    }
    Ok(exit::OK)
}
