//! Figures computed one way everywhere: percentiles for the drill, the bench, replication lag
//! and the console.

/// The nearest-rank `p` percentile (`p` in `0.0..=1.0`) of `sorted`, which must be sorted
/// ascending: the smallest value with at least `p` of the values at or below it. `None` when
/// there are no values. The one way Tandem computes percentiles (drills, the bench, lag).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }
}
