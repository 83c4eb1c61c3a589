//! Smoke checks through the distribution: what `tandem deploy` runs once everything is up,
//! and `tandem status` runs any time. Health through `/api/*` and through each region's own
//! path, a throwaway item written, read back and deleted (through the item client,
//! [`ItemClient`], on this module's HTTPS client), and the console's `index.html`.
//!
//! When `/api/*` fails while both regional paths work, the fault is the CloudFront Function
//! route (edge.yaml's `ApiFailoverMode=function`), and the way out is the static origin group
//! (`ApiFailoverMode=origin-group`): the [`Verdict`] says so, and deploy offers or makes the
//! switch. A router that answers but fell back (its answer marked `failover=off`: an origin
//! helper threw, so reads no longer fail over per request) fails the check of health through
//! `/api/*` with "failover is off", which the same way out repairs.

use reqwest::Method;
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tandem_ops::client::header_text;
use tandem_ops::items::{Answer, Body, ItemClient};
use tandem_shared::headers::{ACTIVE_REGION, SERVED_REGION};
use tandem_shared::item::Data;
use tandem_shared::routing::Routed;
use tandem_shared::wire::{ItemResponse, path};

/// The check of health through `/api/*`: the one that tells the function route's trouble.
const API_HEALTH: &str = "health through /api/*";

/// One request's limit: far above a healthy answer, below a person's patience.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// edge.yaml's `ApiFailoverMode`: who carries `/api/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The CloudFront Function: every method, the active region first.
    Function,
    /// The static origin group: GET/HEAD/OPTIONS only; writes go to `/region/<primary>/api`.
    OriginGroup,
}

impl Mode {
    /// The parameter's value in edge.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Function => "function",
            Mode::OriginGroup => "origin-group",
        }
    }

    pub fn parse(value: &str) -> Option<Mode> {
        [Mode::Function, Mode::OriginGroup]
            .into_iter()
            .find(|m| m.as_str() == value)
    }
}

/// Which of the distribution's routes a check goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/api/*`.
    Api,
    /// `/region/<r>/api/*`, by index into the regions.
    Region(usize),
    /// The console bucket.
    Console,
}

/// One request and what it must get.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub route: Route,
    /// The method and the path, as sent (`request` says how).
    pub method: Method,
    pub path: String,
    pub request: Request,
    /// Acceptable statuses.
    pub expect: &'static [u16],
    /// The region that must answer (`x-served-region`), when one must.
    pub region: Option<String>,
}

/// What a check sends.
#[derive(Debug, Clone)]
pub enum Request {
    /// A plain `GET` of the path, read as text: health, the console.
    Page,
    /// The throwaway item `id`, through the item client; through the edge to region `via` only
    /// when it is set.
    Item {
        id: String,
        via: Option<String>,
        call: ItemCall,
    },
}

/// What is done to the throwaway item.
#[derive(Debug, Clone)]
pub enum ItemCall {
    /// `PUT` with this data.
    Put(Data),
    /// `GET`: it must hold what the put wrote, `{"smoke": id}`.
    Get,
    /// `DELETE`, so that the table keeps no throwaway item ([`Report::left_behind`]).
    Delete,
}

/// The checks, in order, for `regions` (primary first) with `/api/*` carried by `mode`. `id`
/// names the throwaway item.
pub fn checks(regions: &[String; 2], mode: Mode, id: &str) -> Vec<Check> {
    let check = |name: String, route, method, path: String, expect| Check {
        name,
        route,
        method,
        path,
        request: Request::Page,
        expect,
        region: None,
    };
    let mut checks = vec![check(
        API_HEALTH.into(),
        Route::Api,
        Method::GET,
        "/api/health".into(),
        &[200],
    )];
    for (i, region) in regions.iter().enumerate() {
        checks.push(Check {
            region: Some(region.clone()),
            ..check(
                format!("health of {region}"),
                Route::Region(i),
                Method::GET,
                format!("/region/{region}/api/health"),
                &[200],
            )
        });
    }
    // The origin group cannot carry writes (CloudFront refuses them on a behavior that targets
    // one): the item goes through the primary's own path then.
    let (route, via) = match mode {
        Mode::Function => (Route::Api, None),
        Mode::OriginGroup => (Route::Region(0), Some(regions[0].clone())),
    };
    // The path the item client sends, for the table.
    let item = match &via {
        Some(region) => path::in_region(region, &path::item(id)),
        None => path::item(id),
    };
    let data = Data::from_iter([("smoke".to_owned(), id.into())]);
    let calls = [
        (
            "write an item",
            Method::PUT,
            ItemCall::Put(data),
            &[200, 201][..],
        ),
        ("read it back", Method::GET, ItemCall::Get, &[200]),
        ("delete it", Method::DELETE, ItemCall::Delete, &[200, 204]),
    ];
    for (name, method, call, expect) in calls {
        let request = Request::Item {
            id: id.to_owned(),
            via: via.clone(),
            call,
        };
        checks.push(Check {
            request,
            ..check(name.into(), route, method, item.clone(), expect)
        });
    }
    checks.push(check(
        "console index.html".into(),
        Route::Console,
        Method::GET,
        "/index.html".into(),
        &[200],
    ));
    checks
}

