//! Helpers of `large_database_queries_keep_their_indexes`: a PostgreSQL database of its own,
//! filled by `scripts/pgsize/fill.sql` and queried with `scripts/pgsize/queries.sql`, both
//! through `psql` (as `scripts/pgsize/run.sh` and `explain.py` do), and the plans' checks.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The fill's scale when `ECTO_SIZE_SCALE` is not set: 1/20 of scripts/pgsize's full size
/// (500 communities, 500k messages; the biggest holds ~95k of them), about 16 s to fill on
/// two cores. The plans checked here are those of the full size (see the README there).
pub const DEFAULT_SCALE: f64 = 0.05;

/// How many times each query runs (for p50 / p99 of its execution time).
pub const ROUNDS: usize = 20;

/// Tables big at every scale: a sequential scan of any of them in a hot query reads a whole
/// table per request on a managed server.
pub const BIG_TABLES: &[&str] = &[
    "messages",
    "audit_log",
    "activity_items",
    "members",
    "member_roles",
    "read_states",
    "reactions",
    "attachments",
    "message_edits",
    "dm_conversations",
    "cached_profiles",
];

/// What a hot query of `queries.sql` must do, beside scanning no big table sequentially.
pub struct Hot {
    /// Its tag in queries.sql (`@Q01` …).
    pub tag: &'static str,
    /// It finds rows for the chosen community, channel and member (false where the data
    /// may have none, or where the query is a count, which always answers one row).
    pub finds_rows: bool,
    /// An index its plan must use: those the migrations added for it.
    pub index: Option<&'static str>,
}

const fn hot(tag: &'static str, finds_rows: bool, index: Option<&'static str>) -> Hot {
    Hot {
        tag,
        finds_rows,
        index,
    }
}

const SEARCH: Option<&str> = Some("idx_messages_server_channel_search");
const AUDIT_BY_ACTION: Option<&str> = Some("idx_audit_log_server_action_id");
const UNREAD: Option<&str> = Some("idx_activity_items_unread");

/// Every query of queries.sql but its two proposed rewrites (Q40, Q41: not what the code
/// runs). The parameters are those queries.sql derives from the community and the member.
pub const HOT: &[Hot] = &[
    // messages.list: latest page, 10 pages back, a deep page both ways, the pins.
    hot("Q01", true, None),
    hot("Q02", true, None),
    hot("Q03", true, None),
    hot("Q04", true, None),
    hot("Q05", true, Some("idx_messages_pinned")),
    // The page's attachments (one message in 50 has one), reactions, authors (the biggest
    // community has no local accounts: Q08 finds none).
    hot("Q06", false, None),
    hot("Q07", true, None),
    hot("Q08", false, None),
    hot("Q09", true, None),
    hot("Q10", true, None),
    // search.search: a common word, two words, a rare word, a common word in one channel.
    hot("Q11", true, SEARCH),
    hot("Q12", true, SEARCH),
    hot("Q13", false, SEARCH),
    hot("Q14", true, SEARCH),
    hot("Q15", true, None),
    // system.ready (Q20 / Q21: permission overrides, small tables, maybe none).
    hot("Q16", true, None),
    hot("Q17", true, None),
    hot("Q18", true, None),
    hot("Q19", true, None),
    hot("Q20", false, None),
    hot("Q21", false, None),
    hot("Q22", true, None),
    hot("Q23", true, None),
    hot("Q24", true, None),
    hot("Q25", true, None),
    hot("Q26", true, UNREAD),
    hot("Q27", true, None),
    // Unread counts and activity.list.
    hot("Q28", false, UNREAD),
    hot("Q29", true, Some("idx_activity_items_server_user_id")),
    // serverDms.list: the member's conversations, then per conversation (the community's
    // busiest) its last message, read marker, unread count.
    hot("Q30", false, None),
    hot("Q31", true, None),
    hot("Q32", false, None),
    hot("Q33", false, None),
    hot("Q34", false, None),
    // auditlog.list: newest page, 20 pages back, by a rare action, by actor, the actors'
    // names, by an action never logged.
    hot("Q35", true, None),
    hot("Q36", true, None),
    hot("Q37", true, AUDIT_BY_ACTION),
    hot("Q38", true, None),
    hot("Q39", false, None),
    hot("Q42", false, AUDIT_BY_ACTION),
];

