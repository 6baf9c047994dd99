//! The apiserver's `/livez`, `/readyz` and `/healthz` endpoints, rendered byte for byte as
//! `k8s.io/apiserver/pkg/server/healthz` does. Pure: no I/O, no clock; the server owns the state.

use std::collections::{BTreeMap, BTreeSet};

/// Which health endpoint is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Livez,
    Readyz,
    Healthz,
}

impl Endpoint {
    /// The name the apiserver prints in `<name> check passed`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Livez => "livez",
            Endpoint::Readyz => "readyz",
            Endpoint::Healthz => "healthz",
        }
    }

    /// `/livez`, `/readyz` or `/healthz`, if `path` starts with one of them; the rest of the path
    /// (`""` or `/etcd`) comes back with it.
    pub fn from_path(path: &str) -> Option<(Endpoint, &str)> {
        for endpoint in [Endpoint::Livez, Endpoint::Readyz, Endpoint::Healthz] {
            if let Some(rest) = path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(endpoint.name()))
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return Some((endpoint, rest));
            }
        }
        None
    }
}

/// The post-start hooks of a 1.3x kube-apiserver, in the order it reports them, plus
/// `ca-registration`, the hook that writes `kube-system/extension-apiserver-authentication`.
pub const POST_START_HOOKS: &[&str] = &[
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/ca-registration",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-apiserver-identity-lease-controller",
    "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
    "poststarthook/start-legacy-token-tracking-controller",
    "poststarthook/start-service-ip-repair-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/bootstrap-controller",
    "poststarthook/aggregator-reload-proxy-client-cert",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-status-local-available-controller",
    "poststarthook/apiservice-status-remote-available-controller",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-discovery-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller",
];

const HEAD_LIVEZ: &[&str] = &["ping", "log", "etcd"];
const HEAD_READYZ: &[&str] = &["ping", "log", "etcd", "etcd-readiness", "informer-sync"];
const TAIL_READYZ: &[&str] = &["shutdown"];

/// The check names one endpoint reports, in the apiserver's order.
pub fn check_names(endpoint: Endpoint) -> Vec<&'static str> {
    let (head, tail): (&[&str], &[&str]) = match endpoint {
        Endpoint::Livez | Endpoint::Healthz => (HEAD_LIVEZ, &[]),
        Endpoint::Readyz => (HEAD_READYZ, TAIL_READYZ),
    };
    head.iter()
        .chain(POST_START_HOOKS)
        .chain(tail)
        .copied()
        .collect()
}

/// Whether a real apiserver's `endpoint` has a check called `name`.
pub fn is_check(endpoint: Endpoint, name: &str) -> bool {
    check_names(endpoint).contains(&name)
}

/// Which checks fail, per endpoint. `/healthz` fails a check when either `/livez` or `/readyz`
/// fails it (a real apiserver shares the checks between the three).
#[derive(Debug, Clone)]
pub struct HealthChecks {
    /// The checks of `/livez` and `/healthz`, in order.
    livez_checks: Vec<String>,
    /// The checks of `/readyz`, in order.
    readyz_checks: Vec<String>,
    /// check name -> the error the check returns (shown only on the check's own path)
    livez_failing: BTreeMap<String, String>,
    readyz_failing: BTreeMap<String, String>,
}

impl Default for HealthChecks {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthChecks {
    /// A real apiserver's checks, all passing.
    pub fn new() -> Self {
        Self::with_checks(check_names(Endpoint::Livez), check_names(Endpoint::Readyz))
    }

    /// Custom check lists (`/healthz` uses the `/livez` list), all passing.
    pub fn with_checks<S: Into<String>>(
        livez: impl IntoIterator<Item = S>,
        readyz: impl IntoIterator<Item = S>,
    ) -> Self {
        HealthChecks {
            livez_checks: livez.into_iter().map(Into::into).collect(),
            readyz_checks: readyz.into_iter().map(Into::into).collect(),
            livez_failing: BTreeMap::new(),
            readyz_failing: BTreeMap::new(),
        }
    }