/// What one check got.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub check: Check,
    pub status: Option<u16>,
    pub served_by: Option<String>,
    pub elapsed: Duration,
    /// Why it failed; `None` when it passed.
    pub problem: Option<String>,
}

/// Every check's outcome.
#[derive(Debug, Clone)]
pub struct Report {
    pub base: String,
    pub outcomes: Vec<Outcome>,
}

/// What a report means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// `/api/*` fails while both regions answer on their own paths: the function route.
    ApiRouteBroken,
    Failed,
}

/// Runs `checks` against `base` (`https://<domain>`), in order, each to its end.
pub async fn run(base: &str, checks: Vec<Check>) -> Report {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tandem-smoke/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with a timeout builds");
    // On the same client: the item checks keep its TLS, timeout and user agent.
    let items = ItemClient::new(client.clone(), base);
    let mut outcomes = Vec::with_capacity(checks.len());
    for check in checks {
        outcomes.push(one(&client, &items, base, check).await);
    }
    Report {
        base: base.to_owned(),
        outcomes,
    }
}

async fn one(client: &reqwest::Client, items: &ItemClient, base: &str, check: Check) -> Outcome {
    let start = Instant::now();
    let got = match &check.request {
        Request::Page => page(client, &format!("{base}{}", check.path)).await,
        Request::Item { id, via, call } => {
            let items = match via {
                Some(region) => &items.in_region(region),
                None => items,
            };
            item(items, id, call).await
        }
    };
    let (status, served_by, problem) = match got {
        Err(err) => (None, None, Some(format!("no answer: {err}"))),
        Ok(got) => {
            let problem = judge(&check, &got);
            (Some(got.status), got.served_by, problem)
        }
    };
    Outcome {
        check,
        status,
        served_by,
        elapsed: start.elapsed(),
        problem,
    }
}

/// What a check got back, as [`judge`] reads it.
#[derive(Debug, Default)]
struct Got {
    status: u16,
    served_by: Option<String>,
    /// A page's content type (empty for an item answer, whose type is not checked).
    content_type: String,
    /// The body as text, for a page and to quote when something is wrong.
    text: String,
    /// An item answer's item, when it is one.
    item: Option<ItemResponse>,
    /// A page's `x-tandem-active-region`: what the edge's `/api/*` route says it did.
    routed: Option<String>,
}

/// A plain GET of `url`.
async fn page(client: &reqwest::Client, url: &str) -> Result<Got, reqwest::Error> {
    let response = client.get(url).send().await?;
    let header = |name| header_text(&response, name);
    let (served_by, content_type) = (header(SERVED_REGION), header("content-type"));
    let routed = header(ACTIVE_REGION);
    Ok(Got {
        status: response.status().as_u16(),
        served_by,
        content_type: content_type.unwrap_or_default(),
        text: response.text().await.unwrap_or_default(),
        item: None,
        routed,
    })
}

/// `call` on the throwaway item `id`.
async fn item(items: &ItemClient, id: &str, call: &ItemCall) -> Result<Got, reqwest::Error> {
    Ok(match call {
        ItemCall::Put(data) => got(items.put(id, data, None).await.map_err(|e| e.error)?, Some),
        ItemCall::Get => got(items.get(id).await.map_err(|e| e.error)?, Some),
        ItemCall::Delete => got(items.delete(id, None).await.map_err(|e| e.error)?, |()| {
            None
        }),
    })
}

