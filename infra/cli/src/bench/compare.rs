//! `tandem bench --compare`: the edge next to nginx, and Lambda init next to a hello world.
//!
//! - nginx (Debian) in front of the same two regions with the same rules: primary, secondary as
//!   `backup`, `proxy_next_upstream error timeout http_500 http_502 http_503 http_504`, the same
//!   connect and read timeouts, keep-alive upstreams, and `max_fails=0` so that, like
//!   CloudFront, every request starts at the primary. Both driven by `wrk` at the same
//!   concurrency, healthy and with the primary stopped; failover cost per fault mode; peak RSS.
//! - Lambda init, locally: a fake Lambda Runtime API serves one API Gateway event; the time from
//!   spawning the binary to its posted response, and its peak RSS, for `tandem-api` (on moto's
//!   DynamoDB, warming its connection at init as on AWS) and for a hello-world `lambda_http`
//!   binary built the same way.

use super::BenchArgs;
use super::stack::{Stack, added_cell, control, failover_rows, start};
use anyhow::{Context as _, bail};
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_ops::memory::rss;
use tandem_shared::bench::{Goal, Row, thousands};
use tandem_shared::control::RegionState;
use tandem_shared::item::Data;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::wire::path;
use tandem_testkit::Moto;
use tokio::sync::Mutex;

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// CPU time a set of processes has used so far, in clock ticks: (user, system).
fn cpu_ticks(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| stat_times(&stat))
        .fold((0, 0), |(u, s), (du, ds)| (u + du, s + ds))
}

/// utime and stime from a `/proc/<pid>/stat` line: fields 14 and 15 (proc(5)), counted after
/// the command name, which is in parentheses and may hold spaces and parentheses itself.
fn stat_times(stat: &str) -> Option<(u64, u64)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

/// `/proc`'s clock tick: USER_HZ, 100 on Linux (what `sysconf(_SC_CLK_TCK)` answers).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU microseconds per request, user and system, from two [`cpu_ticks`] readings (saturating:
/// a process that exits between them takes its ticks out of the second sum).
fn per_request(before: (u64, u64), after: (u64, u64), requests: u64) -> (f64, f64) {
    let us = |ticks: u64| ticks as f64 / TICKS_PER_SEC * 1e6 / requests.max(1) as f64;
    (
        us(after.0.saturating_sub(before.0)),
        us(after.1.saturating_sub(before.1)),
    )
}

/// The median of `values` (nearest rank, as every Tandem percentile), NaN when there are none.
fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    tandem_shared::stats::percentile(&sorted, 0.5).unwrap_or(f64::NAN)
}

/// What `wrk --latency` reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Wrk {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

fn to_ms(text: &str) -> f64 {
    let (num, unit) = text.trim().split_at(
        text.trim()
            .find(|c: char| c.is_alphabetic())
            .unwrap_or(text.trim().len()),
    );
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => v / 1000.0,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => v,
    }
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(out: &str) -> Wrk {
    let mut w = Wrk::default();
    for line in out.lines().map(str::trim) {
        if let Some(n) = line
            .strip_suffix("read")
            .and_then(|l| l.split_once(" requests in "))
        {
            w.requests = n.0.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            w.p50_ms = to_ms(v);
        } else if let Some(v) = line.strip_prefix("99%") {
            w.p99_ms = to_ms(v);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            w.errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    w
}

fn wrk(url: &str, secs: u64, connections: usize) -> anyhow::Result<Wrk> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk (apt-get install wrk)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(parse_wrk(&String::from_utf8_lossy(&out.stdout)))
}

struct Nginx {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: nginx's master stops its workers before it exits (killed, it
    /// left them running, orphaned).
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGTERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn start_nginx(
    stack: &Stack,
    edge: &tandem_shared::control::EdgeSettings,
) -> anyhow::Result<Nginx> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let d = dir.path().display();
    let conf = format!(
        r#"daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  upstream tandem {{
    server {east} max_fails=0;
    server {west} backup;
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location /api/ {{
      proxy_pass http://tandem;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-origin-verify "{secret}";
      proxy_connect_timeout {ct}s;
      proxy_read_timeout {rt}s;
      proxy_next_upstream error timeout http_500 http_502 http_503 http_504;
      proxy_next_upstream_tries 2;
    }}
  }}
}}
"#,
        east = stack.regions[PRIMARY].trim_start_matches("http://"),
        west = stack.regions[SECONDARY].trim_start_matches("http://"),
        secret = stack.secret,
        ct = edge.connection_timeout,
        rt = edge.origin_read_timeout,
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx (apt-get install nginx)")?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Nginx {
                child,
                url: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bail!("nginx did not start")
}

