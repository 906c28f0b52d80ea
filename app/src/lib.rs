//! The Kefu agent console: Leptos components rendered on the server and hydrated in the browser.
//!
//! Server functions live next to the pages that call them and run only under the `ssr`
//! feature; they reach the database through the `store::Store` handle the server provides as
//! Leptos context. This crate never opens sockets or reads configuration itself.

pub mod api;
pub mod auth;
pub mod clock;
#[cfg(feature = "ssr")]
pub mod context;
pub mod error;
pub mod i18n;
pub mod icons;
pub mod language;
pub mod live;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod password;
pub mod ports;
#[cfg(feature = "ssr")]
pub mod session;
pub mod shell;
#[cfg(feature = "ssr")]
pub mod throttle;
pub mod ui;
pub mod visible;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::{
    Lazy, SsrMode, StaticSegment,
    components::{ParentRoute, Redirect, Route, Router, Routes},
};
use pages::admin::{
    agents::AdminAgentsPage, api::AdminApiPage, mail::AdminMailPage, sites::AdminSitesPage,
    teams::AdminTeamsPage, translation::AdminTranslationPage, upkeep::AdminUpkeepPage,
};
use pages::{canned::CannedPage, history::HistoryPage, leave::LeavePage, reports::ReportsPage};

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
                // the tab, kept while the agent moves between pages. The inbox is in the main
                // wasm; every other page is a lazy route the browser fetches when first opened.
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
                        view={Lazy::<HistoryRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("leave-messages")
                        view={Lazy::<LeaveRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("sites"))
                        view={Lazy::<AdminSitesRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("agents"))
                        view={Lazy::<AdminAgentsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("teams"))
                        view={Lazy::<AdminTeamsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("api"))
                        view={Lazy::<AdminApiRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("mail"))
                        view={Lazy::<AdminMailRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("translation"))
                        view={Lazy::<AdminTranslationRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=(StaticSegment("admin"), StaticSegment("upkeep"))
                        view={Lazy::<AdminUpkeepRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("reports")
                        view={Lazy::<ReportsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=StaticSegment("canned")
                        view={Lazy::<CannedRoute>::new()}
                        ssr=SsrMode::Async
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Declares a page as a lazy route: in a `--split` build its code is a separate wasm chunk,
/// fetched the first time an agent opens the page (or before hydrating, when the page is the one
/// the server rendered). The pages load their own data, so `data` has nothing to start.
macro_rules! lazy_page {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        #[doc = concat!("The lazy route of [`", stringify!($page), "`].")]
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                Self
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page /> }.into_any()
            }
        }
    )*};
}

lazy_page! {
    HistoryRoute => HistoryPage,
    LeaveRoute => LeavePage,
    ReportsRoute => ReportsPage,
    CannedRoute => CannedPage,
    AdminSitesRoute => AdminSitesPage,
    AdminAgentsRoute => AdminAgentsPage,
    AdminTeamsRoute => AdminTeamsPage,
    AdminApiRoute => AdminApiPage,
    AdminMailRoute => AdminMailPage,
    AdminTranslationRoute => AdminTranslationPage,
    AdminUpkeepRoute => AdminUpkeepPage,
}
