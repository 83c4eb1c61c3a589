//! Tandem on AWS: the CloudFormation templates (`cloudformation/`, built into the binary) and
//! the tooling that deploys them.
//!
//! Layout:
//! - [`active`]: the active region on AWS (`tandem failover`/`failback`): the edge's
//!   CloudFront KeyValueStore, written through its data-plane API.
//! - [`deploy`]: `tandem deploy` and `tandem destroy`: the plan, the stacks, the console upload.
//! - [`names`]: what a deployment's stacks and resources are called, and the CloudFormation
//!   parameters and outputs the commands share (every other module may use it; it uses none).
//! - [`rotate`]: `tandem rotate-secret`: a new origin secret, staged beside the old one, sent
//!   by the edge, then the old one retired.
//! - [`smoke`]: the smoke checks through the distribution (`tandem deploy`, `tandem status`).
//! - [`status`]: `tandem status`: the smoke checks, the stored active region beside the one
//!   `/api/*` is routed by, and with `--prove` the failover drill.
//! - [`switch`]: the active region where a stack keeps it (a local control API, or the edge's
//!   KeyValueStore), switched and confirmed through the edge (`tandem failover`/`failback`).
//! - [`prove`]: the failover drill through the edge that `tandem deploy` ends with.
//! - [`sdk`]: SDK clients, and the S3, CloudFront and DynamoDB chores around the stacks.
//! - [`stack`]: CloudFormation create/update/delete with progress.
//! - [`watcher`]: the health watcher as a scheduled Lambda function (binary `tandem-watcher`),
//!   switching the active region in the KeyValueStore.

pub mod active;
pub mod deploy;
pub mod names;
pub mod prove;
pub mod rotate;
pub mod sdk;
pub mod smoke;
pub mod stack;
pub mod status;
pub mod switch;
pub mod watcher;
