//! LibreTranslate (self-hostable; `POST /translate`): `{"q", "source", "target", "format",
//! "api_key"}` answered by `{"translatedText", "detectedLanguage": {"language", "confidence"}}`
//! (the detected language only when `source` is `auto`).

use serde::Deserialize;

use super::{Failure, Provider, Translation, body_of, json, request_failure};

/// A LibreTranslate server.
pub struct LibreTranslate {
    /// Its address, e.g. `http://127.0.0.1:5000` (the API is at `/translate` below it).
    pub url: String,
    /// Its API key, if it requires one.
    pub api_key: Option<String>,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "translatedText")]
    translated_text: String,
    #[serde(rename = "detectedLanguage")]
    detected_language: Option<Detected>,
}

#[derive(Deserialize)]
struct Detected {
    language: String,
}

/// LibreTranslate's codes: ISO 639-1, with `zh` for simplified and `zt` for traditional
/// Chinese, as its `/languages` lists them.
fn code(tag: &str) -> String {
    super::code_with_chinese(tag, "zh", "zt")
}

#[async_trait::async_trait]
impl Provider for LibreTranslate {
    fn name(&self) -> &'static str {
        "libretranslate"
    }

    fn max_chars(&self) -> usize {
        // The server's default `--char-limit` is unlimited, but public instances use 5,000.
        5_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let mut body = serde_json::json!({
            "q": text,
            "source": source.map(code).unwrap_or_else(|| "auto".into()),
            "target": code(target),
            "format": "text",
        });
        if let Some(key) = &self.api_key {
            body["api_key"] = key.as_str().into();
        }
        let response = self
            .client
            .post(&format!("{}/translate", self.url.trim_end_matches('/')))?
            .json(&body)
            .send()
            .await
            .map_err(request_failure)?;
        let answer: Answer = json(&body_of(response).await?)?;
        Ok(Translation {
            text: answer.translated_text,
            detected: answer.detected_language.map(|d| d.language),
        })
    }
}
