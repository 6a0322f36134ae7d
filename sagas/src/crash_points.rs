//! Fault injection for the crash tests: `ORDO_CRASH_AFTER_STEP` names one step of one saga,
//! and the process aborts when it reaches that step, right after the step's command
//! committed and before the saga recorded the step: the worst moment for a crash. Unset
//! in normal operation.
//!
//! The value is `<saga>:<step>`, such as `booking:commit_seats` or `checkout:commit_stock`;
//! a bare step name (`commit_stock`) is a step of the checkout saga. The steps are the
//! names of the saga's step log, plus these points outside it:
//!
//! - `booking:requested`: in the booking route, after the booking's request is recorded
//!   and before the reserve step runs inline;
//! - `booking:seats_reserved`: in the reserve step, which the gateway runs inline, after
//!   the seats are reserved and before the booking holds them;
//! - `booking:expire` and `booking:complete`: in the deadline scan, after the booking
//!   expired or completed and before its deadline is cleared;
//! - `seat_stock:seats_opened`: in the seat stock policy, after a new session's first
//!   seat area is opened and before the others;
//! - `fulfilment:auto_complete`: in the deadline scan, after a delivered order completed
//!   by itself and before its deadline is cleared.

use std::sync::OnceLock;

/// The saga a bare step name belongs to: the checkout saga (`checkout::CHECKOUT_SAGA`, which
/// a test of that module holds equal to this).
pub const BARE_STEP_SAGA: &str = "checkout";

/// The environment variable naming the step to crash after.
pub const CRASH_AFTER_STEP: &str = "ORDO_CRASH_AFTER_STEP";

/// Aborts the process when `ORDO_CRASH_AFTER_STEP` names `step` of `saga` (`checkout`,
/// `booking`, `fulfilment`).
pub fn crash_after(saga: &str, step: &str) {
    static TARGET: OnceLock<Option<(String, String)>> = OnceLock::new();
    let target = TARGET.get_or_init(|| {
        std::env::var(CRASH_AFTER_STEP)
            .ok()
            .and_then(|value| target(&value))
    });
    if target
        .as_ref()
        .is_some_and(|(s, t)| s.as_str() == saga && t.as_str() == step)
    {
        tracing::error!(saga, step, "crashing on purpose ({CRASH_AFTER_STEP})");
        std::process::abort();
    }
}

/// The saga and step a value of `ORDO_CRASH_AFTER_STEP` names, `None` when it is empty.
fn target(value: &str) -> Option<(String, String)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (saga, step) = value.split_once(':').unwrap_or((BARE_STEP_SAGA, value));
    Some((saga.to_string(), step.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_step_is_a_checkout_step() {
        assert_eq!(
            target("commit_stock"),
            Some(("checkout".into(), "commit_stock".into()))
        );
    }

    #[test]
    fn a_prefixed_step_names_its_saga() {
        assert_eq!(
            target("booking:commit_seats"),
            Some(("booking".into(), "commit_seats".into()))
        );
        assert_eq!(
            target("checkout:reserve_stock"),
            Some(("checkout".into(), "reserve_stock".into()))
        );
    }

    #[test]
    fn an_empty_value_names_nothing() {
        assert_eq!(target(""), None);
        assert_eq!(target("  "), None);
    }
}