/// An item answer as the judge reads it; `item` takes the item from a 2xx body.
fn got<T>(answer: Answer<T>, item: fn(T) -> Option<ItemResponse>) -> Got {
    let (text, item) = match answer.body {
        Body::Ok(body) => (String::new(), item(body)),
        Body::Error(e) => (
            format!("{}: {}", e.error.code.as_str(), e.error.message),
            None,
        ),
        Body::Other(text) => (text, None),
    };
    Got {
        status: answer.status.as_u16(),
        served_by: answer.served_region,
        content_type: String::new(),
        text,
        item,
        routed: None,
    }
}

/// Why an answer does not pass `check`, if it does not.
fn judge(check: &Check, got: &Got) -> Option<String> {
    let served_by = got.served_by.as_deref();
    if !check.expect.contains(&got.status) {
        let text: String = got.text.chars().take(120).collect();
        return Some(format!(
            "status {}, expected {:?}: {text}",
            got.status, check.expect
        ));
    }
    if let Some(region) = &check.region
        && served_by != Some(region.as_str())
    {
        return Some(format!(
            "answered by {}, expected {region}",
            served_by.unwrap_or("no region (no x-served-region)")
        ));
    }
    match (&check.route, &check.request) {
        (Route::Console, _) if !got.content_type.starts_with("text/html") => Some(format!(
            "content-type {:?}, expected text/html",
            got.content_type
        )),
        (Route::Api | Route::Region(_), _) if served_by.is_none() => {
            Some("no x-served-region: not an answer of the Tandem API".into())
        }
        (Route::Api, Request::Page) => failover_off(got.routed.as_deref()),
        (
            _,
            Request::Item {
                id,
                call: ItemCall::Get,
                ..
            },
        ) => read_back_problem(id, got),
        _ => None,
    }
}

/// "failover is off" when the router says it fell back (contract §6.3): the request went to the
/// active region alone, so a failing region's reads would not fail over.
fn failover_off(routed: Option<&str>) -> Option<String> {
    let value = routed?;
    Routed::parse(value)?.failover_off.then(|| {
        format!(
            "failover is off: the /api/* router fell back (x-tandem-active-region: {value}): an \
             origin helper threw, so requests go to the active region alone and reads do not \
             fail over per request"
        )
    })
}

/// A read of the throwaway item must show what was written.
fn read_back_problem(id: &str, got: &Got) -> Option<String> {
    let Some(read) = &got.item else {
        let text: String = got.text.chars().take(120).collect();
        return Some(format!("read back something that is not an item: {text}"));
    };
    let data = read.item.data.to_map();
    (data.get("smoke").and_then(|v| v.as_str()) != Some(id))
        .then(|| format!("read back {:?}", read.item.data))
}

impl Report {
    /// Blames the function route only for what only it explains: health through `/api/*`
    /// fails while both regions answer their own health checks. (A write failing through
    /// `/api/*` alone may be the primary's own trouble: a throttle, contention, its table.)
    pub fn verdict(&self) -> Verdict {
        let failed = |route: Route, name: Option<&str>| {
            self.outcomes.iter().any(|o| {
                o.check.route == route
                    && name.is_none_or(|n| o.check.name == n)
                    && o.problem.is_some()
            })
        };
        if self.outcomes.iter().all(|o| o.problem.is_none()) {
            return Verdict::Passed;
        }
        let regions_ok = !failed(Route::Region(0), None) && !failed(Route::Region(1), None);
        match regions_ok && failed(Route::Api, Some(API_HEALTH)) {
            true => Verdict::ApiRouteBroken,
            false => Verdict::Failed,
        }
    }

    /// Throwaway items whose delete did not pass: they are left in the table.
    pub fn left_behind(&self) -> Option<String> {
        let delete = self
            .outcomes
            .iter()
            .find(|o| o.check.method == Method::DELETE)?;
        delete.problem.as_ref()?;
        Some(delete.check.path.clone())
    }

