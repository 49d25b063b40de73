//! A small HTTP/1.1 server for `sunder serve`: GET and HEAD only, one thread per
//! connection, `Connection: close`. Only files inside the root can be reached.
//!
//! ```text
//!   request line ─► percent-decode ─► refuse `..`, NUL, `\` (403)
//!       ─► root.join(path) ─► canonicalize (symlinks resolved) ─► outside root? 403
//!       ─► "/"                       the runs table (index::index_page)
//!          a directory               its listing (a redirect first to add the `/`)
//!          <run>/report.html missing written now (write_report), then served
//!          a file                    its bytes
//! ```
//!
//! Hand-written rather than a framework because it needs so little, and because every
//! path decision is then in this one file, where the traversal rules can be read whole.

use super::escape::html;
use super::index;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

pub struct Server {
    /// Canonical: every served path must start with it.
    root: PathBuf,
}

impl Server {
    pub fn new(root: &Path) -> std::io::Result<Server> {
        Ok(Server {
            root: std::fs::canonicalize(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves forever.
    pub fn run(self, listener: TcpListener) -> std::io::Result<()> {
        let me = std::sync::Arc::new(self);
        for conn in listener.incoming() {
            let Ok(stream) = conn else { continue };
            let me = me.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                if let Err(e) = me.handle(stream) {
                    tracing::debug!("serve: connection: {e}");
                }
            });
        }
        Ok(())
    }

    fn handle(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let Some((method, target)) = read_head(&stream)? else {
            return respond(&mut stream, 400, "text/plain", b"bad request\n", false);
        };
        let head_only = method == "HEAD";
        if method != "GET" && !head_only {
            return respond(
                &mut stream,
                405,
                "text/plain",
                b"only GET and HEAD\n",
                false,
            );
        }
        match self.route(&target) {
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
            Reply::File(path) => send_file(&mut stream, &path, head_only),
            Reply::Error(status, why) => respond(
                &mut stream,
                status,
                "text/plain; charset=utf-8",
                format!("{why}\n").as_bytes(),
                head_only,
            ),
        }
    }

    /// Decides what a request target gets. Public to the module for its tests.
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
        let canon = match std::fs::canonicalize(&full) {
            Ok(c) => c,
            Err(_) => return self.missing(&full, &rel),
        };
        if !canon.starts_with(&self.root) {
            return Reply::Error(403, "forbidden: outside the results directory".into());
        }
        if canon.is_dir() {
            if !decoded.ends_with('/') {
                return Reply::Redirect(format!("{path}/"));
            }
            if rel.as_os_str().is_empty() && query != Some("list") {
                let rows = index::runs(&self.root);
                return Reply::Page(
                    200,
                    index::index_page(&self.root.display().to_string(), &rows),
                );
            }
            return match index::listing_page(&decoded, &canon) {
                Ok(page) => Reply::Page(200, page),
                Err(e) => Reply::Error(500, format!("list {}: {e}", decoded)),
            };
        }
        Reply::File(canon)
    }

    /// A missing `report.html` in a run directory is written on request (runs from before
    /// reports, or whose report failed); anything else missing is a 404.
    fn missing(&self, full: &Path, rel: &Path) -> Reply {
        let not_found = Reply::Error(404, format!("not found: /{}", rel.display()));
        if full.file_name().and_then(|n| n.to_str()) != Some(super::REPORT) {
            return not_found;
        }
        let Some(dir) = full.parent().and_then(|d| std::fs::canonicalize(d).ok()) else {
            return not_found;
        };
        if !dir.starts_with(&self.root)
            || !(dir.join("results.json").is_file() || dir.join("config.json").is_file())
        {
            return not_found;
        }
        match super::write_report(&dir) {
            Ok(p) => Reply::File(p),
            Err(e) => Reply::Page(
                500,
                format!(
                    "<!DOCTYPE html><title>report failed</title><pre>could not write the report: {}</pre>",
                    html(&format!("{e:#}"))
                ),
            ),
        }
    }
}

enum Reply {
    Page(u16, String),
    Redirect(String),
    File(PathBuf),
    Error(u16, String),
}

/// The request line's method and target; `None` for a malformed head.
fn read_head(stream: &TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut r = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(m), Some(t)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (m, t) = (m.to_string(), t.to_string());
    // Drain the headers: none matter, but a client may wait until they are read.
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    Ok(Some((m, t)))
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

fn send_file(s: &mut TcpStream, path: &Path, head_only: bool) -> std::io::Result<()> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            return respond(
                s,
                404,
                "text/plain",
                format!("cannot open: {e}\n").as_bytes(),
                head_only,
            );
        }
    };
    let len = f.metadata()?.len();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        content_type(path)
    );
    s.write_all(head.as_bytes())?;
    if !head_only {
        std::io::copy(&mut f, s)?;
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
            Reply::File(_) => 200,
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
        let s = Server::new(&root).unwrap();
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
}
