//! Azure AI Translator v3 (`POST /translate?api-version=3.0&to=…[&from=…]`, with
//! `Ocp-Apim-Subscription-Key` and, for regional resources, `Ocp-Apim-Subscription-Region`):
//! `[{"Text"}]` answered by `[{"detectedLanguage": {"language", "score"}, "translations":
//! [{"text", "to"}]}]`.

use serde::Deserialize;

use super::{Failure, Provider, TranslateError, Translation, body_of, json, request_failure};

/// Azure Translator.
pub struct Azure {
    /// The API's address: `https://api.cognitive.microsofttranslator.com`.
    pub url: String,
    /// The resource's key.
    pub api_key: String,
    /// The resource's region (`eastasia`), when it is not global.
    pub region: Option<String>,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "detectedLanguage")]
    detected_language: Option<Detected>,
    translations: Vec<Text>,
}

#[derive(Deserialize)]
struct Detected {
    language: String,
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// Azure's codes: ISO 639-1, with `zh-Hans` and `zh-Hant` for Chinese.
fn code(tag: &str) -> String {
    super::code_with_chinese(tag, "zh-Hans", "zh-Hant")
}

#[async_trait::async_trait]
impl Provider for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn max_chars(&self) -> usize {
        // A request may hold 50,000 characters.
        45_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let mut query = vec![("api-version", "3.0".to_owned()), ("to", code(target))];
        if let Some(source) = source {
            query.push(("from", code(source)));
        }
        let mut request = self
            .client
            .post(&format!("{}/translate", self.url.trim_end_matches('/')))?
            .query(&query)
            .header("Ocp-Apim-Subscription-Key", &self.api_key)
            .json(&serde_json::json!([{ "Text": text }]));
        if let Some(region) = &self.region {
            request = request.header("Ocp-Apim-Subscription-Region", region);
        }
        let response = request.send().await.map_err(request_failure)?;
        let answer: Vec<Item> = json(&body_of(response).await?)?;
        let item = answer
            .into_iter()
            .next()
            .ok_or_else(|| TranslateError::Malformed("no results".into()))?;
        let text = item
            .translations
            .into_iter()
            .next()
            .ok_or_else(|| TranslateError::Malformed("no translations".into()))?
            .text;
        Ok(Translation {
            text,
            detected: item.detected_language.map(|d| d.language),
        })
    }
}
