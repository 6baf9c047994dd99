//! Reading an answer as it streams in, so that memory holds what is kept, not the bytes sent:
//! JSON is decoded by serde straight from the stream (in a blocking thread fed chunk by
//! chunk), a list stops at a stated number of items, and text is taken line by line. Every
//! body also passes the size cap of [`super::transport`]. An answer that is not Kubernetes (an
//! HTML page from a proxy, a body cut short) fails as such, never as an empty list.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use http_body_util::BodyExt;
use kube::client::Body;

use serde::Deserialize;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::transport::BodyLimit;

/// The decoder's read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// How long the body of an error answer is waited for.
const ERROR_BODY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// How much of an error answer is read: a Status is small; the rest of a page is not needed.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// Sends a GET with its own cap on the body; an answer other than 2xx comes back as
/// `kube::Error::Api` with the apiserver's Status (or the first line of what came instead).
pub async fn get(
    client: &kube::Client,
    path_and_query: &str,
    limit: usize,
) -> Result<http::Response<Body>, kube::Error> {
    let response = send_get(client, path_and_query, limit).await?;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        // The status is the answer: a body that fails, drips or runs over only shortens what
        // is quoted of it.
        let text = tokio::time::timeout(
            ERROR_BODY_WAIT,
            prefix(response.into_body(), ERROR_BODY_BYTES),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        return Err(status_error(status.as_u16(), &text));
    }
    Ok(response)
}

/// A response body as the client gives it.
pub trait ReadBody: http_body::Body<Data = Bytes, Error = kube::Error> + Send + Unpin {}

impl<B: http_body::Body<Data = Bytes, Error = kube::Error> + Send + Unpin> ReadBody for B {}

/// A failure while a body streams in, after the status and headers came: the server
/// answered, then the answer stopped (a dropped connection mid-body is a body cut short,
/// not an unreachable server). A cap passed keeps its own error.
fn cut_short(error: kube::Error, received: usize) -> kube::Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if e.is::<super::transport::TooLarge>() || e.is::<NotKubernetes>() {
            return error;
        }
        source = e.source();
    }
    // The innermost cause says it best ("end of file before message length reached").
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    kube::Error::Service(Box::new(NotKubernetes(format!(
        "the answer was cut short after {received} bytes ({cause})"
    ))))
}

/// Sends a GET with its own cap on the body and returns the answer whatever its status (a
/// health endpoint answers 500 when it fails).
pub async fn send_get(
    client: &kube::Client,
    path_and_query: &str,
    limit: usize,
) -> Result<http::Response<Body>, kube::Error> {
    let mut request = http::Request::get(path_and_query)
        .body(Body::empty())
        .map_err(kube::Error::HttpError)?;
    request.extensions_mut().insert(BodyLimit(limit));
    client.send(request).await
}

/// At most `max` bytes of a body; the rest is not read.
pub async fn prefix(mut body: impl ReadBody, max: usize) -> Result<Vec<u8>, kube::Error> {
    let mut out = Vec::new();
    while out.len() < max {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| cut_short(e, out.len()))?;
        if let Ok(data) = frame.into_data() {
            let room = max - out.len();
            out.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(out)
}

/// The whole body, within the cap its request set.
pub async fn all(mut body: impl ReadBody) -> Result<Bytes, kube::Error> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| cut_short(e, out.len()))?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// The reason and message of an error answer: its Status's, or (reason empty) a few words on
/// whatever came instead.
pub fn status_parts(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<kube::core::Status>(body) {
        Ok(status) if !status.message.is_empty() || !status.reason.is_empty() => {
            (status.reason, status.message)
        }
        _ => (String::new(), excerpt(&String::from_utf8_lossy(body))),
    }
}

/// An error answer as kube reports one: the apiserver's Status, or a Status made of the first
/// line of whatever came instead.
fn status_error(code: u16, body: &[u8]) -> kube::Error {
    if let Ok(status) = serde_json::from_slice::<kube::core::Status>(body)
        && (status.code != 0 || !status.message.is_empty())
    {
        let status = if status.code == 0 {
            status.with_code(code)
        } else {
            status
        };
        return kube::Error::Api(status.boxed());
    }
    let text = String::from_utf8_lossy(body);
    kube::Error::Api(
        kube::core::Status::failure(&excerpt(&text), "")
            .with_code(code)
            .boxed(),
    )
}

