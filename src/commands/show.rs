use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::cli::ShowArgs;
use crate::exit;
use crate::render;

#[derive(Serialize)]
struct ShownTable {
    name: String,
    rows: u64,
    chunks: u64,
    bytes: u64,
    root: String,
}

#[derive(Serialize)]
struct ShownSchemaObject {
    kind: &'static str,
    name: String,
    table: String,
}

#[derive(Serialize)]
struct ShowOutput {
    id: String,
    root: String,
    time_ms: i64,
    time: String,
    labels: Vec<String>,
    source: d1snap_engine::object::snapshot::SourceInfo,
    parent: Option<String>,
    encoding: String,
    user_version: i64,
    application_id: i64,
    tables: Vec<ShownTable>,
    schema: Vec<ShownSchemaObject>,
    stats: d1snap_engine::object::snapshot::SnapshotStats,
}

pub fn run(context: &Context, args: &ShowArgs) -> Result<u8> {
    let repo = context.open_repo()?;
    let (id, record) = repo.resolve_snapshot(&args.snapshot)?;
    let tables = record
        .content
        .tables
        .iter()
        .map(|entry| {
            let summary = record.tables.iter().find(|t| t.name == entry.name);
            ShownTable {
                name: entry.name.clone(),
                rows: summary.map_or(0, |s| s.rows),
                chunks: summary.map_or(0, |s| s.chunks),
                bytes: summary.map_or(0, |s| s.bytes),
                root: entry.id.to_hex(),
            }
        })
        .collect();
    let output = ShowOutput {
        id: id.to_hex(),
        root: record.root.to_hex(),
        time_ms: record.time_ms,
        time: render::time_ms(record.time_ms),
        labels: record.labels.clone(),
        source: record.source.clone(),
        parent: record.parent.map(|p| p.to_hex()),
        encoding: record.content.encoding.clone(),
        user_version: record.content.user_version,
        application_id: record.content.application_id,
        tables,
        schema: record
            .content
            .schema
            .iter()
            .map(|o| ShownSchemaObject { kind: o.kind.name(), name: o.name.clone(), table: o.table.clone() })
            .collect(),
        stats: record.stats.clone(),
    };
    if context.json {
        render::json(&output);
        return Ok(exit::OK);
    }
    println!("snapshot {}", output.id);
    println!("  root     {}", output.root);
    println!("  time     {}", output.time);
    println!("  source   {} ({}{})", output.source.location, output.source.kind, if output.source.lossy { ", lossy" } else { "" });
    if !output.labels.is_empty() {
        println!("  labels   {}", output.labels.join(", "));
    }
    if let Some(parent) = &output.parent {
        println!("  parent   {}", render::short(parent));
    }
    println!();
    println!("{:<32}  {:>10}  {:>7}  {:>10}  root", "table", "rows", "chunks", "size");
    for t in &output.tables {
        println!("{:<32}  {:>10}  {:>7}  {:>10}  {}", t.name, render::count(t.rows), t.chunks, render::bytes(t.bytes), render::short(&t.root));
    }
    if !output.schema.is_empty() {
        println!();
        for o in &output.schema {
            // A view's table in sqlite_schema is the view itself, so naming it adds nothing.
            if o.table == o.name {
                println!("{:<14} {}", o.kind, o.name);
            } else {
                println!("{:<14} {} (on {})", o.kind, o.name, o.table);
            }
        }
    }
    Ok(exit::OK)
}
