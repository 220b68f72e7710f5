//! Moving every row between databases of either backend (`ecto-server export` / `import`).
//!
//! Rows travel as JSON arrays in the column order of their table. The catalog of each database
//! says what a column is ([`ColumnKind`]), and [`Import`] converts what the two backends store
//! differently: booleans (SQLite 0/1), JSON (SQLite text, PostgreSQL `jsonb`) and timestamps
//! (SQLite text in diesel's format, PostgreSQL `timestamptz`). Ids are UUID text on both.
//!
//! The export reads inside one transaction (a consistent snapshot on both backends) and pages
//! through each table by its physical row address (SQLite `rowid`, PostgreSQL `ctid`), so a
//! table of millions of rows is never held in memory. The import writes inside one transaction:
//! all of it or none of it.

use crate::db::{db_error, pool_error, Backend, Db, DbKind, SqliteConn};
use chrono::SubsecRound;
use diesel::sql_types::{BigInt, Text};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use ecto_core::{CoreError, CoreResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Rows read per query of an export.
const EXPORT_PAGE: i64 = 2_000;

/// What a column holds, as far as moving it between backends matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Bool,
    Int,
    Text,
    Json,
    Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub kind: ColumnKind,
}

/// One table of the application, with the columns an insert writes (PostgreSQL's generated
/// search vector is not one of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
}

/// Tables that are not the application's data: the migration ledger, SQLite's full-text index
/// with its shadow tables and queue (rebuilt from the messages after an import), and the
/// events left for a running server (`relayed_events`: a server drops them when it starts).
fn internal(name: &str) -> bool {
    name.starts_with("__diesel")
        || name.starts_with("messages_fts")
        || name.starts_with("sqlite_")
        || name == "relayed_events"
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(diesel::QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

#[derive(diesel::QueryableByName)]
struct SqlitePageRow {
    #[diesel(sql_type = BigInt)]
    k: i64,
    #[diesel(sql_type = Text)]
    j: String,
}

#[derive(diesel::QueryableByName)]
struct PgPageRow {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = Text)]
    j: String,
}

fn sqlite_kind(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        ColumnKind::Bool
    } else if t.contains("INT") {
        ColumnKind::Int
    } else {
        ColumnKind::Text
    }
}

fn pg_kind(data_type: &str) -> ColumnKind {
    match data_type {
        "boolean" => ColumnKind::Bool,
        "smallint" | "integer" | "bigint" => ColumnKind::Int,
        "json" | "jsonb" => ColumnKind::Json,
        t if t.starts_with("timestamp") => ColumnKind::Timestamp,
        _ => ColumnKind::Text,
    }
}

/// `tables` (name → the tables it references) in an order where every table comes after the
/// tables it references; ties by name.
fn parents_first(mut refs: BTreeMap<String, BTreeSet<String>>) -> CoreResult<Vec<String>> {
    let mut order = Vec::with_capacity(refs.len());
    while !refs.is_empty() {
        let ready: Vec<String> = refs
            .iter()
            .filter(|(name, parents)| parents.iter().all(|p| p == *name || !refs.contains_key(p)))
            .map(|(name, _)| name.clone())
            .collect();
        if ready.is_empty() {
            return Err(CoreError::internal_msg(format!(
                "the tables {:?} reference each other in a cycle",
                refs.keys().collect::<Vec<_>>()
            )));
        }
        for name in ready {
            refs.remove(&name);
            order.push(name);
        }
    }
    Ok(order)
}

/// A connection taken out of a pool for a whole export or import.
enum Conn {
    Pg(Box<Object<AsyncPgConnection>>),
    Sqlite(Object<SqliteConn>),
}

macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            Conn::Pg($c) => $body,
            Conn::Sqlite($c) => $body,
        }
    };
}

impl Conn {
    async fn take(db: &Db) -> CoreResult<Self> {
        Ok(match &*db.backend {
            Backend::Pg(pool) => Conn::Pg(Box::new(pool.get().await.map_err(pool_error)?)),
            Backend::Sqlite { write, .. } => Conn::Sqlite(write.get().await.map_err(pool_error)?),
        })
    }

