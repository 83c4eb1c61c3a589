//! The `tandem` command's own parts; the local stack is [`tandem_local`], AWS is [`tandem_aws`].
//!
//! Layout:
//! - [`fault`]: `tandem fault` and `tandem heal`, through any edge, local or CloudFront.
//! - [`failover`]: `tandem failover --to <region>` and `tandem failback`, the active region.
//! - [`watch`]: `tandem watch`, the health watcher against a stack's control API or, on AWS,
//!   the edge's KeyValueStore.
//! - [`drill`]: `tandem drill`, an outage drill with client-side RTO/RPO figures and reports.
//! - [`chaos`]: `tandem chaos`, randomized faults with a checker that every acknowledged write
//!   survives and every region converges.
//! - [`bench`]: `tandem bench`, figures measured on a stack it starts itself;
//!   [`bench::compare`] adds nginx, Lambda init and console size next to them;
//!   [`bench::recovery`] a backlog's catch-up and a lost disk's recovery; [`bench::attacks`]
//!   what the attacks of issue 24 cost at full size.

pub mod bench;
pub mod chaos;
pub mod drill;
pub mod failover;
pub mod fault;
pub mod watch;
