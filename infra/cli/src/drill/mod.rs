//! `tandem drill`: an outage drill with the figures a client lives through.
//!
//! Steady reads and writes go through `/api` (writes failing over in the client as the console
//! does, or not at all with `--client plain`), the outage is injected into one region through
//! the [`ControlClient`], healed, and then every acknowledged write is read back from every
//! region until they agree. With `--switch manual` the drill moves the active region
//! (contract §6.3) to the other region right after the fault; with `--switch auto` the stack's
//! health watcher does and the drill records when; either way it fails back once the region is
//! healthy again, so the stack ends as it started. What counts as lost, converged or stale, and
//! the figures ([`Summary`], [`SwitchFigures`]), come from [`tandem_shared::drill`], the same
//! code the console uses. Output: a progress bar, a terminal summary, a JSON report and a
//! self-contained HTML report ([`render_html`]) with a timeline of every request.
//!
//! Layout: `args` holds the flags; `run` the drill itself (its setup, the traffic, and the
//! report's figures once it is over), with `outage` (the fault, and the switch and failback of
//! the active region) and `converge` (reading acknowledged writes back from every region);
//! `report` the JSON report, where the reports go and the terminal summary; `html` the HTML
//! report.
//!
//! [`ControlClient`]: tandem_ops::client::ControlClient
//! [`Summary`]: tandem_shared::drill::Summary
//! [`SwitchFigures`]: tandem_shared::drill::SwitchFigures

mod args;
mod converge;
#[cfg(test)]
mod fixtures;
mod html;
mod outage;
mod report;
mod run;

pub use args::DrillArgs;
pub use html::render_html;
pub use report::{Report, report_paths};
pub use run::run;
