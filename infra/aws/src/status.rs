//! `tandem status`: the smoke checks ([`crate::smoke`]) once, then the stored active region
//! beside the one `/api/*` is routed by and the region that served it, and with `--prove` the
//! failover drill ([`crate::prove`]).
//!
//! The stored value is read where it is kept: the edge's KeyValueStore (the edge stack names
//! it) for the distribution or an https:// endpoint, the control API for a local stack's edge
//! (with the admin token). The edge's side is a GET of `/api/health`, whose answer echoes the
//! value the edge routed by. They may disagree for as long as CloudFront takes to propagate a
//! change; status fails when they still disagree after `--confirm-within` seconds. A stored value
//! that cannot be read (no credentials, no token) is said, and not compared.

use crate::active::{self, Store};
use crate::names::{DISTRIBUTION_DOMAIN, MODE_PARAMETER, Role, StackArgs, edge_stack_name};
use crate::prove::{Drill, DrillArgs};
use crate::sdk::Aws;
use crate::smoke::{self, Mode, ORIGIN_GROUP_WARNING, advice, checks, throwaway_id};
use crate::stack;
use crate::switch::{Keeper, confirm};
use anyhow::{Context as _, anyhow, bail};
use std::collections::BTreeMap;
use std::time::Duration;
use tandem_ops::client::Target;

/// `tandem status` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Check through this URL (the distribution's custom domain, or a local stack's edge)
    /// instead of the distribution's domain from the edge stack. An https:// URL is checked
    /// against the edge stack's distribution and alias when the stack can be read.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Who carries /api/* [default: the edge stack's ApiFailoverMode, or function with
    /// --endpoint].
    #[arg(long, value_enum)]
    pub api_failover_mode: Option<Mode>,
    /// The admin token: a local stack's control API needs it to read the active region, and
    /// --prove to fault the primary [default on AWS: read from the runtime secret].
    #[arg(long, env = "TANDEM_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// After the checks, run the failover drill `tandem deploy` runs: the primary answers 503
    /// for --prove-fault-s seconds (writes through /api/* fail until the switch).
    #[arg(long)]
    pub prove: bool,
    #[command(flatten)]
    pub drill: DrillArgs,
}

/// Where status looks, and what it found of the stack.
struct Place {
    base: String,
    mode: Option<Mode>,
    /// Where the active region is kept, or why it cannot be read.
    keeper: Result<Keeper, String>,
    /// On AWS: the SDK, for the token and the region stacks.
    aws: Option<Aws>,
}

/// `tandem status`: the smoke checks, the active region compared, and `--prove`'s drill; a
/// failure when any of them fails.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let (primary, secondary) = args.stacks.check()?;
    let regions = [primary, secondary];
    let found = locate(&args).await?;
    let mode = args
        .api_failover_mode
        .or(found.mode)
        .unwrap_or(Mode::Function);
    let report = smoke::run(&found.base, checks(&regions, mode, &throwaway_id())).await;
    print!("{}", report.table());
    if mode == Mode::OriginGroup {
        println!("\n{ORIGIN_GROUP_WARNING}");
    }
    let mut failed: Vec<String> = advice(report.verdict(), mode).into_iter().collect();

    let within = Duration::from_secs(args.drill.confirm_within);
    match compare(&found, &regions, mode, within).await {
        Ok(line) => println!("\n{line}"),
        Err(problem) => {
            println!("\n{problem}");
            failed.push(
                "the stored active region and the one /api/* is routed by disagree: see above"
                    .to_owned(),
            );
        }
    }

    // Faulting a region of a deployment that already fails its checks proves nothing.
    if args.prove && !failed.is_empty() {
        println!("\nFailover drill: not run: the checks above failed");
        failed.push("--prove: the failover drill did not run".to_owned());
    } else if args.prove {
        let drill = drill(&args, &found, &regions, mode, within).await?;
        let done = drill.run(&|line| println!("{line}")).await?;
        print!("\n{}", done.table());
        if !done.passed() {
            failed.push(match &done.skipped {
                Some(why) => format!("the failover drill did not run: {why}"),
                None => "the failover drill failed: see the lines above".to_owned(),
            });
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => bail!("{}", failed.join("\n")),
    }
}

