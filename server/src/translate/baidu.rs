//! Baidu Translate general API (`POST /api/trans/vip/translate`, form fields `q`, `from`,
//! `to`, `appid`, `salt` and `sign` = MD5 of appid + q + salt + secret): answered by
//! `{"from", "to", "trans_result": [{"src", "dst"}]}`, one result per line of `q`, or — with
//! HTTP 200 — by `{"error_code", "error_msg"}`.

use md5::{Digest, Md5};
use serde::Deserialize;

use super::{
    Failure, Provider, TranslateError, Translation, body_of, json, primary, request_failure,
};

/// Baidu Translate.
pub struct Baidu {
    /// The API's address: `https://fanyi-api.baidu.com`.
    pub url: String,
    /// The app id.
    pub app_id: String,
    /// The app's secret key (signs each request; never sent).
    pub secret: String,
    /// The outbound client (with the request timeout).
    pub client: crate::outbound::Outbound,
}

#[derive(Deserialize)]
struct Answer {
    from: Option<String>,
    trans_result: Option<Vec<Line>>,
    error_code: Option<serde_json::Value>,
    error_msg: Option<String>,
}

#[derive(Deserialize)]
struct Line {
    dst: String,
}

/// ISO 639-1 codes and Baidu's own, where they differ.
const CODES: [(&str, &str); 14] = [
    ("ja", "jp"),
    ("ko", "kor"),
    ("fr", "fra"),
    ("es", "spa"),
    ("ar", "ara"),
    ("bg", "bul"),
    ("et", "est"),
    ("da", "dan"),
    ("fi", "fin"),
    ("ro", "rom"),
    ("sl", "slo"),
    ("sv", "swe"),
    ("vi", "vie"),
    ("zh-Hant", "cht"),
];

/// Baidu's code for a BCP 47 tag.
fn code(tag: &str) -> String {
    if super::traditional(tag) {
        return "cht".into();
    }
    let primary = primary(tag);
    CODES
        .iter()
        .find(|(iso, _)| *iso == primary)
        .map(|(_, baidu)| (*baidu).to_owned())
        .unwrap_or(primary)
}

/// The BCP 47 tag for a Baidu code.
fn tag(code: &str) -> String {
    CODES
        .iter()
        .find(|(_, baidu)| *baidu == code)
        .map(|(iso, _)| (*iso).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

/// The request signature: lower-case hex MD5 of `app_id + q + salt + secret`.
pub fn sign(app_id: &str, q: &str, salt: &str, secret: &str) -> String {
    let digest = Md5::digest(format!("{app_id}{q}{salt}{secret}").as_bytes());
    hex::encode(digest)
}

/// What a Baidu error code means for us.
fn error_of(code: &str, message: String) -> TranslateError {
    match code {
        // Too many requests per second, or long queries too often.
        "54003" | "54005" => TranslateError::RateLimited,
        "52001" => TranslateError::Timeout,
        "52002" => TranslateError::Status {
            status: 503,
            message,
        },
        "58001" => TranslateError::Language(message),
        _ => TranslateError::Refused(format!("{code} {message}")),
    }
}

#[async_trait::async_trait]
impl Provider for Baidu {
    fn name(&self) -> &'static str {
        "baidu"
    }

    fn max_chars(&self) -> usize {
        // Baidu asks for at most 6,000 bytes per request: 2,000 CJK characters.
        2_000
    }

    async fn translate_once(
        &self,
        text: &str,
        source: Option<&str>,
        target: &str,
    ) -> Result<Translation, Failure> {
        let salt = rand::random::<u32>().to_string();
        let form = [
            ("q", text.to_owned()),
            ("from", source.map(code).unwrap_or_else(|| "auto".into())),
            ("to", code(target)),
            ("appid", self.app_id.clone()),
            ("salt", salt.clone()),
            ("sign", sign(&self.app_id, text, &salt, &self.secret)),
        ];
        let response = self
            .client
            .post(&format!(
                "{}/api/trans/vip/translate",
                self.url.trim_end_matches('/')
            ))?
            .form(&form)
            .send()
            .await
            .map_err(request_failure)?;
        let answer: Answer = json(&body_of(response).await?)?;
        if let Some(code) = answer.error_code {
            let code = match code {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            return Err(error_of(&code, answer.error_msg.unwrap_or_default()).into());
        }
        let lines = answer
            .trans_result
            .ok_or_else(|| TranslateError::Malformed("no trans_result".into()))?;
        Ok(Translation {
            text: lines
                .into_iter()
                .map(|line| line.dst)
                .collect::<Vec<_>>()
                .join("\n"),
            detected: answer.from.map(|code| tag(&code)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_md5() {
        // The example in Baidu's documentation: appid 2015063000000001, q apple, salt
        // 1435660288, key 12345678.
        assert_eq!(
            sign("2015063000000001", "apple", "1435660288", "12345678"),
            "f89f9594663708c1605f3d736d01d2d4"
        );
    }

    #[test]
    fn languages_map_both_ways() {
        assert_eq!(code("ja-JP"), "jp");
        assert_eq!(code("zh-TW"), "cht");
        assert_eq!(code("zh-CN"), "zh");
        assert_eq!(code("en"), "en");
        assert_eq!(tag("kor"), "ko");
        assert_eq!(tag("zh"), "zh");
    }
}
