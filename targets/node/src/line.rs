//! Reading newline-delimited JSON from a socket with a cap on line length, so that one
//! endless line cannot take all the node's memory.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longest client request line.
pub const MAX_CLIENT_LINE: usize = 1 << 20;
/// Longest peer message line (log entries and snapshots travel this way).
pub const MAX_PEER_LINE: usize = 256 << 20;
/// Longest first line on a peer connection: the hello, read before the sender is known,
/// so a stranger can make the node buffer no more than this.
pub const MAX_HELLO_LINE: usize = 4 << 10;

/// One read from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Longer than the cap (the rest of the stream cannot be trusted to be in step).
    TooLong,
    /// Not UTF-8.
    NotText,
}

/// Reads lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: BufReader<R>,
    max: usize,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            max,
            buf: Vec::new(),
        }
    }

    /// Changes the cap for the lines that follow (a peer earns the big one by its hello).
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// The next line without its newline; `None` at end of stream. A last line without a
    /// newline is still a line.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let n = (&mut self.inner)
            .take(self.max as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if self.buf.len() > self.max {
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(
            match String::from_utf8(std::mem::take(&mut self.buf)) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::NotText,
            },
        ))
    }
}

/// The start of a line, for a log message about it.
pub fn clip(line: &str) -> String {
    const SHOWN: usize = 200;
    match line.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_caps_and_ends() {
        let data: &[u8] = b"ab\r\n\n0123456789ABC\nok\n\xff\nlast";
        let mut r = LineReader::new(data, 10);
        assert_eq!(r.next().await.unwrap(), Some(Line::Text("ab".into())));
        assert_eq!(r.next().await.unwrap(), Some(Line::Text("".into())));
        assert_eq!(r.next().await.unwrap(), Some(Line::TooLong));
        let ok_at = data.windows(2).position(|w| w == b"ok").unwrap();
        let mut r = LineReader::new(&data[ok_at..], 10);
        assert_eq!(r.next().await.unwrap(), Some(Line::Text("ok".into())));
        assert_eq!(r.next().await.unwrap(), Some(Line::NotText));
        assert_eq!(r.next().await.unwrap(), Some(Line::Text("last".into())));
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn endless_line_is_cut_at_the_cap_without_buffering_it() {
        // 8 MiB without a newline: the reader stops after cap + 1 bytes.
        let data = vec![b'x'; 8 << 20];
        let mut r = LineReader::new(&data[..], MAX_HELLO_LINE);
        assert_eq!(r.next().await.unwrap(), Some(Line::TooLong));
        assert!(
            r.buf.capacity() <= 4 * MAX_HELLO_LINE,
            "{}",
            r.buf.capacity()
        );
        let mut r = LineReader::new(&b"{\"hello\":\"n1\"}\nabcdef\n"[..], 20);
        assert!(matches!(r.next().await.unwrap(), Some(Line::Text(_))));
        r.set_max(3);
        assert_eq!(r.next().await.unwrap(), Some(Line::TooLong));
    }
}
