//! A site's widget settings: how its widget looks and behaves, which files its chats accept
//! and when chat is offered — kept as JSON in `sites.widget_settings`, read by the transports,
//! the session and the translation flow, and checked when an administrator saves them.

use super::hours::BusinessHours;
use protocol::transport::{ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES};
use serde::{Deserialize, Serialize};

/// How a site's widget looks and behaves, kept as JSON in `sites.widget_settings`. Every field
/// has a default, so a site created with `{}` gets a working widget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WidgetSettings {
    /// Launcher and header colour, `#rgb` or `#rrggbb`; anything else falls back to the default
    /// so a typo cannot inject CSS.
    pub color: String,
    /// The bottom corner the launcher sits in.
    pub position: Position,
    /// The panel's greeting; absent means the widget's own, in the visitor's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Ask for name and e-mail before the first message.
    pub prechat: bool,
    /// Let agents see what the visitor types before sending; when off, the widget sends no
    /// previews and the server drops any that arrive.
    pub sneak_peek: bool,
    /// Which files may be sent in chats.
    pub attachments: AttachmentRules,
    /// When chat is offered; absent means whenever an agent is online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    /// Translate between agents and visitors automatically (needs a provider configured).
    pub translate: bool,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        WidgetSettings {
            color: DEFAULT_COLOR.to_string(),
            position: Position::Right,
            greeting: None,
            prechat: false,
            sneak_peek: true,
            attachments: AttachmentRules::default(),
            business_hours: None,
            translate: false,
        }
    }
}

const DEFAULT_COLOR: &str = "#2563eb";

/// Why widget settings an administrator entered are refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// Not the settings' JSON shape.
    #[error("{0}")]
    Shape(String),
    /// Not `#rgb` or `#rrggbb`.
    #[error("color must be #rgb or #rrggbb")]
    Color,
    /// Longer than `protocol::transport::MAX_GREETING_CHARS`.
    #[error("the greeting is too long")]
    Greeting,
    /// A file size over the limit, or a media type Kefu cannot check.
    #[error("attachments: at most 10 MiB, and only the types Kefu checks")]
    Attachments,
    /// Business hours that cannot be read.
    #[error("business hours: {0}")]
    Hours(#[from] super::hours::HoursError),
}

/// Which bottom corner of the page the widget sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Bottom right (the default).
    Right,
    /// Bottom left, for pages whose right corner is taken.
    Left,
}

impl WidgetSettings {
    /// The settings stored for a site; unreadable settings are logged and replaced by defaults,
    /// so a bad edit never takes the widget down.
    pub fn of(site: &store::Site) -> WidgetSettings {
        let mut settings = WidgetSettings::deserialize(&site.widget_settings).unwrap_or_else(|error| {
                tracing::warn!(site = %site.id, %error, "unreadable widget settings; using defaults");
                WidgetSettings::default()
            });
        if !is_hex_color(&settings.color) {
            settings.color = DEFAULT_COLOR.to_string();
        }
        settings.attachments = settings.attachments.effective();
        settings
    }

    /// Settings an administrator entered: refused when they do not parse, name a colour that
    /// is not `#rgb`/`#rrggbb`, a greeting over `MAX_GREETING_CHARS`, a file size over the
    /// limit or a type Kefu cannot check, or business hours that cannot be read; otherwise
    /// returned as they will be stored (every field spelled out, unknown keys dropped).
    pub fn check(value: serde_json::Value) -> Result<serde_json::Value, SettingsError> {
        let settings = WidgetSettings::deserialize(value)
            .map_err(|error| SettingsError::Shape(error.to_string()))?;
        if !is_hex_color(&settings.color) {
            return Err(SettingsError::Color);
        }
        if settings
            .greeting
            .as_ref()
            .is_some_and(|g| g.chars().count() > protocol::transport::MAX_GREETING_CHARS)
        {
            return Err(SettingsError::Greeting);
        }
        if settings.attachments != settings.attachments.clone().effective() {
            return Err(SettingsError::Attachments);
        }
        if let Some(hours) = &settings.business_hours {
            hours.check(0).map_err(SettingsError::Hours)?;
        }
        serde_json::to_value(&settings).map_err(|error| SettingsError::Shape(error.to_string()))
    }

    /// Whether the site's business hours (if any) include `at_ms`.
    pub fn open_at(&self, at_ms: i64) -> bool {
        self.business_hours
            .as_ref()
            .is_none_or(|hours| hours.open_at(at_ms))
    }
}

fn is_hex_color(value: &str) -> bool {
    value
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Which files a site accepts in chats: part of its widget settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentRules {
    /// The largest file, in bytes (at most [`MAX_ATTACHMENT_BYTES`]).
    pub max_bytes: u32,
    /// The accepted media types, a subset of the ones Kefu can check; empty turns files off.
    pub types: Vec<String>,
}

impl Default for AttachmentRules {
    fn default() -> Self {
        AttachmentRules {
            max_bytes: 5 * 1024 * 1024,
            types: ATTACHMENT_TYPES.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl AttachmentRules {
    /// The rules as they apply: the size capped, unknown types dropped (an admin's typo never
    /// lets through a type whose bytes are not checked).
    pub fn effective(mut self) -> AttachmentRules {
        self.max_bytes = self.max_bytes.min(MAX_ATTACHMENT_BYTES);
        self.types
            .retain(|t| ATTACHMENT_TYPES.contains(&t.as_str()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_keep_only_checked_types_and_the_size_cap() {
        let rules = AttachmentRules {
            max_bytes: u32::MAX,
            types: vec![
                "image/svg+xml".into(),
                "image/png".into(),
                "text/html".into(),
            ],
        }
        .effective();
        assert_eq!(rules.max_bytes, MAX_ATTACHMENT_BYTES);
        assert_eq!(rules.types, vec!["image/png".to_string()]);
    }
}
