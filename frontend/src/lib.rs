//! Tandem's console. Until the Leptos console lands, `index.html` is a static page that the
//! API's users can open; this crate only keeps its place in the workspace.
