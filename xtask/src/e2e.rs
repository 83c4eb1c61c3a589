//! End-to-end tests of the console in real headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini) against a real `tandem up` whose edge sends the production CSP.
//!
//! The scenarios run in order on one page, as a person would use it: create an item, crash the
//! primary, write during the outage, heal, run the drill. Each asserts on what the page shows
//! (and the request log it keeps); each saves a screenshot: under `target/e2e/screenshots/` in a
//! test run (which leaves the git tree clean), under `docs/screenshots/` for
//! `cargo xtask screenshots` (the README's).

use crate::util::{self, done, run, step};
use anyhow::{Context as _, anyhow, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const PRIMARY: &str = "us-east-1";
const SECONDARY: &str = "us-west-2";
/// The strong stack's witness (`tandem up --consistency strong`'s default).
const WITNESS: &str = "us-east-2";
/// Laptop-sized window for the screenshots; the last one is phone-sized.
const WINDOW: (u32, u32) = (1440, 1320);
const PHONE: (u32, u32) = (390, 844);

/// Child processes that must not outlive the run, whatever happens.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for child in &mut self.0 {
            // SIGTERM first: `tandem up` then stops its region processes cleanly.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Ctx {
    client: Client,
    base: String,
    /// The edge of the stack started with `--consistency strong`.
    strong_base: String,
    shots: PathBuf,
}

type Scenario = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// Where the scenarios' screenshots go.
#[derive(Debug, Clone, Copy)]
pub enum Screenshots {
    /// `target/e2e/screenshots/`: a test run changes nothing in the git tree.
    Target,
    /// `docs/screenshots/`, the README's: `cargo xtask screenshots`.
    Docs,
}

