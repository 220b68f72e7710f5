//! tRPC over HTTP: calls, error kinds, accounts and the channel a run uses.

use crate::stats::Errors;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a call failed; `kind()` is the key it is counted under.
#[derive(Debug)]
pub enum CallError {
    Http {
        status: u16,
        ecto: Option<i64>,
        retry_after: Option<u64>,
        message: String,
    },
    Timeout,
    Connect,
    Transport,
    BadBody,
}

impl CallError {
    pub fn kind(&self) -> String {
        match self {
            CallError::Http {
                status,
                ecto: Some(code),
                ..
            } => format!("http {status} ecto {code}"),
            CallError::Http { status, .. } => format!("http {status}"),
            CallError::Timeout => "http timeout".into(),
            CallError::Connect => "http connect error".into(),
            CallError::Transport => "http transport error".into(),
            CallError::BadBody => "http unreadable answer".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            CallError::Http { message, .. } => format!("{}: {message}", self.kind()),
            other => other.kind(),
        }
    }
}

fn classify(e: &reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::Timeout
    } else if e.is_connect() {
        CallError::Connect
    } else {
        CallError::Transport
    }
}

/// One connection pool to the server, shared by every simulated HTTP client of a run.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    server_address: Option<String>,
}

impl Api {
    /// `pool` idle connections are kept per host, so that `pool` concurrent callers reuse their
    /// connections instead of opening new ones.
    pub fn new(
        base: &str,
        server_address: Option<String>,
        pool: usize,
        timeout: Duration,
    ) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_owned(),
            server_address,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same connection pool, on `base` for the server at `address`.
    pub fn at(&self, base: &str, address: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            server_address: Some(address.to_owned()),
        }
    }

    /// Managed: `POST /internal/servers {address, name}` with the managed API key.
    pub async fn provision(&self, key: &str, address: &str, name: &str) -> Result<(), CallError> {
        let resp = self
            .http
            .post(format!("{}/internal/servers", self.base))
            .bearer_auth(key)
            .json(&json!({ "address": address, "name": name }))
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        if status == 201 {
            Ok(())
        } else {
            Err(CallError::Http {
                status,
                ecto: None,
                retry_after: None,
                message: resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
            })
        }
    }

    pub fn server_address(&self) -> Option<&str> {
        self.server_address.as_deref()
    }

    /// `POST /trpc/<path>` with a JSON body; the `result.data` of the answer.
    pub async fn mutate(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Value, CallError> {
        let mut req = self
            .http
            .post(format!("{}/trpc/{path}", self.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(a) = &self.server_address {
            req = req.header("x-server-address", a);
        }
        let resp = req.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| classify(&e))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            if status == 200 {
                CallError::BadBody
            } else {
                CallError::Http {
                    status,
                    ecto: None,
                    retry_after: None,
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                }
            }
        })?;
        if status == 200 {
            return value
                .pointer("/result/data")
                .cloned()
                .ok_or(CallError::BadBody);
        }
        let err = value.get("error");
        let data = err.and_then(|e| e.get("data"));
        Err(CallError::Http {
            status,
            ecto: data
                .and_then(|d| d.get("ecto_code"))
                .and_then(Value::as_i64),
            retry_after: data
                .and_then(|d| d.get("retry_after"))
                .and_then(Value::as_u64),
            message: err
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
    }

    /// `GET` of a raw path (with its query) as `token`: the status and the body's length.
    pub async fn get_raw(
        &self,
        path_and_query: &str,
        token: &str,
    ) -> Result<(u16, usize), CallError> {
        let mut req = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(token);
        if let Some(a) = &self.server_address {
            req = req.header("x-server-address", a);
        }
        let resp = req.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| classify(&e))?;
        Ok((status, bytes.len()))
    }

    /// A setup call: a 429 is waited out (its `Retry-After`, a few times) instead of failing.
    async fn mutate_patiently(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        errors: &Errors,
    ) -> Result<Value, CallError> {
        let mut attempt = 0;
        loop {
            match self.mutate(path, token, body).await {
                Err(CallError::Http {
                    status: 429,
                    retry_after,
                    ..
                }) if attempt < 5 => {
                    errors.add(format!("setup: {path} http 429 (waited Retry-After)"));
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
                }
                other => return other,
            }
        }
    }

    /// `GET /ws` URL of the gateway.
    pub fn ws_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/ws")
    }
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct User {
    pub token: String,
}

