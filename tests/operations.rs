//! The configuration file, scheduled runs on a test clock, status, metrics, alerts, the
//! daemon's signal handling and the HTML report, through the real binary.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::listener::{Listener, Reply};
use crate::util::{Workspace, open, output_text as text};

/// Creates a database with one table of `rows` rows of about 100 bytes each.
fn app_database(ws: &Workspace, rows: u32) -> PathBuf {
    let path = ws.path("app.sqlite");
    let conn = open(&path);
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL); BEGIN;").unwrap();
    for i in 0..rows {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i} {}", "payload ".repeat(11))]).unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    path
}

/// Writes `d1snap.toml` with one source, `app`, at `db`, followed by `rest`.
fn write_config(ws: &Workspace, db: &Path, rest: &str) -> PathBuf {
    let path = ws.path("d1snap.toml");
    std::fs::write(&path, format!("[[source]]\nname = \"app\"\npath = {:?}\n\n{rest}", db.to_str().unwrap())).unwrap();
    path
}

/// Runs d1snap in the workspace directory with the given variables added.
fn run_with(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = ws.command(&[]);
    command.args(args).current_dir(ws.dir.path());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run d1snap")
}

/// `d1snap run` at a time on the test clock.
fn run_at(ws: &Workspace, config: &Path, time: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--config", config.to_str().unwrap(), "--now", time];
    args.extend_from_slice(extra);
    run_with(ws, &args, &[])
}

/// Reads every history event of the workspace's repository, oldest first.
fn history(ws: &Workspace) -> Vec<serde_json::Value> {
    let dir = ws.repo().join("history");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    names.sort();
    names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
}

fn job_runs(events: &[serde_json::Value], job: &str) -> Vec<String> {
    events.iter().filter(|e| e["kind"] == "job" && e["details"]["job"] == job).map(|e| e["time_ms"].to_string()).collect()
}

const DAY_CONFIG: &str = r#"
[jobs.snapshot]
schedule = "0 * * * *"

[jobs.verify]
schedule = "30 */6 * * *"
read_data = true
sample = "50%"

[jobs.drill]
schedule = "45 3 * * *"

[jobs.forget]
schedule = "15 0,12 * * *"
keep_last = 3
keep_hourly = 6

[jobs.prune]
schedule = "20 12 * * *"

[thresholds]
max_snapshot_age = "90m"
"#;

#[test]
fn simulated_day_runs_each_job_on_schedule() {
    let ws = Workspace::new();
    let db = app_database(&ws, 3000);
    let config = write_config(&ws, &db, DAY_CONFIG);
    let metrics = ws.path("metrics.prom");
    for hour in 0..24 {
        for minute in [0, 15, 30, 45] {
            if minute == 0 {
                let conn = open(&db);
                conn.execute("UPDATE t SET v = v || '!' WHERE id % 97 = ?1", [hour]).unwrap();
                conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("hour {hour}")]).unwrap();
            }
            let time = format!("2026-12-04T{hour:02}:{minute:02}:00Z");
            let output = run_at(&ws, &config, &time, &["--metrics-file", metrics.to_str().unwrap()]);
            assert_eq!(output.status.code(), Some(0), "run at {time}: {}", text(&output));
        }
    }

    let events = history(&ws);
    // The first pass runs every job, since none has run; then each follows its schedule.
    assert_eq!(job_runs(&events, "snapshot").len(), 24);
    assert_eq!(job_runs(&events, "verify").len(), 5, "00:00, then 00:30, 06:30, 12:30 and 18:30");
    assert_eq!(job_runs(&events, "drill").len(), 2, "00:00 and 03:45");
    assert_eq!(job_runs(&events, "forget").len(), 3, "00:00, 00:15 and 12:15");
    assert_eq!(job_runs(&events, "prune").len(), 2, "00:00, and 12:30, the first pass after 12:20");

    // Forget at 12:15 kept the 6 hourly snapshots of the 13 taken; 11 more followed.
    let list = crate::util::Workspace::json(&ws, &["list"]);
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 17);
    let first = &list["snapshots"][0]["time"];
    assert_eq!(first, "2026-12-04T07:00:00Z", "the snapshot times follow the test clock");
    let prune = events.iter().rfind(|e| e["kind"] == "prune").unwrap();
    assert!(prune["details"]["deleted"].as_u64().unwrap() > 0, "{prune}");
    ws.ok(&["verify", "--all", "--read-data"]);

    let status = run_with(&ws, &["--json", "status", "--config", config.to_str().unwrap(), "--now", "2026-12-04T23:50:00Z"], &[]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["sources"][0]["snapshots"], 17);
    assert_eq!(status["sources"][0]["last_verify"]["ok"], true);
    assert!(status["sources"][0]["projected_rollback_ms"].as_u64().is_some());

    let metrics = std::fs::read_to_string(&metrics).unwrap();
    for expected in [
        "# TYPE d1snap_snapshot_last_timestamp_seconds gauge",
        "d1snap_snapshot_last_timestamp_seconds{source=\"app\"} 1796425200",
        "d1snap_job_last_run_success{job=\"prune\"} 1",
        "d1snap_snapshots{source=\"app\"} 17",
        "d1snap_check_breached{source=\"app\",check=\"snapshot_age\"} 0",
        "d1snap_threshold_seconds{threshold=\"max_restore_time\"} 1800",
    ] {
        assert!(metrics.contains(expected), "metrics lack {expected:?}:\n{metrics}");
    }
}

