//! Pacing of polls and retries: exponential backoff with full jitter after
//! failures, and a jittered poll interval. Jitter keeps a fleet of gates from
//! hitting the admin store in lock-step (after a shared outage, or because
//! they were all started by one rollout).
//!
//! The jitter comes from `rand`'s `StdRng` seeded from a `u64`: a fixed seed
//! makes the delays reproducible in tests, [`random_seed`] makes separate gates
//! drift apart.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Smallest base delay: a zero base would retry in a hot loop.
const MIN_BASE: Duration = Duration::from_millis(1);

/// Exponential backoff with full jitter: the n-th consecutive failure waits a
/// uniformly random time between `base` and `min(max, base * 2^n)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// Failures since the last [`Backoff::reset`].
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// A backoff seeded from [`random_seed`], so separate gates drift apart.
    /// `base` is at least 1 ms; a `max` below `base` counts as `base`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff::with_seed(base, max, random_seed())
    }

    /// Like [`Backoff::new`] with a fixed seed: the same seed gives the same
    /// delays (tests, reproducing a report).
    pub fn with_seed(base: Duration, max: Duration, seed: u64) -> Backoff {
        let base = base.max(MIN_BASE);
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The delay before the next retry; each call counts one more failure.
    /// The first delay is exactly `base` (its cap is `base`), then the cap
    /// doubles up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.current_cap();
        self.attempt = self.attempt.saturating_add(1);
        // cap >= base always. Going through f64 can round a huge span up, so
        // clamp instead of trusting the arithmetic (a silly config must not
        // panic the sync loop).
        let span = cap - self.base;
        let jitter = Duration::try_from_secs_f64(span.as_secs_f64() * self.rng.gen::<f64>())
            .unwrap_or(span)
            .min(span);
        self.base.checked_add(jitter).unwrap_or(cap).min(cap)
    }

    /// The upper bound of the delay the next [`Backoff::next_delay`] returns.
    pub fn current_cap(&self) -> Duration {
        let doubled = if self.attempt < 32 {
            self.base.checked_mul(1u32 << self.attempt)
        } else {
            None
        };
        doubled.map_or(self.max, |d| d.min(self.max))
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures counted since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// `interval` scaled by a random factor in `[1 - fraction, 1 + fraction)`,
/// for the regular poll. `fraction` is clamped to `0.0..=1.0` (NaN: no
/// jitter). Pure: pass a fresh [`random_seed`] each time, or a fixed one in
/// tests.
pub fn jittered(interval: Duration, fraction: f64, seed: u64) -> Duration {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let unit: f64 = StdRng::seed_from_u64(seed).gen();
    let factor = 1.0 - fraction + 2.0 * fraction * unit;
    // try_from: a huge interval times up to 2 must not panic.
    Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(interval)
}

/// A seed that differs per call and per process, from the thread's OS-seeded
/// generator.
pub fn random_seed() -> u64 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn delays_grow_within_their_cap_and_stop_at_max() {
        for seed in 0..200u64 {
            let mut b = Backoff::with_seed(BASE, MAX, seed);
            let mut cap = BASE;
            for step in 0..12 {
                assert_eq!(b.current_cap(), cap, "seed {seed} step {step}");
                let d = b.next_delay();
                assert!(
                    d >= BASE && d <= cap,
                    "seed {seed} step {step}: {d:?} not in [{BASE:?}, {cap:?}]"
                );
                cap = (cap * 2).min(MAX);
            }
            assert_eq!(b.current_cap(), MAX);
        }
    }

    #[test]
    fn first_delay_is_base() {
        assert_eq!(Backoff::with_seed(BASE, MAX, 7).next_delay(), BASE);
    }

    #[test]
    fn jitter_spreads_delays_over_the_whole_window() {
        // Once the cap reached max, delays should cover [base, max] widely,
        // not sit at one end (that would be no jitter at all).
        let mut b = Backoff::with_seed(BASE, MAX, 42);
        for _ in 0..10 {
            b.next_delay();
        }
        let delays: Vec<Duration> = (0..1000).map(|_| b.next_delay()).collect();
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(1))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_secs(4))
            .count();
        assert!(low > 100 && high > 100, "low {low}, high {high}");
        assert!(delays.iter().all(|d| *d >= BASE && *d <= MAX));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::with_seed(BASE, MAX, 3);
        for _ in 0..6 {
            b.next_delay();
        }
        assert_eq!(b.attempts(), 6);
        assert_eq!(b.current_cap(), MAX);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.current_cap(), BASE);
        assert_eq!(b.next_delay(), BASE);
    }

    #[test]
    fn same_seed_same_delays_other_seed_other_delays() {
        let run = |seed| {
            let mut b = Backoff::with_seed(BASE, MAX, seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn degenerate_settings_do_not_hot_loop_or_panic() {
        let mut b = Backoff::with_seed(Duration::ZERO, Duration::ZERO, 1);
        assert_eq!(b.next_delay(), MIN_BASE);
        let b = Backoff::with_seed(Duration::from_secs(10), Duration::from_secs(1), 1);
        assert_eq!(b.current_cap(), Duration::from_secs(10));
        let mut b = Backoff::with_seed(Duration::MAX, Duration::MAX, 1);
        for _ in 0..100 {
            assert_eq!(b.next_delay(), Duration::MAX);
        }
        for seed in 0..100 {
            let mut b = Backoff::with_seed(MIN_BASE, Duration::MAX, seed);
            for _ in 0..100 {
                assert!(b.next_delay() >= MIN_BASE);
            }
        }
    }

    #[test]
    fn jittered_stays_within_fraction_and_varies() {
        let interval = Duration::from_secs(30);
        let lo = Duration::from_secs(27);
        let hi = Duration::from_secs(33);
        let values: Vec<Duration> = (0..1000).map(|s| jittered(interval, 0.1, s)).collect();
        assert!(values.iter().all(|d| *d >= lo && *d <= hi));
        assert!(values.iter().any(|d| *d < Duration::from_millis(28_500)));
        assert!(values.iter().any(|d| *d > Duration::from_millis(31_500)));
        assert_eq!(jittered(interval, 0.1, 5), jittered(interval, 0.1, 5));
    }

    #[test]
    fn jittered_without_fraction_is_the_interval() {
        let interval = Duration::from_secs(30);
        assert_eq!(jittered(interval, 0.0, 9), interval);
        assert_eq!(jittered(interval, f64::NAN, 9), interval);
        assert_eq!(jittered(interval, -3.0, 9), interval);
        // Huge values do not panic.
        let _ = jittered(Duration::MAX, 1.0, 9);
    }

    #[test]
    fn random_seeds_differ() {
        assert_ne!(random_seed(), random_seed());
    }
}
