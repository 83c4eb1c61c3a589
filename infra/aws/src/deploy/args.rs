//! The flags of `tandem deploy` and `tandem destroy` (the names they share are
//! [`crate::names::StackArgs`]), and the checks that need no AWS.

use crate::names::{DEFAULT_WITNESS_REGION, StackArgs};
use anyhow::bail;
use std::path::PathBuf;
use tandem_shared::Consistency;

/// `tandem deploy` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Print the plan (stacks, regions, parameters, files to upload) and stop: nothing is
    /// built and no AWS API is called.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy this zip (an executable named bootstrap at its root) instead of building one
    /// with `cargo lambda build`.
    #[arg(long)]
    pub lambda_zip: Option<PathBuf>,
    /// The built console to upload (must hold index.html).
    #[arg(long, default_value = "frontend/dist")]
    pub console_dir: PathBuf,
    /// Read data.yaml, region.yaml and edge.yaml from this directory instead of the copies
    /// built into tandem.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// The table's consistency mode (contract §10), fixed when the data stack is created:
    /// `strong` creates a multi-Region strongly consistent (MRSC) global table with a witness
    /// in --witness-region. Deploy refuses to change the mode of an existing table.
    #[arg(long, value_enum, default_value_t = Consistency::Eventual)]
    pub consistency: Consistency,
    /// With --consistency strong: the MRSC witness Region, in the same Region set as
    /// --regions (US: us-east-1, us-east-2, us-west-2).
    #[arg(long, default_value = DEFAULT_WITNESS_REGION)]
    pub witness_region: String,
    /// Origins allowed to call the API from other web apps (the region stacks' CorsOrigins).
    #[arg(long, value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// The bad day: update only this region's stack and code (one of --regions), calling no
    /// AWS API in any other region (no STS, no data or edge stack, no console upload); the
    /// table and secret are found by their names. Run a full deploy once the other region is
    /// back.
    #[arg(long, conflicts_with = "auto_failover")]
    pub only_region: Option<String>,
    #[command(flatten)]
    pub ops: OpsArgs,
    #[command(flatten)]
    pub smoke: SmokeArgs,
    #[command(flatten)]
    pub watcher: WatcherDeployArgs,
}

/// Alarms, logs, throttling, a custom domain and WAF: template parameters, set on every deploy
/// (deploy is declarative: a flag left out gets the template's default).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Operations")]
pub struct OpsArgs {
    /// SNS topics the alarms notify, one per region (CloudWatch notifies a topic in the
    /// alarm's own region): each stack gets the one in its region; without one, its alarms
    /// exist with no action.
    #[arg(long, value_delimiter = ',')]
    pub alarm_topic_arn: Vec<String>,
    /// The function's log level (Lambda's ApplicationLogLevel; logs are JSON).
    #[arg(long, value_parser = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])]
    pub log_level: Option<String>,
    /// API Gateway stage throttle, requests per second per region. Its 429 is not failed over
    /// by CloudFront, and it applies before origin cloaking (see the README).
    #[arg(long)]
    pub throttle_rate: Option<u32>,
    /// API Gateway stage burst, requests per region.
    #[arg(long)]
    pub throttle_burst: Option<u32>,
    /// A custom domain for the distribution (you add its DNS record), with --certificate-arn.
    #[arg(long, requires = "certificate_arn")]
    pub domain_name: Option<String>,
    /// An ACM certificate in us-east-1 covering --domain-name.
    #[arg(long, requires = "domain_name")]
    pub certificate_arn: Option<String>,
    /// Create an AWS WAF web ACL on the distribution with a rate rule for /api/admin/*
    /// (the edge stack must be in us-east-1).
    #[arg(long)]
    pub waf: bool,
    /// Requests per 5 minutes per IP to /api/admin/* before WAF blocks (with --waf).
    #[arg(long, requires = "waf")]
    pub admin_rate_limit: Option<u32>,
    /// CloudFront's additional metrics (origin latency; billed per distribution) and their
    /// alarm.
    #[arg(long)]
    pub cloudfront_additional_metrics: bool,
}

impl OpsArgs {
    /// The topic of `--alarm-topic-arn` in `region`, if one is.
    pub(super) fn topic_for(&self, region: &str) -> Option<String> {
        self.alarm_topic_arn
            .iter()
            .find(|arn| sns_region(arn) == Some(region))
            .cloned()
    }

    /// Every topic is an SNS topic in one of the deployment's regions.
    pub(super) fn check(&self, regions: [&str; 2]) -> anyhow::Result<()> {
        for arn in &self.alarm_topic_arn {
            match sns_region(arn) {
                Some(region) if regions.contains(&region) => {}
                _ => bail!(
                    "--alarm-topic-arn {arn}: not an SNS topic ARN in {} or {}",
                    regions[0],
                    regions[1]
                ),
            }
        }
        Ok(())
    }
}

