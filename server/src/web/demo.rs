//! The demo: a site and an admin for trying Kefu locally (`kefu serve --demo`, used by `make run`),
//! and the `/demo` page that embeds the widget the way a customer's website would.

use crate::web::state::AppState;
use axum::extract::State;
use axum::response::Html;
use store::{NewSite, Role, Store};

/// The public key of the demo site; the `/demo` page embeds the widget with it.
pub const DEMO_SITE_KEY: &str = "demo";
/// The demo admin's e-mail address.
pub const DEMO_EMAIL: &str = "demo@kefu.local";

/// Creates the demo site and admin unless they exist. Returns the password when the admin was
/// created now (it is printed once), `None` when it already existed.
pub async fn ensure(
    store: &dyn Store,
    password: Option<String>,
) -> Result<Option<String>, crate::Error> {
    let now = crate::util::now_ms();
    let site = match store.site_by_key(DEMO_SITE_KEY).await? {
        Some(site) => site,
        None => {
            store
                .create_site(NewSite {
                    public_key: DEMO_SITE_KEY.to_string(),
                    name: "Demo site".to_string(),
                    allowed_origins: vec!["*".to_string()],
                    widget_settings: serde_json::json!({}),
                    created_at: now,
                })
                .await?
        }
    };
    if store.agent_by_email(DEMO_EMAIL).await?.is_some() {
        return Ok(None);
    }
    let spec = crate::agents::AgentSpec {
        email: DEMO_EMAIL.to_string(),
        display_name: "Demo Admin".to_string(),
        role: Role::Admin,
        max_chats: 5,
        site_keys: vec![site.public_key],
        password: password.clone(),
    };
    let (_, generated) = crate::agents::add(store, spec).await?;
    Ok(generated.or(password))
}

/// A stand-in for a customer's page: some text and the one-line embed snippet.
pub async fn page(State(_state): State<AppState>) -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kefu demo page</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>A customer's website</h1>
<p>This page embeds the Kefu widget with one script tag, exactly as a website owner would:</p>
<pre><code>&lt;script src="/widget/widget.js" data-site="{key}" async&gt;&lt;/script&gt;</code></pre>
<script src="/widget/widget.js" data-site="{key}" async></script>
</body>
</html>"#,
        key = DEMO_SITE_KEY
    ))
}
