use anyhow::Result;
use serde::Serialize;

use super::Context;
use crate::exit;
use crate::render;

#[derive(Serialize)]
struct ListedSnapshot {
    id: String,
    time_ms: i64,
    time: String,
    labels: Vec<String>,
    source: String,
    root: String,
    tables: usize,
    rows: u64,
    bytes: u64,
    new_bytes: u64,
}

#[derive(Serialize)]
struct ListedError {
    id: String,
    error: String,
}

#[derive(Serialize)]
struct ListOutput {
    repository: String,
    snapshots: Vec<ListedSnapshot>,
    unreadable: Vec<ListedError>,
}

pub fn run(context: &Context) -> Result<u8> {
    let repo = context.open_repo()?;
    let mut output = ListOutput { repository: repo.location(), snapshots: Vec::new(), unreadable: Vec::new() };
    for (id, record) in repo.snapshots()? {
        match record {
            Ok(record) => output.snapshots.push(ListedSnapshot {
                id: id.to_hex(),
                time_ms: record.time_ms,
                time: render::time_ms(record.time_ms),
                labels: record.labels.clone(),
                source: record.source.location.clone(),
                root: record.root.to_hex(),
                tables: record.tables.len(),
                rows: record.stats.rows,
                bytes: record.stats.bytes_read,
                new_bytes: record.stats.new_bytes,
            }),
            Err(e) => output.unreadable.push(ListedError { id: id.to_hex(), error: e.to_string() }),
        }
    }
    if context.json {
        render::json(&output);
    } else {
        println!("{:<12}  {:<20}  {:>6}  {:>10}  {:>10}  {:>10}  labels / source", "id", "time (UTC)", "tables", "rows", "size", "added");
        for s in &output.snapshots {
            let labels = if s.labels.is_empty() { String::new() } else { format!("[{}] ", s.labels.join(", ")) };
            println!(
                "{:<12}  {:<20}  {:>6}  {:>10}  {:>10}  {:>10}  {labels}{}",
                render::short(&s.id),
                s.time,
                s.tables,
                render::count(s.rows),
                render::bytes(s.bytes),
                render::bytes(s.new_bytes),
                s.source
            );
        }
        println!("{} snapshots in {}", output.snapshots.len(), output.repository);
        for bad in &output.unreadable {
            eprintln!("error: snapshot record {} cannot be read: {}", bad.id, bad.error);
        }
    }
    Ok(if output.unreadable.is_empty() { exit::OK } else { exit::INTEGRITY })
}
