//! CloudFormation stacks for `tandem deploy` and `tandem destroy`: create or update a stack,
//! delete one, and follow its events (one printed line per event, and a progress bar per stack
//! on a terminal) until it settles.

use crate::sdk::sdk_error;
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, StackEvent, Tag};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// How often a stack in progress is polled. CloudFormation itself moves in seconds.
const POLL: Duration = Duration::from_secs(3);

/// Terminal output shared by concurrent stack operations: event lines on stdout, progress bars
/// on stderr (drawn only on a terminal, so logs and tests see just the lines).
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    start: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            multi: MultiProgress::new(),
            start: Instant::now(),
        }
    }
}

impl Progress {
    /// Prints one line above the bars (bars are hidden meanwhile, so they never garble it).
    pub fn line(&self, text: impl AsRef<str>) {
        let elapsed = self.start.elapsed().as_secs();
        self.multi.suspend(|| {
            println!(
                "[{:>2}:{:02}] {}",
                elapsed / 60,
                elapsed % 60,
                text.as_ref()
            )
        });
    }

    fn bar(&self, label: &str, total: u64) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{spinner} {prefix:.bold} [{bar:24}] {pos}/{len} {elapsed} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.multi.add(
            ProgressBar::new(total.max(1))
                .with_style(style)
                .with_prefix(label.to_owned()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// One stack to create or update.
pub struct StackSpec {
    pub name: String,
    pub region: String,
    pub template: String,
    /// Resources in the template: the length of the progress bar.
    pub resources: u64,
    pub parameters: Vec<(String, String)>,
    /// Parameters an update leaves as the stack has them, with the value a create (or an
    /// update of a stack without them) gives: the template's default.
    pub keep: Vec<(String, String)>,
    pub capabilities: Vec<Capability>,
}

/// What a deploy did to a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl Outcome {
    /// As deploy's summary prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// A stack after a successful deploy.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub outcome: Outcome,
    pub outputs: BTreeMap<String, String>,
}

fn status(stack: &Stack) -> &str {
    stack
        .stack_status()
        .map(|s| s.as_str())
        .unwrap_or("UNKNOWN")
}

/// The stack named (or with id) `name`; `None` when CloudFormation does not know it, or
/// only as deleted.
pub async fn describe(cfn: &Client, name: &str) -> anyhow::Result<Option<Stack>> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out
            .stacks
            .unwrap_or_default()
            .into_iter()
            .next()
            .filter(|s| status(s) != "DELETE_COMPLETE")),
        // CloudFormation answers an unknown stack with a ValidationError, not a 404.
        Err(err)
            if err
                .as_service_error()
                .and_then(|e| e.message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            Ok(None)
        }
        Err(err) => Err(sdk_error(err)).with_context(|| format!("describing stack {name}")),
    }
}

/// A stack's outputs by key.
pub fn outputs(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect()
}

/// A page of the stack's events, newest first (`token`: the one after the page that named it;
/// `None`: the latest), and the token of the next page, if there is one.
async fn events_page(
    cfn: &Client,
    stack: &str,
    token: Option<String>,
) -> anyhow::Result<(Vec<StackEvent>, Option<String>)> {
    let out = cfn
        .describe_stack_events()
        .stack_name(stack)
        .set_next_token(token)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("reading events of {stack}"))?;
    Ok((out.stack_events.unwrap_or_default(), out.next_token))
}

/// The stack's latest page of events, newest first.
async fn latest_events(cfn: &Client, stack: &str) -> anyhow::Result<Vec<StackEvent>> {
    Ok(events_page(cfn, stack, None).await?.0)
}

/// Ids of the stack's most recent events, so that following an operation prints only its own.
async fn recent_event_ids(cfn: &Client, stack: &str) -> anyhow::Result<HashSet<String>> {
    Ok(event_ids(&latest_events(cfn, stack).await?))
}

fn event_ids(events: &[StackEvent]) -> HashSet<String> {
    events
        .iter()
        .filter_map(|e| e.event_id().map(str::to_owned))
        .collect()
}