/// Access tokens by account, kept across runs in the `--token-cache` file.
pub type Tokens = Arc<Mutex<HashMap<String, String>>>;

fn cache_key(api: &Api, name: &str) -> String {
    format!(
        "{}|{}|{name}",
        api.base,
        api.server_address.as_deref().unwrap_or("")
    )
}

/// Signs `name` in: with its cached token when that still works (`server.join` with the bearer
/// token gives a member a fresh pair without a password check), else by registering it as a
/// local account, or by password when the name is taken (an account of an earlier run).
pub async fn join(
    api: &Api,
    name: &str,
    password: &str,
    errors: &Errors,
    tokens: &Tokens,
) -> Result<User, CallError> {
    let key = cache_key(api, name);
    let cached = tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    if let Some(token) = cached {
        if let Ok(data) = api.mutate("server.join", Some(&token), &json!({})).await {
            if let Some(token) = data.get("server_token").and_then(Value::as_str) {
                tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, token.to_owned());
                return Ok(User {
                    token: token.to_owned(),
                });
            }
        }
    }
    let mut body = json!({"username": name, "password": password, "action": "register"});
    let data = match api
        .mutate_patiently("server.join", None, &body, errors)
        .await
    {
        Err(CallError::Http { status: 409, .. }) => {
            body["action"] = json!("login");
            api.mutate_patiently("server.join", None, &body, errors)
                .await?
        }
        other => other?,
    };
    let token = data
        .get("server_token")
        .and_then(Value::as_str)
        .ok_or(CallError::BadBody)?
        .to_owned();
    tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, token.clone());
    Ok(User { token })
}

/// Signs in `count` accounts `<prefix>-<i>` with `concurrency` joins in flight. Failures are
/// counted (`setup: ...`) and left out of the answer.
pub async fn users(
    api: &Api,
    prefix: &str,
    count: usize,
    concurrency: usize,
    errors: &Arc<Errors>,
    tokens: &Tokens,
) -> Vec<User> {
    let password = format!("{prefix}-load-password");
    let mut out: Vec<(usize, User)> = stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let errors = errors.clone();
            let password = password.clone();
            let tokens = tokens.clone();
            async move {
                let name = format!("{prefix}-{i}");
                match join(&api, &name, &password, &errors, &tokens).await {
                    Ok(u) => Some((i, u)),
                    Err(e) => {
                        errors.add(format!("setup: server.join {}", e.kind()));
                        None
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, u)| u).collect()
}

/// Signs in the owner (`name:password`, registered when new) and creates a text channel for
/// the run. The owner must be able to create channels: on a fresh server the first account to
/// join is the owner.
pub async fn channel(
    api: &Api,
    owner: &str,
    run: &str,
    errors: &Errors,
    tokens: &Tokens,
) -> Result<(User, String), String> {
    channel_of_type(api, owner, run, "text", errors, tokens).await
}

/// As [`channel`], for a channel of `kind` (`text`, `voice`, …).
pub async fn channel_of_type(
    api: &Api,
    owner: &str,
    run: &str,
    kind: &str,
    errors: &Errors,
    tokens: &Tokens,
) -> Result<(User, String), String> {
    let (name, password) = owner
        .split_once(':')
        .ok_or("--owner must be NAME:PASSWORD")?;
    let user = join(api, name, password, errors, tokens)
        .await
        .map_err(|e| format!("the owner account {name} cannot sign in: {}", e.describe()))?;
    let created = api
        .mutate_patiently(
            "channels.create",
            Some(&user.token),
            &json!({"name": format!("load-{run}"), "type": kind}),
            errors,
        )
        .await
        .map_err(|e| {
            format!(
                "{name} cannot create a channel ({}); on a server that already has an owner, \
                 pass that owner's credentials with --owner",
                e.describe()
            )
        })?;
    let id = created
        .get("id")
        .and_then(Value::as_str)
        .ok_or("channels.create answered without an id")?
        .to_owned();
    Ok((user, id))
}

/// `messages.send {channel_id, content, nonce}`.
pub async fn send(
    api: &Api,
    token: &str,
    channel_id: &str,
    content: &str,
    nonce: &str,
) -> Result<(), CallError> {
    api.mutate(
        "messages.send",
        Some(token),
        &json!({"channel_id": channel_id, "content": content, "nonce": nonce}),
    )
    .await
    .map(|_| ())
}
