//! The fault and the active region during a drill: the fault injected and cleared on time (a
//! lost disk: the member stopped, its data directory deleted, started again at the heal), the
//! active region moved by the drill (`--switch manual`) or seen moved by the stack's health
//! watcher (`--switch auto`), and the failback once the region is healthy again.

use super::run::Drill;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_shared::control::Outage;
use tandem_shared::drill::SwitchMode;
use tandem_shared::fault::MAX_DURATION_S;
use tandem_shared::sync::lock;
use tokio::task::JoinHandle;

/// An admin fault also clears itself this long after the planned heal, so that a drill stopped
/// half-way (Ctrl-C) does not leave the region broken.
const FAULT_GRACE_S: u64 = 30;
/// How often `--switch auto` asks the control API for the active region during the outage.
const SWITCH_POLL: Duration = Duration::from_millis(50);
/// How long the drill waits, after the heal, for the region to answer its health check before
/// failing back (it fails back anyway then, so that the stack ends as it started).
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// One health check's limit, and the pause between two.
const HEALTH_PROBE: Duration = Duration::from_millis(500);

impl Drill {
    /// In the background: injects `outage` into the region at `fault_ms` (and, with `--switch
    /// manual`, makes the other region active) and clears it at `heal_ms`; then, when the active
    /// region moved, fails back once the region is healthy. Each step's error fails the drill,
    /// but the later steps still run (a failed inject still heals and fails back).
    pub(super) fn spawn_outage(
        self: &Arc<Self>,
        outage: Outage,
        outage_s: u64,
    ) -> JoinHandle<anyhow::Result<()>> {
        let drill = Arc::clone(self);
        let expiry = Some(outage_s + FAULT_GRACE_S).filter(|s| *s <= MAX_DURATION_S);
        tokio::spawn(async move {
            let region = drill.region.as_str();
            drill.sleep_until(drill.fault_ms).await;
            let injected = drill.control.inject(region, outage, expiry).await;
            let mut result = injected.with_context(|| format!("injecting {outage} into {region}"));
            // The member has stopped when the control API answers: its files are closed.
            if outage.loses_disk() && result.is_ok() {
                result = drill.lose_disk().await;
            }
            if drill.switch == SwitchMode::Manual {
                result = result.and(drill.switch_over().await);
            }
            drill.sleep_until(drill.heal_ms).await;
            let healed = drill.control.clear(region, outage).await;
            result = result.and(healed.with_context(|| format!("clearing {outage} from {region}")));
            if drill.switch != SwitchMode::None {
                result = result.and(drill.fail_back().await);
            }
            result
        })
    }

    /// `--fault disk-lost`, once the member has stopped: deletes its data directory, checks that
    /// it is gone, and notes it. At the heal the member starts with nothing (contract §10.3: in
    /// the strong mode it rejoins the log under a new node id; in the eventual mode it copies
    /// its peer).
    async fn lose_disk(&self) -> anyhow::Result<()> {
        let dir = &self.region_dir;
        tokio::fs::remove_dir_all(dir)
            .await
            .with_context(|| format!("deleting {}", dir.display()))?;
        if tokio::fs::try_exists(dir).await.unwrap_or(true) {
            anyhow::bail!("{} is still there after it was deleted", dir.display());
        }
        self.note(format!(
            "{}: disk lost: {} deleted while it was stopped; it started again empty at the heal",
            self.region,
            dir.display()
        ));
        Ok(())
    }

    /// `--switch manual`: makes the other region the active one, and notes when.
    async fn switch_over(&self) -> anyhow::Result<()> {
        let other = self.other.as_str();
        self.control
            .set_active_region(Some(other))
            .await
            .with_context(|| format!("making {other} the active region"))?;
        *lock(&self.switch_ms) = Some(self.now_ms());
        self.note(format!(
            "the drill made {other} the active region right after the fault"
        ));
        Ok(())
    }

    /// `--switch auto`: in the background, asks the control API for the active region every
    /// [`SWITCH_POLL`] from the fault to the heal, until it is seen moved ([`Drill::saw_active`];
    /// the `x-edge-active` of the traffic's answers may show it first).
    pub(super) fn spawn_switch_watch(self: &Arc<Self>) -> JoinHandle<()> {
        let drill = Arc::clone(self);
        tokio::spawn(async move {
            drill.sleep_until(drill.fault_ms).await;
            while drill.now_ms() < drill.heal_ms && !drill.switched() {
                if let Ok(active) = drill.control.active_region().await {
                    drill.saw_active(active.region.as_deref(), drill.now_ms());
                }
                tokio::time::sleep(SWITCH_POLL).await;
            }
            if !drill.switched() {
                drill.note(format!(
                    "the active region did not move during the outage: is the stack running \
                     with `tandem up --auto-failover`, and is {} the region it serves from?",
                    drill.region
                ));
            }
        })
    }

    /// After the heal, with a switch: waits (at most [`HEALTHY_TIMEOUT`]) for the region to
    /// answer its health check, then clears the active region when it is set, so that the
    /// stack ends as it started; notes what it did.
    async fn fail_back(&self) -> anyhow::Result<()> {
        let region = self.region.as_str();
        if !self.until_healthy(HEALTHY_TIMEOUT).await {
            self.note(format!(
                "{region} was still unhealthy {} s after the heal; failing back anyway",
                HEALTHY_TIMEOUT.as_secs()
            ));
        }
        let active = self.control.active_region().await;
        let active = active.context("reading the active region after the heal")?;
        let Some(was) = active.region else {
            self.note("after the heal no active region was set: nothing to fail back".into());
            return Ok(());
        };
        self.control
            .set_active_region(None)
            .await
            .context("clearing the active region after the heal (run `tandem failback`)")?;
        *lock(&self.failback_ms) = Some(self.now_ms());
        self.note(format!(
            "failed back after the heal: the active region ({was}) is cleared, /api/* goes to \
             the primary first again, as before the drill"
        ));
        Ok(())
    }

    /// Whether the region answers its health check through the edge within `limit`.
    async fn until_healthy(&self, limit: Duration) -> bool {
        let url = format!("{}/region/{}/api/health", self.endpoint, self.region);
        let deadline = Instant::now() + limit;
        loop {
            let probe = self.http.get(&url).timeout(HEALTH_PROBE).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(HEALTH_PROBE).await;
        }
    }
}
