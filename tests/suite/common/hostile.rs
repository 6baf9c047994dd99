//! Apiservers that misbehave the way real ones (and the proxies in front of them) do, served
//! on loopback over real TLS with a kubeconfig that trusts them: every request gets the same
//! bad answer. Hand-written HTTP/1.1, so that the answers can be as broken as they need to be.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube_rescue::sim::tls::{ServerIdentity, kubeconfig_yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the server answers every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 401 Unauthorized, a Status as the apiserver sends it (an expired token).
    Unauthorized,
    /// 403 Forbidden for everything (RBAC that allows nothing).
    Forbidden,
    /// 429 Too Many Requests with Retry-After (API Priority and Fairness shedding load).
    TooManyRequests,
    /// 200 with an HTML page (a proxy or a login page).
    Html,
    /// 200 with a Content-Length the body never reaches: the connection closes midway.
    Truncated,
    /// 200, chunked, never ending: an endless list of nodes.
    EndlessChunked,
    /// 200, chunked, never ending: one node whose name never ends.
    EndlessString,
    /// 200 declaring 2 GB, sent at 1 byte per second.
    HugeSlow,
    /// TCP accepted, the TLS handshake never answered.
    TlsHang,
    /// Every connection closed as soon as it is accepted.
    CloseOnAccept,
}

impl Behaviour {
    pub const ALL: [Behaviour; 10] = [
        Behaviour::Unauthorized,
        Behaviour::Forbidden,
        Behaviour::TooManyRequests,
        Behaviour::Html,
        Behaviour::Truncated,
        Behaviour::EndlessChunked,
        Behaviour::EndlessString,
        Behaviour::HugeSlow,
        Behaviour::TlsHang,
        Behaviour::CloseOnAccept,
    ];
}

pub struct Hostile {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// The head of every request received (request line and headers).
    pub heads: Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server with `behaviour` on loopback and writes a kubeconfig for it.
pub async fn serve(behaviour: Behaviour) -> Hostile {
    let identity = ServerIdentity::generate("hostile", None).expect("certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config().expect("tls"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_yaml("hostile", addr, &identity.ca_pem, "expired-token"),
    )
    .expect("kubeconfig written");
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                match behaviour {
                    Behaviour::CloseOnAccept => drop(tcp),
                    Behaviour::TlsHang => {
                        // Hold the connection open and never answer the handshake.
                        let _keep = tcp;
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    _ => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            answer(tls, behaviour, seen).await;
                        }
                    }
                }
            });
        }
    });
    Hostile {
        addr,
        kubeconfig,
        connections,
        heads,
        _dir: dir,
        task,
    }
}

/// Reads one request head; None when the connection ends.
async fn request_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    // Skip a request body (the write probe's POST), by its Content-Length.
    let length = text
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(text)
}

fn status(code: u16, reason: &str, message: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{message}","reason":"{reason}","code":{code}}}"#
    )
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    behaviour: Behaviour,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) {
    while let Some(head) = request_head(&mut stream).await {
        if let Ok(mut heads) = seen.lock() {
            heads.push(head.clone());
        }
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .split('?')
            .next()
            .unwrap_or("/")
            .to_string();
        let simple = |code: u16, text: &str, extra: &str, content_type: &str, body: String| {
            format!(
                "HTTP/1.1 {code} {text}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let reply = match behaviour {
            Behaviour::Unauthorized => simple(
                401,
                "Unauthorized",
                "",
                "application/json",
                status(401, "Unauthorized", "Unauthorized"),
            ),
            Behaviour::Forbidden => simple(
                403,
                "Forbidden",
                "",
                "application/json",
                status(
                    403,
                    "Forbidden",
                    &format!(
                        "forbidden: User \\\"oncall\\\" cannot get path \\\"{path}\\\""
                    ),
                ),
            ),
            Behaviour::TooManyRequests => simple(
                429,
                "Too Many Requests",
                "Retry-After: 7\r\n",
                "application/json",
                status(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                ),
            ),
            Behaviour::Html => simple(
                200,
                "OK",
                "",
                "text/html",
                "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>\n<body>Please sign in.</body></html>\n".into(),
            ),
            Behaviour::Truncated => {
                let part = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[{"metadata":{"name":"n1"#;
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{part}"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = stream.flush().await;
                let _ = stream.shutdown().await;
                return;
            }
            Behaviour::EndlessChunked => {
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let opening = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":["#;
                let item = r#"{"metadata":{"name":"node","uid":"u"}},"#.repeat(1000);
                let mut chunk = format!("{:x}\r\n{opening}\r\n", opening.len());
                loop {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    chunk = format!("{:x}\r\n{item}\r\n", item.len());
                }
            }
            Behaviour::EndlessString => {
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let opening = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"node-"#;
                let filler = "a".repeat(64 * 1024);
                let mut chunk = format!("{:x}\r\n{opening}\r\n", opening.len());
                loop {
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    chunk = format!("{:x}\r\n{filler}\r\n", filler.len());
                }
            }
            Behaviour::HugeSlow => {
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n";
                if stream.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Behaviour::TlsHang | Behaviour::CloseOnAccept => return,
        };
        if stream.write_all(reply.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// Peak resident memory of a running process so far (VmHWM from /proc), in bytes.
pub fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
