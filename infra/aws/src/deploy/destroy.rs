//! `tandem destroy`: deploy in reverse. The watcher goes first, then the edge, both region
//! stacks and the code buckets. The data stack (global table and secret) is kept unless
//! `--delete-data`, because the table is the product's state; with it, deletion protection is
//! lifted replica by replica and the table is deleted after the stack (which retains it).

use super::args::DestroyArgs;
use super::template::built_in_resources;
use crate::names::{CONSOLE_BUCKET, Role, StackArgs};
use crate::sdk::{self, Aws};
use crate::stack::{self, Progress};
use anyhow::bail;
use std::io::IsTerminal as _;

/// `tandem destroy`.
pub async fn destroy(args: DestroyArgs) -> anyhow::Result<()> {
    let (primary, secondary) = args.stacks.check()?;
    println!("tandem destroy will:");
    for (i, step) in destroy_steps(&args, &primary, &secondary)
        .iter()
        .enumerate()
    {
        println!("{}. {step}", i + 1);
    }
    if args.dry_run {
        println!("(dry run: nothing was deleted, no AWS API was called)");
        return Ok(());
    }
    if !args.yes {
        confirm()?;
    }
    let teardown = Teardown::start(&args.stacks, primary, secondary).await?;
    teardown.delete_watcher().await?;
    teardown.delete_edge().await?;
    teardown.delete_regions().await?;
    teardown.delete_code_buckets().await?;
    if args.delete_data {
        teardown.delete_data().await?;
        println!("\nDestroyed everything, data included.");
    } else {
        let s = &args.stacks;
        println!(
            "\nDestroyed everything but the data: {} keeps table {} and secret {}. \
             `tandem destroy --delete-data` deletes them too.",
            s.stack(Role::Data),
            s.table(),
            s.secret()
        );
    }
    Ok(())
}

/// What destroy will do, in order: the list it prints before asking.
fn destroy_steps(args: &DestroyArgs, primary: &str, secondary: &str) -> Vec<String> {
    let s = &args.stacks;
    let data = if args.delete_data {
        format!(
            "turn off deletion protection of table {} in {primary} and {secondary}, delete {} ({primary}; its secret {} goes with it), then delete the table and every item in it",
            s.table(),
            s.stack(Role::Data),
            s.secret()
        )
    } else {
        format!(
            "keep {} ({primary}): table {} with its items, secret {} (pass --delete-data to delete them)",
            s.stack(Role::Data),
            s.table(),
            s.secret()
        )
    };
    vec![
        format!(
            "delete {} in {secondary}, if there is one (the health watcher of `tandem deploy --auto-failover`)",
            s.stack(Role::Watcher)
        ),
        format!(
            "empty the console bucket of {} ({primary}), then delete that stack (CloudFront distribution, bucket, functions, the active region's key value store)",
            s.stack(Role::Edge)
        ),
        format!(
            "delete {} in {primary} and in {secondary} (functions, HTTP APIs, roles, log groups)",
            s.stack(Role::Region(0))
        ),
        format!(
            "empty and delete the code buckets {} and {}",
            s.code_bucket("<account-id>", primary),
            s.code_bucket("<account-id>", secondary)
        ),
        data,
    ]
}

/// Asks on the terminal. Without one, no one can answer: refuse rather than assume a yes.
fn confirm() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not a terminal, so no one can confirm: pass --yes");
    }
    print!("Proceed? [y/N] ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("cancelled");
    }
    Ok(())
}

/// A destroy under way: the names, the regions, the account and the AWS clients.
struct Teardown<'a> {
    names: &'a StackArgs,
    primary: String,
    secondary: String,
    account: String,
    aws: Aws,
    progress: Progress,
}

impl<'a> Teardown<'a> {
    /// Loads the AWS configuration and finds the account, which names the code buckets.
    async fn start(
        names: &'a StackArgs,
        primary: String,
        secondary: String,
    ) -> anyhow::Result<Teardown<'a>> {
        let aws = Aws::load().await;
        let account = aws.account_id(&primary).await?;
        Ok(Teardown {
            names,
            primary,
            secondary,
            account,
            aws,
            progress: Progress::default(),
        })
    }

    /// The edge, its console bucket emptied first: CloudFormation cannot delete a bucket that
    /// holds anything, old versions included.
    async fn delete_edge(&self) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.primary);
        let name = self.names.stack(Role::Edge);
        let bucket = stack::describe(&cfn, &name)
            .await?
            .and_then(|stack| stack::outputs(&stack).remove(CONSOLE_BUCKET));
        if let Some(bucket) = bucket {
            let s3 = self.aws.s3(&self.primary);
            if sdk::bucket_exists(&s3, &bucket).await? {
                let n = sdk::empty_bucket(&s3, &bucket).await?;
                self.progress
                    .line(format!("emptied s3://{bucket} ({n} object versions)"));
            }
        }
        let resources = built_in_resources("edge.yaml")?;
        stack::delete(&cfn, &name, &self.primary, resources, &self.progress).await?;
        Ok(())
    }

    /// The health watcher first: it must not switch the active region while the rest goes.
    async fn delete_watcher(&self) -> anyhow::Result<()> {
        let cfn = self.aws.cloudformation(&self.secondary);
        let name = self.names.stack(Role::Watcher);
        let resources = built_in_resources("watcher.yaml")?;
        stack::delete(&cfn, &name, &self.secondary, resources, &self.progress).await?;
        Ok(())
    }

    /// Both region stacks at once: neither depends on the other.
    async fn delete_regions(&self) -> anyhow::Result<()> {
        let name = self.names.stack(Role::Region(0));
        let resources = built_in_resources("region.yaml")?;
        let primary = self.aws.cloudformation(&self.primary);
        let secondary = self.aws.cloudformation(&self.secondary);
        let progress = &self.progress;
        tokio::try_join!(
            stack::delete(&primary, &name, &self.primary, resources, progress),
            stack::delete(&secondary, &name, &self.secondary, resources, progress),
        )?;
        Ok(())
    }

    async fn delete_code_buckets(&self) -> anyhow::Result<()> {
        for region in [&self.primary, &self.secondary] {
            let bucket = self.names.code_bucket(&self.account, region);
            if sdk::delete_bucket(&self.aws.s3(region), &bucket).await? {
                self.progress.line(format!("deleted code bucket {bucket}"));
            }
        }
        Ok(())
    }

    /// The data stack and the global table, which the stack retains. DynamoDB refuses to delete
    /// a protected replica, so the protection goes first, in each region.
    async fn delete_data(&self) -> anyhow::Result<()> {
        let table = &self.names.table();
        for region in [&self.primary, &self.secondary] {
            if sdk::unprotect_table(&self.aws, region, table).await? {
                self.progress.line(format!(
                    "turned off deletion protection of {table} in {region}"
                ));
            }
        }
        let cfn = self.aws.cloudformation(&self.primary);
        let name = self.names.stack(Role::Data);
        let resources = built_in_resources("data.yaml")?;
        stack::delete(&cfn, &name, &self.primary, resources, &self.progress).await?;
        let deleted = sdk::delete_table(&self.aws, &self.primary, table).await?;
        for region in &deleted.replicas_removed {
            self.progress
                .line(format!("removed the {region} replica of {table}"));
        }
        if deleted.deleted {
            self.progress
                .line(format!("deleted table {table} in {}", self.primary));
        }
        Ok(())
    }
}