/// The base URL, the mode and the active region's keeper, for the flags.
async fn locate(args: &StatusArgs) -> anyhow::Result<Place> {
    let primary = args.stacks.regions.first().cloned().unwrap_or_default();
    match args.endpoint.as_deref() {
        // A local stack's edge: its control API keeps the value.
        Some(endpoint) if !endpoint.trim_start().starts_with("https://") => {
            let target = Target {
                endpoint: endpoint.to_owned(),
                token: args.token.clone(),
            };
            let keeper = target
                .client(Duration::from_secs(30))
                .map(Keeper::Local)
                .map_err(|e| format!("{e:#}"));
            Ok(Place {
                base: tandem_ops::confirm::base_url(endpoint),
                mode: None,
                keeper,
                aws: None,
            })
        }
        Some(endpoint) => {
            let aws = Aws::load().await;
            // The checks run through the URL whatever the stack says; the comparison needs the
            // stack, and an endpoint that is another distribution would compare the wrong one.
            let (mode, keeper) = match edge(&aws, &args.stacks, &primary, endpoint).await {
                Ok(found) => {
                    found.endpoint.map_err(|e| {
                        anyhow!("{e}: pass the --prefix and --regions it was deployed with")
                    })?;
                    (found.mode, found.store.map(|s| aws_keeper(&aws, s)))
                }
                Err(e) => (None, Err(format!("{e:#}"))),
            };
            Ok(Place {
                base: tandem_ops::confirm::base_url(endpoint),
                mode,
                keeper,
                aws: Some(aws),
            })
        }
        None => {
            let aws = Aws::load().await;
            let found = edge(&aws, &args.stacks, &primary, "").await?;
            Ok(Place {
                keeper: found.store.map(|s| aws_keeper(&aws, s)),
                base: found.base,
                mode: found.mode,
                aws: Some(aws),
            })
        }
    }
}

fn aws_keeper(aws: &Aws, store: Store) -> Keeper {
    Keeper::Aws {
        client: aws.keyvaluestore(),
        store,
    }
}

/// What status reads of the edge stack.
struct EdgeStack {
    /// `https://<distribution domain>`.
    base: String,
    mode: Option<Mode>,
    /// The active region's store, or why the stack names none.
    store: Result<Store, String>,
    /// Whether the endpoint given is this stack's distribution (its domain or its alias).
    endpoint: anyhow::Result<()>,
}

/// The edge stack's distribution, `/api/*` mode and store, with `endpoint` (`""`: none given)
/// checked against the distribution and its alias. An error: the stack could not be read.
async fn edge(
    aws: &Aws,
    stacks: &StackArgs,
    primary: &str,
    endpoint: &str,
) -> anyhow::Result<EdgeStack> {
    let name = edge_stack_name(&stacks.prefix);
    let stack = stack::describe(&aws.cloudformation(primary), &name)
        .await
        .with_context(|| format!("reading stack {name} in {primary}"))?
        .ok_or_else(|| anyhow!("no stack {name} in {primary}: deploy first, or pass --endpoint"))?;
    let outputs = stack::outputs(&stack);
    let domain = outputs
        .get(DISTRIBUTION_DOMAIN)
        .cloned()
        .ok_or_else(|| anyhow!("stack {name} has no output {DISTRIBUTION_DOMAIN}"))?;
    let parameters: BTreeMap<&str, &str> = stack
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?, p.parameter_value()?)))
        .collect();
    let place = format!("{name} ({primary})");
    let base = format!("https://{domain}");
    Ok(EdgeStack {
        mode: parameters
            .get(MODE_PARAMETER)
            .and_then(|value| Mode::parse(value)),
        endpoint: active::check_endpoint(&place, &outputs, &parameters, endpoint),
        store: active::store_of(&place, &outputs, &parameters, &base).map_err(|e| format!("{e:#}")),
        base,
    })
}

