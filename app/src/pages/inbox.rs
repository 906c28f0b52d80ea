//! The agent's inbox. For now it shows who is signed in; conversations arrive with the console issue.

use crate::auth::{Logout, current_agent};
use leptos::prelude::*;
use leptos_router::components::Redirect;

/// The page agents land on after signing in; sends anyone without a session to `/login`.
#[component]
pub fn InboxPage() -> impl IntoView {
    let me = Resource::new(|| (), |_| current_agent());
    let logout = ServerAction::<Logout>::new();
    view! {
        <main class="page">
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(agent) => {
                            view! {
                                <header class="topbar">
                                    <strong>"Kefu"</strong>
                                    <span class="who">{agent.display_name} " · " {agent.email}</span>
                                    <ActionForm action=logout>
                                        <button type="submit" class="secondary">"Sign out"</button>
                                    </ActionForm>
                                </header>
                                <p class="empty">"No conversations yet."</p>
                            }
                                .into_any()
                        }
                        Err(_) => view! { <Redirect path="/login" /> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}