    /// The checks `endpoint` reports, in order.
    pub fn names(&self, endpoint: Endpoint) -> &[String] {
        match endpoint {
            Endpoint::Livez | Endpoint::Healthz => &self.livez_checks,
            Endpoint::Readyz => &self.readyz_checks,
        }
    }

    /// Whether `endpoint` has a check called `name`.
    pub fn has(&self, endpoint: Endpoint, name: &str) -> bool {
        self.names(endpoint).iter().any(|n| n == name)
    }

    /// Replace the set of failing `/readyz` checks (`[]` clears). Names that `/readyz` does not
    /// have are returned and otherwise ignored.
    pub fn set_readyz_failing<S: AsRef<str>>(&mut self, checks: &[S]) -> Vec<String> {
        let known = &self.readyz_checks;
        Self::set(&mut self.readyz_failing, known, checks)
    }

    /// Replace the set of failing `/livez` checks (`[]` clears); unknown names are returned.
    pub fn set_livez_failing<S: AsRef<str>>(&mut self, checks: &[S]) -> Vec<String> {
        let known = &self.livez_checks;
        Self::set(&mut self.livez_failing, known, checks)
    }

    /// Fail one check on `endpoint` with the given error text (what `/readyz/<check>` shows).
    /// Returns false if the endpoint has no such check.
    pub fn fail(&mut self, endpoint: Endpoint, check: &str, error: &str) -> bool {
        if !self.has(endpoint, check) {
            return false;
        }
        let map = match endpoint {
            Endpoint::Livez => &mut self.livez_failing,
            Endpoint::Readyz | Endpoint::Healthz => &mut self.readyz_failing,
        };
        map.insert(check.to_owned(), error.to_owned());
        true
    }

    /// One check passes again on `endpoint`.
    pub fn pass(&mut self, endpoint: Endpoint, check: &str) {
        match endpoint {
            Endpoint::Livez => self.livez_failing.remove(check),
            Endpoint::Readyz | Endpoint::Healthz => self.readyz_failing.remove(check),
        };
    }

    /// Every check passes again.
    pub fn clear(&mut self) {
        self.livez_failing.clear();
        self.readyz_failing.clear();
    }

    /// The failing checks of `endpoint`, in the apiserver's order.
    pub fn failing(&self, endpoint: Endpoint) -> Vec<&str> {
        self.names(endpoint)
            .iter()
            .map(String::as_str)
            .filter(|name| self.error(endpoint, name).is_some())
            .collect()
    }

    /// Whether `endpoint` passes as a whole.
    pub fn passes(&self, endpoint: Endpoint) -> bool {
        self.failing(endpoint).is_empty()
    }

    fn set<S: AsRef<str>>(
        map: &mut BTreeMap<String, String>,
        known: &[String],
        checks: &[S],
    ) -> Vec<String> {
        map.clear();
        let mut unknown = Vec::new();
        for check in checks {
            let check = check.as_ref();
            if known.iter().any(|k| k == check) {
                map.insert(check.to_owned(), default_error(check));
            } else {
                unknown.push(check.to_owned());
            }
        }
        unknown
    }

    fn error(&self, endpoint: Endpoint, check: &str) -> Option<&str> {
        let found = match endpoint {
            Endpoint::Livez => self.livez_failing.get(check),
            Endpoint::Readyz => self.readyz_failing.get(check),
            Endpoint::Healthz => self
                .livez_failing
                .get(check)
                .or_else(|| self.readyz_failing.get(check)),
        };
        found.map(String::as_str)
    }

