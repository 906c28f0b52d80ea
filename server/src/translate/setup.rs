//! The `[translation]` section of `kefu.toml`: which provider, its address and credentials,
//! and the limits that apply to every site — read into a ready [`TranslationSetup`].
//!
//! ```toml
//! [translation]
//! provider = "libretranslate"        # deepl, google, azure, baidu, openai
//! url = "http://127.0.0.1:5000"      # where the provider is (defaults for the cloud ones)
//! api_key = "…"                      # deepl, google, azure, openai; libretranslate if set up
//! daily_chars = 200000               # characters each site may send per UTC day
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Azure, Baidu, DeepL, Google, LibreTranslate, OpenAiChat, Provider, Retry, Translator};

/// The section as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationSection {
    provider: Option<String>,
    url: Option<String>,
    api_key: Option<String>,
    region: Option<String>,
    app_id: Option<String>,
    secret: Option<String>,
    model: Option<String>,
    timeout_ms: Option<u64>,
    daily_chars: Option<i64>,
    agent_language: Option<String>,
}

/// Translation as configured: the provider (with splitting and retries) and the limits.
#[derive(Clone)]
pub struct TranslationSetup {
    /// The provider.
    pub translator: Arc<Translator>,
    /// Characters each site may send to the provider per UTC day (cloud APIs bill per
    /// character).
    pub daily_chars: i64,
    /// The agents' language when a conversation has no agent yet (BCP 47).
    pub agent_language: String,
}

/// Shows the provider's name only: the section holds keys.
impl std::fmt::Debug for TranslationSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslationSetup")
            .field("provider", &self.translator.name())
            .field("daily_chars", &self.daily_chars)
            .field("agent_language", &self.agent_language)
            .finish()
    }
}

impl TranslationSection {
    /// The setup the section describes (`None` without a provider), or what is missing.
    pub fn setup(self) -> Result<Option<TranslationSetup>, String> {
        let Some(name) = self.provider.clone() else {
            return Ok(None);
        };
        let client = super::client(Duration::from_millis(self.timeout_ms.unwrap_or(8_000)));
        let need = |value: &Option<String>, key: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or(format!("provider {name} needs translation.{key}"))
        };
        let url_or = |default: &str| self.url.clone().unwrap_or_else(|| default.to_owned());
        let provider: Box<dyn Provider> = match name.as_str() {
            "libretranslate" => Box::new(LibreTranslate {
                url: need(&self.url, "url")?,
                api_key: self.api_key.clone(),
                client,
            }),
            "deepl" => {
                let api_key = need(&self.api_key, "api_key")?;
                Box::new(DeepL {
                    url: url_or(DeepL::default_url(&api_key)),
                    api_key,
                    client,
                })
            }
            "google" => Box::new(Google {
                url: url_or("https://translation.googleapis.com"),
                api_key: need(&self.api_key, "api_key")?,
                client,
            }),
            "azure" => Box::new(Azure {
                url: url_or("https://api.cognitive.microsofttranslator.com"),
                api_key: need(&self.api_key, "api_key")?,
                region: self.region.clone(),
                client,
            }),
            "baidu" => Box::new(Baidu {
                url: url_or("https://fanyi-api.baidu.com"),
                app_id: need(&self.app_id, "app_id")?,
                secret: need(&self.secret, "secret")?,
                client,
            }),
            "openai" => Box::new(OpenAiChat {
                url: need(&self.url, "url")?,
                api_key: self.api_key.clone(),
                model: need(&self.model, "model")?,
                client,
            }),
            other => {
                return Err(format!(
                    "unknown provider {other:?} (libretranslate, deepl, google, azure, baidu, openai)"
                ));
            }
        };
        let daily_chars = self.daily_chars.unwrap_or(200_000);
        if daily_chars < 0 {
            return Err("translation.daily_chars cannot be negative".into());
        }
        Ok(Some(TranslationSetup {
            translator: Arc::new(Translator::new(provider, Retry::default())),
            daily_chars,
            agent_language: self.agent_language.unwrap_or_else(|| "en".into()),
        }))
    }
}
