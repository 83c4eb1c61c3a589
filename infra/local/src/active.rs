//! The active region of a local stack (contract §6.3): which region `/api/*` goes to first. The edge
//! reads it on every request; it is kept in the stack's data directory (written to a temporary
//! file, fsynced, renamed), so it survives a restart of `tandem up` as the KeyValueStore's value
//! survives on AWS.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use tandem_shared::control::WatcherStatus;
use tandem_shared::routing::ACTIVE_REGION_KEY;
use tandem_shared::sync::{lock, read, write};

/// The active region's value, and where it is kept.
#[derive(Debug)]
pub struct Active {
    path: PathBuf,
    regions: Vec<String>,
    value: RwLock<Option<String>>,
    /// Serialises switches, so that the file and the value agree, without making the edge's
    /// readers wait on a switch's fsync (a slow or stalled disk would stall every request).
    switching: Mutex<()>,
    /// The health watcher's last report, when the stack runs one.
    watcher: Mutex<Option<WatcherStatus>>,
}

/// Why a switch was refused.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("no region {0:?} in this stack")]
    UnknownRegion(String),
    #[error("saving the active region: {0:#}")]
    Io(anyhow::Error),
}

impl Active {
    /// The value kept in `data_dir`, for a stack of `regions`. A value naming no region of the
    /// stack (a stack restarted with other regions) is dropped with a warning: the edge then
    /// behaves as without one, as CloudFront's function does with an unknown value.
    pub fn load(data_dir: &Path, regions: &[String]) -> anyhow::Result<Active> {
        let path = data_dir.join(ACTIVE_REGION_KEY);
        let value = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().to_owned()).filter(|v| !v.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let value = value.filter(|v| {
            let known = regions.contains(v);
            if !known {
                tracing::warn!(value = %v, "ignoring an active region this stack does not have");
            }
            known
        });
        Ok(Active {
            path,
            regions: regions.to_vec(),
            value: RwLock::new(value),
            switching: Mutex::new(()),
            watcher: Mutex::new(None),
        })
    }

    /// The health watcher's last report (`None`: the stack runs no watcher).
    pub fn watcher(&self) -> Option<WatcherStatus> {
        lock(&self.watcher).clone()
    }

    /// Keeps the health watcher's report, for the control API and the console.
    pub fn report(&self, status: &WatcherStatus) {
        *lock(&self.watcher) = Some(status.clone());
    }

    /// The current value (`None`: the primary).
    pub fn get(&self) -> Option<String> {
        read(&self.value).clone()
    }

    /// Sets (`Some`) or clears (`None`) the value, durably, before it takes effect.
    pub fn set(&self, region: Option<&str>) -> Result<Option<String>, SwitchError> {
        if let Some(r) = region
            && !self.regions.iter().any(|known| known == r)
        {
            return Err(SwitchError::UnknownRegion(r.to_owned()));
        }
        let _switching = lock(&self.switching);
        self.save(region).map_err(SwitchError::Io)?;
        let now = region.map(str::to_owned);
        *write(&self.value) = now.clone();
        tracing::warn!(
            active = region.unwrap_or("(primary)"),
            "active region switched"
        );
        Ok(now)
    }

    fn save(&self, region: Option<&str>) -> anyhow::Result<()> {
        let Some(region) = region else {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => sync_dir(&self.path),
            };
        };
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(region.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)
    }
}

/// Makes a rename or removal in `path`'s directory durable.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions() -> Vec<String> {
        vec!["us-east-1".into(), "us-west-2".into()]
    }

    #[test]
    fn the_value_survives_a_restart_and_unknown_regions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let active = Active::load(dir.path(), &regions()).unwrap();
        assert_eq!(active.get(), None);
        active.set(Some("us-west-2")).unwrap();
        assert!(matches!(
            active.set(Some("eu-west-1")),
            Err(SwitchError::UnknownRegion(_))
        ));
        let again = Active::load(dir.path(), &regions()).unwrap();
        assert_eq!(again.get().as_deref(), Some("us-west-2"));
        again.set(None).unwrap();
        assert_eq!(Active::load(dir.path(), &regions()).unwrap().get(), None);
    }

    #[test]
    fn a_value_for_another_stack_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ACTIVE_REGION_KEY), "eu-west-1").unwrap();
        assert_eq!(Active::load(dir.path(), &regions()).unwrap().get(), None);
    }
}
