//! What a deployment's parts are called: the flags that name them (`--regions`, `--prefix`,
//! `--table-name`, `--secret-name`), the stacks, buckets, table, secret and function they give,
//! and the CloudFormation parameters and outputs that more than one command reads or sets.
//!
//! deploy, destroy, status, rotate-secret and failover all find the same stacks by these names,
//! so they live here, in a module that uses nothing else from this crate: every command can
//! depend on it without depending on another command.

use anyhow::bail;
use std::sync::LazyLock;
use tandem_shared::region::{DEFAULT_REGIONS, is_valid_region};

/// The names deploy gives by default (the table, secret and function are named after
/// `--prefix`; these are the names for the default prefix). The templates declare the same
/// defaults, so that a stack created by hand (infra/aws/cloudformation/README.md) matches one
/// `tandem deploy` made.
pub const DEFAULT_PREFIX: &str = "tandem";
pub const DEFAULT_TABLE_NAME: &str = "tandem-items";
pub const DEFAULT_SECRET_NAME: &str = "tandem/secrets";
/// `--regions`' default in the flag's own syntax, from the regions the local stack runs too.
static DEFAULT_REGIONS_ARG: LazyLock<String> = LazyLock::new(|| DEFAULT_REGIONS.join(","));

/// Longest `--prefix`: the code bucket `<prefix>-code-<12-digit account>-<region>` must fit
/// S3's 63 characters with the longest region names (14).
pub const MAX_PREFIX_LEN: usize = 30;

/// The edge stack's outputs that the commands read: where the console goes (deploy uploads,
/// destroy empties), the distribution (deploy invalidates it, rotate-secret waits for it) and
/// its domain (the URL deploy prints and status checks, the endpoint failover verifies).
pub(crate) const CONSOLE_BUCKET: &str = "ConsoleBucketName";
pub(crate) const DISTRIBUTION_ID: &str = "DistributionId";
pub(crate) const DISTRIBUTION_DOMAIN: &str = "DistributionDomainName";
/// The edge stack's output naming the active region's store (contract §6.3): `tandem
/// failover`/`failback` and the watcher write it; deploy only reports it.
pub const KVS_ARN_OUTPUT: &str = "KeyValueStoreArn";

/// The edge stack's parameter that pins the secret version CloudFront sends: `tandem
/// rotate-secret` sets it, deploy keeps it.
pub const VERSION_PARAMETER: &str = "OriginSecretVersionId";
/// The edge stack's parameter that picks who carries `/api/*`: `--api-failover-mode` and
/// `--fallback-origin-group` set it, `tandem status` reads it.
pub const MODE_PARAMETER: &str = "ApiFailoverMode";
/// The data stack's parameter (and output) holding the table's consistency mode (contract
/// §10): deploy sets it on create and refuses to change it, the region stacks pass it on.
pub const CONSISTENCY_PARAMETER: &str = "Consistency";
/// The data stack's parameter naming the MRSC witness Region (with `--consistency strong`).
pub const WITNESS_PARAMETER: &str = "WitnessRegion";
/// The witness deploy picks unless told: the third Region of the US set with the default
/// regions (us-east-1, us-west-2), as the local stack's witness is.
pub const DEFAULT_WITNESS_REGION: &str = tandem_shared::region::WITNESS;
/// The edge stack's parameter holding the distribution's custom domain, its one alias
/// (`--domain-name`): `tandem failover`/`failback`/`status` accept it as `--endpoint`.
pub const DOMAIN_PARAMETER: &str = "DomainName";

/// A stack's place in the deploy order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Data,
    /// Index into the regions (0 = primary).
    Region(usize),
    Edge,
    /// The health watcher, in the secondary region (with `--auto-failover`).
    Watcher,
}

/// The edge stack's name for `--prefix` (`tandem failover` looks the store up there too).
pub fn edge_stack_name(prefix: &str) -> String {
    format!("{prefix}-edge")
}

/// Names and regions shared by deploy and destroy.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The two regions, primary first.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_REGIONS_ARG.as_str())]
    pub regions: Vec<String>,
    /// Stacks are <prefix>-data, <prefix>-region, <prefix>-edge, <prefix>-watcher; code
    /// buckets <prefix>-code-<account>-<region>; the function <prefix>-api. 1-30 characters.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Name of the DynamoDB global table [default: <prefix>-items].
    #[arg(long)]
    pub table_name: Option<String>,
    /// Name of the Secrets Manager secret holding admin_token and origin_secret
    /// [default: <prefix>/secrets].
    #[arg(long)]
    pub secret_name: Option<String>,
}

impl StackArgs {
    pub fn check(&self) -> anyhow::Result<(String, String)> {
        let [primary, secondary] = self.regions.as_slice() else {
            bail!(
                "--regions needs exactly two regions, primary first (got {})",
                self.regions.join(",")
            );
        };
        if primary == secondary {
            bail!("--regions: the primary and secondary regions must differ");
        }
        for r in [primary, secondary] {
            if !is_valid_region(r) {
                bail!("--regions: {r:?} is not an AWS region name (like us-east-1)");
            }
        }
        check_prefix(&self.prefix)?;
        Ok((primary.clone(), secondary.clone()))
    }

    /// The global table: `--table-name`, or named after the prefix.
    pub fn table(&self) -> String {
        self.table_name
            .clone()
            .unwrap_or_else(|| format!("{}-items", self.prefix))
    }

    /// The runtime secret: `--secret-name`, or named after the prefix.
    pub fn secret(&self) -> String {
        self.secret_name
            .clone()
            .unwrap_or_else(|| format!("{}/secrets", self.prefix))
    }

    /// The API function in each region (its log groups and alarms are named after it).
    pub fn function(&self) -> String {
        format!("{}-api", self.prefix)
    }

    pub fn stack(&self, role: Role) -> String {
        match role {
            Role::Data => format!("{}-data", self.prefix),
            Role::Region(_) => format!("{}-region", self.prefix),
            Role::Edge => edge_stack_name(&self.prefix),
            Role::Watcher => format!("{}-watcher", self.prefix),
        }
    }

    pub(crate) fn code_bucket(&self, account: &str, region: &str) -> String {
        format!("{}-code-{account}-{region}", self.prefix)
    }
}

/// `--prefix` names S3 buckets, functions and CloudFront resources: lowercase letters, digits
/// and '-', starting with a letter, at most [`MAX_PREFIX_LEN`].
fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !prefix.starts_with(|c: char| c.is_ascii_lowercase())
        || !prefix.chars().all(allowed)
        || prefix.ends_with('-')
        || prefix.len() > MAX_PREFIX_LEN
    {
        bail!(
            "--prefix {prefix:?}: 1-{MAX_PREFIX_LEN} lowercase letters, digits and '-', starting \
             with a letter and not ending with '-' (it names S3 buckets and functions)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_fits_every_name_it_makes() {
        for good in ["tandem", "a", "blue-2", &"a".repeat(MAX_PREFIX_LEN)] {
            assert!(check_prefix(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "x-",
            "Tandem",
            "t_a",
            "9lives",
            &"a".repeat(MAX_PREFIX_LEN + 1),
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        // The longest code bucket name still fits S3's 63 characters.
        let args = StackArgs {
            regions: vec!["ap-southeast-3".into(), "us-east-1".into()],
            prefix: "a".repeat(MAX_PREFIX_LEN),
            table_name: None,
            secret_name: None,
        };
        assert!(args.code_bucket("123456789012", "ap-southeast-3").len() <= 63);
    }
}