    fn kind(&self) -> DbKind {
        match self {
            Conn::Pg(_) => DbKind::Postgres,
            Conn::Sqlite(_) => DbKind::Sqlite,
        }
    }

    async fn batch(&mut self, sql: &str) -> CoreResult<()> {
        on_conn!(self, |c| c.batch_execute(sql).await).map_err(db_error)
    }

    async fn names(&mut self, sql: &str, bind: Option<&str>) -> CoreResult<Vec<String>> {
        let rows: Vec<NameRow> = match bind {
            Some(b) => {
                let q = diesel::sql_query(sql).bind::<Text, _>(b.to_owned());
                on_conn!(self, |c| q.load(&mut **c).await)
            }
            None => on_conn!(self, |c| diesel::sql_query(sql).load(&mut **c).await),
        }
        .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }

    /// The application's tables, parents first, with their insertable columns.
    async fn layout(&mut self) -> CoreResult<Vec<TableInfo>> {
        let (tables_sql, parents_sql, columns_sql) = match self.kind() {
            DbKind::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list(?)",
                "SELECT name, type AS kind FROM pragma_table_info(?) ORDER BY cid",
            ),
            DbKind::Postgres => (
                "SELECT c.relname::text AS name FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
                "SELECT DISTINCT p.relname::text AS name FROM pg_constraint k \
                 JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE k.contype = 'f' AND n.nspname = current_schema() AND c.relname = $1",
                "SELECT column_name::text AS name, data_type::text AS kind \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 AND is_generated = 'NEVER' ORDER BY ordinal_position",
            ),
        };
        let mut refs = BTreeMap::new();
        for name in self.names(tables_sql, None).await? {
            if internal(&name) {
                continue;
            }
            let parents = self.names(parents_sql, Some(&name)).await?;
            refs.insert(name, parents.into_iter().collect::<BTreeSet<_>>());
        }
        let kind = self.kind();
        let mut out = Vec::new();
        for name in parents_first(refs)? {
            let q = diesel::sql_query(columns_sql).bind::<Text, _>(name.clone());
            let rows: Vec<ColumnRow> =
                on_conn!(self, |c| q.load(&mut **c).await).map_err(db_error)?;
            let columns = rows
                .into_iter()
                .map(|r| ColumnInfo {
                    kind: match kind {
                        DbKind::Sqlite => sqlite_kind(&r.kind),
                        DbKind::Postgres => pg_kind(&r.kind),
                    },
                    name: r.name,
                })
                .collect();
            out.push(TableInfo { name, columns });
        }
        Ok(out)
    }

    /// The newest applied migration's version.
    async fn schema_version(&mut self) -> CoreResult<String> {
        let rows = self
            .names(
                "SELECT version AS name FROM __diesel_schema_migrations \
                 ORDER BY version DESC LIMIT 1",
                None,
            )
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| CoreError::internal_msg("the database has no migrations applied"))
    }
}

/// Where an export puts each row: called with the table and the row as a JSON array.
pub type RowSink<'a> = dyn FnMut(&TableInfo, &str) -> CoreResult<()> + Send + 'a;

/// What the database holds, as an export describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Layout {
    pub backend: String,
    pub schema_version: String,
    pub tables: Vec<TableInfo>,
}

fn backend_name(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgres => "postgres",
        DbKind::Sqlite => "sqlite",
    }
}

impl Db {
    /// The tables (parents first), their columns and the schema version of this database.
    pub async fn layout(&self) -> CoreResult<Layout> {
        let mut conn = Conn::take(self).await?;
        Ok(Layout {
            backend: backend_name(conn.kind()).to_owned(),
            schema_version: conn.schema_version().await?,
            tables: conn.layout().await?,
        })
    }

    /// Reads every row of every table of `layout` inside one read transaction, in table order,
    /// handing each to `sink` as a JSON array of its column values.
    pub async fn export_rows(&self, layout: &Layout, sink: &mut RowSink<'_>) -> CoreResult<()> {
        let mut conn = Conn::take(self).await?;
        let begin = match conn.kind() {
            DbKind::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            DbKind::Sqlite => "BEGIN",
        };
        conn.batch(begin).await?;
        let result = export_tables(&mut conn, layout, sink).await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = conn.batch(end).await;
        result.and(ended)
    }