/// The resources a rollback kept (`DELETE_SKIPPED`: a `Retain` policy) among `events` (the
/// latest page), as "LogicalId (Type PhysicalId)".
fn kept_by_rollback(events: &[StackEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.resource_status().map(|s| s.as_str()) == Some("DELETE_SKIPPED"))
        .map(|e| {
            format!(
                "{} ({} {})",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_type().unwrap_or("?"),
                e.physical_resource_id().unwrap_or("?")
            )
        })
        .collect()
}

/// Events not in `seen`, oldest first (the API lists newest first, a page at a time).
async fn new_events(
    cfn: &Client,
    stack: &str,
    seen: &mut HashSet<String>,
) -> anyhow::Result<Vec<StackEvent>> {
    let mut fresh = Vec::new();
    let mut token = None;
    'pages: loop {
        let (events, next) = events_page(cfn, stack, token).await?;
        for event in events {
            let Some(id) = event.event_id() else { continue };
            if seen.contains(id) {
                break 'pages;
            }
            fresh.push(event);
        }
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    for event in &fresh {
        if let Some(id) = event.event_id() {
            seen.insert(id.to_owned());
        }
    }
    fresh.reverse();
    Ok(fresh)
}

fn describe_event(event: &StackEvent) -> String {
    let mut line = format!(
        "{} {} {}",
        event.logical_resource_id().unwrap_or("?"),
        event.resource_type().unwrap_or("?"),
        event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
    );
    if let Some(reason) = event.resource_status_reason().filter(|r| !r.is_empty()) {
        line.push_str(": ");
        line.push_str(reason);
    }
    line
}

