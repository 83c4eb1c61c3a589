//! The health watcher's rule (contract §6.3, automatic switching), without IO: fed one probe round
//! at a time, it says when to switch the active region away from a failing region and, when
//! asked to, when to fail back to the primary. The local stack (`tandem up --auto-failover`)
//! and the deployable watcher on AWS run this same rule.

/// How eager the watcher is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchRule {
    /// Consecutive failed probes of the active region before switching away from it.
    pub failures: u32,
    /// Consecutive healthy probes of the primary before switching back to it (`None`: only
    /// when an operator asks).
    pub failback_after: Option<u32>,
}

impl Default for WatchRule {
    fn default() -> Self {
        WatchRule {
            failures: 3,
            failback_after: None,
        }
    }
}

/// What the watcher decided after a round of probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make this region the active one.
    SwitchTo(String),
    /// Clear the active region (back to the primary).
    FailBack,
}

/// The watcher's memory between rounds.
#[derive(Debug, Clone, Default)]
pub struct Watcher {
    rule: WatchRule,
    failed: u32,
    primary_healthy: u32,
}

impl Watcher {
    pub fn new(rule: WatchRule) -> Watcher {
        Watcher {
            rule,
            ..Watcher::default()
        }
    }

    /// One round: `healthy[i]` says whether `regions[i]` (primary first) answered its health
    /// probe with a 2xx; `active` is the active region's value (`None`: the primary).
    pub fn observe(
        &mut self,
        regions: &[&str],
        healthy: &[bool],
        active: Option<&str>,
    ) -> Option<Decision> {
        let &primary = regions.first()?;
        let serving = active.filter(|a| regions.contains(a)).unwrap_or(primary);
        let is_healthy = |r: &str| {
            regions
                .iter()
                .position(|x| *x == r)
                .and_then(|i| healthy.get(i).copied())
                .unwrap_or(false)
        };
        self.primary_healthy = if is_healthy(primary) {
            self.primary_healthy.saturating_add(1)
        } else {
            0
        };
        if is_healthy(serving) {
            self.failed = 0;
            return self.failback(primary, serving);
        }
        self.failed = self.failed.saturating_add(1);
        if self.failed < self.rule.failures {
            return None;
        }
        // Switch only to a region that answers: moving to another dead region helps nobody.
        let target = regions
            .iter()
            .copied()
            .find(|r| *r != serving && is_healthy(r))?;
        self.failed = 0;
        Some(match target == primary && active.is_some() {
            true => Decision::FailBack,
            false => Decision::SwitchTo(target.to_owned()),
        })
    }

    fn failback(&mut self, primary: &str, serving: &str) -> Option<Decision> {
        let after = self.rule.failback_after?;
        (serving != primary && self.primary_healthy >= after).then(|| {
            self.primary_healthy = 0;
            Decision::FailBack
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

    #[test]
    fn switches_after_n_failures_of_the_active_region_only() {
        let mut w = Watcher::new(WatchRule::default());
        assert_eq!(w.observe(&REGIONS, &[false, true], None), None);
        assert_eq!(w.observe(&REGIONS, &[false, true], None), None);
        // A healthy answer in between starts the count again.
        assert_eq!(w.observe(&REGIONS, &[true, true], None), None);
        for _ in 0..2 {
            assert_eq!(w.observe(&REGIONS, &[false, true], None), None);
        }
        assert_eq!(
            w.observe(&REGIONS, &[false, true], None),
            Some(Decision::SwitchTo("us-west-2".into()))
        );
        // The secondary failing while the primary is active changes nothing.
        let mut w = Watcher::new(WatchRule::default());
        for _ in 0..5 {
            assert_eq!(w.observe(&REGIONS, &[true, false], None), None);
        }
    }

    #[test]
    fn never_switches_to_a_region_that_is_down_too() {
        let mut w = Watcher::new(WatchRule::default());
        for _ in 0..10 {
            assert_eq!(w.observe(&REGIONS, &[false, false], None), None);
        }
    }

    #[test]
    fn fails_back_only_when_asked_and_after_m_healthy_probes() {
        let active = Some("us-west-2");
        let mut manual = Watcher::new(WatchRule::default());
        for _ in 0..20 {
            assert_eq!(manual.observe(&REGIONS, &[true, true], active), None);
        }
        let mut auto = Watcher::new(WatchRule {
            failures: 3,
            failback_after: Some(2),
        });
        assert_eq!(auto.observe(&REGIONS, &[true, true], active), None);
        assert_eq!(
            auto.observe(&REGIONS, &[true, true], active),
            Some(Decision::FailBack)
        );
        // A switched-to secondary that dies goes back to a healthy primary at once (after N).
        let mut w = Watcher::new(WatchRule::default());
        for _ in 0..2 {
            assert_eq!(w.observe(&REGIONS, &[true, false], active), None);
        }
        assert_eq!(
            w.observe(&REGIONS, &[true, false], active),
            Some(Decision::FailBack)
        );
    }
}