/// Runs the scenarios; returns (passed, failed) after printing `e2e: N passed, M failed`.
pub fn run_all(screenshots: Screenshots) -> anyhow::Result<(usize, usize)> {
    let t = step("e2e: the console in headless Chromium against a real `tandem up`");
    let dist = util::root().join("frontend/dist");
    ensure!(
        dist.join("index.html").is_file(),
        "build the console first (frontend/dist)"
    );
    run(util::cargo().args(["build", "-p", "tandem-cli", "--bin", "tandem"]))?;
    let tandem = util::target_dir().join("debug/tandem");
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(util::which)
        .context("Chromium is missing (apt-get install chromium chromium-driver)")?;
    let driver = util::which("chromedriver")
        .context("chromedriver is missing (apt-get install chromium-driver)")?;

    let work = util::target_dir().join("e2e");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let logs = |name: &str| -> anyhow::Result<Stdio> {
        Ok(Stdio::from(std::fs::File::create(work.join(name))?))
    };
    let mut reaper = Reaper(Vec::new());

    // Below the ephemeral range, as every local stack: the crash scenario restarts us-east-1,
    // which must get its port back.
    let (stack, port) = start_stack(&tandem, &dist, &work, "tandem", &[])?;
    reaper.0.push(stack);
    // The strong mode's stack (two regions and a witness): started now, so that its cluster
    // forms while the other scenarios run.
    let strong = ["--consistency", "strong"];
    let (stack, strong_port) = start_stack(&tandem, &dist, &work, "tandem-strong", &strong)?;
    reaper.0.push(stack);
    util::wait_for_port(port).context("tandem up did not start (see target/e2e/tandem*.log)")?;
    util::wait_for_port(strong_port).context(
        "tandem up --consistency strong did not start (see target/e2e/tandem-strong*.log)",
    )?;

    let driver_port = util::free_ports(1)?;
    reaper.0.push(
        Command::new(driver)
            .arg(format!("--port={driver_port}"))
            .stdout(logs("chromedriver.log")?)
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?,
    );
    util::wait_for_port(driver_port)?;

    let base = format!("http://127.0.0.1:{port}");
    let strong_base = format!("http://127.0.0.1:{strong_port}");
    let shots = match screenshots {
        Screenshots::Target => work.join("screenshots"),
        Screenshots::Docs => util::root().join("docs/screenshots"),
    };
    std::fs::create_dir_all(&shots)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (passed, failed) = runtime.block_on(async {
        let client = connect(driver_port, &chromium, &work.join("profile")).await?;
        let ctx = Ctx {
            client,
            base,
            strong_base,
            shots: shots.clone(),
        };
        let scenarios: [(&str, Scenario); 6] = [
            ("create an item, answered by us-east-1", |c| {
                Box::pin(create_item(c))
            }),
            (
                "crash the primary, the next read is answered by us-west-2",
                |c| Box::pin(crash_primary(c)),
            ),
            ("write during the outage, the console fails it over", |c| {
                Box::pin(write_during_outage(c))
            }),
            ("heal, the other region catches up", |c| Box::pin(heal(c))),
            ("drill: 0 writes lost", |c| Box::pin(drill(c))),
            (
                "strong stack: the consensus log shows a leader, and the witness stops",
                |c| Box::pin(consensus(c)),
            ),
        ];
        let (mut passed, mut failed) = (0, 0);
        for (i, (name, scenario)) in scenarios.into_iter().enumerate() {
            let started = Instant::now();
            match scenario(&ctx).await {
                Ok(()) => {
                    passed += 1;
                    println!(
                        "e2e: PASS {}. {name} ({:.1}s)",
                        i + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
                Err(err) => {
                    failed += 1;
                    println!("e2e: FAIL {}. {name}: {err:#}", i + 1);
                    let _ = save_failure(&ctx, &work, i + 1).await;
                }
            }
        }
        let _ = ctx.client.close().await;
        anyhow::Ok((passed, failed))
    })?;
    drop(reaper);
    println!(
        "e2e: {passed} passed, {failed} failed; screenshots in {}",
        shots.display()
    );
    ensure!(
        failed == 0,
        "e2e: {failed} scenario(s) failed (screenshots and page logs under target/e2e/)"
    );
    done(t);
    Ok((passed, failed))
}

/// Starts `tandem up` with `extra` flags on free ports, its data and logs under `work` (named
/// `name`); returns the process and the edge's port, once the port is chosen (not yet served).
fn start_stack(
    tandem: &Path,
    dist: &Path,
    work: &Path,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<(Child, u16)> {
    let logs = |suffix: &str| -> anyhow::Result<Stdio> {
        Ok(Stdio::from(std::fs::File::create(
            work.join(format!("{name}{suffix}")),
        )?))
    };
    // The edge, two regions and (strong mode) the witness, on consecutive ports.
    let port = util::free_ports(4)?;
    let child = Command::new(tandem)
        .arg("up")
        .args(["--port", &port.to_string()])
        .arg("--data-dir")
        .arg(work.join(format!("{name}-data")))
        .arg("--console-dir")
        .arg(dist)
        .args([
            "--admin-token",
            TOKEN,
            "--origin-secret",
            "e2e-origin-secret",
        ])
        // One quick connection attempt and a 1 s read timeout: failovers within seconds.
        .args(["--connection-attempts", "1", "--connection-timeout", "1"])
        .args(["--origin-read-timeout", "1"])
        .args(extra)
        .current_dir(util::root())
        .env("RUST_LOG", "warn")
        .stdout(logs(".log")?)
        .stderr(logs(".err.log")?)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok((child, port))
}

async fn connect(port: u16, chromium: &Path, profile: &Path) -> anyhow::Result<Client> {
    let args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
    ])
    .collect::<Vec<_>>();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    });
    let Value::Object(caps) = caps else {
        unreachable!("a JSON object literal")
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .context("starting a Chromium session")?;
    client.set_window_size(WINDOW.0, WINDOW.1).await?;
    Ok(client)
}

/// Waits until `css` matches an element whose text passes `ok`; returns that text.
async fn wait_text(
    c: &Ctx,
    css: &str,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("(no such element)");
    loop {
        if let Ok(el) = c.client.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if ok(&text) {
                return Ok(text);
            }
            last = text;
        }
        if Instant::now() > deadline {
            bail!("{what}: `{css}` still shows {last:?} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Ctx, css: &str) -> anyhow::Result<()> {
    c.client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?
        .click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

async fn fill(c: &Ctx, css: &str, text: &str) -> anyhow::Result<()> {
    let el = c
        .client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

/// The request log as the page shows it: one row per request, newest first.
#[derive(Debug)]
struct Row {
    request: String,
    status: String,
    region: String,
    failover: String,
}

/// A row as a line of text, for the messages and logs of a failure.
impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Row {
            request,
            status,
            region,
            failover,
        } = self;
        write!(f, "{request} | {status} | {region} | {failover}")
    }
}

async fn log_rows(c: &Ctx) -> anyhow::Result<Vec<Row>> {
    let v = c
        .client
        .execute(
            "return [...document.querySelectorAll('#request-log tbody tr')].map(tr => \
             [...tr.children].map(td => td.textContent.trim()))",
            vec![],
        )
        .await?;
    let rows = v.as_array().context("log rows")?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let cells: Vec<String> = r
                .as_array()?
                .iter()
                .map(|c| c.as_str().unwrap_or("").to_owned())
                .collect();
            (cells.len() == 7).then(|| Row {
                request: cells[2].clone(),
                status: cells[3].clone(),
                region: cells[5].clone(),
                failover: cells[6].clone(),
            })
        })
        .collect())
}