/// The stored active region beside the one `/api/*` is routed by: a line when they agree (or
/// cannot be compared), `Err` with the line when they still disagree after `within`.
async fn compare(
    found: &Place,
    regions: &[String; 2],
    mode: Mode,
    within: Duration,
) -> Result<String, String> {
    let base = &found.base;
    if mode == Mode::OriginGroup {
        return Ok(format!(
            "active region: not compared: ApiFailoverMode=origin-group runs no /api/* router at {base}"
        ));
    }
    let stored = match &found.keeper {
        Ok(keeper) => keeper.get().await.map_err(|e| format!("{e:#}")),
        Err(why) => Err(why.clone()),
    };
    let stored = match stored {
        Ok(stored) => stored,
        Err(why) => {
            let http = tandem_ops::client::http_client(Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            let seen = tandem_ops::confirm::look(&http, base).await;
            return Ok(format!(
                "active region: /api/* through {base}: {}; the stored value was not read ({why})",
                seen.describe()
            ));
        }
    };
    let name = stored.as_deref().unwrap_or("none (the primary)");
    let seen = confirm(base, stored.as_deref(), Some(&regions[0]), within)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let line = format!(
        "active region: stored {name}; /api/* through {base}: {}",
        seen.last.describe()
    );
    match seen.confirmed {
        true => Ok(format!(
            "{line}: they agree{}",
            match seen.looks {
                1 => String::new(),
                _ => format!(" (after {:.1} s)", seen.waited.as_secs_f64()),
            }
        )),
        // Routed by the stored value, answered by the other region: not a disagreement, a
        // region down (its smoke check says so too).
        false if seen.routed => Err(format!(
            "{line}: /api/* is routed by the stored value, but {} did not answer it (its \
             reads fail over): is it healthy?",
            stored.as_deref().unwrap_or(&regions[0])
        )),
        false => Err(format!(
            "{line}: they still disagree after {} s. {}",
            within.as_secs(),
            crate::switch::NOT_CONFIRMED_HINT
        )),
    }
}

/// The drill for `--prove`: the token (given, or the runtime secret's on AWS), the keeper,
/// and each region's own endpoint (the flag, the region stacks' outputs, or the local stack's
/// control API).
async fn drill(
    args: &StatusArgs,
    found: &Place,
    regions: &[String; 2],
    mode: Mode,
    within: Duration,
) -> anyhow::Result<Drill> {
    if mode == Mode::OriginGroup {
        bail!(
            "--prove: ApiFailoverMode=origin-group carries no writes on /api/* and has no active \
             region; the drill needs the function route"
        );
    }
    let keeper = match &found.keeper {
        Ok(keeper) => keeper.clone(),
        Err(why) => bail!("--prove needs the active region: {why}"),
    };
    let token = match (&args.token, &found.aws) {
        (Some(token), _) => token.clone(),
        (None, Some(aws)) => aws
            .admin_token(&regions[0], &args.stacks.secret())
            .await
            .context("reading the admin token (or pass --token)")?,
        // A local stack: the control API's client was made with it, from the flag or the URL.
        (None, None) => {
            Target {
                endpoint: args.endpoint.clone().unwrap_or_default(),
                token: None,
            }
            .split()?
            .1
        }
    };
    let mut known = Vec::new();
    match (&keeper, &found.aws) {
        (Keeper::Local(control), _) => {
            for region in control.regions().await?.regions {
                known.push((region.region, region.url));
            }
        }
        (Keeper::Aws { .. }, Some(aws)) => {
            for (i, region) in regions.iter().enumerate() {
                let name = args.stacks.stack(Role::Region(i));
                if let Ok(Some(stack)) = stack::describe(&aws.cloudformation(region), &name).await
                    && let Some(domain) = stack::outputs(&stack).get("ApiDomainName")
                {
                    known.push((region.clone(), format!("https://{domain}")));
                }
            }
        }
        (Keeper::Aws { .. }, None) => {}
    }
    Ok(Drill {
        base: found.base.clone(),
        regions: regions.clone(),
        token,
        keeper,
        origins: args.drill.origins(regions, &known),
        fault: Duration::from_secs(args.drill.prove_fault_s),
        within,
    })
}
