//! The one random-number generator of the project's tools and tests: SplitMix64, small,
//! deterministic from its seed (so `tandem chaos --seed` replays a run), and fast. Not for
//! secrets: tokens, nonces and identities come from the operating system's generator (uuid v4).

/// A SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that gives the same numbers for the same seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// True with probability `p` (to 1/10,000).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.below(10_000) as f64) / 10_000.0 < p
    }
}

/// The `i`-th number of the sequence seeded with `seed`, without a generator: a well-spread
/// pick for request `i` (benches spread their reads over ids this way).
pub fn nth(seed: u64, i: u64) -> u64 {
    Rng::new(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_numbers_and_they_spread() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        // Every value of 0..10 comes up in a hundred draws.
        assert!((0..10).all(|v| xs.contains(&v)), "{xs:?}");
        assert_eq!(Rng::new(1).below(0), 0);
        let hits = (0..10_000).filter(|_| a.percent(30)).count();
        assert!((2_500..3_500).contains(&hits), "{hits}");
        assert_ne!(nth(1, 1), nth(1, 2));
    }
}
