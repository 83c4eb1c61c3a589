//! Tandem's infrastructure: the `tandem` command and, under `cloudformation/`, the AWS templates.
//!
//! Layout:
//! - [`up`]: `tandem up`, the supervisor of the local two-region stack.
//! - [`region`]: `tandem region`, one local region process (the Lambda's router + replication).
//! - [`replication`]: global-table replication between local regions: signed pulls, LWW, lag,
//!   pause, resync after a lost disk, anti-entropy, compaction.
//! - [`verify`]: `tandem verify`, do all regions hold the same items?
//! - [`edge`]: the CloudFront-faithful reverse proxy and the console's static files.
//! - [`control`]: the local control API (`/_tandem/*`).
//! - [`bench`]: `tandem bench`, figures measured on a stack it starts itself;
//!   [`bench_compare`] adds nginx, Lambda init and console size next to them;
//!   [`bench_recovery`] a backlog's catch-up and a lost disk's recovery.
//! - [`chaos`]: `tandem chaos`, randomized faults with a checker that every acknowledged write
//!   survives and every region converges.
//! - [`drill`]: `tandem drill`, an outage drill with client-side RTO/RPO figures and reports.
//! - [`ports`]: ports for a local stack, outside the ephemeral range.
//! - [`settings`]: the edge's origin settings, with CloudFront's ranges and the deployed defaults.
//! - [`deploy`]: `tandem deploy` and `tandem destroy`, Tandem on AWS (with [`aws`] and
//!   [`aws_stack`]: SDK clients, bucket and table chores, CloudFormation with progress).
//! - [`fault`]: `tandem fault` and `tandem heal`, through any edge, local or CloudFront.

pub mod aws;
pub mod aws_stack;
pub mod bench;
pub mod bench_compare;
pub mod bench_recovery;
pub mod chaos;
pub mod control;
pub mod deploy;
pub mod drill;
pub mod edge;
pub mod fault;
pub mod ports;
pub mod region;
pub mod replication;
pub mod settings;
pub mod up;
pub mod verify;
