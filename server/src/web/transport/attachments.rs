//! Files in messages: uploads (visitors with their token, agents with their session cookie), the
//! checks that hold them to what the site accepts, and downloads by unguessable id.
//!
//! A file is sent in two steps: the upload stores it and answers its description, then an
//! ordinary `send` names its id (the session checks that the sender uploaded it, and marks it
//! sent before storing the message). A visitor uploads only into an open conversation of
//! theirs, within the per-visitor and per-site storage quotas ([`UploadLimits`]); an upload no
//! message carries within [`UploadLimits::unsent_after`] is deleted by [`sweep`].
//!
//! [`UploadLimits`]: crate::realtime::uploads::UploadLimits
//! [`UploadLimits::unsent_after`]: crate::realtime::uploads::UploadLimits::unsent_after
//! [`sweep`]: crate::realtime::uploads::sweep

use super::http::{refuse, visitor_from_token};
use super::widget::take_token;
use crate::edge::ClientIp;
use crate::realtime::budgets::Spend;
use crate::realtime::hub::Sender;
use crate::realtime::session::Identity;
use crate::realtime::settings::WidgetSettings;
use crate::realtime::{agent_identity, error_frame, internal};
use crate::util::{header_text, random_hex};
use crate::web::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorCode, VisitorId};
use serde::Deserialize;

/// Longest kept file name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Whether `data` really is a `content_type` file: the format's signature (or valid UTF-8).
fn bytes_match(content_type: &str, data: &[u8]) -> bool {
    match content_type {
        "image/png" => data.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => data.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
        "image/webp" => data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP",
        "application/pdf" => data.starts_with(b"%PDF-"),
        "text/plain" => std::str::from_utf8(data).is_ok(),
        _ => false,
    }
}

/// The name to keep: its last path component, without control or bidirectional-override
/// characters (U+202E makes `invoice<U+202E>fdp.exe` read as `invoiceexe.pdf`), at most 200 characters.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(MAX_NAME_CHARS)
        .collect();
    match kept.trim() {
        "" | "." | ".." => "file".to_string(),
        name => name.to_string(),
    }
}

/// `?name=FILE_NAME` (and, for agents, `&conversation=ID`). Both are read as text so a bad
/// value gets Kefu's own `bad_request` body.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The file's name on the uploader's device.
    #[serde(default)]
    name: Option<String>,
    /// Agents: the conversation the file is for (it decides the site).
    #[serde(default)]
    conversation: Option<String>,
}

/// `POST /http/visitor/upload?name=…` with the visitor token.
pub async fn visitor_upload(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    let rt = &state.realtime;
    match visitor_from_token(rt, &headers, client).await {
        Ok(Identity::Visitor {
            site, visitor_id, ..
        }) => {
            if let Err(wait) = rt.budgets.spend(Spend::Upload, Some(client.0), None) {
                return refuse(crate::realtime::over_budget(
                    wait,
                    "too many uploads; try later",
                ));
            }
            // A file belongs in a conversation: none open, nothing to upload into.
            match rt.store.open_conversation(visitor_id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return refuse(error_frame(
                        ErrorCode::Conflict,
                        "send a message first: files go into an open conversation",
                    ));
                }
                Err(error) => return refuse(internal(&error)),
            }
            upload(
                rt,
                &site,
                Sender::Visitor(visitor_id),
                &headers,
                query,
                body,
            )
            .await
        }
        Ok(Identity::Agent { .. }) => refuse(error_frame(ErrorCode::BadToken, "bad visitor token")),
        Err(frame) => refuse(frame),
    }
}

/// `POST /http/agent/upload?conversation=…&name=…` with the console's session cookie.
pub async fn agent_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Body,
) -> Response {
    let rt = &state.realtime;
    let token = crate::web::signed_in::session_token(&state.edge, &headers);
    let (agent, site_ids) = match agent_identity(rt, token.as_deref()).await {
        Ok(Identity::Agent { agent, site_ids }) => (agent, site_ids),
        Ok(Identity::Visitor { .. }) => {
            return refuse(error_frame(ErrorCode::Unauthorized, "sign in first"));
        }
        Err(frame) => return refuse(frame),
    };
    let Some(conversation_id) = query.conversation.as_deref().and_then(|c| c.parse().ok()) else {
        return refuse(error_frame(
            ErrorCode::BadRequest,
            "conversation is required",
        ));
    };
    let no_such = || refuse(error_frame(ErrorCode::NotFound, "no such conversation"));
    let conversation = match rt.store.conversation(conversation_id).await {
        Ok(Some(c)) if site_ids.contains(&c.site_id) => c,
        Ok(_) => return no_such(),
        Err(error) => return refuse(internal(&error)),
    };
    let site = match rt.store.site(conversation.site_id).await {
        Ok(Some(site)) => site,
        Ok(None) => return no_such(),
        Err(error) => return refuse(internal(&error)),
    };
    upload(rt, &site, Sender::Agent(agent.id), &headers, query, body).await
}

