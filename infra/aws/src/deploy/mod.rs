//! `tandem deploy` and `tandem destroy`: Tandem on AWS with one command each.
//!
//! deploy: build the Lambda zip, then (with the caller's AWS credentials) upload it to a code
//! bucket in each region, create or update the stacks in order — data in the primary region,
//! the region stack in both regions at once, the edge — upload the console with its content
//! types and cache policy, invalidate `/index.html` (and any other name builds reuse, such as
//! `boot.js`), and print the console URL with the admin token read from the runtime secret.
//! `--dry-run` prints that plan and calls no AWS API.
//!
//! destroy: the reverse, keeping the data unless `--delete-data`.
//!
//! Layout:
//! - `args`: the flags of both commands.
//! - `plan`: what deploy will do, worked out and checked without AWS; `parameters` gives
//!   each stack's parameters, `template` reads the templates, `render` prints the plan for
//!   `--dry-run`.
//! - `lambda`: the functions' zips (built with cargo lambda, or given) and their keys.
//! - `console`: the console's files, their headers, and the paths to invalidate.
//! - `concurrency`: whether the watcher may reserve concurrency on this account.
//! - `run`: deploy itself, step by step.
//! - `destroy`: destroy itself.
//!
//! The names every command shares (the stacks, `--prefix`, the CloudFormation parameters and
//! outputs) are in [`crate::names`]; they are re-exported here, where deploy's users look.

mod args;
mod concurrency;
mod console;
mod destroy;
mod lambda;
mod parameters;
mod plan;
mod render;
mod run;
mod template;

pub use crate::names::{
    DEFAULT_PREFIX, DEFAULT_SECRET_NAME, DEFAULT_TABLE_NAME, MAX_PREFIX_LEN, Role, StackArgs,
    edge_stack_name,
};
pub use args::{DeployArgs, DestroyArgs, OpsArgs, SmokeArgs, WatcherDeployArgs};
pub use console::{
    ConsoleFile, IMMUTABLE, INDEX, NO_CACHE, cache_control, console_files, content_type,
    invalidation_paths, is_hashed,
};
pub use destroy::destroy;
pub use lambda::{Function, WATCHER_MAX_PROBE_INTERVAL_MS, Zip, check_zip, code_key};
pub use plan::{Plan, StackPlan, Value};
pub use run::run;
pub use template::Template;
pub(crate) use template::built_in_resources;
