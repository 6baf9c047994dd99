//! From a kubeconfig to a client that cannot hang: kubeconfig read as kubectl reads it
//! (`--kubeconfig`, else `KUBECONFIG` with several files merged, else ~/.kube/config;
//! `--context`, else current-context), no retry policy, a 2 s connect timeout, a deadline on
//! every call, the read-only gate at the top of the stack, and exec auth plugins run by us with
//! a deadline, no terminal (interactiveMode Never) and their own error text kept; a plugin's
//! token is renewed before it expires.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kube::config::{AuthInfo, ExecConfig, KubeConfigOptions, Kubeconfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::error::{AccessError, ErrorKind, Result};
use super::gate::Gate;
use super::snapshot::Credential;
use super::transport::{RetryAfter, Transport};

/// How long a TCP connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One request's deadline unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an exec auth plugin may take.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(5);

/// What the cluster flags say.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub timeout: Duration,
    pub read_only: bool,
    pub exec_timeout: Duration,
    /// Print the warning for a plain-http server on stderr too (not while the screen runs).
    pub warn_on_stderr: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            kubeconfig: None,
            context: None,
            timeout: DEFAULT_TIMEOUT,
            read_only: false,
            exec_timeout: EXEC_TIMEOUT,
            warn_on_stderr: false,
        }
    }
}

/// A connection to one cluster: the client, and what was chosen to build it.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    gate: Gate,
    context: String,
    /// The kubeconfig user the context names (a name, never a credential).
    user: String,
    server: String,
    namespace: String,
    timeout: Duration,
    /// The credential presented, described without revealing it.
    credential: Credential,
    /// The longest Retry-After of the 429 answers since the last refresh took it.
    retry_after: RetryAfter,
    /// Stops renewing an auth plugin's token once the last clone is gone.
    _renewal: Arc<DropGuard>,
}

/// What kube-rescue says it is, in the apiserver's audit log.
pub const USER_AGENT: &str = concat!("kube-rescue/", env!("CARGO_PKG_VERSION"));

/// Checks the kubeconfig's server address before any credential is sent to it: https (or
/// http, when the kubeconfig says so, with a warning on stderr), a host, a valid port, and
/// nothing else (no user name or password, path, query or fragment). Returns the warning for
/// http.
pub fn check_server(server: &str, context: &str) -> Result<Option<String>> {
    let refuse = |why: &str| {
        config_error(format!(
            "context \"{context}\": the server address \"{server}\" {why}; nothing was sent to it"
        ))
    };
    let url = url::Url::parse(server.trim()).map_err(|e| match e {
        url::ParseError::InvalidPort => refuse("has an invalid port (1 to 65535)"),
        url::ParseError::RelativeUrlWithoutBase => {
            refuse("has no scheme (write https://HOST:PORT)")
        }
        other => refuse(&format!("is not a valid URL ({other})")),
    })?;
    let warning = match url.scheme() {
        "https" => None,
        "http" => Some(format!(
            "warning: context \"{context}\" talks to {server} over plain http: credentials and answers travel unencrypted"
        )),
        other => {
            return Err(refuse(&format!(
                "has the scheme \"{other}\" (only https, or http when you mean it)"
            )));
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "holds a user name or password (put credentials in the kubeconfig's user)",
        ));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(refuse(&format!(
            "has a path ({}): kube-rescue talks only to an apiserver at the root of its address",
            url.path()
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("has a query or fragment"));
    }
    Ok(warning)
}

/// Describes the user's credential without revealing it.
fn describe_credential(user: &str, auth: Option<&AuthInfo>) -> Credential {
    let mut credential = Credential {
        user: user.to_string(),
        kind: "none".into(),
        ..Credential::default()
    };
    let Some(auth) = auth else {
        return credential;
    };
    if let Some(exec) = &auth.exec {
        credential.kind = "exec".into();
        credential.plugin = exec.command.clone();
    } else if let Some(provider) = &auth.auth_provider {
        credential.kind = "auth-provider".into();
        credential.plugin = Some(provider.name.clone());
    } else if auth.token.is_some() {
        credential.kind = "token".into();
    } else if auth.token_file.is_some() {
        credential.kind = "token-file".into();
    } else if auth.client_certificate.is_some() || auth.client_certificate_data.is_some() {
        credential.kind = "client-certificate".into();
        credential.certificate_expires = certificate_expiry(auth);
    } else if auth.username.is_some() {
        credential.kind = "basic".into();
    }
    credential
}

/// When the kubeconfig's client certificate expires (its notAfter), if it can be read.
fn certificate_expiry(auth: &AuthInfo) -> Option<jiff::Timestamp> {
    use base64::Engine;
    let pem = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?,
        (None, Some(path)) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(std::fs::File::open(path).ok()?, 1 << 20),
                &mut bytes,
            )
            .ok()?;
            bytes
        }
        (None, None) => return None,
    };
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    jiff::Timestamp::from_second(cert.validity().not_after.timestamp()).ok()
}

