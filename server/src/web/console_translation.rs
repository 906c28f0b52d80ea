//! The console's side of translation (`app::ports::Interpreter`): an agent's draft in the
//! visitor's language, and the provider's settings as the admin translation page's fields —
//! read from the running setup, tried before saving, saved to the configuration file and put
//! in force at once, with no restart.
//!
//! The API key and Baidu's secret never go back to the browser: left empty in the form, the
//! saved ones are kept — for the saved provider at the saved address only. A form that
//! changes either must carry the key again (`SecretRequired` when the provider needs one), so
//! an admin page, or a forged request to it, cannot send the saved key to a new host. An
//! address `crate::outbound` refuses is `AddressRefused`, at the test and at saving.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use app::error::ConsoleError;
use app::ports::Draft;
use app::ports::{TranslationForm, TranslationView};
use protocol::Unavailable;

use crate::realtime::Realtime;
use crate::realtime::settings::WidgetSettings;
use crate::translate::{TranslateError, TranslationSection, TranslationSetup};

/// What the test button asks the provider to translate (into Simplified Chinese).
const SAMPLE: &str = "Hello, how can I help you?";

/// What the console's server functions use to translate and to change the provider.
pub struct ConsoleTranslation {
    /// Holds the setup in force.
    pub realtime: Arc<Realtime>,
    /// Where saved settings are written.
    pub file: PathBuf,
    /// Flags or variables set some of the settings: saving is refused.
    pub locked: bool,
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, ConsoleError>> + Send>>;

impl app::ports::Interpreter for ConsoleTranslation {
    fn translates(&self, site: &store::Site) -> bool {
        self.realtime.translation().is_some() && WidgetSettings::of(site).translate
    }

    fn draft(
        &self,
        conversation: store::Conversation,
        agent: store::Agent,
        text: String,
    ) -> Boxed<Draft> {
        let realtime = self.realtime.clone();
        let setup = realtime.translation();
        Box::pin(async move {
            let store = realtime.store.as_ref();
            let site = store
                .site(conversation.site_id)
                .await
                .map_err(internal)?
                .ok_or(ConsoleError::NotFound)?;
            let setup = setup
                .filter(|_| conversation.translating && WidgetSettings::of(&site).translate)
                .ok_or(ConsoleError::NoTranslation)?;
            crate::realtime::translation::draft(store, &setup, &conversation, &agent, &text)
                .await
                .map_err(internal)?
                .map_err(|why| match why {
                    Unavailable::Budget => ConsoleError::TranslationBudget,
                    Unavailable::Provider => ConsoleError::TranslationFailed,
                })
        })
    }

    fn settings(&self) -> TranslationView {
        let setup = self.realtime.translation();
        let section = setup
            .as_ref()
            .map(|setup| setup.section.clone())
            .unwrap_or_default();
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        TranslationView {
            form: TranslationForm {
                provider: text(&section.provider),
                url: text(&section.url),
                api_key: String::new(),
                region: text(&section.region),
                app_id: text(&section.app_id),
                secret: String::new(),
                model: text(&section.model),
                daily_chars: setup
                    .as_ref()
                    .map_or(TranslationSetup::DEFAULT_DAILY_CHARS, |s| s.daily_chars),
                agent_language: setup
                    .as_ref()
                    .map(|s| s.agent_language.clone())
                    .unwrap_or_default(),
            },
            has_api_key: section.api_key.is_some(),
            has_secret: section.secret.is_some(),
            locked: self.locked,
            file: self.file.display().to_string(),
            usage: Vec::new(),
        }
    }

    fn test(&self, form: TranslationForm) -> Boxed<String> {
        let made = self.setup_of(form);
        Box::pin(async move {
            let (_, setup) = made?;
            let setup = setup.ok_or(ConsoleError::NoTranslation)?;
            setup
                .translator
                .translate(SAMPLE, Some("en"), "zh-CN")
                .await
                .map(|translation| translation.text)
                .map_err(|error| {
                    tracing::warn!(%error, provider = setup.translator.name(), "testing the translation provider failed");
                    match error {
                        TranslateError::Address(_) => ConsoleError::AddressRefused,
                        _ => ConsoleError::TranslationFailed,
                    }
                })
        })
    }

    fn save(&self, form: TranslationForm) -> Result<(), ConsoleError> {
        if self.locked {
            return Err(ConsoleError::Forbidden);
        }
        let (section, setup) = self.setup_of(form)?;
        crate::config_file::edit(&self.file, |document| {
            let text = |value: &Option<String>| value.clone().map(toml_edit::value);
            let fields = [
                ("provider", text(&section.provider)),
                ("url", text(&section.url)),
                ("api_key", text(&section.api_key)),
                ("region", text(&section.region)),
                ("app_id", text(&section.app_id)),
                ("secret", text(&section.secret)),
                ("model", text(&section.model)),
                ("daily_chars", section.daily_chars.map(toml_edit::value)),
                ("agent_language", text(&section.agent_language)),
            ];
            for (key, value) in fields {
                crate::config_file::set(document, "translation", key, value);
            }
        })
        .map_err(|error| {
            tracing::error!(%error, "saving the translation settings failed");
            ConsoleError::Internal
        })?;
        self.realtime.set_translation(setup);
        Ok(())
    }
}

impl ConsoleTranslation {
    /// The section `form` describes (with the saved key and secret where it leaves them
    /// empty and names the saved provider and address, and the saved timeout) and the setup
    /// made from it; `AddressRefused` for an address Kefu may not call, `SecretRequired` when
    /// only the saved key or secret, not carried to a new address, is missing, `Invalid` when
    /// it makes no provider.
    fn setup_of(
        &self,
        form: TranslationForm,
    ) -> Result<(TranslationSection, Option<TranslationSetup>), ConsoleError> {
        let outbound = &self.realtime.outbound;
        let saved = self
            .realtime
            .translation()
            .map(|setup| setup.section)
            .unwrap_or_default();
        let filled = |value: String| Some(value.trim().to_owned()).filter(|v| !v.is_empty());
        let mut section = TranslationSection {
            provider: filled(form.provider),
            url: filled(form.url),
            api_key: filled(form.api_key),
            region: filled(form.region),
            app_id: filled(form.app_id),
            secret: filled(form.secret),
            model: filled(form.model),
            timeout_ms: saved.timeout_ms,
            daily_chars: Some(form.daily_chars),
            agent_language: filled(form.agent_language),
        };
        let with_saved = |section: &TranslationSection| TranslationSection {
            api_key: section.api_key.clone().or(saved.api_key.clone()),
            secret: section.secret.clone().or(saved.secret.clone()),
            ..section.clone()
        };
        let same_target = section.provider == saved.provider && section.url == saved.url;
        if same_target {
            section = with_saved(&section);
        }
        if let Some(url) = &section.url
            && outbound.check(url) == Err(crate::outbound::Error::Refused)
        {
            return Err(ConsoleError::AddressRefused);
        }
        match section.clone().setup(outbound) {
            Ok(setup) => Ok((section, setup)),
            Err(_) if !same_target && with_saved(&section).setup(outbound).is_ok() => {
                tracing::info!("translation settings name a new address without the key");
                Err(ConsoleError::SecretRequired)
            }
            Err(message) => {
                tracing::info!(%message, "translation settings refused");
                Err(ConsoleError::Invalid)
            }
        }
    }
}

/// Logs a store failure and hides it from the browser.
fn internal(error: store::Error) -> ConsoleError {
    tracing::error!(%error, "translating a draft failed");
    ConsoleError::Internal
}
