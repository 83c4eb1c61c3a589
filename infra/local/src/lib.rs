//! Tandem's local stack: two regions on a laptop, offline, that behave like the AWS deployment.
//! No AWS SDK crate is linked here (the regional API is used without its `aws` feature).
//!
//! Layout:
//! - [`commands`]: the stack's commands (`up`, `region`, `verify`), shared by the `tandem`
//!   binary (infra/cli) and this crate's own `tandem-local` binary.
//! - [`up`]: `tandem up`, the local two-region stack: the edge, the control API, the regions.
//! - [`supervisor`]: the region processes: started, proven, restarted when they die, stopped.
//! - [`region`]: `tandem region`, one local region process (the Lambda's router + replication).
//! - [`replication`]: global-table replication between local regions: signed pulls, LWW, lag,
//!   pause, resync after a lost disk, anti-entropy, compaction.
//! - [`consensus`]: the strong mode: a consensus log (openraft) between the two regions and a
//!   witness, and the store the regions' routers run on in that mode.
//! - [`verify`]: `tandem verify`, do all regions hold the same items?
//! - [`active`]: the active region (contract §6.3), kept durably in the stack's data directory.
//! - [`edge`]: the CloudFront-faithful reverse proxy and the console's static files.
//! - [`control`]: the local control API (`/_tandem/*`), typed by [`tandem_shared::control`].
//! - [`watcher`]: `tandem up --auto-failover`, the health watcher over the edge's own value.
//!
//! Its client, the stack launcher, the watcher's loop and the port plan are `tandem_ops`'s,
//! which the AWS watcher, the `tandem` command and the tests use without this crate.

pub mod active;
pub mod commands;
pub mod consensus;
pub mod control;
pub mod edge;
pub mod region;
pub mod replication;
pub mod supervisor;
pub mod up;
pub mod verify;
pub mod watcher;