    /// The status code and body the apiserver sends for `endpoint` + `path_rest` (`""`, `"/"`,
    /// `"/etcd"`, `"/poststarthook/ca-registration"`) with the raw query string `query`
    /// (`verbose`, `exclude=<check>` repeated).
    pub fn render(&self, endpoint: Endpoint, path_rest: &str, query: &str) -> (u16, String) {
        let check = path_rest.trim_start_matches('/');
        if !check.is_empty() {
            return self.render_one(endpoint, check);
        }
        let params = parse_query(query);
        let verbose = params.iter().any(|(k, _)| k == "verbose");
        let mut excluded: BTreeSet<String> = params
            .into_iter()
            .filter(|(k, _)| k == "exclude")
            .map(|(_, v)| v)
            .collect();

        let mut out = String::new();
        let mut failed = false;
        for name in self.names(endpoint) {
            if excluded.remove(name) {
                out.push_str(&format!("[+]{name} excluded: ok\n"));
            } else if self.error(endpoint, name).is_some() {
                failed = true;
                out.push_str(&format!("[-]{name} failed: reason withheld\n"));
            } else {
                out.push_str(&format!("[+]{name} ok\n"));
            }
        }
        if !excluded.is_empty() {
            let quoted: Vec<String> = excluded
                .iter()
                .map(|n| crate::validate::go_quote(n))
                .collect();
            out.push_str(&format!(
                "warn: some health checks cannot be excluded: no matches for {}\n",
                quoted.join(",")
            ));
        }
        let name = endpoint.name();
        if failed {
            // Always verbose on failure; http.Error appends a newline.
            out.push_str(&format!("{name} check failed\n"));
            return (500, out);
        }
        if !verbose {
            return (200, "ok".to_owned());
        }
        out.push_str(&format!("{name} check passed\n"));
        (200, out)
    }