/// What a body that is not a Kubernetes answer looks like, in a few words.
pub fn excerpt(text: &str) -> String {
    let trimmed = text.trim_start();
    let lower: String = trimmed.chars().take(512).collect::<String>().to_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.contains("<body")
    {
        let title = lower
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.trim().to_string())
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!(
                "an HTML page (\"{t}\"), not a Kubernetes answer: a proxy or login page answered?"
            ),
            None => "an HTML page, not a Kubernetes answer: a proxy or login page answered?".into(),
        };
    }
    let line = trimmed.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return "an empty answer".into();
    }
    let mut short: String = line.chars().take(160).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// A JSON decoding failure that is not a transport failure: the answer is not what a
/// Kubernetes apiserver sends (or it was cut short).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotKubernetes(pub String);

/// A list longer than kube-rescue reads.
#[derive(Debug, thiserror::Error)]
#[error("{path}: a list of more than {max} items (kube-rescue's limit; not read further)")]
pub struct TooManyItems {
    pub path: String,
    pub max: usize,
}

/// The longest JSON string kept: Kubernetes stores objects of at most 1.5 MiB, so a longer
/// string is not from an apiserver (and serde would hold all of it in memory).
pub const MAX_JSON_STRING: usize = 4 * 1024 * 1024;
/// The longest run of bytes outside strings between two separators (a number, a literal).
const MAX_JSON_TOKEN: usize = 4 * 1024;

/// Where a JSON scan is: inside a string (and after a backslash), and how long the current
/// string or token has run.
#[derive(Default)]
struct JsonScan {
    in_string: bool,
    escaped: bool,
    run: usize,
}

impl JsonScan {
    /// Follows `bytes`; an error when a string or token runs longer than any apiserver sends.
    fn follow(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    self.run = 0;
                    continue;
                }
                self.run += 1;
                if self.run > MAX_JSON_STRING {
                    return Err(std::io::Error::other(format!(
                        "a JSON string longer than {} MiB: no apiserver sends one",
                        MAX_JSON_STRING / (1024 * 1024)
                    )));
                }
            } else if b == b'"' {
                self.in_string = true;
                self.run = 0;
            } else if matches!(
                b,
                b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\n' | b'\r' | b'\t'
            ) {
                self.run = 0;
            } else {
                self.run += 1;
                if self.run > MAX_JSON_TOKEN {
                    return Err(std::io::Error::other(format!(
                        "a JSON number or word longer than {} KiB: no apiserver sends one",
                        MAX_JSON_TOKEN / 1024
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Feeds the chunks of a body to a blocking reader, refusing strings and tokens longer than
/// an apiserver sends.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    scan: JsonScan,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        self.scan.follow(&buf[..n])?;
        Ok(n)
    }
}

/// Decodes a body as JSON while it streams in, with `decode` run in a blocking thread.
async fn decode_with<T, F>(mut body: impl ReadBody, decode: F) -> Result<T, kube::Error>
where
    T: Send + 'static,
    F: FnOnce(ChunkReader) -> Result<T, kube::Error> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let reader = ChunkReader {
        chunks: rx,
        current: Bytes::new(),
        scan: JsonScan::default(),
    };
    let decoder = tokio::task::spawn_blocking(move || decode(reader));
    let mut failed = None;
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    received += data.len();
                    if tx.send(data).await.is_err() {
                        // The decoder stopped early: its error says why.
                        break;
                    }
                }
            }
            Err(e) => {
                failed = Some(cut_short(e, received));
                break;
            }
        }
    }
    drop(tx);
    let decoded = decoder.await.map_err(|e| {
        kube::Error::Service(Box::new(NotKubernetes(format!("the decoder failed: {e}"))))
    });
    match failed {
        // A transport failure (a cap, a dropped connection) explains a decoding error.
        Some(e) => Err(e),
        None => decoded?,
    }
}

