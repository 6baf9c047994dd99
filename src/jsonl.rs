//! Reading JSON-lines files written by kube-rescue (the audit log, the incident journal) with
//! bounded memory: a line longer than [`MAX_LINE`] is skipped without being held, and a last
//! line without its newline (a write cut short by a crash or a full disk) is told apart from
//! a damaged line in the middle, so that a reader can say so and keep everything before it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The longest line kept (longer lines are reported, not read into memory).
pub const MAX_LINE: usize = 1024 * 1024;

/// One line that could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct BadLine {
    /// 1-based.
    pub number: usize,
    pub why: String,
    /// The file's last line, without its newline: a write that was cut short.
    pub torn: bool,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.number == 0 {
            write!(f, "{}", self.why)
        } else if self.torn {
            write!(
                f,
                "line {} is incomplete (a write was cut short: a crash or a full disk): {}",
                self.number, self.why
            )
        } else {
            write!(f, "line {} could not be read: {}", self.number, self.why)
        }
    }
}

/// The records of a file, in order, and the lines that could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct Lines<T> {
    pub records: Vec<T>,
    pub bad: Vec<BadLine>,
}

impl<T> Default for Lines<T> {
    fn default() -> Self {
        Lines {
            records: Vec::new(),
            bad: Vec::new(),
        }
    }
}

/// Reads `path` line by line, decoding each non-empty line as a `T`. A missing file is an
/// empty result; any other failure to open or read it is an error.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Lines<T>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lines::default()),
        Err(e) => return Err(e),
    };
    read_from(BufReader::new(file))
}

/// [`read`] from any reader.
pub fn read_from<T: serde::de::DeserializeOwned>(
    reader: impl BufRead,
) -> std::io::Result<Lines<T>> {
    let mut records = Vec::new();
    let bad = each(reader, |record| records.push(record))?;
    Ok(Lines { records, bad })
}

/// The most bad lines listed (a file of nothing but damage says how many more there were).
const MAX_BAD: usize = 100;

/// Hands each record of a reader to `record` as it is read (nothing is collected), and
/// returns the lines that could not be used.
pub fn each<T: serde::de::DeserializeOwned>(
    mut reader: impl BufRead,
    mut record: impl FnMut(T),
) -> std::io::Result<Vec<BadLine>> {
    let mut bad = Vec::new();
    let mut more_bad = 0usize;
    let mut push_bad = |b: BadLine, bad: &mut Vec<BadLine>| {
        if bad.len() < MAX_BAD || b.torn {
            bad.push(b);
        } else {
            more_bad += 1;
        }
    };
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        number += 1;
        let (ended, too_long) = next_line(&mut reader, &mut line)?;
        let torn = !ended;
        if torn && line.is_empty() && !too_long {
            break;
        }
        if too_long {
            let why = format!("longer than {} KiB", MAX_LINE / 1024);
            push_bad(BadLine { number, why, torn }, &mut bad);
        } else if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<T>(&line) {
                Ok(decoded) => record(decoded),
                Err(e) => {
                    let why = e.to_string();
                    push_bad(BadLine { number, why, torn }, &mut bad);
                }
            }
        }
        if torn {
            break;
        }
    }
    if more_bad > 0 {
        bad.push(BadLine {
            number: 0,
            why: format!("and {more_bad} more lines that could not be read"),
            torn: false,
        });
    }
    Ok(bad)
}

/// Reads one line into `line` (without its newline), keeping at most [`MAX_LINE`] bytes.
/// Returns whether it ended with a newline, and whether it was longer than the cap.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(bool, bool)> {
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((false, too_long));
        }
        let (part, found) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i)),
            None => (chunk, None),
        };
        if line.len() + part.len() > MAX_LINE {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(part);
        }
        let used = found.map_or(part.len(), |i| i + 1);
        reader.consume(used);
        if found.is_some() {
            return Ok((true, too_long));
        }
    }
}

/// Reads at most `limit` bytes of a reader (for a small file that might not be small).
pub fn read_capped(reader: impl Read, limit: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    let over = bytes.len() as u64 > limit;
    bytes.truncate(limit as usize);
    Ok((bytes, over))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Lines<serde_json::Value> {
        read_from(std::io::Cursor::new(text.to_vec())).unwrap()
    }

    #[test]
    fn a_torn_last_line_is_told_apart_and_everything_before_it_is_kept() {
        let read = lines(b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":3,\"b\":\"cut");
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.bad.len(), 1);
        assert!(read.bad[0].torn);
        assert_eq!(read.bad[0].number, 4);
        assert!(
            read.bad[0].to_string().contains("cut short"),
            "{}",
            read.bad[0]
        );
        // A complete last line without its newline is still a record.
        let read = lines(b"{\"a\":1}\n{\"a\":2}");
        assert_eq!(read.records.len(), 2);
        assert!(read.bad.is_empty());
        // Damage in the middle is not a torn line, and reading goes on after it.
        let read = lines(b"{\"a\":1}\nnot json\n{\"a\":2}\n");
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.bad.len(), 1);
        assert!(!read.bad[0].torn);
        assert_eq!(read.bad[0].number, 2);
        assert_eq!(lines(b"").records.len(), 0);
    }

    #[test]
    fn an_endless_line_is_skipped_without_being_held() {
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        text.extend(b"\n{\"a\":2}\n");
        let read = lines(&text);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.bad.len(), 1);
        assert!(read.bad[0].why.contains("longer than"), "{:?}", read.bad);
        let (bytes, over) = read_capped(&b"abcdef"[..], 4).unwrap();
        assert_eq!((bytes.as_slice(), over), (&b"abcd"[..], true));
    }
}
