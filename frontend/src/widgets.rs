//! Small pieces of markup that more than one panel draws the same way.

use leptos::prelude::*;

/// A field for a whole number, bound to `value` as typed (each panel parses it when it acts).
#[component]
pub fn NumberInput(
    id: &'static str,
    min: &'static str,
    #[prop(optional)] max: Option<&'static str>,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <input
            id=id
            type="number"
            min=min
            max=max
            inputmode="numeric"
            prop:value=move || value.get()
            on:input=move |ev| value.set(event_target_value(&ev))
        />
    }
}

/// A table's column headings; those named in `numeric` are right-aligned, as their figures are.
#[component]
pub fn ColumnHeads(
    names: &'static [&'static str],
    #[prop(optional)] numeric: &'static [&'static str],
) -> impl IntoView {
    let heads = names
        .iter()
        .map(|name| {
            let class = numeric.contains(name).then_some("num");
            view! { <th scope="col" class=class>{*name}</th> }
        })
        .collect_view();
    view! {
        <thead>
            <tr>{heads}</tr>
        </thead>
    }
}
