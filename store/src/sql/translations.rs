//! [`Translations`], written once for every backend.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{SearchIndex, Sql, finish, on_pool, sql};
use crate::{
    Indexed, MessageId, MessageTranslation, Result, SiteId, TranslationKey, Translations,
    UnixMillis, push_id_list, translated_search_text,
};

#[async_trait]
impl<S: Sql> Translations for S {
    async fn save_message_translation(&self, translation: &MessageTranslation) -> Result<()> {
        let _writer = self.writer().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = async {
                sqlx::query(sql!(
                    "INSERT INTO message_translations (message_id, source_language, \
                     target_language, text, state, attempts, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (message_id) DO UPDATE SET source_language = excluded.source_language, \
                     target_language = excluded.target_language, text = excluded.text, \
                     state = excluded.state, attempts = excluded.attempts, \
                     updated_at = excluded.updated_at"
                ))
                .bind(translation.message_id)
                .bind(&translation.source_language)
                .bind(&translation.target_language)
                .bind(&translation.text)
                .bind(translation.state.as_str())
                .bind(translation.attempts)
                .bind(translation.updated_at)
                .execute(&mut *tx)
                .await?;
                if let Some(text) = &translation.text {
                    let body: String =
                        sqlx::query_scalar(sql!("SELECT body FROM messages WHERE id = ?"))
                            .bind(translation.message_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    let indexed = translated_search_text(&body, text);
                    tx.index_text(Indexed::Messages, translation.message_id.0, &indexed)
                        .await?;
                }
                Ok(())
            }
            .await;
            finish(tx, outcome).await
        })
    }

    async fn message_translations(
        &self,
        message_ids: &[MessageId],
    ) -> Result<Vec<MessageTranslation>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_pool!(self, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT message_id, source_language, target_language, text, state, attempts, \
                 updated_at FROM message_translations WHERE message_id",
            );
            push_id_list(&mut query, message_ids);
            query.push(" ORDER BY message_id");
            query.build_query_as().fetch_all(pool).await
        })?)
    }

    async fn cached_translation(&self, key: &TranslationKey) -> Result<Option<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(
                "SELECT translation FROM translation_cache WHERE text_hash = ? \
                 AND source_language = ? AND target_language = ? AND provider = ?"
            ))
            .bind(&key.text_hash)
            .bind(&key.source_language)
            .bind(&key.target_language)
            .bind(&key.provider)
            .fetch_optional(pool)
            .await
        })?)
    }

    async fn cache_translation(
        &self,
        key: &TranslationKey,
        translation: &str,
        now: UnixMillis,
    ) -> Result<()> {
        let _writer = self.writer().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO translation_cache (text_hash, source_language, target_language, \
                 provider, translation, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (text_hash, source_language, target_language, provider) DO NOTHING"
            ))
            .bind(&key.text_hash)
            .bind(&key.source_language)
            .bind(&key.target_language)
            .bind(&key.provider)
            .bind(translation)
            .bind(now)
            .execute(pool)
            .await
            .map(drop)
        })?)
    }

    async fn spend_translation_chars(
        &self,
        site_id: SiteId,
        day: i64,
        chars: i64,
        budget: i64,
    ) -> Result<bool> {
        if chars > budget {
            return Ok(false);
        }
        let _writer = self.writer().await;
        // The day's row made if missing, then a conditional add: one row update is atomic on
        // every backend, so two servers spending at once never pass the budget together.
        let counted = on_pool!(self, |pool| {
            sqlx::query(sql!(
                "INSERT INTO translation_usage (site_id, day, chars) VALUES (?, ?, 0) \
                 ON CONFLICT (site_id, day) DO NOTHING"
            ))
            .bind(site_id)
            .bind(day)
            .execute(pool)
            .await?;
            sqlx::query(sql!(
                "UPDATE translation_usage SET chars = chars + ? \
                 WHERE site_id = ? AND day = ? AND chars + ? <= ?"
            ))
            .bind(chars)
            .bind(site_id)
            .bind(day)
            .bind(chars)
            .bind(budget)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(counted > 0)
    }

    async fn translation_chars(&self, site_id: SiteId, day: i64) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(sql!(
                "SELECT chars FROM translation_usage WHERE site_id = ? AND day = ?"
            ))
            .bind(site_id)
            .bind(day)
            .fetch_optional(pool)
            .await
        })?
        .unwrap_or(0))
    }
}
