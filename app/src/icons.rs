//! The console's icons, drawn as inline SVG in the text colour: emoji characters render as
//! empty boxes on machines without an emoji font, and icon fonts are another download.

use leptos::prelude::*;

/// One 24×24 stroked icon from `path` (an SVG path's `d`).
fn icon(path: &'static str) -> impl IntoView {
    view! {
        <svg
            class="icon-svg"
            viewBox="0 0 24 24"
            width="18"
            height="18"
            aria-hidden="true"
            fill="none"
            stroke="currentColor"
            stroke-width="2"
            stroke-linecap="round"
            stroke-linejoin="round"
        >
            <path d=path />
        </svg>
    }
}

/// Back to the list (phone layout).
pub fn back() -> impl IntoView {
    icon("M15 18l-6-6 6-6")
}

/// A menu of more actions.
pub fn more() -> impl IntoView {
    icon("M5 12h.01M12 12h.01M19 12h.01")
}

/// Attach a file.
pub fn paperclip() -> impl IntoView {
    icon(
        "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9",
    )
}

/// The emoji picker.
pub fn smile() -> impl IntoView {
    icon("M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01")
}

/// A file in a message.
pub fn file() -> impl IntoView {
    icon("M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9zM14 3v6h6")
}