fn not_kubernetes(error: &serde_json::Error) -> kube::Error {
    let what = if error.is_io() {
        // The scan's own words: a string or token longer than any apiserver sends.
        format!("the answer is not what Kubernetes sends: {error}")
    } else if error.is_eof() {
        "the answer was cut short (incomplete JSON)".to_string()
    } else if error.is_syntax() && error.line() == 1 && error.column() <= 1 {
        "the answer is not JSON: not a Kubernetes answer (a proxy answered?)".to_string()
    } else {
        format!("the answer is not what Kubernetes sends: {error}")
    };
    kube::Error::Service(Box::new(NotKubernetes(what)))
}

/// Decodes a JSON body as `T` while it streams in.
pub async fn json<T: DeserializeOwned + Send + 'static>(
    body: impl ReadBody,
) -> Result<T, kube::Error> {
    decode_with(body, |reader| {
        serde_json::from_reader::<_, T>(std::io::BufReader::with_capacity(READ_BUFFER, reader))
            .map_err(|e| not_kubernetes(&e))
    })
    .await
}

/// Decodes the `items` of a Kubernetes list while it streams in, stopping after `max` items.
/// A body without `items` (an object of another kind) is not a list.
pub async fn list<K: DeserializeOwned + Send + 'static>(
    body: impl ReadBody,
    path: &str,
    max: usize,
) -> Result<Vec<K>, kube::Error> {
    let path = path.to_string();
    decode_with(body, move |reader| {
        // Buffered: serde reads a byte at a time, which a BufReader answers from memory.
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
            READ_BUFFER,
            reader,
        ));
        let seed = ListSeed::<K> {
            max,
            marker: PhantomData,
        };
        let items = match seed.deserialize(&mut de) {
            Ok(items) => items,
            Err(e) if e.to_string().starts_with(TOO_MANY) => {
                return Err(kube::Error::Service(Box::new(TooManyItems { path, max })));
            }
            Err(e) => return Err(not_kubernetes(&e)),
        };
        de.end().map_err(|e| not_kubernetes(&e))?;
        items.ok_or_else(|| {
            kube::Error::Service(Box::new(NotKubernetes(
                "the answer is JSON but not a Kubernetes list (no items)".into(),
            )))
        })
    })
    .await
}

/// The start of the error a list over its cap stops with.
const TOO_MANY: &str = "kube-rescue: too many items";

/// Reads `{"items": [...], ...}` keeping only the items, at most `max`.
struct ListSeed<K> {
    max: usize,
    marker: PhantomData<K>,
}

