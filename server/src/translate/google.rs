//! Google Cloud Translation, Basic (v2) with an API key (`POST
//! /language/translate/v2?key=…`): `{"q": [..], "target", "source", "format": "text"}`
//! answered by `{"data": {"translations": [{"translatedText", "detectedSourceLanguage"}]}}`.

use serde::Deserialize;

use super::{Failure, Provider, TranslateError, Translation, body_of, json, request_failure};

/// Google Cloud Translation v2.
pub struct Google {
    /// The API's address: `https://translation.googleapis.com`.
    pub url: String,
    /// The API key.
    pub api_key: String,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

#[derive(Deserialize)]
struct Answer {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    translations: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "translatedText")]
    translated_text: String,
    #[serde(rename = "detectedSourceLanguage")]
    detected_source_language: Option<String>,
}

/// Google's codes: ISO 639-1, with `zh-CN` and `zh-TW` for Chinese.
fn code(tag: &str) -> String {
    super::code_with_chinese(tag, "zh-CN", "zh-TW")
}

#[async_trait::async_trait]
impl Provider for Google {
    fn name(&self) -> &'static str {
        "google"
    }

    fn max_chars(&self) -> usize {
        // Google recommends at most 5,000 characters per request.
        5_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let mut body = serde_json::json!({
            "q": [text],
            "target": code(target),
            "format": "text",
        });
        if let Some(source) = source {
            body["source"] = code(source).into();
        }
        let response = self
            .client
            .post(&format!(
                "{}/language/translate/v2",
                self.url.trim_end_matches('/')
            ))?
            .query(&[("key", &self.api_key)])
            .json(&body)
            .send()
            .await
            .map_err(request_failure)?;
        let answer: Answer = json(&body_of(response).await?)?;
        let item = answer
            .data
            .translations
            .into_iter()
            .next()
            .ok_or_else(|| TranslateError::Malformed("no translations".into()))?;
        Ok(Translation {
            text: item.translated_text,
            detected: item.detected_source_language,
        })
    }
}