fn config_error(message: impl Into<String>) -> AccessError {
    AccessError::new(ErrorKind::Config, message)
}

/// Where kubectl looks for a kubeconfig when `--kubeconfig` is not given: the values of
/// `KUBECONFIG` and `HOME`. Passed in, so that tests never change the process environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigEnv {
    /// `KUBECONFIG`: several files, separated as PATH is.
    pub kubeconfig: Option<OsString>,
    /// `HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
}

impl KubeconfigEnv {
    /// The values of this process's environment.
    pub fn from_process() -> Self {
        KubeconfigEnv {
            kubeconfig: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

fn read_one(path: &Path) -> Result<Kubeconfig> {
    if !path.exists() {
        return Err(config_error(format!(
            "the kubeconfig {} does not exist",
            path.display()
        )));
    }
    Kubeconfig::read_from(path).map_err(|e| {
        config_error(format!(
            "could not read the kubeconfig {}: {}",
            path.display(),
            super::error::one_line(&e)
        ))
    })
}

/// Reads the kubeconfig as kubectl does, from this process's environment; see
/// [`load_kubeconfig_in`].
pub fn load_kubeconfig(explicit: Option<&Path>) -> Result<(Kubeconfig, String)> {
    load_kubeconfig_in(explicit, &KubeconfigEnv::from_process())
}

/// Reads the kubeconfig as kubectl does: `--kubeconfig`, else the files of `KUBECONFIG` merged
/// (the first file to set a key wins; files that do not exist are skipped), else
/// `~/.kube/config`. Returns it with a description of where it came from; an error names the
/// file and what is wrong with it.
pub fn load_kubeconfig_in(
    explicit: Option<&Path>,
    env: &KubeconfigEnv,
) -> Result<(Kubeconfig, String)> {
    if let Some(path) = explicit {
        return Ok((read_one(path)?, path.display().to_string()));
    }
    if let Some(value) = env.kubeconfig.as_ref().filter(|v| !v.is_empty()) {
        let shown = value.to_string_lossy().into_owned();
        let paths: Vec<PathBuf> = std::env::split_paths(value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        let mut merged: Option<Kubeconfig> = None;
        for path in &paths {
            // kubectl skips a file of the list that does not exist.
            if !path.exists() {
                continue;
            }
            let next = read_one(path)?;
            merged = Some(match merged {
                None => next,
                Some(m) => m.merge(next).map_err(|e| {
                    config_error(format!(
                        "could not merge the kubeconfig {} into the files before it in KUBECONFIG: {}",
                        path.display(),
                        super::error::one_line(&e)
                    ))
                })?,
            });
        }
        let kc = merged.ok_or_else(|| {
            config_error(format!(
                "none of the kubeconfig files in KUBECONFIG exists: {}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        return Ok((kc, shown));
    }
    let path = env
        .home
        .as_ref()
        .map(|home| home.join(".kube").join("config"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            config_error(
                "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
            )
        })?;
    Ok((read_one(&path)?, path.display().to_string()))
}

/// The credential an exec plugin prints (client.authentication.k8s.io ExecCredential).
#[derive(Debug, Deserialize)]
struct ExecCredential {
    status: Option<ExecCredentialStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialStatus {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
    /// Kept as text: a timestamp in an unexpected form only means no renewal, not no credential.
    expiration_timestamp: Option<String>,
}

/// The plugin as the kubeconfig names it, quoted: `"gke-gcloud-auth-plugin"`,
/// `"/opt/bin/aws-iam-authenticator"`.
fn plugin_name(exec: &ExecConfig) -> String {
    format!("\"{}\"", exec.command.clone().unwrap_or_default())
}

/// Runs an exec auth plugin with a deadline, no stdin and interactive false, and returns the
/// credential. Its own error output is kept in the message.
pub async fn run_exec_plugin(exec: &ExecConfig, deadline: Duration) -> Result<AuthInfo> {
    Ok(run_exec_plugin_until(exec, deadline).await?.0)
}

/// As [`run_exec_plugin`], with when the credential expires, if the plugin said.
async fn run_exec_plugin_until(
    exec: &ExecConfig,
    deadline: Duration,
) -> Result<(AuthInfo, Option<jiff::Timestamp>)> {
    let name = plugin_name(exec);
    let command = exec
        .command
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| config_error("the kubeconfig's exec auth plugin has no command"))?;
    let api_version = exec
        .api_version
        .clone()
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".into());
    let mut cmd = tokio::process::Command::new(&command);
    cmd.args(exec.args.clone().unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so that what it started can be stopped with it.
        .process_group(0)
        .env(
            "KUBERNETES_EXEC_INFO",
            serde_json::json!({
                "apiVersion": api_version, "kind": "ExecCredential",
                "spec": {"interactive": false},
            })
            .to_string(),
        );
    for var in exec.drop_env.clone().unwrap_or_default() {
        cmd.env_remove(var);
    }
    for pair in exec.env.clone().unwrap_or_default() {
        if let (Some(k), Some(v)) = (pair.get("name"), pair.get("value")) {
            cmd.env(k, v);
        }
    }
    let child = cmd.spawn().map_err(|e| {
        let hint = exec
            .install_hint
            .as_deref()
            .map(|h| format!(" ({})", h.trim().replace('\n', " ")))
            .unwrap_or_default();
        AccessError::new(
            ErrorKind::AuthPlugin,
            format!("the auth plugin {name} could not be started: {e}{hint}"),
        )
    })?;
    let group = child.id();
    let output = match tokio::time::timeout(deadline, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(AccessError::new(
                ErrorKind::AuthPlugin,
                format!("the auth plugin {name} failed: {e}"),
            ));
        }
        Err(_) => {
            // The plugin was dropped with the future (kill_on_drop); what it started, a
            // browser login helper for instance, goes with its group.
            if let Some(group) = group.and_then(|g| i32::try_from(g).ok()) {
                // SAFETY: kill(2) with a negative pid signals the plugin's own process group,
                // which it was put into at spawn; no memory is involved.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
            return Err(AccessError::new(
                ErrorKind::AuthPlugin,
                format!(
                    "the auth plugin {name} did not answer within {} (it was stopped; is it waiting for a login?)",
                    super::error::secs(deadline)
                ),
            ));
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = said
            .iter()
            .rev()
            .take(3)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(AccessError::new(
            ErrorKind::AuthPlugin,
            format!(
                "the auth plugin {name} failed ({}): {}",
                output.status,
                if said.is_empty() {
                    "it printed nothing"
                } else {
                    &said
                }
            ),
        ));
    }
    let credential: ExecCredential = serde_json::from_slice(&output.stdout).map_err(|e| {
        AccessError::new(
            ErrorKind::AuthPlugin,
            format!("the auth plugin {name} printed something that is not an ExecCredential: {e}"),
        )
    })?;
    let status = credential.status.ok_or_else(|| {
        AccessError::new(
            ErrorKind::AuthPlugin,
            format!("the auth plugin {name} printed an ExecCredential without a status"),
        )
    })?;
    let mut auth = AuthInfo::default();
    match (
        status.token,
        status.client_certificate_data,
        status.client_key_data,
    ) {
        (Some(token), _, _) => auth.token = Some(SecretString::from(token)),
        (None, Some(cert), Some(key)) => {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            auth.client_certificate_data = Some(b64.encode(cert));
            auth.client_key_data = Some(SecretString::from(b64.encode(key)));
        }
        _ => {
            return Err(AccessError::new(
                ErrorKind::AuthPlugin,
                format!("the auth plugin {name} gave neither a token nor a client certificate"),
            ));
        }
    }
    let expires = status
        .expiration_timestamp
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    Ok((auth, expires))
}

/// A bearer token from an exec auth plugin, put on every request, and renewed by running the
/// plugin again (under the same deadline) before it expires: a session left open through a
/// long incident keeps working. Client certificates from a plugin are not renewed.
#[derive(Clone)]
struct PluginToken {
    header: Arc<RwLock<http::HeaderValue>>,
}

impl PluginToken {
    fn new(token: &str) -> Result<Self> {
        Ok(PluginToken {
            header: Arc::new(RwLock::new(bearer(token)?)),
        })
    }

    /// Runs the plugin again ahead of each expiry until `stop`.
    fn renew(
        &self,
        exec: ExecConfig,
        deadline: Duration,
        first_expiry: jiff::Timestamp,
        stop: CancellationToken,
    ) {
        let header = Arc::downgrade(&self.header);
        tokio::spawn(async move {
            let mut expiry = first_expiry;
            loop {
                let left = jiff::Timestamp::now().duration_until(expiry);
                let left = if left.is_negative() {
                    Duration::ZERO
                } else {
                    left.unsigned_abs()
                };
                // Renew a minute early, or halfway for a short-lived token.
                let wait = left.saturating_sub(RENEW_EARLY.min(left / 2));
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                let renewed = run_exec_plugin_until(&exec, deadline).await;
                let Some(header) = header.upgrade() else {
                    return;
                };
                match renewed.and_then(|(auth, expires)| {
                    let token = auth
                        .token
                        .ok_or_else(|| config_error("the auth plugin stopped giving a token"))?;
                    Ok((bearer(token.expose_secret())?, expires))
                }) {
                    Ok((value, expires)) => {
                        *header.write().unwrap_or_else(|e| e.into_inner()) = value;
                        match expires {
                            Some(at) => expiry = at,
                            None => return,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not renew the auth plugin's token");
                        expiry = jiff::Timestamp::now() + RENEW_RETRY;
                    }
                }
            }
        });
    }
}

/// The auth plugin's failure, given as the answer to every request: without a credential
/// nothing is sent.
#[derive(Clone)]
struct PluginFailed(AccessError);

/// A request not sent because the auth plugin failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PluginFailure(pub AccessError);

impl<S> tower::Layer<S> for PluginFailed {
    type Service = PluginFailedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PluginFailedService {
            _inner: inner,
            failure: self.0.clone(),
        }
    }
}

pub struct PluginFailedService<S> {
    _inner: S,
    failure: AccessError,
}

impl<S, B> tower::Service<http::Request<B>> for PluginFailedService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<S::Response, tower::BoxError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: http::Request<B>) -> Self::Future {
        std::future::ready(Err(Box::new(PluginFailure(self.failure.clone()))))
    }
}

/// How long before its expiry a plugin's token is renewed.
const RENEW_EARLY: Duration = Duration::from_secs(60);
/// How long to wait after a failed renewal before trying again.
const RENEW_RETRY: Duration = Duration::from_secs(10);

fn bearer(token: &str) -> Result<http::HeaderValue> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        AccessError::new(
            ErrorKind::AuthPlugin,
            "the auth plugin gave a token that cannot be sent in a header",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

impl<S> tower::Layer<S> for PluginToken {
    type Service = PluginTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PluginTokenService {
            inner,
            token: self.clone(),
        }
    }
}

/// Puts the plugin's current token on each request.
pub struct PluginTokenService<S> {
    inner: S,
    token: PluginToken,
}

impl<S, B> tower::Service<http::Request<B>> for PluginTokenService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let value = self
            .token
            .header
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
        self.inner.call(request)
    }
}

impl Cluster {
    /// Reads the kubeconfig, resolves the context and its credentials, and builds the client.
    pub async fn connect(options: &ConnectOptions) -> Result<Cluster> {
        Self::connect_with(options, &KubeconfigEnv::from_process()).await
    }

    /// As [`Cluster::connect`], with the environment's `KUBECONFIG` and `HOME` given.
    pub async fn connect_with(options: &ConnectOptions, env: &KubeconfigEnv) -> Result<Cluster> {
        let (mut kubeconfig, source) = load_kubeconfig_in(options.kubeconfig.as_deref(), env)?;
        // An empty --context means none given, as kubectl reads it.
        let context_name = options
            .context
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| kubeconfig.current_context.clone())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                config_error(format!(
                    "{source} has no current-context; pass --context (contexts: {})",
                    kubeconfig
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| {
                config_error(format!(
                    "context \"{context_name}\" is not in {source} (contexts: {})",
                    kubeconfig
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let cluster = context.cluster.as_str();
        let Some(named_cluster) = kubeconfig.clusters.iter().find(|c| c.name == cluster) else {
            return Err(config_error(format!(
                "context \"{context_name}\" uses the cluster \"{cluster}\", which is not in {source}"
            )));
        };
        let server = named_cluster
            .cluster
            .as_ref()
            .and_then(|c| c.server.clone())
            .ok_or_else(|| {
                config_error(format!(
                    "the cluster \"{cluster}\" in {source} has no server address"
                ))
            })?;
        if let Some(warning) = check_server(&server, &context_name)? {
            tracing::warn!("{warning}");
            if options.warn_on_stderr {
                use std::io::Write;
                // A closed stderr is not a reason to stop.
                let _ = writeln!(std::io::stderr(), "kube-rescue: {warning}");
            }
        }
        if let Some(user) = context.user.as_deref()
            && !kubeconfig.auth_infos.iter().any(|a| a.name == user)
        {
            return Err(config_error(format!(
                "context \"{context_name}\" uses the user \"{user}\", which is not in {source}"
            )));
        }
        let credential = describe_credential(
            context.user.as_deref().unwrap_or(""),
            context.user.as_deref().and_then(|user| {
                kubeconfig
                    .auth_infos
                    .iter()
                    .find(|a| a.name == user)
                    .and_then(|a| a.auth_info.as_ref())
            }),
        );
        // Exec plugins run here, under our deadline, instead of inside the client builder.
        let stop = CancellationToken::new();
        let mut plugin_token = None;
        let mut plugin_failed = None;
        if let Some(user) = context.user.as_deref()
            && let Some(named) = kubeconfig.auth_infos.iter_mut().find(|a| a.name == user)
            && let Some(auth) = named.auth_info.as_mut()
            && let Some(exec) = auth.exec.take()
        {
            let (credential, expires) =
                match run_exec_plugin_until(&exec, options.exec_timeout).await {
                    Ok(ran) => ran,
                    // A plugin that fails is a finding (apiserver-credentials-rejected), not a
                    // reason not to open: every request answers with its failure, none is sent.
                    Err(e) if e.kind == ErrorKind::AuthPlugin => {
                        plugin_failed = Some(PluginFailed(e));
                        (AuthInfo::default(), None)
                    }
                    Err(e) => return Err(e),
                };
            if let Some(token) = credential.token {
                // Sent by our own layer, so that it can be renewed.
                let layer = PluginToken::new(token.expose_secret())?;
                if let Some(expires) = expires {
                    layer.renew(exec, options.exec_timeout, expires, stop.clone());
                }
                plugin_token = Some(layer);
            } else {
                auth.client_certificate_data = credential.client_certificate_data;
                auth.client_key_data = credential.client_key_data;
            }
        }
        let kube_options = KubeConfigOptions {
            context: Some(context_name.clone()),
            cluster: None,
            user: None,
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
            .await
            .map_err(|e| {
                config_error(format!(
                    "the kubeconfig ({source}) context \"{context_name}\" cannot be used: {}",
                    super::error::one_line(&e)
                ))
            })?;
        config.default_retry = false;
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        ));
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        // Per-call deadlines are applied by `Cluster::call`; a read timeout here would also
        // cut the write probe, which must wait for a webhook's own timeout.
        config.read_timeout = None;
        config.write_timeout = Some(options.timeout.max(CONNECT_TIMEOUT));
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let namespace = config.default_namespace.clone();
        let gate = Gate::new(options.read_only);
        let transport = Transport::default();
        let retry_after = transport.retry_after.clone();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| {
                config_error(format!(
                    "could not set up the client for {server}: {}",
                    super::error::one_line(&e)
                ))
            })?
            .with_layer(&tower::layer::util::Stack::new(
                tower::util::option_layer(plugin_token),
                tower::layer::util::Stack::new(
                    gate.clone(),
                    tower::util::option_layer(plugin_failed),
                ),
            ))
            .with_layer(&transport)
            .build();
        Ok(Cluster {
            client,
            gate,
            credential,
            retry_after,
            _renewal: Arc::new(stop.drop_guard()),
            user: context.user.clone().unwrap_or_default(),
            context: context_name,
            server,
            namespace,
            timeout: options.timeout,
        })
    }

    /// A cluster around a client built elsewhere (tests inject the simulator or a mock). The
    /// gate must already be in the client's stack for read-only mode to hold.
    pub fn from_client(
        client: kube::Client,
        gate: Gate,
        context: &str,
        server: &str,
        timeout: Duration,
    ) -> Cluster {
        Cluster {
            _renewal: Arc::new(CancellationToken::new().drop_guard()),
            credential: Credential::default(),
            retry_after: RetryAfter::default(),
            namespace: client.default_namespace().to_string(),
            client,
            gate,
            context: context.into(),
            user: String::new(),
            server: server.into(),
            timeout,
        }
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    /// The kubeconfig user of the context (its name only; empty when unknown).
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The credential presented, described without revealing it.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The longest Retry-After of the 429 answers since the last call.
    pub fn take_retry_after(&self) -> Option<Duration> {
        self.retry_after.take()
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One request's deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn is_read_only(&self) -> bool {
        self.gate.is_read_only()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Runs one call under the request deadline; a failure comes back classified.
    pub async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T> {
        self.call_within(what, self.timeout, call).await
    }

    /// Runs one call under a deadline of its own (the write probe waits longer).
    pub async fn call_within<T>(
        &self,
        what: &str,
        deadline: Duration,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(AccessError::classify(what, &e)),
            Err(_) => Err(AccessError::timeout(what, deadline)),
        }
    }
}
