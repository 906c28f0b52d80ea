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

use serde::{Deserialize, Serialize};

use super::{Azure, Baidu, DeepL, Google, LibreTranslate, OpenAiChat, Provider, Retry, Translator};

/// The section as written in the file (and as the admin translation page edits it).
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationSection {
    /// `libretranslate`, `deepl`, `google`, `azure`, `baidu` or `openai`; none: no translation.
    pub provider: Option<String>,
    /// Where the provider answers (the cloud ones have defaults).
    pub url: Option<String>,
    /// The key of DeepL, Google, Azure, an OpenAI-compatible server or a LibreTranslate set up
    /// with keys.
    pub api_key: Option<String>,
    /// Azure's resource region.
    pub region: Option<String>,
    /// Baidu's app id.
    pub app_id: Option<String>,
    /// Baidu's secret, which signs each request.
    pub secret: Option<String>,
    /// The model an OpenAI-compatible server runs.
    pub model: Option<String>,
    /// How long one request may take.
    pub timeout_ms: Option<u64>,
    /// Characters each site may send per UTC day.
    pub daily_chars: Option<i64>,
    /// The agents' language when a conversation has no agent yet.
    pub agent_language: Option<String>,
}

/// Never prints the key or the secret.
impl std::fmt::Debug for TranslationSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranslationSection")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
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
    /// The section it was made from: the admin page shows and edits it.
    pub section: TranslationSection,
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

impl TranslationSetup {
    /// Characters each site may send per day unless the section says otherwise.
    pub const DEFAULT_DAILY_CHARS: i64 = 200_000;
}

impl TranslationSection {
    /// The setup the section describes (`None` without a provider), calling the provider
    /// through `outbound`; or what is missing.
    pub fn setup(
        self,
        outbound: &crate::outbound::Outbound,
    ) -> Result<Option<TranslationSetup>, String> {
        let Some(name) = self.provider.clone().filter(|name| !name.is_empty()) else {
            return Ok(None);
        };
        let client = outbound.with_timeout(Duration::from_millis(self.timeout_ms.unwrap_or(8_000)));
        let need = |value: &Option<String>, key: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or(format!("provider {name} needs translation.{key}"))
        };
        if let Some(url) = &self.url {
            let parsed =
                url::Url::parse(url).map_err(|error| format!("translation.url: {error}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("translation.url must start with http:// or https://".into());
            }
            outbound
                .check(url)
                .map_err(|error| format!("translation.url: {error}"))?;
        }
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
        let daily_chars = self
            .daily_chars
            .unwrap_or(TranslationSetup::DEFAULT_DAILY_CHARS);
        if daily_chars < 0 {
            return Err("translation.daily_chars cannot be negative".into());
        }
        let agent_language = self.agent_language.clone().unwrap_or_else(|| "en".into());
        if !super::is_language_tag(&agent_language) {
            return Err(format!(
                "translation.agent_language {agent_language:?} is not a language tag such as en or zh-CN"
            ));
        }
        Ok(Some(TranslationSetup {
            translator: Arc::new(Translator::new(provider, Retry::default())),
            daily_chars,
            agent_language,
            section: self,
        }))
    }
}