    /// The table: one line per check, and the problem under each that failed.
    pub fn table(&self) -> String {
        let mut out = format!("Smoke checks through {}:\n", self.base);
        let width = self
            .outcomes
            .iter()
            .map(|o| o.check.method.as_str().len() + 1 + o.check.path.len())
            .max()
            .unwrap_or(0);
        for o in &self.outcomes {
            let request = format!("{} {}", o.check.method, o.check.path);
            let status = o.status.map_or("-".to_owned(), |s| s.to_string());
            let _ = writeln!(
                out,
                "  {:<4}  {:<24}  {request:<width$}  {status:>3}  {:<14}  {:>5} ms",
                if o.problem.is_none() { "PASS" } else { "FAIL" },
                o.check.name,
                o.served_by.as_deref().unwrap_or("-"),
                o.elapsed.as_millis()
            );
            if let Some(problem) = &o.problem {
                let _ = writeln!(out, "        {problem}");
            }
        }
        out
    }
}

/// What the origin group means for clients, said whenever it carries `/api/*`.
pub const ORIGIN_GROUP_WARNING: &str = "ApiFailoverMode=origin-group: /api/* takes GET, HEAD and \
    OPTIONS only; CloudFront refuses writes there with 403 (the console's writes included, which \
    resend only on a 5xx). Writes must go to /region/<primary>/api/... until the function route \
    is repaired and `tandem deploy --api-failover-mode function` switches back.";

/// A throwaway item's id: nobody else's, and easy to recognise if a delete is lost.
pub fn throwaway_id() -> String {
    format!("tandem-smoke-{}", uuid::Uuid::new_v4().simple())
}