    /// Starts an import: one transaction on a connection of its own.
    pub async fn begin_import(&self) -> CoreResult<Import> {
        let mut conn = Conn::take(self).await?;
        let layout = Layout {
            backend: backend_name(conn.kind()).to_owned(),
            schema_version: conn.schema_version().await?,
            tables: conn.layout().await?,
        };
        conn.batch("BEGIN").await?;
        Ok(Import { conn, layout })
    }
}

async fn export_tables(conn: &mut Conn, layout: &Layout, sink: &mut RowSink<'_>) -> CoreResult<()> {
    for table in &layout.tables {
        let cols = table
            .columns
            .iter()
            .map(|c| quoted(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let name = quoted(&table.name);
        match conn {
            Conn::Sqlite(c) => {
                let sql = format!(
                    "SELECT rowid AS k, json_array({cols}) AS j FROM {name} \
                     WHERE rowid > ? ORDER BY rowid LIMIT {EXPORT_PAGE}"
                );
                let mut after = i64::MIN;
                loop {
                    let rows: Vec<SqlitePageRow> = diesel::sql_query(&sql)
                        .bind::<BigInt, _>(after)
                        .load(&mut **c)
                        .await
                        .map_err(db_error)?;
                    for row in &rows {
                        sink(table, &row.j)?;
                    }
                    match rows.last() {
                        Some(last) if rows.len() as i64 == EXPORT_PAGE => after = last.k,
                        _ => break,
                    }
                }
            }
            Conn::Pg(c) => {
                let sql = format!(
                    "SELECT ctid::text AS k, json_build_array({cols})::text AS j FROM {name} \
                     WHERE ctid > $1::tid ORDER BY ctid LIMIT {EXPORT_PAGE}"
                );
                let mut after = "(0,0)".to_owned();
                loop {
                    let rows: Vec<PgPageRow> = diesel::sql_query(&sql)
                        .bind::<Text, _>(after.clone())
                        .load(&mut **c)
                        .await
                        .map_err(db_error)?;
                    for row in &rows {
                        sink(table, &row.j)?;
                    }
                    match rows.last() {
                        Some(last) if rows.len() as i64 == EXPORT_PAGE => after = last.k.clone(),
                        _ => break,
                    }
                }
            }
        }
    }
    Ok(())
}

/// An import in progress: rows go in with [`Import::insert`], and nothing is visible until
/// [`Import::commit`]. Dropped without a commit, the connection's transaction is rolled back
/// when the pool recycles it; [`Import::rollback`] does it at once.
pub struct Import {
    conn: Conn,
    layout: Layout,
}

/// How the rows of one exported table map onto the target's table.
pub struct TableMapping {
    table: String,
    /// Per exported column: its name, its kind in the export and its kind here.
    columns: Vec<(String, ColumnKind, ColumnKind)>,
}

impl Import {
    /// The target database's layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the target holds no rows in any table.
    pub async fn is_empty(&mut self) -> CoreResult<bool> {
        for table in &self.layout.tables {
            let sql = format!("SELECT 1 AS n FROM {} LIMIT 1", quoted(&table.name));
            let rows: Vec<OneRow> = on_conn!(&mut self.conn, |c| diesel::sql_query(&sql)
                .load(&mut **c)
                .await)
            .map_err(db_error)?;
            if !rows.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Maps an exported table onto this database's table of the same name: every exported
    /// column must exist here, and every column here must have been exported.
    pub fn mapping(&self, source: &TableInfo) -> CoreResult<TableMapping> {
        let target = self
            .layout
            .tables
            .iter()
            .find(|t| t.name == source.name)
            .ok_or_else(|| {
                CoreError::internal_msg(format!("this database has no table {}", source.name))
            })?;
        let here: BTreeMap<&str, ColumnKind> = target
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        let there: BTreeSet<&str> = source.columns.iter().map(|c| c.name.as_str()).collect();
        if let Some(missing) = here.keys().find(|c| !there.contains(*c)) {
            return Err(CoreError::internal_msg(format!(
                "the archive's table {} has no column {missing}",
                source.name
            )));
        }
        let columns = source
            .columns
            .iter()
            .map(|c| {
                here.get(c.name.as_str())
                    .map(|k| (c.name.clone(), c.kind, *k))
                    .ok_or_else(|| {
                        CoreError::internal_msg(format!(
                            "this database's table {} has no column {}",
                            source.name, c.name
                        ))
                    })
            })
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(TableMapping {
            table: source.name.clone(),
            columns,
        })
    }

    /// Inserts `rows` (JSON arrays in the exported column order) into the mapped table.
    pub async fn insert(&mut self, mapping: &TableMapping, rows: &[Value]) -> CoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let target = self.conn.kind();
        let mut objects = Vec::with_capacity(rows.len());
        for row in rows {
            let values = row.as_array().filter(|v| v.len() == mapping.columns.len());
            let Some(values) = values else {
                return Err(CoreError::internal_msg(format!(
                    "a row of {} does not have its {} columns",
                    mapping.table,
                    mapping.columns.len()
                )));
            };
            let mut object = serde_json::Map::with_capacity(values.len());
            for ((name, from, to), value) in mapping.columns.iter().zip(values) {
                object.insert(name.clone(), convert(value, *from, *to, target)?);
            }
            objects.push(Value::Object(object));
        }
        let json = Value::Array(objects).to_string();
        let cols = mapping
            .columns
            .iter()
            .map(|(n, _, _)| quoted(n))
            .collect::<Vec<_>>();
        let table = quoted(&mapping.table);
        match &mut self.conn {
            Conn::Pg(c) => {
                let sql = format!(
                    "INSERT INTO {table} ({list}) SELECT {list} \
                     FROM json_populate_recordset(NULL::{table}, $1::json)",
                    list = cols.join(", ")
                );
                diesel::sql_query(sql)
                    .bind::<Text, _>(json)
                    .execute(&mut **c)
                    .await
            }
            Conn::Sqlite(c) => {
                let extract = mapping
                    .columns
                    .iter()
                    .map(|(n, _, _)| format!("json_extract(value, '$.\"{n}\"')"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO {table} ({}) SELECT {extract} FROM json_each(?)",
                    cols.join(", ")
                );
                diesel::sql_query(sql)
                    .bind::<Text, _>(json)
                    .execute(&mut **c)
                    .await
            }
        }
        .map_err(db_error)?;
        Ok(())
    }

    /// Rows in `table` as this transaction sees them.
    pub async fn count(&mut self, table: &str) -> CoreResult<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", quoted(table));
        let row: CountRow = on_conn!(&mut self.conn, |c| diesel::sql_query(&sql)
            .get_result(&mut **c)
            .await)
        .map_err(db_error)?;
        Ok(row.n)
    }

    /// Makes the import visible. On SQLite the foreign keys are checked first.
    pub async fn commit(mut self) -> CoreResult<()> {
        if let Conn::Sqlite(c) = &mut self.conn {
            let broken: Vec<NameRow> =
                diesel::sql_query("SELECT \"table\" AS name FROM pragma_foreign_key_check")
                    .load(&mut **c)
                    .await
                    .map_err(db_error)?;
            if let Some(t) = broken.into_iter().next() {
                let _ = self.conn.batch("ROLLBACK").await;
                return Err(CoreError::internal_msg(format!(
                    "a row of {} references a row that is not there",
                    t.name
                )));
            }
        }
        self.conn.batch("COMMIT").await
    }

    /// Discards everything inserted.
    pub async fn rollback(mut self) -> CoreResult<()> {
        self.conn.batch("ROLLBACK").await
    }
}

#[derive(diesel::QueryableByName)]
struct OneRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    n: i32,
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `value`, exported from a `from` column, as the `to` column of a `target` database takes it.
fn convert(value: &Value, from: ColumnKind, to: ColumnKind, target: DbKind) -> CoreResult<Value> {
    let bad = || {
        CoreError::internal_msg(format!(
            "cannot store {value} (exported as {from:?}) in a {to:?} column"
        ))
    };
    Ok(match (value, to, target) {
        (Value::Null, _, _) => Value::Null,
        // SQLite keeps booleans as 0/1; json_extract turns true/false into 1/0 itself.
        (Value::Number(n), ColumnKind::Bool, _) => Value::Bool(n.as_i64().ok_or_else(bad)? != 0),
        // SQLite keeps JSON as text: PostgreSQL's jsonb takes the document.
        (Value::String(s), ColumnKind::Json, DbKind::Postgres) if from != ColumnKind::Json => {
            serde_json::from_str(s).map_err(|_| bad())?
        }
        // PostgreSQL's jsonb arrives as a document: SQLite keeps its text.
        (v, ColumnKind::Text, DbKind::Sqlite) if from == ColumnKind::Json => {
            Value::String(v.to_string())
        }
        // PostgreSQL's timestamptz arrives as ISO 8601: SQLite keeps diesel's text form, which
        // the application compares as text.
        (Value::String(s), ColumnKind::Text, DbKind::Sqlite) if from == ColumnKind::Timestamp => {
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
            Value::String(
                t.with_timezone(&chrono::Utc)
                    .format("%F %T%.f%:z")
                    .to_string(),
            )
        }
        // SQLite's text keeps nanoseconds; PostgreSQL would round them to microseconds, which
        // can carry into the next millisecond that clients see (a message of …44.792999600
        // answered …44.793 after the move). Cut to microseconds, as diesel writes them.
        (Value::String(s), ColumnKind::Timestamp, DbKind::Postgres)
            if from != ColumnKind::Timestamp =>
        {
            match chrono::DateTime::parse_from_str(s, "%F %T%.f%:z") {
                Ok(t) => Value::String(
                    t.with_timezone(&chrono::Utc)
                        .trunc_subsecs(6)
                        .format("%F %T%.6f%:z")
                        .to_string(),
                ),
                // Not diesel's form: PostgreSQL reads it as it is.
                Err(_) => value.clone(),
            }
        }
        (v, _, _) => v.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parents_come_first() {
        let refs = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
            ("c".to_owned(), BTreeSet::new()),
            ("d".to_owned(), BTreeSet::from(["d".to_owned()])),
        ]);
        assert_eq!(parents_first(refs).expect("sorted"), ["c", "d", "b", "a"]);
        let cycle = BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]);
        assert!(parents_first(cycle).is_err());
    }

    #[test]
    fn values_convert_between_backends() {
        use ColumnKind::*;
        let pg = DbKind::Postgres;
        let lite = DbKind::Sqlite;
        assert_eq!(
            convert(&json!(1), Bool, Bool, pg).expect("converts"),
            json!(true)
        );
        assert_eq!(
            convert(&json!(0), Bool, Bool, pg).expect("converts"),
            json!(false)
        );
        assert_eq!(
            convert(&json!("[\"a\"]"), Text, Json, pg).expect("converts"),
            json!(["a"])
        );
        assert!(convert(&json!("not json"), Text, Json, pg).is_err());
        assert_eq!(
            convert(&json!({"a": 1}), Json, Text, lite).expect("converts"),
            json!("{\"a\":1}")
        );
        assert_eq!(
            convert(
                &json!("2026-12-03T16:15:44.123456+00:00"),
                Timestamp,
                Text,
                lite
            )
            .expect("converts"),
            json!("2026-12-03 16:15:44.123456+00:00")
        );
        assert_eq!(
            convert(&json!("2026-12-03 16:15:44.5+00:00"), Text, Timestamp, pg).expect("converts"),
            json!("2026-12-03 16:15:44.500000+00:00"),
            "PostgreSQL reads SQLite's form, to the microsecond"
        );
        assert_eq!(
            convert(
                &json!("2026-12-06 02:44:44.792999600+00:00"),
                Text,
                Timestamp,
                pg
            )
            .expect("converts"),
            json!("2026-12-06 02:44:44.792999+00:00"),
            "nanoseconds are cut, not rounded into the next millisecond"
        );
        assert_eq!(
            convert(&Value::Null, Json, Text, lite).expect("converts"),
            Value::Null
        );
        assert_eq!(
            convert(&json!("x"), Text, Text, lite).expect("converts"),
            json!("x")
        );
    }
}