/// Follows `stack_id` until it leaves every `*_IN_PROGRESS` state; returns the final status
/// (`DELETE_COMPLETE` once the stack is gone) and the failure reasons seen on the way.
async fn follow(
    cfn: &Client,
    stack_id: &str,
    label: &str,
    total: u64,
    mut seen: HashSet<String>,
    progress: &Progress,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut watch = Watch::new(progress, label, total, stack_id);
    loop {
        // Status first, events second: the last poll then prints every event up to the end.
        let current = describe(cfn, stack_id).await?;
        for event in events_since(cfn, stack_id, &mut seen, current.is_some()).await? {
            watch.record(&event);
        }
        let status = current.as_ref().map_or("DELETE_COMPLETE", status);
        if next_step(status) != NextStep::Wait {
            return Ok(watch.finish(status));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The events of `stack_id` since the last poll, oldest first.
async fn events_since(
    cfn: &Client,
    stack_id: &str,
    seen: &mut HashSet<String>,
    exists: bool,
) -> anyhow::Result<Vec<StackEvent>> {
    let events = new_events(cfn, stack_id, seen).await;
    if exists {
        return events;
    }
    // Deleted: AWS still lists a deleted stack's events by its id (the last ones are worth
    // printing); emulators that forget the stack at once have none to give.
    Ok(events.unwrap_or_default())
}

/// One stack operation as the terminal shows it: a line per event, and a bar that counts the
/// resources done.
struct Watch<'a> {
    progress: &'a Progress,
    bar: ProgressBar,
    label: &'a str,
    total: u64,
    stack_id: &'a str,
    /// Resources done, by logical id: a resource can report more than one `_COMPLETE`.
    done: BTreeSet<String>,
    failures: Vec<String>,
}

impl<'a> Watch<'a> {
    fn new(progress: &'a Progress, label: &'a str, total: u64, stack_id: &'a str) -> Self {
        Watch {
            progress,
            bar: progress.bar(label, total),
            label,
            total,
            stack_id,
            done: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    fn record(&mut self, event: &StackEvent) {
        let text = describe_event(event);
        self.progress.line(format!("{}: {text}", self.label));
        self.bar.set_message(text.clone());
        let status = event.resource_status().map(|s| s.as_str()).unwrap_or("");
        if status.ends_with("_FAILED") {
            self.failures.push(text);
        }
        // The stack's own events say nothing about how many resources are done.
        let is_stack = event.physical_resource_id() == Some(self.stack_id)
            || event.resource_type() == Some("AWS::CloudFormation::Stack");
        let logical = event.logical_resource_id().unwrap_or("");
        if !is_stack
            && (status.ends_with("_COMPLETE") || status == "DELETE_SKIPPED")
            && self.done.insert(logical.to_owned())
        {
            self.bar
                .set_position((self.done.len() as u64).min(self.total));
        }
    }

    /// Fills the bar (a settled stack is done, whatever its events said) and hands back the
    /// final status and the failures.
    fn finish(self, status: &str) -> (String, Vec<String>) {
        self.bar.set_position(self.total.max(1));
        self.bar.finish_with_message(status.to_owned());
        (status.to_owned(), self.failures)
    }
}

fn failed(label: &str, status: &str, failures: &[String]) -> anyhow::Error {
    let mut message = format!("{label} ended in {status}");
    for failure in failures {
        message.push_str("\n  ");
        message.push_str(failure);
    }
    anyhow!(message)
}

/// A create or update that CloudFormation accepted, to follow until it settles.
struct Started {
    stack_id: String,
    /// Events from before it started, so that following it prints only its own.
    seen: HashSet<String>,
    outcome: Outcome,
}

/// Creates the stack, or updates it when it exists, and waits until it settles.
pub async fn deploy(
    cfn: &Client,
    spec: &StackSpec,
    progress: &Progress,
) -> anyhow::Result<Deployed> {
    let label = format!("{} ({})", spec.name, spec.region);
    loop {
        let Some(stack) = describe(cfn, &spec.name).await? else {
            let started = create(cfn, spec, &label, progress).await?;
            return settle(cfn, spec, &label, started, progress).await;
        };
        let Some(seen) = ready_for_update(cfn, &stack, spec, &label, progress).await? else {
            // It changed meanwhile (an operation ended, a failed create went): look again.
            continue;
        };
        return match update(cfn, &stack, seen, spec, &label, progress).await? {
            Some(started) => settle(cfn, spec, &label, started, progress).await,
            None => Ok(Deployed {
                outcome: Outcome::Unchanged,
                outputs: outputs(&stack),
            }),
        };
    }
}

/// The parameters of `spec` for a stack whose current parameters are `existing` (none on a
/// create): a kept parameter the stack has keeps its value; otherwise it starts from its
/// default.
fn parameters(spec: &StackSpec, existing: &[&str]) -> Vec<Parameter> {
    let kept = spec
        .keep
        .iter()
        .filter(|(k, _)| existing.contains(&k.as_str()));
    let started = spec
        .keep
        .iter()
        .filter(|(k, _)| !existing.contains(&k.as_str()));
    let previous = kept.map(|(k, _)| {
        Parameter::builder()
            .parameter_key(k)
            .use_previous_value(true)
            .build()
    });
    spec.parameters
        .iter()
        .chain(started)
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .chain(previous)
        .collect()
}

fn tags() -> Vec<Tag> {
    vec![Tag::builder().key("app").value("tandem").build()]
}

async fn create(
    cfn: &Client,
    spec: &StackSpec,
    label: &str,
    progress: &Progress,
) -> anyhow::Result<Started> {
    progress.line(format!("{label}: creating"));
    let out = cfn
        .create_stack()
        .stack_name(&spec.name)
        .template_body(&spec.template)
        .set_parameters(Some(parameters(spec, &[])))
        .set_capabilities(Some(spec.capabilities.clone()))
        .set_tags(Some(tags()))
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("creating {label}"))?;
    Ok(Started {
        stack_id: out.stack_id.unwrap_or_else(|| spec.name.clone()),
        seen: HashSet::new(),
        outcome: Outcome::Created,
    })
}

/// What deploy does with an existing stack, by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Settled: update it.
    Update,
    /// An operation is running: follow it to its end, then look again.
    Wait,
    /// Left by a failed create (`ROLLBACK_COMPLETE`) or by a change set never executed
    /// (`REVIEW_IN_PROGRESS`, which never ends on its own): delete it and create it anew,
    /// unless the failed create kept resources a new one would clash with.
    Recreate,
    /// An update's rollback failed: ask CloudFormation to continue it, once.
    ContinueRollback,
    /// Only a person can repair it; the message says how.
    Repair(&'static str),
}

/// The step for a stack in `status` (CloudFormation's `StackStatus`, as text).
pub fn next_step(status: &str) -> NextStep {
    match status {
        "ROLLBACK_COMPLETE" | "REVIEW_IN_PROGRESS" => NextStep::Recreate,
        "UPDATE_ROLLBACK_FAILED" => NextStep::ContinueRollback,
        "ROLLBACK_FAILED" => NextStep::Repair(
            "a failed create could not roll back: delete the stack in the CloudFormation \
             console (retaining the resources it names), then deploy again",
        ),
        "DELETE_FAILED" => NextStep::Repair(
            "a delete failed half way: run `tandem destroy` again, or delete the stack in the \
             CloudFormation console retaining the resources it names, then deploy again",
        ),
        "IMPORT_ROLLBACK_FAILED" => NextStep::Repair(
            "a resource import could not roll back: repair it in the CloudFormation console \
             (its events name the resources), then deploy again",
        ),
        s if s.ends_with("_IN_PROGRESS") => NextStep::Wait,
        _ => NextStep::Update,
    }
}

/// Gets an existing stack to where it can be updated. `Some(events seen so far)` when it is
/// there; `None` after waiting for a running operation, deleting an empty stack or continuing
/// a failed rollback, which all change the stack; an error for a stack only a person can
/// repair.
async fn ready_for_update(
    cfn: &Client,
    stack: &Stack,
    spec: &StackSpec,
    label: &str,
    progress: &Progress,
) -> anyhow::Result<Option<HashSet<String>>> {
    let id = stack.stack_id().unwrap_or(&spec.name);
    let events = latest_events(cfn, id).await?;
    let seen = event_ids(&events);
    let status = status(stack);
    match next_step(status) {
        NextStep::Update => Ok(Some(seen)),
        NextStep::Wait => {
            progress.line(format!("{label}: waiting for the running {status} to end"));
            follow(cfn, id, label, spec.resources, seen, progress).await?;
            Ok(None)
        }
        NextStep::Recreate => {
            // A failed create keeps what its policies retain (the global table): creating the
            // stack again would fail on them, so a person decides what becomes of them.
            let kept = kept_by_rollback(&events);
            if !kept.is_empty() {
                bail!(
                    "{label} is in {status}, and its failed create left {} in place (a Retain \
                     policy). Creating the stack again would fail on them: delete them (a table: \
                     turn off its deletion protection first, and only if it holds nothing you \
                     need) or import them into the stack, then delete {} and deploy again",
                    kept.join(", "),
                    spec.name
                );
            }
            progress.line(format!(
                "{label}: deleting the empty stack left in {status} (a failed create, or a \
                 change set never executed), to create it anew"
            ));
            delete_by_id(cfn, id, label, spec.resources, progress).await?;
            Ok(None)
        }
        NextStep::ContinueRollback => {
            continue_rollback(cfn, id, label, spec.resources, seen, progress).await?;
            Ok(None)
        }
        NextStep::Repair(how) => bail!("{label} is in {status}: {how}"),
    }
}

/// `UPDATE_ROLLBACK_FAILED`: asks CloudFormation to continue the rollback and follows it. A
/// second failure is the person's to repair, with the resources that failed named.
async fn continue_rollback(
    cfn: &Client,
    id: &str,
    label: &str,
    total: u64,
    seen: HashSet<String>,
    progress: &Progress,
) -> anyhow::Result<()> {
    progress.line(format!(
        "{label}: an update's rollback failed (UPDATE_ROLLBACK_FAILED): continuing it"
    ));
    cfn.continue_update_rollback()
        .stack_name(id)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("continuing the rollback of {label}"))?;
    let (status, failures) = follow(cfn, id, label, total, seen, progress).await?;
    if status != "UPDATE_ROLLBACK_COMPLETE" {
        return Err(failed(label, &status, &failures).context(format!(
            "{label}: the rollback failed again; fix the resources named below, or skip them \
             with `aws cloudformation continue-update-rollback --stack-name {id} \
             --resources-to-skip <logical ids>`, then deploy again"
        )));
    }
    Ok(())
}

/// Whether an update was refused because nothing would change: CloudFormation says so with a
/// ValidationError, not a status of its own.
fn no_updates<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.message())
        .is_some_and(|m| m.contains("No updates are to be performed"))
}

