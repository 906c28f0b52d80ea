//! Storage limits for files visitors and agents upload, and the sweep that deletes uploads no
//! message ever carried. The upload endpoints themselves are `crate::web::transport::attachments`.

/// `[uploads]` in `kefu.toml`: how much files may take, and how long an unsent one is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Bytes of files one visitor may have stored (sent or not).
    pub visitor_quota_bytes: u64,
    /// Bytes of files one site may have stored, visitors' and agents' together.
    pub site_quota_bytes: u64,
    /// An upload that no message carries after this long is deleted.
    pub unsent_after: std::time::Duration,
}

impl Default for UploadLimits {
    /// 20 MB per visitor, 2 GB per site, unsent uploads kept an hour.
    fn default() -> Self {
        UploadLimits {
            visitor_quota_bytes: 20 * 1_000_000,
            site_quota_bytes: 2_000 * 1_000_000,
            unsent_after: std::time::Duration::from_secs(60 * 60),
        }
    }
}

/// Deletes the uploads no message carries once they are older than `unsent_after`, checking a
/// few times per that period (at least every ten minutes). Runs until the server stops.
pub async fn sweep(store: std::sync::Arc<dyn store::Store>, unsent_after: std::time::Duration) {
    let every = (unsent_after / 4).clamp(
        std::time::Duration::from_millis(20),
        std::time::Duration::from_secs(600),
    );
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let before = crate::util::now_ms()
            .saturating_sub(i64::try_from(unsent_after.as_millis()).unwrap_or(i64::MAX));
        match store.delete_unsent_attachments(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted uploads that were never sent"),
            Err(error) => tracing::warn!(%error, "could not delete unsent uploads"),
        }
    }
}
