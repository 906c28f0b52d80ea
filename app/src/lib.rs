//! The Kefu agent console: Leptos components rendered on the server and hydrated in the browser.
//!
//! Server functions live next to the pages that call them and run only under the `ssr`
//! feature; they reach the database through the `store::Store` handle the server provides as
//! Leptos context. This crate never opens sockets or reads configuration itself.

pub mod auth;
pub mod clock;
pub mod i18n;
pub mod icons;
pub mod live;
pub mod pages;
pub mod shell;
#[cfg(feature = "ssr")]
pub mod throttle;
pub mod visible;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::{
    SsrMode, StaticSegment,
    components::{ParentRoute, Redirect, Route, Router, Routes},
};

/// The HTML document around the app; rendered once per request by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="apple-touch-icon" href="/icon-192.png" />
                <meta name="theme-color" content="#2563eb" />
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The console's root component: routes and document metadata.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Kefu" />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=StaticSegment("") view=|| view! { <Redirect path="/login" /> } />
                // Async: the whole page, data included, arrives as plain HTML that works
                // without JavaScript; hydration then takes over.
                <Route
                    path=StaticSegment("login")
                    view=pages::login::LoginPage
                    ssr=SsrMode::Async
                />
                // Every signed-in page lives in the shell: one live link and one header for
                // the tab, kept while the agent moves between pages.
                <ParentRoute
                    path=StaticSegment("")
                    view=shell::ConsoleShell
                    ssr=SsrMode::Async
                >
                    <Route
                        path=StaticSegment("inbox")
                        view=pages::inbox::InboxPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("history")
                        view=pages::history::HistoryPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("leave-messages")
                        view=pages::leave::LeavePage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("sites"))
                        view=pages::admin::sites::AdminSitesPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("agents"))
                        view=pages::admin::agents::AdminAgentsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("teams"))
                        view=pages::admin::teams::AdminTeamsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("api"))
                        view=pages::admin::api::AdminApiPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("mail"))
                        view=pages::admin::mail::AdminMailPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("translation"))
                        view=pages::admin::translation::AdminTranslationPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("upkeep"))
                        view=pages::admin::upkeep::AdminUpkeepPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("reports")
                        view=pages::reports::ReportsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("canned")
                        view=pages::canned::CannedPage
                        ssr=SsrMode::Async
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
