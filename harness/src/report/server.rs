//! A small HTTP/1.1 server for `sunder serve`: GET and HEAD only, `Connection: close`, a
//! bounded number of connections each on its own thread. Only files inside the root can be
//! reached, and only from a page loaded through the loopback name it is bound to.
//!
//! ```text
//!   accept (waits while `max_connections` are being served: the rest wait in the backlog)
//!   read the request head, whole, before `head_deadline` (else 408: no slowloris)
//!       ─► Host must be 127.0.0.1[:port] or localhost[:port] (else 421: DNS rebinding)
//!       ─► percent-decode ─► refuse `..`, NUL, `\` (403)
//!       ─► open root.join(path) ─► the opened handle's real path (/proc/self/fd) outside root? 403
//!       ─► "/"                       the runs table (index::index_page)
//!          a directory               its listing (a redirect first to add the `/`)
//!          <run>/report.html missing written now, once (write_report under a lock), then served
//!          a regular file            the bytes of the handle that was checked
//! ```
//!
//! The file sent is the very handle whose path was checked: a symbolic link swapped in
//! between the check and the read cannot lead outside, because nothing is opened again by
//! name after the check.
//!
//! Hand-written rather than a framework because it needs so little, and because every
//! path decision is then in this one file, where the traversal rules can be read whole.

use super::escape::html;
use super::index;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// How much a server takes on at once, and how long a client may take to ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (one thread each); more wait in the listen backlog.
    pub max_connections: usize,
    /// Time from accepting a connection to the end of its request head.
    pub head_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            head_deadline: Duration::from_secs(10),
        }
    }
}

pub struct Server {
    /// Canonical: every served path must start with it.
    root: PathBuf,
    limits: Limits,
    /// Held while a missing report is written, so that two requests for it write it once.
    regenerating: Mutex<()>,
}

impl Server {
    pub fn new(root: &Path, limits: Limits) -> std::io::Result<Server> {
        Ok(Server {
            root: std::fs::canonicalize(root)?,
            limits: Limits {
                max_connections: limits.max_connections.max(1),
                ..limits
            },
            regenerating: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves forever.
    pub fn run(self, listener: TcpListener) -> std::io::Result<()> {
        let port = listener.local_addr()?.port();
        let me = Arc::new(self);
        let slots = Arc::new(Slots::default());
        loop {
            // Take a slot before accepting: a flood of idle connections then waits in the
            // kernel's backlog, costing no thread, and each slot frees within the deadline.
            slots.acquire(me.limits.max_connections);
            let slot = SlotGuard(slots.clone());
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!("serve: accept: {e}");
                    continue;
                }
            };
            let me = me.clone();
            let spawned = std::thread::Builder::new()
                .name("serve-conn".into())
                .spawn(move || {
                    let _slot = slot;
                    if let Err(e) = me.handle(stream, port) {
                        tracing::debug!("serve: connection: {e}");
                    }
                });
            if let Err(e) = spawned {
                // The closure (with the slot and the stream) was dropped: the slot is free.
                tracing::warn!("serve: cannot start a connection thread: {e}");
            }
        }
    }

    fn handle(&self, mut stream: TcpStream, port: u16) -> std::io::Result<()> {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
        let deadline = Instant::now() + self.limits.head_deadline;
        let head = match read_head(&mut stream, deadline) {
            Ok(h) => h,
            Err(HeadError::Io(e)) => return Err(e),
            Err(HeadError::Closed) => return Ok(()),
            Err(HeadError::TimedOut) => {
                return respond(
                    &mut stream,
                    408,
                    "text/plain",
                    b"request head too slow\n",
                    false,
                );
            }
            Err(HeadError::TooLarge) => {
                return respond(
                    &mut stream,
                    431,
                    "text/plain",
                    b"request head too large\n",
                    false,
                );
            }
            Err(HeadError::Malformed(why)) => {
                return respond(
                    &mut stream,
                    400,
                    "text/plain",
                    format!("bad request: {why}\n").as_bytes(),
                    false,
                );
            }
        };
        let head_only = head.method == "HEAD";
        if head.method != "GET" && !head_only {
            return respond(
                &mut stream,
                405,
                "text/plain",
                b"only GET and HEAD\n",
                false,
            );
        }
        match head.host.as_deref() {
            None => {
                return respond(
                    &mut stream,
                    400,
                    "text/plain",
                    b"bad request: no Host header\n",
                    head_only,
                );
            }
            Some(h) if !host_allowed(h, port) => {
                // A page from another site whose name resolves to 127.0.0.1 (DNS
                // rebinding) would otherwise read every run through the victim's browser.
                let why = format!(
                    "this server answers to 127.0.0.1:{port} and localhost:{port} only, not {h:?}\n"
                );
                return respond(
                    &mut stream,
                    421,
                    "text/plain; charset=utf-8",
                    why.as_bytes(),
                    head_only,
                );
            }
            Some(_) => {}
        }
        match self.route(&head.target) {
            Reply::Page(status, body) => respond(
                &mut stream,
                status,
                "text/html; charset=utf-8",
                body.as_bytes(),
                head_only,
            ),
            Reply::Redirect(to) => {
                let head = format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes())
            }
            Reply::File(file, path) => send_file(&mut stream, file, &path, head_only),
            Reply::Error(status, why) => respond(
                &mut stream,
                status,
                "text/plain; charset=utf-8",
                format!("{why}\n").as_bytes(),
                head_only,
            ),
        }
    }