/// Runs the checks until they pass or `wait` has passed (a new distribution takes minutes to
/// answer everywhere), printing a line per failed round; the last report.
pub async fn until_passed(
    base: &str,
    regions: &[String; 2],
    mode: Mode,
    wait: Duration,
    progress: &crate::stack::Progress,
) -> Report {
    let start = Instant::now();
    // One item for every round: a round whose delete fails leaves at most this one behind.
    let id = throwaway_id();
    loop {
        let report = run(base, checks(regions, mode, &id)).await;
        let failed = report
            .outcomes
            .iter()
            .filter(|o| o.problem.is_some())
            .count();
        if failed == 0 || start.elapsed() >= wait {
            if let Some(path) = report.left_behind() {
                progress.line(format!(
                    "smoke checks: the throwaway item {path} may be left in the table (its delete failed)"
                ));
            }
            return report;
        }
        progress.line(format!(
            "smoke checks: {failed} of {} failed; again in 10 s (up to {wait:?})",
            report.outcomes.len()
        ));
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// What deploy and status say after the table, for `verdict`.
pub fn advice(verdict: Verdict, mode: Mode) -> Option<String> {
    match (verdict, mode) {
        (Verdict::Passed, _) => None,
        (Verdict::ApiRouteBroken, Mode::Function) => Some(
            "/api/* fails while both regions answer on /region/<r>/api/*: the CloudFront Function \
             route (ApiFailoverMode=function) is at fault. `tandem deploy --fallback-origin-group` \
             switches /api/* to the static origin group (reads still fail over; writes must then \
             go to /region/<primary>/api/...)."
                .into(),
        ),
        _ => Some(
            "Some checks failed: see the lines above. A new distribution can take a few minutes \
             to answer everywhere; `tandem status` runs the same checks again."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> [String; 2] {
        ["us-east-1".into(), "us-west-2".into()]
    }

    fn report(failing: &[&str]) -> Report {
        let outcomes = checks(&regions(), Mode::Function, "smoke-1")
            .into_iter()
            .map(|check| Outcome {
                problem: failing
                    .contains(&check.name.as_str())
                    .then(|| "failed".to_owned()),
                check,
                status: Some(200),
                served_by: Some("us-east-1".into()),
                elapsed: Duration::from_millis(3),
            })
            .collect();
        Report {
            base: "https://d.example".into(),
            outcomes,
        }
    }

    #[test]
    fn the_function_route_is_blamed_only_when_both_regions_answer() {
        assert_eq!(report(&[]).verdict(), Verdict::Passed);
        let api = ["health through /api/*", "write an item"];
        assert_eq!(report(&api).verdict(), Verdict::ApiRouteBroken);
        // A write failing alone may be the primary's own trouble: not the route's.
        assert_eq!(report(&["write an item"]).verdict(), Verdict::Failed);
        let region = ["health through /api/*", "health of us-west-2"];
        assert_eq!(report(&region).verdict(), Verdict::Failed);
        assert_eq!(report(&["console index.html"]).verdict(), Verdict::Failed);
        assert!(
            advice(Verdict::ApiRouteBroken, Mode::Function)
                .unwrap()
                .contains("--fallback-origin-group")
        );
        assert!(
            !advice(Verdict::ApiRouteBroken, Mode::OriginGroup)
                .unwrap()
                .contains("--fallback-origin-group")
        );
    }

    #[test]
    fn the_origin_group_writes_through_the_primary_s_own_path() {
        let writes: Vec<_> = checks(&regions(), Mode::OriginGroup, "smoke-1")
            .into_iter()
            .filter(|c| c.path.contains("/items/"))
            .map(|c| (c.method, c.path))
            .collect();
        assert!(writes.contains(&(Method::PUT, "/region/us-east-1/api/items/smoke-1".into())));
        assert!(
            writes
                .iter()
                .all(|(_, p)| p.starts_with("/region/us-east-1/api/items/"))
        );
    }

    /// What `page` or `item` would make of an answer: an item when the body is one.
    fn got(status: u16, served_by: Option<&str>, content_type: &str, text: &str) -> Got {
        Got {
            status,
            served_by: served_by.map(str::to_owned),
            content_type: content_type.to_owned(),
            text: text.to_owned(),
            item: serde_json::from_str(text).ok(),
            routed: None,
        }
    }

    fn read_back(smoke: &str) -> String {
        format!(
            r#"{{"item":{{"id":"smoke-1","data":{{"smoke":"{smoke}"}},"version":1,"updated_at":"2026-01-01T00:00:00.000Z","updated_in":"us-east-1"}},"region":"us-east-1"}}"#
        )
    }

    #[test]
    fn an_answer_is_judged_on_status_region_and_content() {
        let all = checks(&regions(), Mode::Function, "smoke-1");
        let west = &all[2];
        let json = "application/json";
        assert_eq!(judge(west, &got(200, Some("us-west-2"), json, "{}")), None);
        assert!(
            judge(west, &got(200, Some("us-east-1"), json, "{}"))
                .unwrap()
                .contains("expected us-west-2")
        );
        assert!(
            judge(west, &got(403, None, "", "forbidden"))
                .unwrap()
                .contains("status 403")
        );
        let read = all.iter().find(|c| c.name == "read it back").unwrap();
        let good = got(200, Some("us-east-1"), json, &read_back("smoke-1"));
        assert_eq!(judge(read, &good), None);
        let other = got(200, Some("us-east-1"), json, &read_back("other"));
        assert!(judge(read, &other).is_some());
        // Not an item: a cached page, or a stand-in's partial one.
        let garbage = got(200, Some("us-east-1"), "text/html", "<html>cached</html>");
        assert!(judge(read, &garbage).is_some(), "not JSON");
        let partial = r#"{"item":{"data":{"smoke":"smoke-1"}}}"#;
        assert!(judge(read, &got(200, Some("us-east-1"), json, partial)).is_some());
        // The router fell back: the answer passes everything else, and still fails.
        let api = &all[0];
        let mut fell_back = got(200, Some("us-east-1"), json, "{}");
        assert_eq!(judge(api, &fell_back), None);
        fell_back.routed = Some("none; failover=off".into());
        let problem = judge(api, &fell_back).unwrap();
        assert!(problem.starts_with("failover is off"), "{problem}");
        fell_back.routed = Some("us-west-2".into());
        assert_eq!(judge(api, &fell_back), None);
        let console = all.last().unwrap();
        assert!(judge(console, &got(200, None, json, "{}")).is_some());
        let html = got(200, None, "text/html; charset=utf-8", "<html>");
        assert_eq!(judge(console, &html), None);
    }

    #[test]
    fn the_item_checks_use_the_item_client_s_paths() {
        for (mode, prefix) in [
            (Mode::Function, String::new()),
            (Mode::OriginGroup, "/region/us-east-1".to_owned()),
        ] {
            let items: Vec<_> = checks(&regions(), mode, "smoke-1")
                .into_iter()
                .filter(|c| matches!(c.request, Request::Item { .. }))
                .collect();
            assert_eq!(items.len(), 3);
            for check in items {
                assert_eq!(check.path, format!("{prefix}/api/items/smoke-1"));
                let Request::Item { via, .. } = &check.request else {
                    unreachable!()
                };
                assert_eq!(via.is_some(), mode == Mode::OriginGroup);
            }
        }
    }
}
