//! The simulator's record of every HTTP request it answered, served at `GET /sim/requests` so
//! tests can count requests and prove that read-only mode sent no write.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// How many requests are kept; older ones are dropped first.
const CAPACITY: usize = 200_000;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Increases by one per request; `?since=` takes it.
    pub seq: u64,
    /// When the request arrived (RFC 3339, UTC, microseconds).
    pub time: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub latency_ms: f64,
    pub user_agent: String,
    /// The Accept header (what representation was asked for: a table, metadata only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub accept: String,
}

#[derive(Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    records: VecDeque<RequestRecord>,
}

impl RequestLog {
    /// Appends one request and returns its sequence number.
    pub fn push(&self, mut record: RequestRecord) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.next_seq += 1;
        record.seq = inner.next_seq;
        if inner.records.len() == CAPACITY {
            inner.records.pop_front();
        }
        inner.records.push_back(record);
        inner.next_seq
    }

    /// Requests with a sequence number above `since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<RequestRecord> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .records
            .iter()
            .filter(|r| r.seq > since)
            .cloned()
            .collect()
    }

    /// The sequence number of the latest request (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            seq: 0,
            time: String::new(),
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            status: 200,
            latency_ms: 1.0,
            user_agent: String::new(),
            accept: String::new(),
        }
    }

    #[test]
    fn numbers_requests_and_filters_by_since() {
        let log = RequestLog::default();
        assert_eq!(log.push(record("/a")), 1);
        assert_eq!(log.push(record("/b")), 2);
        let after_first = log.since(1);
        assert_eq!(after_first.len(), 1);
        assert_eq!(after_first[0].path, "/b");
        assert_eq!(log.last_seq(), 2);
    }
}
