//! `/admin/api`: an administrator's keys for the REST API (`/api/v1`, described at
//! `/api/v1/openapi.json`). A key acts as the admin who made it; it is shown once, when it is
//! made, and only its hash is kept, so a lost key is revoked and replaced, never recovered.

use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// How every key starts: easy to recognise in a config file or a leaked log.
pub const TOKEN_START: &str = "kefu_";

/// Longest key name, in characters.
pub const MAX_NAME: usize = 100;

/// Most keys one admin may hold.
pub const MAX_TOKENS: usize = 50;

/// A key as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    /// Its id, to revoke it.
    pub id: i64,
    /// What the admin called it.
    pub name: String,
    /// Its first characters.
    pub prefix: String,
    /// When it was made (UTC, to the minute).
    pub created: String,
    /// When it was last used (UTC, to the minute), or empty.
    pub used: String,
}

/// The signed-in admin's keys, newest first.
#[server(endpoint = "admin/api_tokens")]
pub async fn api_tokens() -> Result<Vec<TokenRow>, ConsoleError> {
    use crate::clock::minute;
    use crate::context;
    let admin = context::require_admin().await?;
    let tokens = context::store()?.api_tokens(admin.id).await?;
    Ok(tokens
        .into_iter()
        .map(|token| TokenRow {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            created: minute(token.created_at),
            used: token.last_used_at.map(minute).unwrap_or_default(),
        })
        .collect())
}

/// Makes a key called `name` for the signed-in admin; returns it (shown once).
#[server(endpoint = "admin/api_tokens/create")]
pub async fn create_api_token(name: String) -> Result<String, ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ConsoleError::Invalid);
    }
    let store = context::store()?;
    let held = store.api_tokens(admin.id).await?;
    if held.len() >= MAX_TOKENS {
        return Err(ConsoleError::Invalid);
    }
    let token = format!("{TOKEN_START}{}", crate::session::new_token());
    store
        .create_api_token(store::NewApiToken {
            agent_id: admin.id,
            name,
            token_hash: crate::session::token_hash(&token),
            prefix: token.chars().take(TOKEN_START.len() + 8).collect(),
            created_at: crate::clock::now(),
        })
        .await?;
    Ok(token)
}

/// Revokes one of the signed-in admin's keys: it stops working at once.
#[server(endpoint = "admin/api_tokens/revoke")]
pub async fn revoke_api_token(id: i64) -> Result<(), ConsoleError> {
    use crate::context;
    let admin = context::require_admin().await?;
    match context::store()?.delete_api_token(admin.id, id).await {
        Ok(()) => Ok(()),
        Err(store::Error::NotFound) => Err(ConsoleError::NotFound),
        Err(error) => Err(crate::error::internal(error)),
    }
}

/// `/admin/api`.
#[component]
pub fn AdminApiPage() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let shell = crate::shell::use_shell();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| api_tokens(),
    );
    view! {
        <crate::ui::Page class="admin">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match tokens.await {
                            Ok(tokens) => view! {
                                <crate::ui::AdminNav lang />
                                <h1>{t(lang, Key::ApiTokens)}</h1>
                                <p>
                                    {t(lang, Key::ApiIntro)} " "
                                    <a href="/api/v1/openapi.json">"/api/v1/openapi.json"</a>
                                </p>
                                <pre class="example">"curl -H 'Authorization: Bearer kefu_…' "{"/api/v1/conversations"}</pre>
                                <TokenTable tokens revoke lang />
                                <ActionForm action=create attr:class="new-token">
                                    <label>{t(lang, Key::Title)} <input type="text" name="name" required maxlength=MAX_NAME placeholder="CRM" /></label>
                                    <button type="submit">{t(lang, Key::Create)}</button>
                                </ActionForm>
                                {move || create.value().get().map(|result| match result {
                                    Ok(token) => view! {
                                        <p class="password" role="status">{t(lang, Key::TokenOnce)} " " <code class="token">{token}</code></p>
                                    }
                                    .into_any(),
                                    Err(error) => view! { <p role="alert">{error.message(lang)}</p> }.into_any(),
                                })}
                            }
                            .into_any(),
                            Err(error) => crate::ui::refusal([error], lang),
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The admin's keys, each with a button that revokes it.
#[component]
fn TokenTable(
    tokens: Vec<TokenRow>,
    revoke: ServerAction<RevokeApiToken>,
    lang: Lang,
) -> impl IntoView {
    view! {
        <table class="tokens">
            <thead>
                <tr>
                    <th>{t(lang, Key::Title)}</th>
                    <th>{t(lang, Key::SiteKey)}</th>
                    <th>{t(lang, Key::CreatedAt)}</th>
                    <th>{t(lang, Key::LastUsed)}</th>
                    <th></th>
                </tr>
            </thead>
            <tbody>
                {tokens
                    .into_iter()
                    .map(|token| view! {
                        <tr data-token=token.id>
                            <td>{token.name}</td>
                            <td><code>{token.prefix} "…"</code></td>
                            <td><time>{token.created}</time></td>
                            <td><time>{token.used}</time></td>
                            <td>
                                <ActionForm action=revoke>
                                    <input type="hidden" name="id" value=token.id />
                                    <crate::ui::ConfirmButton label=t(lang, Key::Revoke) lang />
                                </ActionForm>
                            </td>
                        </tr>
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
