//! Names a visitor's browser, operating system and device from their `User-Agent`, with the
//! ua-parser project's dataset (`server/data/uap-regexes.json`) and its Rust implementation.
//!
//! The extractor is built once, on a thread of its own at start ([`prepare`]; about 0.1 s, more
//! in debug builds), never on the async runtime: visitors who arrive before it is ready are
//! simply not described.

use std::sync::OnceLock;

/// The dataset, compiled into the binary so a deployment has nothing extra to ship.
const DATASET: &str = include_str!("../../data/uap-regexes.json");

/// The longest name kept for each part.
const MAX_NAME: usize = 64;

/// What the console shows of a visitor's browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    /// `Chrome 140`, `Mobile Safari 17`.
    pub browser: Option<String>,
    /// `Windows 10`, `iOS 17.5`, `Linux`.
    pub os: Option<String>,
    /// `iPhone`, `Pixel 8`; none for desktops and unknown devices.
    pub device: Option<String>,
}

/// The extractor, once built (`None` inside if the dataset could not be read).
static EXTRACTOR: OnceLock<Option<ua_parser::Extractor<'static>>> = OnceLock::new();

fn build() -> Option<ua_parser::Extractor<'static>> {
    let regexes: ua_parser::Regexes<'static> = serde_json::from_str(DATASET)
        .map_err(|error| tracing::error!(%error, "user-agent dataset unreadable"))
        .ok()?;
    ua_parser::Extractor::try_from(regexes)
        .map_err(|error| tracing::error!(%error, "user-agent dataset invalid"))
        .ok()
}

/// Starts building the extractor on its own thread (once; later calls do nothing).
pub fn prepare() {
    if EXTRACTOR.get().is_none() {
        std::thread::spawn(|| EXTRACTOR.get_or_init(build));
    }
}

/// Browser, OS and device of `user_agent`; parts the dataset does not know are left out, and
/// everything while the extractor is still being built.
pub fn describe(user_agent: &str) -> Described {
    let Some(Some(extractor)) = EXTRACTOR.get() else {
        return Described::default();
    };
    let (browser, os, device) = extractor.extract(user_agent);
    let with_version = |name: &str, major: Option<&str>, minor: Option<&str>| {
        let mut text = crate::util::text::truncate(name, MAX_NAME);
        if let Some(major) = major {
            text.push(' ');
            text.push_str(major);
            if let Some(minor) = minor.filter(|m| *m != "0") {
                text.push('.');
                text.push_str(minor);
            }
        }
        text
    };
    Described {
        browser: browser
            .filter(|b| b.family != "Other")
            .map(|b| with_version(&b.family, b.major, None)),
        os: os
            .filter(|o| o.os != "Other")
            .map(|o| with_version(&o.os, o.major.as_deref(), o.minor.as_deref())),
        device: device
            .filter(|d| d.device != "Other" && d.device != "Spider")
            .map(|d| crate::util::text::truncate(&d.device, MAX_NAME)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_are_named() {
        EXTRACTOR.get_or_init(build);
        let iphone = describe(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
             (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(iphone.browser.as_deref(), Some("Mobile Safari 17"));
        assert_eq!(iphone.os.as_deref(), Some("iOS 17.5"));
        assert_eq!(iphone.device.as_deref(), Some("iPhone"));
        let windows = describe(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        );
        assert_eq!(windows.browser.as_deref(), Some("Edge 131"));
        assert_eq!(windows.os.as_deref(), Some("Windows 10"));
        assert_eq!(windows.device, None);
        assert_eq!(describe("definitely not a browser"), Described::default());
    }
}
