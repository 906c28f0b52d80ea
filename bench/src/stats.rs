//! Latency samples and their percentiles.
//!
//! Samples are microseconds, kept whole and sorted once: a run collects at most a few hundred
//! thousand of them, so exact nearest-rank percentiles cost less than a histogram's set-up.

/// Percentiles of one set of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples there were.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest sample.
    pub max: u64,
}

impl Summary {
    /// Summarises `samples` (any order); `None` when there are none.
    pub fn of(mut samples: Vec<u64>) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Summary {
            count: samples.len(),
            p50: percentile(&samples, 50.0),
            p99: percentile(&samples, 99.0),
            p999: percentile(&samples, 99.9),
            max: samples[samples.len() - 1],
        })
    }
}

/// The nearest-rank percentile `p` (0–100] of `sorted`, which must be sorted and not empty:
/// the smallest sample such that at least `p` % of the samples are at most it.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    let n = sorted.len();
    // 99.9 % of 1,000 is 999.000…1 in floating point; the tolerance keeps exact ranks exact.
    let rank = (p * n as f64 / 100.0 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Microseconds as milliseconds.
pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=1000).rev().collect();
        let summary = Summary::of(samples).expect("samples");
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50, 500);
        assert_eq!(summary.p99, 990);
        assert_eq!(summary.p999, 999);
        assert_eq!(summary.max, 1000);
    }

    #[test]
    fn small_sets_use_their_extremes() {
        let one = Summary::of(vec![7]).expect("one sample");
        assert_eq!((one.p50, one.p99, one.p999, one.max), (7, 7, 7, 7));
        let two = Summary::of(vec![9, 1]).expect("two samples");
        assert_eq!((two.p50, two.p99), (1, 9));
        assert_eq!(percentile(&[1, 2, 3], 0.0), 1, "p0 is the minimum");
        assert_eq!(Summary::of(Vec::new()), None);
    }

    #[test]
    fn a_slow_tail_shows_in_p999_not_p99() {
        let mut samples = vec![100; 9_990];
        samples.extend([50_000; 10]);
        let summary = Summary::of(samples).expect("samples");
        assert_eq!(summary.p99, 100);
        assert_eq!(summary.p999, 100, "10 in 10,000 is exactly the 0.1 % tail");
        assert_eq!(summary.max, 50_000);
        assert!((ms(summary.max) - 50.0).abs() < f64::EPSILON);
    }
}
