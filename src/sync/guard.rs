//! The shrink guard: an update that removes too large a share of the ranges
//! at once is refused until an operator forces it. An empty or cut-off answer
//! from the admin store on an exam morning must not block every school.

/// Refusal of an update that would remove more than `max_shrink` of the
/// ranges. The message is what ops sees in logs and `/status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "allowlist update refused by the shrink guard: it would go from {old} to {new} ranges \
     ({removed_pct:.1}% removed, more than max_shrink = {max_shrink} = {limit_pct:.1}%); \
     the last good allowlist stays in force. If the shrink is intended, an operator must \
     force this update with `POST /reload?force_shrink=true` on the admin listener (needs the admin token)",
    removed_pct = .removed_fraction * 100.0,
    limit_pct = .max_shrink * 100.0
)]
pub struct ShrinkRefused {
    /// Ranges in the snapshot in force.
    pub old: usize,
    /// Ranges in the refused document.
    pub new: usize,
    /// `(old - new) / old`.
    pub removed_fraction: f64,
    /// The limit that was applied (after clamping, see [`check_shrink`]).
    pub max_shrink: f64,
}

/// Refuse when the new document has fewer ranges than `old * (1 - max_shrink)`,
/// i.e. when strictly more than the fraction `max_shrink` would be removed.
/// Removing exactly `max_shrink` passes; growing always passes; `old == 0`
/// always passes (nothing to protect).
///
/// `max_shrink` is clamped to `0.0..=1.0`, and NaN counts as `0.0`: the config
/// layer should already have refused such values, and if one slips through
/// the guard must err on the strict side, never open up.
pub fn check_shrink(
    old_ranges: usize,
    new_ranges: usize,
    max_shrink: f64,
) -> Result<(), ShrinkRefused> {
    let max_shrink = if max_shrink.is_nan() {
        0.0
    } else {
        max_shrink.clamp(0.0, 1.0)
    };
    if old_ranges == 0 || new_ranges >= old_ranges {
        return Ok(());
    }
    // Compare the removed fraction, not `new < old * (1 - max)`: a quotient of
    // two integers is rounded the same way as the decimal in the config, so
    // "exactly at the limit" (27 of 150 with 0.18) compares equal instead of
    // tripping over the rounding of `1 - 0.18`.
    let removed_fraction = (old_ranges - new_ranges) as f64 / old_ranges as f64;
    if removed_fraction > max_shrink {
        Err(ShrinkRefused {
            old: old_ranges,
            new: new_ranges,
            removed_fraction,
            max_shrink,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_at_the_fraction_passes_one_more_is_refused() {
        assert!(check_shrink(1000, 800, 0.2).is_ok());
        assert!(check_shrink(1000, 799, 0.2).is_err());
        assert!(check_shrink(10, 8, 0.2).is_ok());
        assert!(check_shrink(10, 7, 0.2).is_err());
    }

    #[test]
    fn boundaries_hold_for_fractions_that_are_not_exact_in_binary() {
        // Every limit 0.01..0.99 and every count up to 1000 where the limit
        // removes a whole number of ranges: exactly that many passes, one
        // more is refused. `new < old * (1 - max)` gets 577 of these wrong
        // (150 ranges at 0.18 among them).
        for pct in 1..100usize {
            let frac: f64 = format!("0.{pct:02}").parse().expect("fraction");
            for old in (1..=1000usize).filter(|old| old * pct % 100 == 0) {
                let removed = old * pct / 100;
                assert!(
                    check_shrink(old, old - removed, frac).is_ok(),
                    "{old} -{removed} at {frac}"
                );
                if removed < old {
                    assert!(
                        check_shrink(old, old - removed - 1, frac).is_err(),
                        "{old} -{} at {frac}",
                        removed + 1
                    );
                }
            }
        }
    }

    #[test]
    fn growth_and_empty_old_always_pass() {
        assert!(check_shrink(0, 0, 0.0).is_ok());
        assert!(check_shrink(0, 5, 0.0).is_ok());
        assert!(check_shrink(5, 5, 0.0).is_ok());
        assert!(check_shrink(5, 500, 0.0).is_ok());
    }

    #[test]
    fn empty_document_is_refused_unless_limit_is_one() {
        assert!(check_shrink(100_000, 0, 0.2).is_err());
        assert!(check_shrink(100_000, 0, 0.99).is_err());
        assert!(check_shrink(100_000, 0, 1.0).is_ok());
    }

    #[test]
    fn nonsense_limits_are_strict() {
        assert!(check_shrink(100, 99, f64::NAN).is_err());
        assert!(check_shrink(100, 99, -1.0).is_err());
        assert!(check_shrink(100, 0, 7.0).is_ok());
    }

    #[test]
    fn message_states_old_new_fraction_limit_and_how_to_force() {
        let err = check_shrink(1000, 10, 0.2).expect_err("shrink");
        assert_eq!(err.old, 1000);
        assert_eq!(err.new, 10);
        assert!((err.removed_fraction - 0.99).abs() < 1e-12);
        let msg = err.to_string();
        for part in [
            "1000",
            "10 ranges",
            "99.0% removed",
            "max_shrink = 0.2",
            "20.0%",
            "force",
        ] {
            assert!(msg.contains(part), "missing {part:?} in {msg}");
        }
    }
}
