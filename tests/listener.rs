//! A small HTTP/1.1 server on 127.0.0.1 for tests: it replies to each request with the next
//! reply of a script and records what it received. It stops when dropped, and in any case
//! after `LIFETIME`, so a failing test never leaves it running.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LIFETIME: Duration = Duration::from_secs(120);

/// How the server replies to one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// An empty reply with this status code.
    Status(u16),
    /// Read the request and send nothing until the client gives up.
    Silence,
}

/// One request as received: the request line and the body.
#[derive(Clone, Debug)]
pub struct Received {
    pub request_line: String,
    pub body: String,
}

pub struct Listener {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts a server; requests past the end of `script` get its last reply.
    pub fn start(script: Vec<Reply>) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || serve(&listener, &script, &received, &stop))
        };
        Listener { port, received, stop, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, script: &[Reply], received: &Mutex<Vec<Received>>, stop: &AtomicBool) {
    let started = Instant::now();
    let mut silent = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let Some(request) = read_request(&mut stream) else { continue };
                let index = {
                    let mut all = received.lock().unwrap();
                    all.push(request);
                    all.len() - 1
                };
                match script.get(index).or(script.last()).copied().unwrap_or(Reply::Status(200)) {
                    Reply::Status(code) => {
                        let reply = format!("HTTP/1.1 {code} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    // Kept open without a reply until the server stops.
                    Reply::Silence => silent.push(stream),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads the head and a Content-Length body, within a few seconds.
fn read_request(stream: &mut TcpStream) -> Option<Received> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 || data.len() > 1 << 20 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|line| line.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.trim().parse::<usize>().ok()))
        .unwrap_or(0);
    while data.len() < head_end + length {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..read]);
    }
    let body_end = data.len().min(head_end + length);
    Some(Received { request_line: head.lines().next().unwrap_or_default().to_string(), body: String::from_utf8_lossy(&data[head_end..body_end]).to_string() })
}
