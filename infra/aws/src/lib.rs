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
//! - [`sdk`]: SDK clients, and the S3, CloudFront and DynamoDB chores around the stacks.
//! - [`stack`]: CloudFormation create/update/delete with progress.
//! - [`watcher`]: the health watcher as a scheduled Lambda function (binary `tandem-watcher`),
//!   switching the active region in the KeyValueStore.

pub mod active;
pub mod deploy;
pub mod names;
pub mod rotate;
pub mod sdk;
pub mod smoke;
pub mod stack;
pub mod watcher;