/// Checks and stores one upload; answers `201` with its description.
async fn upload(
    rt: &crate::realtime::Realtime,
    site: &store::Site,
    uploader: Sender,
    headers: &HeaderMap,
    query: UploadQuery,
    body: Body,
) -> Response {
    let rules = WidgetSettings::of(site).attachments;
    let Some(name) = query.name.filter(|name| !name.trim().is_empty()) else {
        return refuse(error_frame(ErrorCode::BadRequest, "name is required"));
    };
    let content_type = header_text(headers, "content-type")
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !rules.types.contains(&content_type) {
        return refuse(error_frame(
            ErrorCode::UnsupportedType,
            "this site does not accept this type of file",
        ));
    }
    let max = rules.max_bytes as usize;
    let declared = header_text(headers, "content-length").and_then(|len| len.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return refuse(error_frame(ErrorCode::TooLarge, "file too large"));
    }
    // The token is taken before the bytes are read: a flood of uploads costs no bandwidth.
    if let Err(response) = take_token(rt, uploader) {
        return response;
    }
    let Ok(data) = axum::body::to_bytes(body, max).await else {
        return refuse(error_frame(
            ErrorCode::TooLarge,
            "file too large, or the upload broke off",
        ));
    };
    if data.is_empty() {
        return refuse(error_frame(ErrorCode::BadRequest, "empty file"));
    }
    if !bytes_match(&content_type, &data) {
        return refuse(error_frame(
            ErrorCode::UnsupportedType,
            "the file's contents do not match its type",
        ));
    }
    let (visitor_id, agent_id) = match uploader {
        Sender::Visitor(id) => (Some(id), None),
        Sender::Agent(id) => (None, Some(id)),
    };
    let (site_bytes, visitor_bytes) = match rt
        .store
        .attachment_usage(site.id, visitor_id.unwrap_or(VisitorId(0)))
        .await
    {
        Ok(usage) => usage,
        Err(error) => return refuse(internal(&error)),
    };
    let size = data.len() as u64;
    let used = |bytes: i64| u64::try_from(bytes).unwrap_or(0) + size;
    let full = if used(site_bytes) > rt.uploads.site_quota_bytes {
        Some("this site has no room left for files")
    } else if visitor_id.is_some() && used(visitor_bytes) > rt.uploads.visitor_quota_bytes {
        Some("you have sent as many files as this chat keeps")
    } else {
        None
    };
    if let Some(message) = full {
        return refuse(error_frame(ErrorCode::TooLarge, message));
    }
    let stored = rt
        .store
        .create_attachment(store::NewAttachment {
            public_id: random_hex::<16>(),
            site_id: site.id,
            visitor_id,
            agent_id,
            name: clean_name(&name),
            content_type,
            data: data.to_vec(),
            created_at: crate::util::now_ms(),
        })
        .await;
    match stored {
        Ok(attachment) => (StatusCode::CREATED, Json(attachment.wire())).into_response(),
        Err(error) => refuse(internal(&error)),
    }
}

/// `GET /attachments/{id}`: the file, with headers that keep it inert on Kefu's origin.
pub async fn download(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such file").into_response();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return not_found();
    }
    let store = &state.realtime.store;
    let (attachment, data) =
        match tokio::try_join!(store.attachment(&id), store.attachment_data(&id)) {
            Ok((Some(attachment), Some(data))) => (attachment, data),
            Ok(_) => return not_found(),
            Err(error) => {
                tracing::error!(%error, "reading an attachment failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
    let wire = attachment.wire();
    let disposition = if wire.is_image() {
        "inline".to_string()
    } else {
        format!("attachment; {}", filename_params(&wire.name))
    };
    let mut response = data.into_response();
    let headers = response.headers_mut();
    // The stored type is one of ATTACHMENT_TYPES, so it is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&wire.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'",
        ),
        (
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable",
        ),
        // Customers' pages show pictures from Kefu's origin in the widget.
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback and the exact name.
fn filename_params(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_direction_overrides() {
        assert_eq!(clean_name("C:\\Users\\mei\\发票.pdf"), "发票.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_name("a\nb\u{0}c"), "abc");
        assert_eq!(clean_name(" .. "), "file");
        assert_eq!(clean_name("dir/"), "file");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn bytes_must_carry_their_formats_signature() {
        assert!(bytes_match("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!bytes_match("image/png", b"<svg onload=alert(1)>"));
        assert!(bytes_match("image/webp", b"RIFF\x10\x00\x00\x00WEBPVP8 "));
        assert!(!bytes_match("image/webp", b"RIFF\x10\x00\x00\x00WAVE"));
        assert!(bytes_match("text/plain", "退款".as_bytes()));
        assert!(!bytes_match("text/plain", b"\xff\xfe"));
        assert!(!bytes_match("image/svg+xml", b"<svg/>"));
    }

    #[test]
    fn download_names_are_quoted_safely() {
        assert_eq!(
            filename_params("发票 \"a\".pdf"),
            "filename=\"__ _a_.pdf\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8%20%22a%22.pdf"
        );
    }
}