#[test]
fn run_with_nothing_due_does_nothing() {
    let ws = Workspace::new();
    let db = app_database(&ws, 100);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"0 * * * *\"\n");
    assert!(run_at(&ws, &config, "2026-12-04T10:00:00Z", &[]).status.success());
    let output = run_at(&ws, &config, "2026-12-04T10:59:00Z", &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("no job due"), "{}", text(&output));
    assert_eq!(job_runs(&history(&ws), "snapshot").len(), 1);
}

#[test]
fn config_unknown_key_is_named() {
    let ws = Workspace::new();
    let db = app_database(&ws, 10);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"@hourly\"\nlabel = [\"nightly\"]\n");
    let output = run_at(&ws, &config, "2026-12-04T10:00:00Z", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `label`"), "{}", text(&output));
}

#[test]
fn run_without_config_explains() {
    let ws = Workspace::new();
    let output = run_with(&ws, &["run"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("d1snap.toml"), "{}", text(&output));
}

#[test]
fn config_repository_is_used_without_repo_option() {
    let ws = Workspace::new();
    let db = app_database(&ws, 10);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"@hourly\"\n");
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("repository = \"from-config\"\n{text_before}")).unwrap();
    let output = ws.command(&[]).args(["run", "--config", config.to_str().unwrap()]).env_remove("D1SNAP_REPO").current_dir(ws.dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(ws.path("from-config").join("config").is_file(), "the repository named in the file was not created");
}

#[test]
fn status_reports_stale_snapshot() {
    let ws = Workspace::new();
    let db = app_database(&ws, 100);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"0 * * * *\"\n\n[thresholds]\nmax_snapshot_age = \"2h\"\n");
    assert!(run_at(&ws, &config, "2026-12-04T10:00:00Z", &[]).status.success());
    let config = config.to_str().unwrap();

    let fresh = run_with(&ws, &["status", "--config", config, "--now", "2026-12-04T11:30:00Z"], &[]);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));

    let metrics = ws.path("status.prom");
    let stale = run_with(&ws, &["--json", "status", "--config", config, "--now", "2026-12-04T13:00:00Z", "--metrics-file", metrics.to_str().unwrap()], &[]);
    assert_eq!(stale.status.code(), Some(4), "{}", text(&stale));
    let report: serde_json::Value = serde_json::from_slice(&stale.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["breaches"][0]["source"], "app");
    assert_eq!(report["breaches"][0]["check"], "snapshot_age");
    assert_eq!(report["sources"][0]["last_snapshot"]["age_ms"], 3 * 3_600_000);
    let metrics = std::fs::read_to_string(metrics).unwrap();
    assert!(metrics.contains("d1snap_check_breached{source=\"app\",check=\"snapshot_age\"} 1"), "{metrics}");
}