/// Waits for a log row that passes `ok`.
async fn wait_row(
    c: &Ctx,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&Row) -> bool,
) -> anyhow::Result<Row> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = log_rows(c).await?;
        if let Some(i) = rows.iter().position(&ok) {
            return Ok(rows.into_iter().nth(i).expect("found above"));
        }
        if Instant::now() > deadline {
            let shown: Vec<String> = rows.iter().take(8).map(Row::to_string).collect();
            bail!(
                "{what}: no such row in the request log after {timeout:?}; newest rows:\n  {}",
                shown.join("\n  ")
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn scroll_to(c: &Ctx, css: &str) -> anyhow::Result<()> {
    c.client
        .execute(
            "const el = document.querySelector(arguments[0]); if (el) el.scrollIntoView({block: 'start'}); window.scrollBy(0, -70);",
            vec![json!(css)],
        )
        .await?;
    Ok(())
}

async fn screenshot(c: &Ctx, name: &str) -> anyhow::Result<()> {
    // Let the last render and the timeline's once-a-second redraw land first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let png = c.client.screenshot().await?;
    std::fs::write(c.shots.join(name), png)?;
    Ok(())
}

async fn save_failure(c: &Ctx, work: &Path, n: usize) -> anyhow::Result<()> {
    let png = c.client.screenshot().await?;
    std::fs::write(work.join(format!("failure-{n}.png")), png)?;
    let rows = log_rows(c).await?;
    let text: Vec<String> = rows.iter().map(Row::to_string).collect();
    std::fs::write(work.join(format!("failure-{n}-log.txt")), text.join("\n"))?;
    Ok(())
}

/// The page as served: the edge's CSP, and no inline script for it to block.
fn check_csp(base: &str) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("an HTTP answer")?;
    let csp = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-security-policy:")
                .map(|v| v.trim().to_owned())
        })
        .context("the console came without a Content-Security-Policy header")?;
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .context("no script-src in the CSP")?;
    ensure!(
        !script_src.contains("unsafe-inline"),
        "script-src allows inline scripts: {csp}"
    );
    let scripts = body.matches("<script").count();
    ensure!(scripts >= 1, "index.html loads no script");
    for tag in body.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or("");
        ensure!(
            open.contains("src="),
            "index.html has an inline <script>, which the CSP blocks: <script{open}>"
        );
    }
    Ok(())
}

async fn create_item(c: &Ctx) -> anyhow::Result<()> {
    check_csp(&c.base)?;
    c.client.goto(&format!("{}/#token={TOKEN}", c.base)).await?;
    // The app mounts only if boot.js and the wasm ran under the CSP.
    c.client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("main#app[data-ready='true']"))
        .await
        .context("the console did not start (CSP or wasm failure?)")?;
    let url = c.client.current_url().await?;
    ensure!(
        !url.as_str().contains("token="),
        "the token stayed in the URL: {url}"
    );
    let stored = c
        .client
        .execute(
            "return sessionStorage.getItem('tandem.admin-token')",
            vec![],
        )
        .await?;
    ensure!(
        stored.as_str() == Some(TOKEN),
        "the token is not in sessionStorage: {stored}"
    );
    wait_text(c, "#stack", Duration::from_secs(5), "stack", |t| {
        t == "local stack"
    })
    .await?;
    for r in [PRIMARY, SECONDARY] {
        wait_text(
            c,
            &format!("#region-{r} [data-role=health]"),
            Duration::from_secs(10),
            &format!("{r} health"),
            |t| t.starts_with("ok"),
        )
        .await?;
    }

    // A mistake in the JSON comes back as the API's own error code, shown inline.
    fill(c, "#editor-id", "e2e-first").await?;
    fill(c, "#editor-data", "{\"hello\": ").await?;
    click(c, "#editor-save").await?;
    wait_text(
        c,
        "#editor-outcome",
        Duration::from_secs(10),
        "invalid JSON",
        |t| t.contains("invalid_json") && t.contains("400"),
    )
    .await?;

    fill(c, "#editor-data", "{\"hello\": \"world\", \"n\": 1}").await?;
    click(c, "#editor-save").await?;
    wait_text(
        c,
        "#editor-outcome",
        Duration::from_secs(10),
        "create",
        |t| t.contains(&format!("201 from {PRIMARY}")),
    )
    .await?;
    wait_row(c, Duration::from_secs(5), "the write in the log", |r| {
        r.request == "PUT /api/items/e2e-first" && r.status == "201" && r.region == PRIMARY
    })
    .await?;
    wait_text(
        c,
        "#items-rows",
        Duration::from_secs(10),
        "item in the list",
        |t| t.contains("e2e-first"),
    )
    .await?;
    wait_text(
        c,
        "#staleness",
        Duration::from_secs(20),
        "replicated to us-west-2",
        |t| t.contains(SECONDARY) && t.contains("replicated"),
    )
    .await?;
    scroll_to(c, "body").await?;
    screenshot(c, "01-create-item.png").await
}

