//! Progress bars on a terminal: shown on stderr only when stderr is a terminal.

use std::io::IsTerminal;

use d1snap_engine::progress::Progress;
use indicatif::{ProgressBar, ProgressStyle};

pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    /// Returns a progress bar, or `None` when stderr is not a terminal or output is JSON.
    pub fn new(verb: &str, json: bool) -> Option<TerminalProgress> {
        if json || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}] {human_pos} rows ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(verb.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(TerminalProgress { bar })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TerminalProgress {
    fn table_started(&self, name: &str, index: usize, total: usize) {
        self.bar.set_message(format!("table {}/{total} {name}", index + 1));
    }

    fn advanced(&self, rows: u64, _bytes: u64) {
        self.bar.inc(rows);
    }
}
