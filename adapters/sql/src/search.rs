//! [`SearchStore`]: PostgreSQL `tsvector` with `ts_rank`, SQLite FTS5 with `bm25`. The one
//! place where the two backends need different SQL; every filter is bound, never formatted in.

use crate::db::{db_error, pool_error, Backend, Db};
use async_trait::async_trait;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;
use ecto_core::ports::{SearchQuery, SearchStore};
use ecto_core::{CoreError, CoreResult};
use uuid::Uuid;

/// Ranked message search.
pub struct SqlSearchStore(pub Db);

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

const PG_SEARCH: &str = "\
SELECT m.id::text AS id FROM messages m
WHERE m.server_id = $2::uuid AND m.deleted = false
  AND m.search_vector @@ plainto_tsquery('english', $1)
  AND (m.channel_id IN (SELECT value::uuid FROM jsonb_array_elements_text($3::jsonb))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = $2::uuid AND (d.user_a = $4::uuid OR d.user_b = $4::uuid)))
  AND ($5::uuid IS NULL OR m.channel_id = $5::uuid)
  AND ($6::uuid IS NULL OR m.author_id = $6::uuid)
  AND ($7::uuid IS NULL OR m.id < $7::uuid)
  AND ($8::uuid IS NULL OR m.id > $8::uuid)
  AND (NOT $9 OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT $10 OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY ts_rank(m.search_vector, plainto_tsquery('english', $1)) DESC, m.id DESC
LIMIT $11";

const SQLITE_SEARCH: &str = "\
SELECT m.id AS id FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid
WHERE messages_fts MATCH ?1 AND m.server_id = ?2 AND m.deleted = 0
  AND (m.channel_id IN (SELECT value FROM json_each(?3))
       OR m.channel_id IN (SELECT d.id FROM dm_conversations d
                           WHERE d.server_id = ?2 AND (d.user_a = ?4 OR d.user_b = ?4)))
  AND (?5 IS NULL OR m.channel_id = ?5)
  AND (?6 IS NULL OR m.author_id = ?6)
  AND (?7 IS NULL OR m.id < ?7)
  AND (?8 IS NULL OR m.id > ?8)
  AND (NOT ?9 OR EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id))
  AND (NOT ?10 OR m.content LIKE '%http://%' OR m.content LIKE '%https://%')
ORDER BY bm25(messages_fts) ASC, m.id DESC
LIMIT ?11";

/// Every word of `text` as a quoted FTS5 phrase (implicit AND); no FTS5 operator from user
/// input survives.
fn fts5_expression(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl SearchStore for SqlSearchStore {
    async fn search(&self, q: SearchQuery) -> CoreResult<Vec<Uuid>> {
        let readable = serde_json::to_string(&q.readable_channels).map_err(CoreError::internal)?;
        let text_of = |id: Option<Uuid>| id.map(|i| i.hyphenated().to_string());
        // The match text is the one thing the two queries take differently.
        let (sql, text) = match &*self.0.backend {
            Backend::Pg(_) => (PG_SEARCH, q.text.clone()),
            Backend::Sqlite { .. } => {
                let expression = fts5_expression(&q.text);
                if expression.is_empty() {
                    return Ok(Vec::new());
                }
                // Everything committed before this search is in the index.
                self.0.index_pending_messages().await?;
                (SQLITE_SEARCH, expression)
            }
        };
        let query = diesel::sql_query(sql)
            .bind::<Text, _>(text)
            .bind::<Text, _>(q.server_id.to_string())
            .bind::<Text, _>(readable)
            .bind::<Text, _>(q.user_id.to_string())
            .bind::<Nullable<Text>, _>(text_of(q.channel_id))
            .bind::<Nullable<Text>, _>(text_of(q.author_id))
            .bind::<Nullable<Text>, _>(text_of(q.before))
            .bind::<Nullable<Text>, _>(text_of(q.after))
            .bind::<Bool, _>(q.has_attachment)
            .bind::<Bool, _>(q.has_link)
            .bind::<BigInt, _>(q.limit);
        let rows: Vec<IdRow> = match &*self.0.backend {
            Backend::Pg(pool) => {
                let mut conn = pool.get().await.map_err(pool_error)?;
                query.load(&mut conn).await
            }
            Backend::Sqlite { read, .. } => {
                let mut conn = read.get().await.map_err(pool_error)?;
                // A full-text query may scan a large index: off the calling thread.
                crate::db::offloaded(async { query.load(&mut conn).await }).await
            }
        }
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| Uuid::parse_str(&r.id).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::fts5_expression;

    #[test]
    fn user_text_never_becomes_fts5_syntax() {
        assert_eq!(fts5_expression("hello world"), "\"hello\" \"world\"");
        assert_eq!(
            fts5_expression("a\" OR b NEAR(c) *"),
            "\"a\" \"OR\" \"b\" \"NEAR\" \"c\""
        );
        assert_eq!(fts5_expression("!!!"), "");
    }
}