    /// Decides what a request target gets.
    fn route(&self, target: &str) -> Reply {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let path = path.split('#').next().unwrap_or("");
        if !path.starts_with('/') {
            return Reply::Error(400, "bad request target".into());
        }
        let Some(decoded) = percent_decode(path) else {
            return Reply::Error(400, "bad percent-encoding".into());
        };
        let mut rel = PathBuf::new();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Reply::Error(403, "forbidden: `..` in path".into()),
                s if s.contains(['\0', '\\']) => {
                    return Reply::Error(403, "forbidden character in path".into());
                }
                s => rel.push(s),
            }
        }
        let full = self.root.join(&rel);
        let (file, real) = match self.open_inside(&full) {
            Ok(opened) => opened,
            Err(Refused::Missing) => return self.missing(&full, &rel),
            Err(Refused::Outside) => {
                return Reply::Error(403, "forbidden: outside the results directory".into());
            }
            Err(Refused::Other(why)) => return Reply::Error(403, format!("forbidden: {why}")),
        };
        let meta = match file.metadata() {
            Ok(m) => m,
            Err(e) => return Reply::Error(500, format!("stat: {e}")),
        };
        if meta.is_dir() {
            if !decoded.ends_with('/') {
                return Reply::Redirect(format!("{path}/"));
            }
            if real == self.root && query != Some("list") {
                let rows = index::runs(&self.root);
                return Reply::Page(
                    200,
                    index::index_page(&self.root.display().to_string(), &rows),
                );
            }
            // Listed through the handle that was checked, not by name again.
            return match index::listing_page(&decoded, &fd_path(&file)) {
                Ok(page) => Reply::Page(200, page),
                Err(e) => Reply::Error(500, format!("list {}: {e}", decoded)),
            };
        }
        if !meta.is_file() {
            return Reply::Error(403, "forbidden: not a regular file".into());
        }
        Reply::File(file, real)
    }

    /// Opens `path` (following symbolic links) and checks where the opened handle really
    /// is. Checking the handle, not the name, leaves no moment for a swapped link to use.
    fn open_inside(&self, path: &Path) -> Result<(File, PathBuf), Refused> {
        // O_NONBLOCK: opening a FIFO someone left in the results must not hang the thread
        // (it has no effect on regular files and directories).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Refused::Missing,
                _ => Refused::Other(format!("cannot open: {e}")),
            })?;
        let real = std::fs::read_link(fd_path(&file))
            .map_err(|e| Refused::Other(format!("cannot verify the opened file: {e}")))?;
        if !real.starts_with(&self.root) {
            return Err(Refused::Outside);
        }
        Ok((file, real))
    }

    /// A missing `report.html` in a run directory is written on request (runs from before
    /// reports, or whose report failed); anything else missing is a 404.
    fn missing(&self, full: &Path, rel: &Path) -> Reply {
        let not_found = Reply::Error(404, format!("not found: /{}", rel.display()));
        if full.file_name().and_then(|n| n.to_str()) != Some(super::REPORT) {
            return not_found;
        }
        let Some(Ok((dir_handle, dir))) = full.parent().map(|d| self.open_inside(d)) else {
            return not_found;
        };
        let run_dir = fd_path(&dir_handle);
        if !dir_handle.metadata().is_ok_and(|m| m.is_dir())
            || !(run_dir.join("results.json").is_file() || run_dir.join("config.json").is_file())
        {
            return not_found;
        }
        // One writer at a time; whoever waited finds the page the first one wrote.
        let _writing = self
            .regenerating
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let report = dir.join(super::REPORT);
        if let Ok((f, real)) = self.open_inside(&report) {
            return Reply::File(f, real);
        }
        if let Err(e) = super::write_report(&dir) {
            return Reply::Page(
                500,
                format!(
                    "<!DOCTYPE html><title>report failed</title><pre>could not write the report: {}</pre>",
                    html(&format!("{e:#}"))
                ),
            );
        }
        match self.open_inside(&report) {
            Ok((f, real)) => Reply::File(f, real),
            Err(_) => Reply::Error(500, "the report was written but cannot be opened".into()),
        }
    }
}

