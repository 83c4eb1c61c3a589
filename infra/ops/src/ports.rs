//! Picking ports for a local stack outside the kernel's ephemeral range.
//!
//! A region that is stopped and started again must get its port back. A port from the
//! ephemeral range (where `bind(0)` and every outgoing connection take theirs) can meanwhile be
//! the local end of some client connection, and then the restart fails with "address in use".
//! Ports below that range are only taken by listeners, so the stack's stay free for it.

use std::net::TcpListener;

/// `tandem up`'s edge port unless `--port` says otherwise (region N listens on this + N);
/// `cargo xtask dev` compiles this module in to know where to ask for the first answer.
pub const DEFAULT_EDGE_PORT: u16 = 8080;

/// The kernel's ephemeral port range (Linux), or the IANA one elsewhere.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((49152, 65535))
}

/// `count` consecutive free ports below the ephemeral range, for a stack's edge and regions.
pub fn free_block(count: u16) -> Option<u16> {
    let (low, _) = ephemeral_range();
    let floor = 10_000u16;
    let span = low.saturating_sub(floor).saturating_sub(count);
    if span == 0 {
        return None;
    }
    // Spread concurrent callers (parallel tests) with a seed that differs per process and call.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 20);
    let mut rng = tandem_shared::rng::Rng::new(seed);
    for _ in 0..500 {
        let base = floor + rng.below(u64::from(span)) as u16;
        if (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Some(base);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_free_and_below_the_ephemeral_range() {
        let base = free_block(3).expect("a free block");
        let (low, _) = ephemeral_range();
        assert!(
            base + 3 <= low,
            "{base} is in the ephemeral range starting at {low}"
        );
        for i in 0..3 {
            assert!(TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        }
    }
}
