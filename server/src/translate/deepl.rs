//! DeepL API v2 (`POST /v2/translate`, `Authorization: DeepL-Auth-Key …`): `{"text": [..],
//! "target_lang", "source_lang"}` answered by `{"translations": [{"detected_source_language",
//! "text"}]}`. Free-plan keys (ending `:fx`) use `api-free.deepl.com`.

use serde::Deserialize;

use super::{
    Failure, Provider, TranslateError, Translation, body_of, json, primary, request_failure,
};

/// The DeepL API.
pub struct DeepL {
    /// The API's address: `https://api.deepl.com`, or `https://api-free.deepl.com` (see
    /// [`DeepL::default_url`]).
    pub url: String,
    /// The authentication key.
    pub api_key: String,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

impl DeepL {
    /// The address for `api_key`: the free API for free-plan keys (`…:fx`).
    pub fn default_url(api_key: &str) -> &'static str {
        if api_key.ends_with(":fx") {
            "https://api-free.deepl.com"
        } else {
            "https://api.deepl.com"
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    translations: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    detected_source_language: Option<String>,
}

/// DeepL's target codes: upper-case, with the variants it requires for English and
/// Portuguese and the script for Chinese.
fn target_code(tag: &str) -> String {
    match primary(tag).as_str() {
        "en" if tag.to_ascii_lowercase().ends_with("gb") => "EN-GB".into(),
        "en" => "EN-US".into(),
        "pt" if tag.to_ascii_lowercase().ends_with("pt") => "PT-PT".into(),
        "pt" => "PT-BR".into(),
        "zh" if super::traditional(tag) => "ZH-HANT".into(),
        "zh" => "ZH-HANS".into(),
        other => other.to_ascii_uppercase(),
    }
}

#[async_trait::async_trait]
impl Provider for DeepL {
    fn name(&self) -> &'static str {
        "deepl"
    }

    fn max_chars(&self) -> usize {
        // Requests may be up to 128 KiB; 30,000 characters stay under it in any script.
        30_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let mut body = serde_json::json!({
            "text": [text],
            "target_lang": target_code(target),
        });
        if let Some(source) = source {
            body["source_lang"] = primary(source).to_ascii_uppercase().into();
        }
        let response = self
            .client
            .post(&format!("{}/v2/translate", self.url.trim_end_matches('/')))?
            .header("Authorization", format!("DeepL-Auth-Key {}", self.api_key))
            .json(&body)
            .send()
            .await
            .map_err(request_failure)?;
        let body = body_of(response).await.map_err(|mut failure| {
            // DeepL says 456 when the account's character quota is used up.
            if let TranslateError::Status { status: 456, .. } = failure.error {
                failure.error = TranslateError::RateLimited;
            }
            failure
        })?;
        let answer: Answer = json(&body)?;
        let item = answer
            .translations
            .into_iter()
            .next()
            .ok_or_else(|| TranslateError::Malformed("no translations".into()))?;
        Ok(Translation {
            text: item.text,
            detected: item
                .detected_source_language
                .map(|l| l.to_ascii_lowercase()),
        })
    }
}