/// Counts the connections being served; `run` waits on it before accepting another.
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self, max: usize) {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= max {
            busy = self.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
    }
}

/// Gives its slot back however the connection ends (a panic included).
struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut busy = self.0.busy.lock().unwrap_or_else(|p| p.into_inner());
        *busy -= 1;
        self.0.freed.notify_one();
    }
}

enum Refused {
    Missing,
    Outside,
    Other(String),
}

enum Reply {
    Page(u16, String),
    Redirect(String),
    /// The opened, checked handle and its real path (for the content type).
    File(File, PathBuf),
    Error(u16, String),
}

/// The path under which the kernel names an open file of this process.
fn fd_path(f: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))
}

/// Whether a `Host` header names this server: its loopback address or `localhost`, with
/// the port it is bound to (or none, which means the default port to a browser but is how
/// some tools send it). Any other name is a page that rebound its DNS name to 127.0.0.1.
fn host_allowed(host: &str, port: u16) -> bool {
    let host = host.trim();
    let (name, p) = match host.rsplit_once(':') {
        Some((n, p)) => match p.parse::<u16>() {
            Ok(p) => (n, Some(p)),
            Err(_) => return false,
        },
        None => (host, None),
    };
    let name_ok = name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost");
    name_ok && p.is_none_or(|p| p == port)
}

/// What the server needs of a request head.
#[derive(Debug, PartialEq)]
struct Head {
    method: String,
    target: String,
    host: Option<String>,
}

#[derive(Debug)]
enum HeadError {
    /// The client closed before sending anything.
    Closed,
    TimedOut,
    TooLarge,
    Malformed(&'static str),
    Io(std::io::Error),
}

/// Reads the request head, all of it before `deadline` however the bytes trickle in.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        let want = chunk.len().min(MAX_HEAD - buf.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) if buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Malformed("the head ended early")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::TimedOut);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    };
    parse_head(&buf[..end])
}

/// Where the head ends (after its blank line), if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(raw: &[u8]) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(raw).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(HeadError::Malformed("no request line"));
    };
    let mut host = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("a header line without `:`"));
        };
        if name.trim().eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err(HeadError::Malformed("two Host headers"));
            }
            host = Some(value.trim().to_string());
        }
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        host,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "xml" => "application/xml",
        "log" | "jsonl" | "txt" | "edn" | "toml" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

fn respond(
    s: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        status_text(status),
        body.len()
    );
    s.write_all(head.as_bytes())?;
    if !head_only {
        s.write_all(body)?;
    }
    s.flush()
}

fn send_file(s: &mut TcpStream, mut f: File, path: &Path, head_only: bool) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        content_type(path)
    );
    s.write_all(head.as_bytes())?;
    if !head_only {
        // At most the length announced: a file that grows meanwhile must not break framing.
        std::io::copy(&mut (&mut f).take(len), s)?;
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: &Reply) -> u16 {
        match r {
            Reply::Page(s, _) | Reply::Error(s, _) => *s,
            Reply::Redirect(_) => 301,
            Reply::File(..) => 200,
        }
    }

    #[test]
    fn nothing_outside_the_root_is_served() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("results");
        std::fs::create_dir_all(root.join("t/r1")).unwrap();
        std::fs::write(root.join("t/r1/config.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("t/r1", root.join("latest")).unwrap();
        let s = Server::new(&root, Limits::default()).unwrap();
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/t/%2E%2E/%2e%2e/secret.txt",
            "/out",
            "/t/..%2f..%2fsecret.txt",
            "/a%5c..%5csecret.txt",
        ] {
            let r = s.route(bad);
            assert!(matches!(status(&r), 403 | 404), "{bad} got {}", status(&r));
        }
        assert_eq!(status(&s.route("/latest/config.json")), 200);
        assert_eq!(status(&s.route("/t/r1")), 301);
        assert_eq!(status(&s.route("/t/r1/")), 200);
        assert_eq!(status(&s.route("/%zz")), 400);
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
    }

    #[test]
    fn only_the_loopback_names_with_this_port_are_this_server() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "127.0.0.1",
            "localhost",
        ] {
            assert!(host_allowed(ok, 8080), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:8081",
            "localhost:80",
            "127.0.0.1.evil.example:8080",
            "[::1]:8080",
            "localhost:",
            "",
        ] {
            assert!(!host_allowed(bad, 8080), "{bad}");
        }
    }

    #[test]
    fn a_head_is_parsed_with_its_host_and_two_hosts_are_refused() {
        let h = parse_head(b"GET /x HTTP/1.1\r\nhOsT: localhost:1\r\nAccept: */*\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                method: "GET".into(),
                target: "/x".into(),
                host: Some("localhost:1".into())
            }
        );
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
    }
}
