//! The hydrate entry: the only code that exists solely in the browser bundle.

// The islands' hydration functions are exported from the app crate; nothing
// here names them, so the crate is linked explicitly for them to be kept.
extern crate app;

/// Called by the islands script that the server puts in every page, before
/// it hydrates each island (`#[island]` in the app crate).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
