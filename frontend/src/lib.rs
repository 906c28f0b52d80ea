//! Browser entry of the console: hydrates the HTML the server rendered.
//!
//! Nothing else belongs here; components live in `app`.

/// Called by the glue script that `HydrationScripts` puts in the page.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