impl<'de, K: Deserialize<'de>> DeserializeSeed<'de> for ListSeed<K> {
    type Value = Option<Vec<K>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, K: Deserialize<'de>> Visitor<'de> for ListSeed<K> {
    type Value = Option<Vec<K>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut items = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "items" {
                items = Some(map.next_value_seed(ItemsSeed::<K> {
                    max: self.max,
                    marker: PhantomData,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(items)
    }
}

struct ItemsSeed<K> {
    max: usize,
    marker: PhantomData<K>,
}

impl<'de, K: Deserialize<'de>> DeserializeSeed<'de> for ItemsSeed<K> {
    type Value = Vec<K>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, K: Deserialize<'de>> Visitor<'de> for ItemsSeed<K> {
    type Value = Vec<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<K>()? {
            if out.len() >= self.max {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            out.push(item);
        }
        Ok(out)
    }
}

/// Hands a text body to `line` one line at a time as it streams in. A line longer than
/// `max_line` bytes means the body is not line-oriented text.
pub async fn lines(
    mut body: impl ReadBody,
    max_line: usize,
    mut line: impl FnMut(&str),
) -> Result<(), kube::Error> {
    let mut pending: Vec<u8> = Vec::new();
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| cut_short(e, received))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        pending.extend_from_slice(&data);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
            line(&String::from_utf8_lossy(&pending[start..start + end]));
            start += end + 1;
        }
        pending.drain(..start);
        if pending.len() > max_line {
            return Err(kube::Error::Service(Box::new(NotKubernetes(format!(
                "a line longer than {} KiB: not the text an apiserver sends",
                max_line / 1024
            )))));
        }
    }
    if !pending.is_empty() {
        line(&String::from_utf8_lossy(&pending));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(
        parts: &[&'static str],
    ) -> impl http_body::Body<Data = Bytes, Error = kube::Error> + Send + Unpin + 'static {
        let chunks: Vec<Result<http_body::Frame<Bytes>, kube::Error>> = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        http_body_util::StreamBody::new(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn lists_decode_across_chunks_and_stop_at_their_cap() {
        let items: Vec<serde_json::Value> = list(
            body(&[
                r#"{"kind":"NodeList","metadata":{},"ite"#,
                r#"ms":[{"a":1},{"a":2}]}"#,
            ]),
            "/api/v1/nodes",
            10,
        )
        .await
        .unwrap();
        assert_eq!(items.len(), 2);
        let over =
            list::<serde_json::Value>(body(&[r#"{"items":[{},{},{}]}"#]), "/api/v1/nodes", 2)
                .await
                .unwrap_err();
        assert!(
            over.to_string().contains("more than 2 items") || {
                let mut s = std::error::Error::source(&over);
                let mut found = false;
                while let Some(e) = s {
                    found |= e.to_string().contains("more than 2 items");
                    s = e.source();
                }
                found
            },
            "{over}"
        );
    }

    #[tokio::test]
    async fn html_and_cut_answers_are_not_kubernetes() {
        let html = list::<serde_json::Value>(
            body(&["<!DOCTYPE html><html><head><title>Sign in</title>"]),
            "/api/v1/nodes",
            10,
        )
        .await
        .unwrap_err();
        assert!(format!("{html:?}").contains("not JSON"), "{html:?}");
        let cut = list::<serde_json::Value>(body(&[r#"{"items":[{"a":"#]), "/x", 10)
            .await
            .unwrap_err();
        assert!(format!("{cut:?}").contains("cut short"), "{cut:?}");
        let not_a_list = list::<serde_json::Value>(body(&[r#"{"kind":"Status"}"#]), "/x", 10)
            .await
            .unwrap_err();
        assert!(
            format!("{not_a_list:?}").contains("no items"),
            "{not_a_list:?}"
        );
    }

    #[tokio::test]
    async fn endless_strings_and_numbers_stop_early() {
        let long = "a".repeat(MAX_JSON_STRING + 10);
        let text: &'static str =
            Box::leak(format!(r#"{{"items":[{{"name":"{long}"}}]}}"#).into_boxed_str());
        let e = list::<serde_json::Value>(body(&[text]), "/x", 10)
            .await
            .unwrap_err();
        assert!(
            format!("{e:?}").contains("JSON string longer than 4 MiB"),
            "{e:?}"
        );
        let digits: &'static str =
            Box::leak(format!(r#"{{"items":[{}]}}"#, "9".repeat(5000)).into_boxed_str());
        let e = list::<serde_json::Value>(body(&[digits]), "/x", 10)
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("number or word longer"), "{e:?}");
        // Escaped quotes stay inside their string.
        let items: Vec<serde_json::Value> =
            list(body(&[r#"{"items":[{"a":"say \"hi\", [ok]"}]}"#]), "/x", 10)
                .await
                .unwrap();
        assert_eq!(items[0]["a"], "say \"hi\", [ok]");
    }

    #[test]
    fn excerpts_name_html_pages() {
        assert_eq!(
            excerpt("<html><head><title>502 Bad Gateway</title></head>"),
            "an HTML page (\"502 bad gateway\"), not a Kubernetes answer: a proxy or login page answered?"
        );
        assert_eq!(
            excerpt("upstream connect error\nmore"),
            "upstream connect error"
        );
    }

    #[tokio::test]
    async fn lines_come_whole_across_chunks() {
        let mut seen = Vec::new();
        lines(body(&["a 1\nb", " 2\nc 3"]), 1024, |l| {
            seen.push(l.to_string())
        })
        .await
        .unwrap();
        assert_eq!(seen, ["a 1", "b 2", "c 3"]);
    }
}