/// The fill's scale: `ECTO_SIZE_SCALE`, else [`DEFAULT_SCALE`].
pub fn scale() -> f64 {
    match std::env::var("ECTO_SIZE_SCALE") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("ECTO_SIZE_SCALE is not a number: {v:?}")),
        Err(_) => DEFAULT_SCALE,
    }
}

fn pgsize(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/pgsize")
        .join(file)
}

/// Where the test database is, from its URL (`postgres://user[:password]@host[:port]/name`),
/// and `psql` pointed there.
pub struct Postgres {
    /// The URL up to the database name (`postgres://user@host:port`).
    base: String,
    host: String,
    port: String,
    user: String,
    password: Option<String>,
    /// The test database's name.
    pub database: String,
}

impl Postgres {
    pub fn from_url(url: &str) -> Self {
        let url = url.split('?').next().unwrap_or(url);
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .unwrap_or_else(|| panic!("not a PostgreSQL URL: {url}"));
        let (authority, database) = rest
            .split_once('/')
            .unwrap_or_else(|| panic!("no database name in {url}"));
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("postgres", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p.to_owned())),
            None => (userinfo, None),
        };
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
        Self {
            base: url[..url.len() - database.len() - 1].to_owned(),
            host: host.to_owned(),
            port: port.to_owned(),
            user: user.to_owned(),
            password,
            database: database.to_owned(),
        }
    }

    pub fn url_of(&self, database: &str) -> String {
        format!("{}/{database}", self.base)
    }

    /// Runs psql on `database` with `args`; its output, or a panic with its errors.
    pub fn psql(&self, database: &str, args: &[&str]) -> String {
        let mut command = Command::new("psql");
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h", &self.host, "-p", &self.port, "-U", &self.user, "-d", database,
            ])
            .args(args);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql (is it installed?): {e}"));
        assert!(
            out.status.success(),
            "psql {args:?} on {database} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("psql prints UTF-8")
    }

    /// One value (the first column of the first row) of `sql` on `database`.
    pub fn value(&self, database: &str, sql: &str) -> String {
        let out = self.psql(database, &["-c", sql]);
        out.lines().next().unwrap_or_default().to_owned()
    }

    pub fn drop_database(&self, name: &str) {
        self.psql(
            "postgres",
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ],
        );
    }

    pub fn create_database(&self, name: &str) {
        self.drop_database(name);
        self.psql("postgres", &["-c", &format!("CREATE DATABASE {name}")]);
    }

    /// Runs fill.sql on `database` at `scale`; how long it took.
    pub fn fill(&self, database: &str, scale: f64) -> Duration {
        let start = Instant::now();
        let file = pgsize("fill.sql");
        self.psql(
            database,
            &[
                "-v",
                &format!("scale={scale}"),
                "-f",
                file.to_str().expect("path"),
            ],
        );
        start.elapsed()
    }

    /// Runs queries.sql once on `database` under `EXPLAIN (ANALYZE, FORMAT JSON)` with the
    /// given psql variables; each query's result by its tag (`Q01` …).
    pub fn explain_queries(
        &self,
        database: &str,
        vars: &[(&str, &str)],
    ) -> BTreeMap<String, Explained> {
        let file = pgsize("queries.sql");
        let mut args = vec![
            "-v".to_owned(),
            "explain=EXPLAIN (ANALYZE, FORMAT JSON)".to_owned(),
        ];
        for (name, value) in vars {
            args.push("-v".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.push("-f".to_owned());
        args.push(file.to_str().expect("path").to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        parse_explained(&self.psql(database, &args))
    }
}

/// Splits queries.sql's output at its `@Qnn title` lines (`\echo`); what follows each is the
/// query's EXPLAIN output, one JSON array (anything after it, such as the `\echo` of the
/// parameters, is left).
fn parse_explained(out: &str) -> BTreeMap<String, Explained> {
    let mut chunks: Vec<(&str, String)> = Vec::new();
    for line in out.lines() {
        if let Some(title) = line.strip_prefix('@') {
            chunks.push((title, String::new()));
        } else if let Some((_, body)) = chunks.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let mut plans = BTreeMap::new();
    for (title, body) in chunks {
        let tag = title.split_whitespace().next().unwrap_or_default();
        let explained = serde_json::Deserializer::from_str(&body)
            .into_iter::<Value>()
            .next()
            .unwrap_or_else(|| panic!("{title}: no EXPLAIN output"))
            .unwrap_or_else(|e| panic!("{title}: EXPLAIN output is not JSON: {e}\n{body}"));
        plans.insert(
            tag.to_owned(),
            Explained {
                title: title.to_owned(),
                result: explained[0].clone(),
            },
        );
    }
    plans
}

/// One query's `EXPLAIN (ANALYZE, FORMAT JSON)`.
pub struct Explained {
    /// Its `\echo` line in queries.sql: `Q01 messages.list latest page`.
    pub title: String,
    /// `{"Plan": …, "Execution Time": …}`
    pub result: Value,
}

impl Explained {
    pub fn plan(&self) -> &Value {
        &self.result["Plan"]
    }

    /// The rows of the plan's top node: what the query answered.
    pub fn rows(&self) -> f64 {
        self.plan()["Actual Rows"].as_f64().unwrap_or(0.0)
    }

    pub fn execution_ms(&self) -> f64 {
        self.result["Execution Time"]
            .as_f64()
            .expect("EXPLAIN ANALYZE gives the execution time")
    }

    /// What is wrong with it for `hot`.
    pub fn check(&self, hot: &Hot) -> Vec<String> {
        let all = nodes(self.plan());
        let mut wrong = Vec::new();
        for node in &all {
            let relation = node["Relation Name"].as_str().unwrap_or_default();
            if node["Node Type"] == "Seq Scan" && BIG_TABLES.contains(&relation) {
                wrong.push(format!("{}: sequential scan of {relation}", self.title));
            }
        }
        if let Some(index) = hot.index {
            if !all.iter().any(|n| n["Index Name"] == index) {
                wrong.push(format!("{}: {index} is not used", self.title));
            }
        }
        if hot.finds_rows && self.rows() == 0.0 {
            wrong.push(format!("{}: no rows", self.title));
        }
        if !wrong.is_empty() {
            wrong.push(format!("    plan: {}", describe(self.plan())));
        }
        wrong
    }

    /// The tables and indexes its plan reads, each once: `messages_pkey, idx_…`.
    pub fn reads(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for node in nodes(self.plan()) {
            let name = node["Index Name"]
                .as_str()
                .or_else(|| node["Relation Name"].as_str());
            if let Some(name) = name {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.join(", ")
    }
}

/// Every node of a plan (the `Plan` of one EXPLAIN result), its sub-plans included.
pub fn nodes(plan: &Value) -> Vec<&Value> {
    let mut all = vec![plan];
    for child in plan["Plans"].as_array().into_iter().flatten() {
        all.extend(nodes(child));
    }
    all
}

/// The plan's nodes in one line: `Index Scan(messages_pkey) rows=51 | …`.
pub fn describe(plan: &Value) -> String {
    nodes(plan)
        .iter()
        .filter(|n| {
            let t = n["Node Type"].as_str().unwrap_or_default();
            t.contains("Scan") || t.contains("Sort") || t.contains("Aggregate")
        })
        .map(|n| {
            let on = n["Index Name"]
                .as_str()
                .or_else(|| n["Relation Name"].as_str())
                .map(|name| format!("({name})"))
                .unwrap_or_default();
            format!(
                "{}{on} rows={}",
                n["Node Type"].as_str().unwrap_or_default(),
                n["Actual Rows"]
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The `p`th percentile (nearest rank) of `times`, sorted or not.
pub fn percentile(times: &[f64], p: f64) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