/// Starts an update; `None` when the template and parameters are what the stack has already.
async fn update(
    cfn: &Client,
    stack: &Stack,
    seen: HashSet<String>,
    spec: &StackSpec,
    label: &str,
    progress: &Progress,
) -> anyhow::Result<Option<Started>> {
    let id = stack.stack_id().unwrap_or(&spec.name).to_owned();
    progress.line(format!("{label}: updating"));
    let existing: Vec<&str> = stack
        .parameters()
        .iter()
        .filter_map(|p| p.parameter_key())
        .collect();
    let parameters = parameters(spec, &existing);
    let update = cfn
        .update_stack()
        .stack_name(&id)
        .template_body(&spec.template)
        .set_parameters(Some(parameters))
        .set_capabilities(Some(spec.capabilities.clone()))
        .set_tags(Some(tags()))
        .send()
        .await;
    match update {
        Ok(_) => Ok(Some(Started {
            stack_id: id,
            seen,
            outcome: Outcome::Updated,
        })),
        Err(err) if no_updates(&err) => {
            progress.line(format!("{label}: no changes"));
            Ok(None)
        }
        Err(err) => Err(sdk_error(err)).with_context(|| format!("updating {label}")),
    }
}

/// Follows a create or update to its end; the stack's outputs when it succeeded.
async fn settle(
    cfn: &Client,
    spec: &StackSpec,
    label: &str,
    started: Started,
    progress: &Progress,
) -> anyhow::Result<Deployed> {
    let Started {
        stack_id,
        seen,
        outcome,
    } = started;
    let (status, failures) = follow(cfn, &stack_id, label, spec.resources, seen, progress).await?;
    if status != "CREATE_COMPLETE" && status != "UPDATE_COMPLETE" {
        return Err(failed(label, &status, &failures));
    }
    let stack = describe(cfn, &stack_id)
        .await?
        .ok_or_else(|| anyhow!("{label} vanished right after {status}"))?;
    progress.line(format!("{label}: {status}"));
    Ok(Deployed {
        outcome,
        outputs: outputs(&stack),
    })
}