    fn render_one(&self, endpoint: Endpoint, check: &str) -> (u16, String) {
        if !self.has(endpoint, check) {
            return (404, "404 page not found\n".to_owned());
        }
        match self.error(endpoint, check) {
            Some(error) => (500, format!("internal server error: {error}\n")),
            None => (200, "ok".to_owned()),
        }
    }
}

/// The error a failing check returns on its own path, as the apiserver words it.
fn default_error(check: &str) -> String {
    match check {
        "etcd" | "etcd-readiness" => "etcd client connection not yet established".to_owned(),
        "informer-sync" => "informers not started yet".to_owned(),
        "shutdown" => "process is shutting down".to_owned(),
        "log" => "logging blocked".to_owned(),
        "autoregister-completion" => "missing APIService: [v1beta1.metrics.k8s.io]".to_owned(),
        _ if check.starts_with("poststarthook/") => "not finished".to_owned(),
        _ => "check failed".to_owned(),
    }
}

/// `a=b&c&exclude=x%2Fy` -> pairs, percent- and plus-decoded (as Go's url.ParseQuery).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split(['&', ';'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> HealthChecks {
        HealthChecks::with_checks(
            ["ping", "log", "etcd", "poststarthook/ca-registration"],
            [
                "ping",
                "log",
                "etcd",
                "informer-sync",
                "poststarthook/ca-registration",
                "shutdown",
            ],
        )
    }

    #[test]
    fn healthy_quiet_is_ok() {
        assert_eq!(small().render(Endpoint::Readyz, "", ""), (200, "ok".into()));
        assert_eq!(
            small().render(Endpoint::Livez, "/", "exclude=etcd"),
            (200, "ok".into())
        );
    }

    #[test]
    fn healthy_verbose_lists_every_check() {
        let (code, body) = small().render(Endpoint::Livez, "", "verbose");
        assert_eq!(code, 200);
        assert_eq!(
            body,
            "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]poststarthook/ca-registration ok\nlivez check passed\n"
        );
    }

    #[test]
    fn failing_is_verbose_even_without_asking() {
        let mut health = small();
        assert!(
            health
                .set_readyz_failing(&["poststarthook/ca-registration"])
                .is_empty()
        );
        let expected = "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]informer-sync ok\n\
             [-]poststarthook/ca-registration failed: reason withheld\n[+]shutdown ok\n\
             readyz check failed\n";
        assert_eq!(
            health.render(Endpoint::Readyz, "", ""),
            (500, expected.to_owned())
        );
        assert_eq!(
            health.render(Endpoint::Readyz, "", "verbose=1"),
            (500, expected.to_owned())
        );
        // /livez is not affected by readyz failures, /healthz is.
        assert_eq!(health.render(Endpoint::Livez, "", ""), (200, "ok".into()));
        assert_eq!(health.render(Endpoint::Healthz, "", "").0, 500);
        assert_eq!(
            health.failing(Endpoint::Readyz),
            vec!["poststarthook/ca-registration"]
        );
    }

    #[test]
    fn exclude_turns_a_failure_into_a_pass_and_warns_about_unknown_names() {
        let mut health = small();
        health.set_readyz_failing(&["etcd"]);
        let (code, body) = health.render(
            Endpoint::Readyz,
            "",
            "verbose&exclude=etcd&exclude=nope&exclude=alpha",
        );
        assert_eq!(code, 200);
        assert_eq!(
            body,
            "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n[+]informer-sync ok\n\
             [+]poststarthook/ca-registration ok\n[+]shutdown ok\n\
             warn: some health checks cannot be excluded: no matches for \"alpha\",\"nope\"\n\
             readyz check passed\n"
        );
    }

    #[test]
    fn exclude_is_percent_decoded() {
        let mut health = small();
        health.set_readyz_failing(&["poststarthook/ca-registration"]);
        let (code, _) = health.render(
            Endpoint::Readyz,
            "",
            "exclude=poststarthook%2Fca-registration",
        );
        assert_eq!(code, 200);
    }

    #[test]
    fn single_checks() {
        let mut health = small();
        health.set_readyz_failing(&["poststarthook/ca-registration"]);
        assert_eq!(
            health.render(Endpoint::Readyz, "/etcd", ""),
            (200, "ok".into())
        );
        assert_eq!(
            health.render(Endpoint::Readyz, "/poststarthook/ca-registration", ""),
            (500, "internal server error: not finished\n".into())
        );
        assert_eq!(
            health.render(Endpoint::Readyz, "/nope", ""),
            (404, "404 page not found\n".into())
        );
        // shutdown is a readyz check only
        assert_eq!(health.render(Endpoint::Livez, "/shutdown", "").0, 404);
        assert!(health.fail(Endpoint::Readyz, "etcd", "context deadline exceeded"));
        assert_eq!(
            health.render(Endpoint::Readyz, "/etcd", ""),
            (
                500,
                "internal server error: context deadline exceeded\n".into()
            )
        );
    }

    #[test]
    fn unknown_failing_names_are_returned() {
        let mut health = HealthChecks::new();
        assert_eq!(
            health.set_livez_failing(&["shutdown", "etcd"]),
            vec!["shutdown".to_owned()]
        );
        assert_eq!(health.failing(Endpoint::Livez), vec!["etcd"]);
        health.clear();
        assert!(health.passes(Endpoint::Livez));
    }

    #[test]
    fn real_lists_keep_the_apiserver_order() {
        let readyz = check_names(Endpoint::Readyz);
        assert_eq!(
            &readyz[..5],
            ["ping", "log", "etcd", "etcd-readiness", "informer-sync"]
        );
        assert_eq!(readyz.last(), Some(&"shutdown"));
        assert!(readyz.contains(&"poststarthook/ca-registration"));
        assert!(!check_names(Endpoint::Livez).contains(&"shutdown"));
        let (code, body) = HealthChecks::new().render(Endpoint::Readyz, "", "verbose");
        assert_eq!(code, 200);
        assert!(body.starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n"));
        assert!(body.ends_with("[+]shutdown ok\nreadyz check passed\n"));
    }

    #[test]
    fn endpoint_from_path() {
        assert_eq!(Endpoint::from_path("/readyz"), Some((Endpoint::Readyz, "")));
        assert_eq!(
            Endpoint::from_path("/livez/etcd"),
            Some((Endpoint::Livez, "/etcd"))
        );
        assert_eq!(Endpoint::from_path("/readyzz"), None);
        assert_eq!(Endpoint::from_path("/api"), None);
    }
}