/// Edge vs nginx: throughput healthy and with the primary stopped, failover cost, memory.
pub async fn edge_vs_nginx(args: &BenchArgs) -> anyhow::Result<()> {
    let stack = start(&args.edge, &[]).await?;
    let nginx = start_nginx(&stack, &args.edge)?;
    let http = reqwest::Client::new();
    let data = Data::from_iter([("x".to_owned(), 1.into())]);
    stack.items(http.clone()).put("tp", &data, None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let regions = stack.region_pids().await?;
    println!(
        "\n## Edge vs nginx: GET through each, wrk -t2 -c{} for {} s, {ROUNDS} rounds taken in turns",
        args.concurrency, args.throughput_secs
    );
    println!(
        "{:<10} {:<8} {:>6} {:>10} {:>9} {:>9} {:>7}   CPU µs per request: proxy user + system, regions",
        "proxy", "primary", "round", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let nginx_pids: Vec<u32> = std::iter::once(nginx.child.id())
        .chain(children(nginx.child.id()))
        .collect();
    for state in ["healthy", "stopped"] {
        if state == "stopped" {
            control(&stack)
                .set_region(PRIMARY, RegionState::Stopped)
                .await?;
        }
        let (mut rps, mut p99, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        // The regions as they are now (the primary has a new process after a restart).
        let region_pids: Vec<u32> = stack
            .region_pids()
            .await?
            .into_iter()
            .map(|r| r.1)
            .collect();
        for round in 1..=ROUNDS {
            let run = |name: &str, base: &str, proxy: &[u32]| -> anyhow::Result<(Wrk, Cpu)> {
                let (p0, r0) = (cpu_ticks(proxy), cpu_ticks(&region_pids));
                let w = wrk(
                    &format!("{base}{}", path::item("tp")),
                    args.throughput_secs,
                    args.concurrency,
                )?;
                let (user, system) = per_request(p0, cpu_ticks(proxy), w.requests);
                let regions = per_request(r0, cpu_ticks(&region_pids), w.requests);
                let cpu = Cpu {
                    user,
                    system,
                    regions: regions.0 + regions.1,
                };
                println!(
                    "{name:<10} {state:<8} {round:>6} {:>10.0} {:>9.2} {:>9.2} {:>7}   {:.1} + {:.1}, {:.1}",
                    w.rps, w.p50_ms, w.p99_ms, w.errors, cpu.user, cpu.system, cpu.regions
                );
                Ok((w, cpu))
            };
            let edge = run("edge", &stack.edge, &[stack.pid()])?;
            let nginx = run("nginx", &nginx.url, &nginx_pids)?;
            rps.push((edge.0.rps, nginx.0.rps));
            p99.push((edge.0.p99_ms, nginx.0.p99_ms));
            cpu.push((edge.1, nginx.1));
        }
        summarize(state, &rps, &p99);
        summarize_cpu(state, &cpu);
    }
    control(&stack).set_region(PRIMARY, RegionState::Up).await?;

    println!("\n## Peak memory (VmHWM) after the runs above");
    let nginx_rss: f64 = std::iter::once(nginx.child.id())
        .chain(children(nginx.child.id()))
        .map(|pid| rss(pid).peak)
        .filter(|mib| !mib.is_nan())
        .sum();
    println!(
        "edge (tandem up: edge + control + supervisor): {:.1} MiB",
        rss(stack.pid()).peak
    );
    for (name, pid) in &regions {
        let peak = rss(*pid).peak;
        if !peak.is_nan() {
            println!(
                "region process {name}: {peak:.1} MiB (us-east-1 was restarted after the stopped run)"
            );
        }
    }
    println!("nginx (master + workers): {nginx_rss:.1} MiB");

    println!(
        "\n## Failover added latency, edge vs nginx (GET p50 of {} requests minus healthy p50)",
        args.failover_samples
    );
    println!(
        "{:<22} {:>14} {:>14}",
        "primary fault", "edge added ms", "nginx added ms"
    );
    let edge_rows = failover_rows(&stack, &http, args, &stack.edge).await?;
    let nginx_rows = failover_rows(&stack, &http, args, &nginx.url).await?;
    for ((name, e), (_, n)) in edge_rows.iter().zip(nginx_rows.iter()) {
        println!("{name:<22} {:>14} {:>14}", added_cell(e), added_cell(n));
    }
    Ok(())
}

#[derive(Default)]
struct FakeRuntime {
    served: bool,
    responded: Option<Instant>,
    response: Option<String>,
    error: Option<String>,
}

async fn next(State(rt): State<Arc<Mutex<FakeRuntime>>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let first = {
        let mut g = rt.lock().await;
        !std::mem::replace(&mut g.served, true)
    };
    if !first {
        // One invocation per process: the next poll waits until the process is killed.
        std::future::pending::<()>().await;
    }
    let mut event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/health", "rawQueryString": "",
        "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc", "http": {"method": "GET", "path": "/api/health", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"},
            "requestId": "r1", "routeKey": "$default", "stage": "$default", "time": "27/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    // From CloudFront, as on AWS: the origin secret the stand-in's runtime secret holds.
    event["headers"][tandem_shared::headers::ORIGIN_VERIFY] = json!(BENCH_ORIGIN_SECRET);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or(0);
    (
        [
            ("lambda-runtime-aws-request-id", "bench-1".to_owned()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_owned(),
            ),
        ],
        axum::Json(event),
    )
        .into_response()
}

async fn respond(State(rt): State<Arc<Mutex<FakeRuntime>>>, body: String) -> &'static str {
    let mut g = rt.lock().await;
    g.responded = Some(Instant::now());
    g.response = Some(body);
    "{}"
}

async fn fail(State(rt): State<Arc<Mutex<FakeRuntime>>>, body: String) -> &'static str {
    rt.lock().await.error = Some(body);
    "{}"
}

/// Spawns `bin` against a fake Runtime API; returns (ms to first response, peak RSS MiB, body).
async fn cold_start(bin: &Path, env: &[(&str, String)]) -> anyhow::Result<(f64, f64, String)> {
    let rt = Arc::new(Mutex::new(FakeRuntime::default()));
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
        .route("/2018-06-01/runtime/init/error", post(fail))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().unwrap_or(0);
    let deadline = started + Duration::from_secs(20);
    let mut peak = 0.0f64;
    loop {
        peak = peak.max(rss(pid).peak);
        let g = rt.lock().await;
        if let Some(at) = g.responded {
            let body = g.response.clone().unwrap_or_default();
            drop(g);
            peak = peak.max(rss(pid).peak);
            let _ = child.kill().await;
            server.abort();
            return Ok((
                at.duration_since(started).as_secs_f64() * 1000.0,
                peak,
                body,
            ));
        }
        if let Some(err) = &g.error {
            bail!("{} reported an error: {err}", bin.display());
        }
        drop(g);
        if Instant::now() > deadline {
            bail!(
                "{} did not answer its first invocation within 20 s",
                bin.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The stand-in's origin secret (in its runtime secret on moto, and on its one request).
const BENCH_ORIGIN_SECRET: &str = "bench-origin-secret";

/// Lambda init stand-in: `tandem-api` (Lambda mode on moto) next to a hello world.
pub async fn lambda_init(bin_dir: &Path, moto: &Moto, runs: usize) -> anyhow::Result<()> {
    println!(
        "\n## Lambda init stand-in: spawn to first response through a local Runtime API ({runs} runs each)"
    );
    let config = moto.sdk_config("us-east-1").await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let _ = dynamo
        .create_table()
        .table_name("bench-items")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await;
    // The runtime secret, which the function reads at init on AWS (its stack always sets
    // TANDEM_SECRET_ID).
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let _ = secrets
        .create_secret()
        .name("bench/secrets")
        .secret_string(
            json!({"admin_token": "bench-admin", "origin_secret": BENCH_ORIGIN_SECRET}).to_string(),
        )
        .send()
        .await;
    let tandem_env = vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("TABLE_NAME", "bench-items".to_owned()),
        ("TANDEM_SECRET_ID", "bench/secrets".to_owned()),
    ];
    println!(
        "{:<34} {:>12} {:>12} {:>14}",
        "binary", "p50 init ms", "max init ms", "peak RSS MiB"
    );
    let mut p50s = Vec::new();
    for (name, bin, env) in [
        (
            "hello-world lambda_http",
            bin_dir.join("examples/hello_lambda"),
            vec![("AWS_REGION", "us-east-1".to_owned())],
        ),
        (
            "tandem-api (DynamoDB on moto)",
            bin_dir.join("tandem-api"),
            tandem_env,
        ),
    ] {
        let mut times = Vec::new();
        let mut most = 0.0f64;
        for _ in 0..runs {
            let (ms, peak, body) = cold_start(&bin, &env).await?;
            // A 200, not any response: a refused request (403 without the origin secret) or a
            // failed store call would time something else than a working start.
            if !body.contains(r#""statusCode":200"#) {
                bail!("{name} did not answer its request with a 200: {body}");
            }
            times.push(ms);
            most = most.max(peak);
        }
        let p50 = median(times.iter().copied());
        let max = times.iter().copied().fold(f64::NAN, f64::max);
        println!("{name:<34} {p50:>12.1} {max:>12.1} {most:>14.1}");
        p50s.push(p50);
    }
    // The round trip the function cannot start without: what moto takes to answer the secret
    // read on a fresh connection, as a starting process makes it.
    let mut reads = Vec::new();
    for _ in 0..runs {
        let config = secrets
            .config()
            .to_builder()
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let fresh = aws_sdk_secretsmanager::Client::from_conf(config);
        let started = Instant::now();
        fresh
            .get_secret_value()
            .secret_id("bench/secrets")
            .send()
            .await?;
        reads.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "moto's answer to the init's secret read, fresh connection, p50 of {runs}: {:.1} ms (the goal, 2x the hello world, is {:.1} ms for the whole start)",
        median(reads),
        2.0 * p50s[0]
    );
    Row::new(
        "Lambda init stand-in (spawn to first 200), p50",
        format!("{:.1} ms", p50s[1]),
        format!("hello-world lambda_http {:.1} ms", p50s[0]),
        Some(p50s[1] / p50s[0]),
        Goal::AtMost(2.0),
    )
    .record();
    Ok(())
}

/// Console wasm + js after brotli, from a built `frontend/dist`.
pub fn console_size(dist: &Path) -> anyhow::Result<()> {
    println!("\n## Console size after brotli ({})", dist.display());
    let mut total = 0usize;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dist)
        .with_context(|| format!("{} (build the console first)", dist.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("wasm" | "js")))
    {
        let out = Command::new("brotli")
            .arg("-c")
            .arg("-q")
            .arg("11")
            .arg(path)
            .output()
            .context("running brotli (apt-get install brotli)")?;
        let raw = std::fs::metadata(path)?.len();
        println!(
            "{:<48} {:>9} B raw {:>9} B brotli",
            path.file_name().unwrap_or_default().to_string_lossy(),
            raw,
            out.stdout.len()
        );
        total += out.stdout.len();
    }
    println!(
        "wasm + js after brotli: {total} B ({:.1} KB; the local edge serves the .br files `cargo xtask` writes, which are these bytes; the budget is checked by `cargo xtask test`)",
        total as f64 / 1024.0
    );
    Row::new(
        "Console wasm + js as served (brotli 11; 1 KB = 1,000 B, as the budget counts)",
        format!("{:.1} KB", total as f64 / 1000.0),
        format!("{CONSOLE_GOAL_KB:.0} KB"),
        Some(total as f64 / 1000.0 / CONSOLE_GOAL_KB),
        Goal::AtMost(1.0),
    )
    .record();
    Ok(())
}

/// Rounds of edge-then-nginx per state: this machine's noise moves one 5 s run by ±20 %, and
/// taking the two in turns and the median of the per-round ratios cancels most of it.
const ROUNDS: usize = 3;

/// The median of each side and of the per-round ratios, printed and recorded.
fn summarize(state: &str, rps: &[(f64, f64)], p99: &[(f64, f64)]) {
    let side =
        |v: &[(f64, f64)], edge: bool| median(v.iter().map(|p| if edge { p.0 } else { p.1 }));
    let ratio = |v: &[(f64, f64)]| median(v.iter().map(|p| p.0 / p.1));
    let (rps_ratio, p99_ratio) = (ratio(rps), ratio(p99));
    println!(
        "ratio edge/nginx, {state} (median of {} rounds): throughput {rps_ratio:.2}, p99 {p99_ratio:.2}",
        rps.len()
    );
    // Issue 13's goals: ahead of nginx when healthy, level with it when the primary refuses.
    let (rps_goal, p99_goal) = if state == "healthy" {
        (1.1, 1.0)
    } else {
        (1.0, 1.0)
    };
    Row::new(
        format!("Edge vs nginx, GET throughput, primary {state}"),
        format!("{} req/s", thousands(side(rps, true))),
        format!("nginx {} req/s", thousands(side(rps, false))),
        Some(rps_ratio),
        Goal::AtLeast(rps_goal),
    )
    .record();
    Row::new(
        format!("Edge vs nginx, GET p99, primary {state}"),
        format!("{:.2} ms", side(p99, true)),
        format!("nginx {:.2} ms", side(p99, false)),
        Some(p99_ratio),
        Goal::AtMost(p99_goal),
    )
    .record();
}

/// CPU microseconds one request cost: the proxy's user and system time, and the regions'.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    user: f64,
    system: f64,
    regions: f64,
}

/// Where each proxy's CPU goes per request (medians over the rounds). With everything on the
/// same cores, throughput follows the whole path's CPU per request, and the proxy's system
/// time (the kernel's TCP work for one request in and one out, the same system calls for both
/// proxies) is a floor no user-space work can go under.
fn summarize_cpu(state: &str, cpu: &[(Cpu, Cpu)]) {
    let of = |f: fn(&(Cpu, Cpu)) -> f64| median(cpu.iter().map(f));
    println!(
        "CPU µs per request, {state} (medians): edge user {:.1} + system {:.1}, nginx user {:.1} + system {:.1}; regions {:.1} behind the edge, {:.1} behind nginx",
        of(|c| c.0.user),
        of(|c| c.0.system),
        of(|c| c.1.user),
        of(|c| c.1.system),
        of(|c| c.0.regions),
        of(|c| c.1.regions),
    );
}

/// Issue 13's goal for the console as served.
const CONSOLE_GOAL_KB: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 5s test @ http://127.0.0.1:1/api/items/tp\n  2 threads and 32 connections\n  Latency Distribution\n     50%    1.20ms\n     75%    2.00ms\n     90%  850.00us\n     99%    1.10s\n  1000 requests in 5.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\n";
        let w = parse_wrk(out);
        assert_eq!(w.rps, 12345.67);
        assert_eq!(w.p50_ms, 1.2);
        assert_eq!(w.p99_ms, 1100.0);
        assert_eq!(w.errors, 7);
        assert_eq!(w.requests, 1000);
    }

    #[test]
    fn reads_cpu_times_after_a_command_name_with_spaces() {
        let stat =
            "4242 (tandem (up) x) S 1 4242 4242 0 -1 4194560 2311 0 0 0 731 52 0 0 20 0 3 0 1\n";
        assert_eq!(stat_times(stat), Some((731, 52)));
        assert_eq!(stat_times("garbage"), None);
    }
}