async fn crash_primary(c: &Ctx) -> anyhow::Result<()> {
    click(
        c,
        &format!("#region-{PRIMARY} button[data-action=state-crashed]"),
    )
    .await?;
    wait_text(
        c,
        &format!("#region-{PRIMARY} [data-role=state]"),
        Duration::from_secs(10),
        "primary crashed",
        |t| t == "crashed",
    )
    .await?;
    wait_text(
        c,
        &format!("#region-{PRIMARY} [data-role=health]"),
        Duration::from_secs(10),
        "primary unhealthy",
        |t| !t.starts_with("ok") && !t.contains("checking"),
    )
    .await?;
    click(c, "#items-refresh").await?;
    wait_text(
        c,
        "#items-note",
        Duration::from_secs(10),
        "list answered by the secondary",
        |t| t.contains(&format!("answered by {SECONDARY}")),
    )
    .await?;
    wait_row(
        c,
        Duration::from_secs(5),
        "the edge's failover in the log",
        |r| {
            r.request.starts_with("GET /api/items?")
                && r.status == "200"
                && r.region == SECONDARY
                && r.failover.contains("edge: connect")
        },
    )
    .await?;
    scroll_to(c, "body").await?;
    screenshot(c, "02-primary-crashed.png").await
}

async fn write_during_outage(c: &Ctx) -> anyhow::Result<()> {
    fill(c, "#editor-id", "e2e-outage").await?;
    fill(c, "#editor-data", "{\"written\": \"during the outage\"}").await?;
    click(c, "#editor-save").await?;
    wait_text(
        c,
        "#editor-outcome",
        Duration::from_secs(15),
        "the write failed over",
        |t| t.contains(&format!("from {SECONDARY}")) && t.contains("resent"),
    )
    .await?;
    wait_row(c, Duration::from_secs(5), "the failed first try", |r| {
        r.request == "PUT /api/items/e2e-outage"
            && r.status == "502"
            && r.failover.contains(&format!("resent to {SECONDARY}"))
    })
    .await?;
    wait_row(c, Duration::from_secs(5), "the resent write", |r| {
        r.request == format!("PUT /region/{SECONDARY}/api/items/e2e-outage")
            && r.status == "201"
            && r.region == SECONDARY
            && r.failover.contains("client: write failed over")
    })
    .await?;
    wait_text(
        c,
        "#staleness",
        Duration::from_secs(10),
        "stale in the crashed primary",
        |t| t.contains(PRIMARY) && t.contains("not replicated yet"),
    )
    .await?;
    scroll_to(c, "#request-log").await?;
    screenshot(c, "03-client-failover.png").await
}

async fn heal(c: &Ctx) -> anyhow::Result<()> {
    scroll_to(c, "body").await?;
    click(
        c,
        &format!("#region-{PRIMARY} button[data-action=state-up]"),
    )
    .await?;
    wait_text(
        c,
        &format!("#region-{PRIMARY} [data-role=health]"),
        Duration::from_secs(15),
        "primary healthy again",
        |t| t.starts_with("ok"),
    )
    .await?;
    // Read the outage write back from the healed primary until it has replicated there.
    click(c, "#read-other").await?;
    let text = wait_text(c, "#staleness", Duration::from_secs(30), "caught up", |t| {
        t.contains(PRIMARY) && t.contains("replicated")
    })
    .await?;
    ensure!(text.contains("e2e-outage"), "checked another item: {text}");
    wait_row(
        c,
        Duration::from_secs(5),
        "the read from the primary",
        |r| {
            r.request == format!("GET /region/{PRIMARY}/api/items/e2e-outage")
                && r.status == "200"
                && r.region == PRIMARY
        },
    )
    .await?;
    screenshot(c, "04-healed-caught-up.png").await
}