/// The region of an SNS topic ARN (`arn:<partition>:sns:<region>:<account>:<name>`).
fn sns_region(arn: &str) -> Option<&str> {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "sns", region, account, name]
            if !region.is_empty() && account.len() == 12 && !name.is_empty() =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// The checks deploy runs through the distribution at the end (`tandem status` runs them too).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Smoke checks")]
pub struct SmokeArgs {
    /// Check through this URL instead of https://<distribution domain> (a custom domain).
    #[arg(long)]
    pub smoke_endpoint: Option<String>,
    /// Seconds to keep retrying failed checks (a new distribution takes minutes everywhere).
    #[arg(long, default_value_t = 300)]
    pub smoke_wait: u64,
    /// Who carries /api/* (edge.yaml ApiFailoverMode) [default: unchanged; function when
    /// created].
    #[arg(long, value_enum)]
    pub api_failover_mode: Option<crate::smoke::Mode>,
    /// If /api/* fails the checks while both regions pass, switch it to the static origin
    /// group (ApiFailoverMode=origin-group) and check again.
    #[arg(long)]
    pub fallback_origin_group: bool,
    /// Skip the failover drill that follows the smoke checks (it makes the primary answer 503
    /// for --prove-fault-s seconds, and switches the active region to the secondary and back).
    #[arg(long)]
    pub no_prove: bool,
    #[command(flatten)]
    pub drill: crate::prove::DrillArgs,
}

/// `tandem deploy --auto-failover`: the health watcher as a Lambda function in the secondary
/// region (stack <prefix>-watcher, watcher.yaml), switching the active region on its own.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Automatic failover (docs/contract.md §6.3)")]
pub struct WatcherDeployArgs {
    /// Deploy (or update) the health watcher, run every minute in the secondary region.
    #[arg(long)]
    pub auto_failover: bool,
    /// The watcher's zip (the tandem-watcher binary named bootstrap at its root) instead of
    /// building it; required with --auto-failover and --lambda-zip.
    #[arg(long, requires = "auto_failover")]
    pub watcher_zip: Option<PathBuf>,
    /// Reserve one concurrent execution for the watcher (one invocation at a time). Off by
    /// default: new accounts often cannot spare any, and overlapping invocations are kept
    /// apart by the store's ETag anyway. Deploy reads the account's Lambda limits first and
    /// stops, before any change, if the reservation cannot fit.
    #[arg(long, requires = "auto_failover")]
    pub reserve_watcher_concurrency: bool,
    #[command(flatten)]
    pub rule: tandem_ops::watcher::WatchArgs,
}

/// `tandem destroy` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stacks: StackArgs,
    /// Also delete the data stack and the global table with every item in it (deletion
    /// protection is turned off first), and the secret.
    #[arg(long)]
    pub delete_data: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print what would be deleted and stop: no AWS API is called.
    #[arg(long)]
    pub dry_run: bool,
}

impl DeployArgs {
    /// With `--consistency strong`: the two regions and the witness form an MRSC table (three
    /// distinct Regions of one Region set), checked before any AWS call, the dry run's too.
    pub fn check_consistency(&self, regions: [&str; 2]) -> anyhow::Result<()> {
        if self.consistency == Consistency::Eventual {
            return Ok(());
        }
        let members = [regions[0], regions[1], self.witness_region.as_str()];
        if !tandem_shared::region::mrsc_members_ok(members) {
            bail!(
                "--consistency strong needs --regions and --witness-region to be three distinct \
                 Regions of one MRSC Region set ({}); got {}",
                tandem_shared::region::MRSC_REGION_SETS
                    .iter()
                    .map(|set| set.join(", "))
                    .collect::<Vec<_>>()
                    .join("; "),
                members.join(", ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_gets_the_alarm_topic_in_that_region() {
        let ops = OpsArgs {
            alarm_topic_arn: vec![
                "arn:aws:sns:us-east-1:123456789012:ops".into(),
                "arn:aws:sns:us-west-2:123456789012:ops-west".into(),
            ],
            ..OpsArgs::default()
        };
        assert!(ops.check(["us-east-1", "us-west-2"]).is_ok());
        assert_eq!(
            ops.topic_for("us-west-2").unwrap(),
            "arn:aws:sns:us-west-2:123456789012:ops-west"
        );
        assert_eq!(ops.topic_for("eu-west-1"), None);
        assert!(
            ops.check(["us-east-1", "eu-west-1"]).is_err(),
            "a topic in no deployed region"
        );
        let wrong = OpsArgs {
            alarm_topic_arn: vec!["arn:aws:sqs:us-east-1:123456789012:q".into()],
            ..OpsArgs::default()
        };
        assert!(wrong.check(["us-east-1", "us-west-2"]).is_err(), "not SNS");
    }
}
