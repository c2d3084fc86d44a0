//! The HTML report in a real browser: headless Chromium loads it, the charts must be in
//! the parsed page and in the screenshot, and the page must not request anything. The
//! screenshot is kept in `target/test-artifacts/dashboard.png`.
//!
//! Chromium 156 (Debian) still contacts update.googleapis.com, accounts.google.com and
//! clients2.google.com at start, even with --disable-background-networking and
//! --disable-component-update. So every request goes to a proxy on 127.0.0.1 that replies
//! 403, and Chromium's NetLog tells the page's requests (initiated by the page's origin)
//! from the browser's own ("not an origin").
//!
//! These tests need Chromium (the Debian package `chromium`), which `.ci/run` installs; set
//! D1SNAP_CHROMIUM to use another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::listener::{Listener, Reply};
use crate::util::Workspace;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("D1SNAP_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.is_file());
    found.expect("Chromium is not installed: run `apt-get install chromium` (or `bash .ci/run`), or set D1SNAP_CHROMIUM")
}

/// Creates and returns `target/test-artifacts`, beside the test binary's profile directory.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).expect("the test binary lives in target/<profile>/deps").to_path_buf();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on `page` with `extra` flags and a fresh profile, sending every
/// request through `proxy`; kills it after 90 seconds.
fn run_chromium(ws: &Workspace, proxy: &Listener, page: &Path, extra: &[&str], profile: &str) -> std::process::Output {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", ws.path(profile).display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
        // Loopback addresses normally bypass a proxy; this sends them through it too.
        .arg("--proxy-bypass-list=<-loopback>")
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", ws.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("start Chromium");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(90);
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    });
    let output = child.wait_with_output().expect("wait for Chromium");
    let _ = watchdog.join();
    assert!(output.status.success(), "Chromium failed: {:?}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    output
}

/// Counts the pixels of one color in an RGB or RGBA PNG.
fn count_color(png_path: &Path, rgb: [u8; 3]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG color type {other:?}"),
    };
    let pixels = buffer[..info.buffer_size()].chunks(channels).filter(|p| p[..3] == rgb).count();
    (info.width, info.height, pixels)
}

/// Lists the network requests in a Chromium NetLog that something other than the browser
/// itself initiated, as `URL (initiator)`.
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(netlog).expect("read the NetLog")).expect("the NetLog is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().expect("the NetLog names URL_REQUEST_START_JOB");
    let events = log["events"].as_array().expect("the NetLog has events");
    events
        .iter()
        // The end of each job is an event without parameters.
        .filter(|e| e["type"].as_u64() == Some(start_job) && e["params"]["url"].is_string())
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .map(|e| format!("{} ({})", e["params"]["url"], e["params"]["initiator"]))
        .filter(|request| !request.starts_with("\"file:"))
        .collect()
}

#[test]
#[ignore = "needs Chromium (Debian package chromium); `.ci/run` installs it and runs the ignored tests"]
fn dashboard_renders_in_headless_chromium() {
    let ws = Workspace::new();
    let report = super::operations::dashboard_report(&ws);
    let proxy = Listener::start(vec![Reply::Status(403)]);

    let netlog = ws.path("netlog.json");
    let dom = run_chromium(&ws, &proxy, &report, &["--dump-dom", &format!("--log-net-log={}", netlog.display())], "profile-dom");
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 3, "the parsed page lacks charts");
    for id in ["chart-size", "chart-durations", "chart-drills"] {
        let chart = dom.split(&format!("id=\"{id}\"")).nth(1).unwrap_or_else(|| panic!("no chart {id}")).split("</svg>").next().unwrap();
        assert!(chart.contains("class=\"point\""), "chart {id} has no data points");
        assert!(!chart.contains("no data yet"), "chart {id} is empty");
    }
    assert!(dom.contains("<polyline"), "no line was drawn");
    assert!(dom.contains("class=\"threshold\""), "no threshold line");

    let screenshot = artifacts_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(&ws, &proxy, &report, &["--window-size=1000,2600", &format!("--screenshot={}", screenshot.display())], "profile-shot");
    let (width, height, blue) = count_color(&screenshot, [0x25, 0x63, 0xeb]);
    assert_eq!((width, height), (1000, 2600));
    assert!(blue > 200, "the size and duration series (#2563eb) are not drawn: {blue} pixels");
    let (_, _, red) = count_color(&screenshot, [0xdc, 0x26, 0x26]);
    assert!(red > 100, "the threshold line (#dc2626) is not drawn: {red} pixels");

    assert_eq!(page_requests(&netlog), Vec::<String>::new(), "the page made network requests");

    // A control page with an image shows that a request the page makes is caught. The
    // `.invalid` name never resolves, and the request goes to the local proxy anyway.
    let control = ws.path("control.html");
    std::fs::write(&control, "<!DOCTYPE html><title>control</title><img src=\"http://d1snap-test.invalid/pixel.png\">").unwrap();
    let control_log = ws.path("control-netlog.json");
    run_chromium(&ws, &proxy, &control, &["--dump-dom", &format!("--log-net-log={}", control_log.display())], "profile-control");
    let caught = page_requests(&control_log);
    assert!(caught.iter().any(|r| r.contains("d1snap-test.invalid/pixel.png")), "the control page's image request was not seen: {caught:?}");
    let browser: Vec<String> = proxy.received().into_iter().map(|r| r.request_line).collect();
    eprintln!("dashboard screenshot: {}", screenshot.display());
    eprintln!("requests of the browser itself, answered 403 by the local proxy: {browser:?}");
}