#[test]
fn status_without_config_uses_snapshot_sources() {
    let ws = Workspace::new();
    let db = ws.copy_data("chinook/Chinook_Sqlite.sqlite");
    ws.snapshot(&db);
    ws.ok(&["drill"]);
    let output = run_with(&ws, &["--json", "status"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let source = &status["sources"][0];
    assert!(source["name"].as_str().unwrap().ends_with("Chinook_Sqlite.sqlite"), "{source}");
    assert_eq!(source["last_snapshot"]["rows"], 15607);
    assert_eq!(source["last_drill"]["ok"], true);
    assert!(source["projected_rollback_ms"].as_u64().unwrap() > 0);
    assert!(status["repository_bytes"].as_u64().unwrap() > 100_000);
}

/// Renames the source away and back, to make the snapshot job fail and then recover.
fn hide(path: &Path) -> PathBuf {
    let hidden = path.with_extension("hidden");
    std::fs::rename(path, &hidden).unwrap();
    hidden
}

const WEBHOOK_PATH: &str = "/hooks/T0001/B0002/secret-token-4242";

#[test]
fn failed_job_alert_retries_and_resolves() {
    let ws = Workspace::new();
    let db = app_database(&ws, 100);
    let server = Listener::start(vec![Reply::Status(500), Reply::Status(200)]);
    let url = server.url(WEBHOOK_PATH);
    let config = write_config(
        &ws,
        &db,
        "[jobs.snapshot]\nschedule = \"0 * * * *\"\n\n[alerts]\nwebhook_url_env = \"D1SNAP_TEST_WEBHOOK\"\nretry_delay = \"50ms\"\ntimeout = \"5s\"\nrepeat_after = \"6h\"\n",
    );
    let config = config.to_str().unwrap();
    let env = [("D1SNAP_TEST_WEBHOOK", url.as_str()), ("HTTP_PROXY", ""), ("http_proxy", ""), ("ALL_PROXY", ""), ("all_proxy", "")];
    let run = |time: &str, extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend_from_slice(&["run", "--config", config, "--now", time]);
        run_with(&ws, &args, &env)
    };

    let healthy = run("2026-12-04T10:00:00Z", &[]);
    assert!(healthy.status.success(), "{}", text(&healthy));
    assert_eq!(server.received().len(), 0, "an alert was sent while all was well");

    let hidden = hide(&db);
    // Trace logging must not reveal the URL either.
    let failing = run("2026-12-04T11:00:00Z", &["-vv"]);
    assert_eq!(failing.status.code(), Some(1), "{}", text(&failing));
    let received = server.received();
    assert_eq!(received.len(), 2, "the first attempt got HTTP 500, so a second one follows");
    assert_eq!(received[1].request_line, format!("POST {WEBHOOK_PATH} HTTP/1.1"));
    let body: serde_json::Value = serde_json::from_str(&received[1].body).unwrap();
    let message = body["text"].as_str().unwrap();
    assert!(message.contains("ALERT the snapshot job failed"), "{message}");
    assert!(message.contains("app.sqlite"), "{message}");
    assert!(String::from_utf8_lossy(&failing.stdout).contains("(2 attempt(s))"), "{}", text(&failing));
    assert!(!text(&failing).contains("secret-token"), "the webhook URL leaked: {}", text(&failing));

    let again = run("2026-12-04T11:15:00Z", &[]);
    assert_eq!(again.status.code(), Some(0), "a pass that runs no job succeeds: {}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("snapshot job: its latest run, at 2026-12-04T11:00:00Z, failed"), "{}", text(&again));
    assert_eq!(server.received().len(), 2, "an alert was repeated before repeat_after");

    std::fs::rename(&hidden, &db).unwrap();
    let recovered = run("2026-12-04T12:00:00Z", &[]);
    assert!(recovered.status.success(), "{}", text(&recovered));
    let received = server.received();
    assert_eq!(received.len(), 3);
    let body: serde_json::Value = serde_json::from_str(&received[2].body).unwrap();
    assert!(body["text"].as_str().unwrap().contains("OK resolved: the snapshot job failed"), "{body}");

    for entry in std::fs::read_dir(ws.repo().join("history")).unwrap() {
        let content = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!content.contains("secret-token"), "the webhook URL was stored in the history");
    }
}

#[test]
fn alert_webhook_timeout_is_bounded() {
    let ws = Workspace::new();
    let db = app_database(&ws, 10);
    let server = Listener::start(vec![Reply::Silence]);
    let url = server.url(WEBHOOK_PATH);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"0 * * * *\"\n\n[alerts]\nwebhook_url_env = \"D1SNAP_TEST_WEBHOOK\"\ntimeout = \"300ms\"\nattempts = 2\nretry_delay = \"50ms\"\n");
    hide(&db);
    let started = Instant::now();
    let output = run_with(&ws, &["run", "--config", config.to_str().unwrap(), "--now", "2026-12-04T10:00:00Z"], &[("D1SNAP_TEST_WEBHOOK", &url), ("HTTP_PROXY", ""), ("http_proxy", "")]);
    assert!(started.elapsed() < Duration::from_secs(20), "the run took {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("delivery FAILED after 2 attempt(s)"), "{}", text(&output));
    assert_eq!(server.received().len(), 2);
    assert!(!text(&output).contains("secret-token"), "the webhook URL leaked: {}", text(&output));
}

/// A daemon started in the background, with its log lines arriving on a channel.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(ws: &Workspace, config: &Path, metrics: &Path) -> Daemon {
        let mut child = ws
            .command(&[])
            .args(["daemon", "--config", config.to_str().unwrap(), "--metrics-file", metrics.to_str().unwrap()])
            .current_dir(ws.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, seen: Vec::new() }
    }

    /// Waits for a log line containing every one of `parts`.
    fn wait_for(&mut self, parts: &[&str], limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.seen.iter().any(|line| parts.iter().all(|p| line.contains(p))) {
                return;
            }
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    panic!("no log line with {parts:?} within {limit:?}; log so far:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the daemon to exit and returns its exit code and the whole log.
    fn wait_exit(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the daemon did not stop within {limit:?}; log so far:\n{}", self.seen.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

fn assert_no_leftovers(ws: &Workspace) {
    let locks = std::fs::read_dir(ws.repo().join("locks")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(locks, 0, "a repository lock was left behind");
    let mut stack = vec![ws.repo()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            assert!(!path.file_name().unwrap().to_string_lossy().starts_with(".tmp-"), "a temporary file was left behind: {}", path.display());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    ws.ok(&["verify", "--all", "--read-data"]);
}

#[test]
fn daemon_stops_cleanly_on_sigterm() {
    let ws = Workspace::new();
    let db = app_database(&ws, 500);
    // Yearly schedules: each job runs once, at start, because it never ran.
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"0 0 1 1 *\"\n\n[jobs.verify]\nschedule = \"0 0 1 1 *\"\n");
    let metrics = ws.path("daemon.prom");
    let mut daemon = Daemon::start(&ws, &config, &metrics);
    daemon.wait_for(&["job finished", "job=\"verify\""], Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !metrics.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon.signal("TERM");
    let (code, log) = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    for expected in ["daemon started", "job started", "job=\"snapshot\"", "daemon stopped"] {
        assert!(log.contains(expected), "the log lacks {expected:?}:\n{log}");
    }
    assert!(std::fs::read_to_string(&metrics).unwrap().contains("d1snap_job_last_run_success{job=\"verify\"} 1"));
    assert_no_leftovers(&ws);
}

#[test]
fn daemon_finishes_running_job_on_sigint() {
    let ws = Workspace::new();
    // Large enough that the snapshot takes a while in a debug build.
    let db = app_database(&ws, 150_000);
    let config = write_config(&ws, &db, "[jobs.snapshot]\nschedule = \"0 0 1 1 *\"\n\n[jobs.verify]\nschedule = \"0 0 1 1 *\"\n");
    let mut daemon = Daemon::start(&ws, &config, &ws.path("daemon.prom"));
    daemon.wait_for(&["job started", "job=\"snapshot\""], Duration::from_secs(60));
    daemon.signal("INT");
    let (code, log) = daemon.wait_exit(Duration::from_secs(180));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("job finished"), "the running snapshot did not finish:\n{log}");
    assert!(log.contains("ok=true"), "the running snapshot failed:\n{log}");
    assert!(log.contains("job skipped"), "the verify job should wait for the next start:\n{log}");
    assert_eq!(log.matches("job started").count(), 1, "a job started after the signal:\n{log}");
    assert_eq!(ws.json(&["list"])["snapshots"].as_array().unwrap().len(), 1);
    assert_no_leftovers(&ws);
}

/// Builds a repository with half a day of history (snapshots, verifications, drills and a
/// forget) and writes the HTML report of it. Returns the report's path.
pub fn dashboard_report(ws: &Workspace) -> PathBuf {
    let db = app_database(ws, 3000);
    let config = write_config(ws, &db, DAY_CONFIG.replace("45 3 * * *", "45 */4 * * *").as_str());
    for hour in 0..12 {
        open(&db).execute("INSERT INTO t(v) VALUES (?1)", [format!("hour {hour} {}", "x".repeat(3000))]).unwrap();
        for minute in [0, 30, 45] {
            let output = run_at(ws, &config, &format!("2026-12-04T{hour:02}:{minute:02}:00Z"), &[]);
            assert!(output.status.success(), "{}", text(&output));
        }
    }
    let report = ws.path("report.html");
    let output = run_with(ws, &["report", "--config", config.to_str().unwrap(), "--html", report.to_str().unwrap(), "--now", "2026-12-04T12:00:00Z"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    report
}

#[test]
fn report_is_self_contained() {
    let ws = Workspace::new();
    let report = dashboard_report(&ws);
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 3);
    for id in ["chart-size", "chart-durations", "chart-drills"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no chart {id}");
    }
    assert!(!html.contains("http://"), "the report names an http URL");
    assert!(!html.contains("https://"), "the report names an https URL");
    for tag in ["<script", "<link", "<img", "<iframe", "@import", "url("] {
        assert!(!html.contains(tag), "the report contains {tag}");
    }
    assert!(html.contains("default-src 'none'"), "no Content-Security-Policy");
    let rows = html.split("<table id=\"snapshots\">").nth(1).unwrap().split("</table>").next().unwrap().matches("<tr>").count();
    let snapshots = ws.json(&["list"])["snapshots"].as_array().unwrap().len();
    assert_eq!(rows, 1 + snapshots, "a header row and one row per snapshot");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&report).unwrap().permissions().mode() & 0o777, 0o644);
    }
}