/// Updates only the parameters in `changes` of stack `name`, keeping its template and every
/// other value, and waits until it settles. For a change that is not a deploy (`tandem
/// rotate-secret` pinning a new secret version on the edge).
pub async fn update_parameters(
    cfn: &Client,
    name: &str,
    region: &str,
    resources: u64,
    changes: &[(&str, &str)],
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let label = format!("{name} ({region})");
    let stack = describe(cfn, name)
        .await?
        .ok_or_else(|| anyhow!("{label} does not exist: run `tandem deploy` first"))?;
    let status = status(&stack);
    if next_step(status) != NextStep::Update {
        bail!("{label} is in {status}: run `tandem deploy` to settle it first");
    }
    let current: Vec<(&str, &str)> = stack
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?, p.parameter_value().unwrap_or(""))))
        .collect();
    if let Some((missing, _)) = changes
        .iter()
        .find(|(k, _)| !current.iter().any(|(key, _)| key == k))
    {
        bail!("{label} has no parameter {missing}: deploy it with this version of tandem first");
    }
    // The others as the stack reports them, which is what UsePreviousValue keeps (emulators
    // that remember only the values given at create refuse UsePreviousValue on a defaulted
    // one); a NoEcho value is reported masked, so that one keeps its value the other way.
    let parameters = current
        .iter()
        .map(|(key, now)| {
            let parameter = Parameter::builder().parameter_key(*key);
            match changes.iter().find(|(k, _)| k == key) {
                Some((_, value)) => parameter.parameter_value(*value),
                None if *now == "****" => parameter.use_previous_value(true),
                None => parameter.parameter_value(*now),
            }
            .build()
        })
        .collect();
    let id = stack.stack_id().unwrap_or(name).to_owned();
    let seen = recent_event_ids(cfn, &id).await?;
    let update = cfn
        .update_stack()
        .stack_name(&id)
        .use_previous_template(true)
        .set_parameters(Some(parameters))
        .set_capabilities(Some(stack.capabilities().to_vec()))
        .set_tags(Some(tags()))
        .send()
        .await;
    if let Err(err) = update {
        if no_updates(&err) {
            progress.line(format!("{label}: no changes"));
            return Ok(Outcome::Unchanged);
        }
        return Err(sdk_error(err)).with_context(|| format!("updating {label}"));
    }
    let keys: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
    progress.line(format!("{label}: updating {}", keys.join(", ")));
    let (status, failures) = follow(cfn, &id, &label, resources, seen, progress).await?;
    if status != "UPDATE_COMPLETE" {
        return Err(failed(&label, &status, &failures));
    }
    progress.line(format!("{label}: {status}"));
    Ok(Outcome::Updated)
}

