//! A process's resident memory, as Linux reports it in `/proc/<pid>/status`: what the bench's
//! memory figures and the tests that bound a request's memory read.

/// Resident memory of one process, in MiB: `now` (VmRSS) and the `peak` since it started or
/// since [`reset_peak`] (VmHWM). NaN where the kernel did not say (no such process, not Linux).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rss {
    pub now: f64,
    pub peak: f64,
}

/// The resident memory of `pid` (see [`Rss`]).
pub fn rss(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Rss {
        now: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// Resets a process's peak to its current resident memory (Linux: `5` into `clear_refs`), so
/// the next [`rss`] peak is the peak of what follows. Best effort: without it the peak is the
/// process's lifetime peak, which only overstates.
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size_and_a_peak_at_least_as_large() {
        let own = rss(std::process::id());
        assert!(own.now > 0.0, "{own:?}");
        assert!(own.peak >= own.now, "{own:?}");
    }

    #[test]
    fn a_process_that_does_not_exist_reads_as_nan() {
        // Above the kernel's largest pid (4,194,304).
        let none = rss(u32::MAX);
        assert!(none.now.is_nan() && none.peak.is_nan(), "{none:?}");
    }
}