async fn drill(c: &Ctx) -> anyhow::Result<()> {
    c.client
        .find(Locator::Css("#drill-method"))
        .await?
        .select_by_value("crash")
        .await
        .context("the crash option (local stack, token held)")?;
    fill(c, "#drill-seconds", "4").await?;
    click(c, "#drill-run").await?;
    wait_text(
        c,
        "#drill-run",
        Duration::from_secs(5),
        "drill started",
        |t| t.contains("Running"),
    )
    .await?;
    let lost = wait_text(
        c,
        "#drill-results [data-role=lost]",
        Duration::from_secs(120),
        "drill finished",
        |t| !t.is_empty(),
    )
    .await?;
    let acknowledged: usize = wait_text(
        c,
        "#drill-results [data-role=acknowledged]",
        Duration::from_secs(1),
        "acknowledged",
        |_| true,
    )
    .await?
    .trim()
    .parse()
    .map_err(|e| anyhow!("acknowledged writes: {e}"))?;
    let first = wait_text(
        c,
        "#drill-results [data-role=first-success]",
        Duration::from_secs(1),
        "first success",
        |_| true,
    )
    .await?;
    ensure!(
        lost.trim() == "0",
        "the drill lost writes: {lost} (of {acknowledged} acknowledged)"
    );
    ensure!(acknowledged > 0, "the drill acknowledged no write");
    ensure!(
        first.contains("after the fault"),
        "no success from {SECONDARY} during the outage: {first}"
    );
    scroll_to(c, "#drill-title").await?;
    screenshot(c, "05-drill.png").await?;

    c.client.set_window_size(PHONE.0, PHONE.1).await?;
    scroll_to(c, "body").await?;
    screenshot(c, "06-phone.png").await?;
    c.client.set_window_size(WINDOW.0, WINDOW.1).await?;
    Ok(())
}

/// The strong stack's console: the mode and the leader over the cards, each member's place in
/// the log on its card, the witness's card; the witness stopped from its card is reported as not
/// answering while the two regions keep a leader (two of three), then brought back.
async fn consensus(c: &Ctx) -> anyhow::Result<()> {
    c.client
        .goto(&format!("{}/#token={TOKEN}", c.strong_base))
        .await?;
    c.client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("main#app[data-ready='true']"))
        .await
        .context("the strong stack's console did not start")?;
    let leads = |t: &str| {
        [PRIMARY, SECONDARY]
            .iter()
            .any(|r| t.starts_with(&format!("strong consistency: {r} leads, term ")))
    };
    wait_text(
        c,
        "#consistency",
        Duration::from_secs(30),
        "a leader",
        leads,
    )
    .await?;
    let in_log = |t: &str| {
        (t.starts_with("leader (gen 0)") || t.starts_with("follower (gen 0)"))
            && t.contains(", applied ")
    };
    for member in [PRIMARY, SECONDARY, WITNESS] {
        wait_text(
            c,
            &format!("#region-{member} [data-role=consensus]"),
            Duration::from_secs(10),
            &format!("{member} in the log"),
            in_log,
        )
        .await?;
    }
    let witness = format!("#region-{WITNESS}");
    wait_text(
        c,
        &format!("{witness} [data-role=state]"),
        Duration::from_secs(10),
        "the witness's card",
        |t| t == "up",
    )
    .await?;
    scroll_to(c, "body").await?;
    screenshot(c, "07-consensus.png").await?;

    click(c, &format!("{witness} button[data-action=state-stopped]")).await?;
    wait_text(
        c,
        &format!("{witness} [data-role=consensus]"),
        Duration::from_secs(10),
        "the stopped witness not answering",
        |t| t == "not answering",
    )
    .await?;
    wait_text(
        c,
        "#consistency",
        Duration::from_secs(10),
        "a leader without the witness",
        leads,
    )
    .await?;
    click(c, &format!("{witness} button[data-action=state-up]")).await?;
    wait_text(
        c,
        &format!("{witness} [data-role=consensus]"),
        Duration::from_secs(20),
        "the witness back in the log",
        in_log,
    )
    .await?;
    Ok(())
}