async fn delete_by_id(
    cfn: &Client,
    stack_id: &str,
    label: &str,
    total: u64,
    progress: &Progress,
) -> anyhow::Result<()> {
    let seen = recent_event_ids(cfn, stack_id).await?;
    cfn.delete_stack()
        .stack_name(stack_id)
        .send()
        .await
        .map_err(sdk_error)
        .with_context(|| format!("deleting {label}"))?;
    let (status, failures) = follow(cfn, stack_id, label, total, seen, progress).await?;
    if status != "DELETE_COMPLETE" {
        return Err(failed(label, &status, &failures));
    }
    progress.line(format!("{label}: DELETE_COMPLETE"));
    Ok(())
}

/// Deletes stack `name` and waits until it is gone; false when there was no such stack.
pub async fn delete(
    cfn: &Client,
    name: &str,
    region: &str,
    total: u64,
    progress: &Progress,
) -> anyhow::Result<bool> {
    let label = format!("{name} ({region})");
    let Some(stack) = describe(cfn, name).await? else {
        progress.line(format!("{label}: not found, nothing to delete"));
        return Ok(false);
    };
    let id = stack.stack_id().unwrap_or(name).to_owned();
    if next_step(status(&stack)) == NextStep::Wait {
        progress.line(format!(
            "{label}: waiting for the running {} to end",
            status(&stack)
        ));
        let seen = recent_event_ids(cfn, &id).await?;
        follow(cfn, &id, &label, total, seen, progress).await?;
    }
    progress.line(format!("{label}: deleting"));
    delete_by_id(cfn, &id, &label, total, progress).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::StackStatus;

    /// Every status CloudFormation can report gets a step, and none of them is waited on
    /// unless an operation that ends on its own is running.
    #[test]
    fn every_stack_status_has_a_step_and_only_running_operations_are_waited_on() {
        for status in StackStatus::values() {
            let step = next_step(status);
            let ends_on_its_own =
                status.ends_with("_IN_PROGRESS") && *status != "REVIEW_IN_PROGRESS";
            assert_eq!(
                step == NextStep::Wait,
                ends_on_its_own,
                "{status}: {step:?}"
            );
        }
        assert_eq!(next_step("REVIEW_IN_PROGRESS"), NextStep::Recreate);
        assert_eq!(next_step("ROLLBACK_COMPLETE"), NextStep::Recreate);
        assert_eq!(
            next_step("UPDATE_ROLLBACK_FAILED"),
            NextStep::ContinueRollback
        );
        assert_eq!(next_step("UPDATE_ROLLBACK_COMPLETE"), NextStep::Update);
        assert_eq!(next_step("IMPORT_COMPLETE"), NextStep::Update);
        for failed in ["ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"] {
            let NextStep::Repair(how) = next_step(failed) else {
                panic!("{failed} needs a person");
            };
            assert!(how.contains("deploy again"), "{failed}: {how}");
        }
    }

    /// A failed create that kept the global table is not recreated into a name clash: the
    /// kept resources are found among the rollback's events.
    #[test]
    fn resources_a_rollback_kept_are_named() {
        use aws_sdk_cloudformation::types::ResourceStatus;
        let event = |id: &str, logical: &str, kind: &str, status| {
            StackEvent::builder()
                .event_id(id)
                .logical_resource_id(logical)
                .resource_type(kind)
                .physical_resource_id(format!("{logical}-physical"))
                .resource_status(status)
                .build()
        };
        let events = [
            event(
                "3",
                "tandem-data",
                "AWS::CloudFormation::Stack",
                ResourceStatus::DeleteComplete,
            ),
            event(
                "2",
                "ItemsTable",
                "AWS::DynamoDB::GlobalTable",
                ResourceStatus::DeleteSkipped,
            ),
            event(
                "1",
                "AppSecret",
                "AWS::SecretsManager::Secret",
                ResourceStatus::DeleteComplete,
            ),
        ];
        assert_eq!(
            kept_by_rollback(&events),
            ["ItemsTable (AWS::DynamoDB::GlobalTable ItemsTable-physical)"]
        );
        assert_eq!(event_ids(&events).len(), 3);
        assert!(kept_by_rollback(&events[..1]).is_empty());
    }
}
