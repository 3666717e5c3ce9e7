//! The backfill's decisions, as plain data: how far back the first sync
//! reads an upstream's list (the horizon, `sync.history_days`), where it
//! goes on after an interruption, when it is done, and how many requests a
//! pass may spend on it.
//!
//! The sync reads the newest page of each list on every pass (with an ETag
//! where the upstream has them). The backfill walks the rest of the list
//! back to the horizon, page by page, within a budget per pass; after each
//! page it keeps its [`Backfill`] in the store, so a pass cut short (budget
//! used, rate limit, crash, restart) continues where it stopped. Once done,
//! later passes cost nothing more than the newest page.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Where one source's backfill stands; kept in the store as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    /// Nothing created before this is read.
    #[serde(with = "time::serde::rfc3339")]
    pub horizon: OffsetDateTime,
    /// When the backfill started: it reads what was created up to then
    /// (the newest page covers the rest), so pages numbered from the newest
    /// (GitHub's) do not shift while it runs.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The page to read next: Render's cursor, the URL of GitHub's next
    /// page; `None` for the first.
    pub next: Option<String>,
    /// The horizon or the end of the list was reached.
    pub done: bool,
}

impl Backfill {
    /// A backfill that starts `now` and reads `history_days` back.
    pub fn start(now: OffsetDateTime, history_days: u32) -> Self {
        Self {
            horizon: now - Duration::days(i64::from(history_days)),
            until: now,
            next: None,
            done: false,
        }
    }

    /// Reads a kept one; `None` (start again) for text this version cannot read.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a backfill always serialises")
    }

    /// Whether an item created at `created_at` belongs to the history kept.
    pub fn wants(&self, created_at: OffsetDateTime) -> bool {
        created_at >= self.horizon
    }

    /// After a page was read whole and its items stored: done when the list
    /// ended (`next` is `None`) or the page reached past the horizon
    /// (`oldest` is its oldest item's time); otherwise go on at `next`.
    pub fn after_page(&mut self, oldest: Option<OffsetDateTime>, next: Option<String>) {
        let past_horizon = oldest.is_some_and(|oldest| oldest < self.horizon);
        match next {
            Some(next) if !past_horizon => self.next = Some(next),
            _ => {
                self.next = None;
                self.done = true;
            }
        }
    }
}

/// The requests one pass may still spend on one source's backfill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    left: u32,
}

impl Budget {
    pub fn new(requests: u32) -> Self {
        Self { left: requests }
    }

    /// Takes one request from the budget; false when it is used up.
    pub fn take(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

/// Requests left in GitHub's hourly window below which the backfill waits
/// for the window to reset: the newest pages, the panel's own operations
/// and other tools sharing the token need them more.
pub const RATE_RESERVE: u32 = 500;

/// Whether the backfill should leave the rest of the window alone: fewer
/// than [`RATE_RESERVE`] requests left and the window not reset yet.
pub fn rate_reserve_reached(remaining: u32, reset: OffsetDateTime, now: OffsetDateTime) -> bool {
    remaining < RATE_RESERVE && reset > now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_ago: i64) -> OffsetDateTime {
        time::macros::datetime!(2026-12-01 12:00 UTC) - Duration::days(days_ago)
    }

    #[test]
    fn a_backfill_goes_on_page_by_page_until_the_list_ends() {
        let mut b = Backfill::start(at(0), 90);
        assert_eq!(b.horizon, at(90));
        b.after_page(Some(at(3)), Some("c1".into()));
        assert_eq!((b.next.as_deref(), b.done), (Some("c1"), false));
        b.after_page(Some(at(10)), Some("c2".into()));
        assert_eq!((b.next.as_deref(), b.done), (Some("c2"), false));
        b.after_page(Some(at(20)), None);
        assert_eq!((b.next, b.done), (None, true), "the list ended");
    }

    #[test]
    fn a_backfill_stops_at_the_horizon_and_keeps_only_what_is_inside() {
        let mut b = Backfill::start(at(0), 30);
        assert!(b.wants(at(30)) && b.wants(at(29)) && !b.wants(at(31)));
        b.after_page(Some(at(29)), Some("c1".into()));
        assert!(!b.done, "the whole page is inside");
        b.after_page(Some(at(31)), Some("c2".into()));
        assert!(b.done, "a page reaching past the horizon is the last");
    }

    #[test]
    fn an_empty_page_ends_the_backfill() {
        let mut b = Backfill::start(at(0), 30);
        b.after_page(None, None);
        assert!(b.done);
    }

    #[test]
    fn a_kept_backfill_reads_back_the_same_and_garbage_starts_again() {
        let mut b = Backfill::start(at(0), 90);
        b.after_page(Some(at(1)), Some("https://api.github.com/x?page=2".into()));
        assert_eq!(Backfill::parse(&b.to_text()), Some(b));
        assert_eq!(Backfill::parse("{not json"), None);
    }

    #[test]
    fn the_budget_allows_exactly_its_requests() {
        let mut budget = Budget::new(3);
        assert_eq!(
            (0..5).map(|_| budget.take()).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
    }

    #[test]
    fn the_backfill_waits_for_the_reset_when_few_requests_are_left() {
        let now = at(0);
        let later = now + Duration::minutes(10);
        assert!(rate_reserve_reached(RATE_RESERVE - 1, later, now));
        assert!(!rate_reserve_reached(RATE_RESERVE, later, now));
        assert!(!rate_reserve_reached(0, now, now), "the window has reset");
    }
}
