//! Business hours: when a site offers live chat. Outside them the widget shows the offline form
//! even while an agent is online (they may be clearing the inbox after closing time); inside
//! them chat is offered whenever an agent is online.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The weekday keys of [`BusinessHours::days`], Monday first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A site's opening hours, part of its widget settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// The IANA time zone the hours are written in (`Asia/Shanghai`), so they follow the
    /// site's daylight-saving changes.
    pub time_zone: String,
    /// Opening spans per weekday (`mon` … `sun`), `"09:00-12:00,13:30-18:00"`; `24:00` ends a
    /// day. A day not listed is closed.
    pub days: BTreeMap<String, String>,
}

/// Why hours cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HoursError {
    /// Not an IANA zone name this server knows.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// A key other than `mon` … `sun`.
    #[error("unknown day {0:?} (use mon, tue, wed, thu, fri, sat, sun)")]
    Day(String),
    /// Not `HH:MM-HH:MM` with the end after the start.
    #[error("bad span {0:?} (write HH:MM-HH:MM, end after start)")]
    Span(String),
}

impl BusinessHours {
    /// Whether the site is open at `at_ms` (Unix milliseconds). Hours that cannot be read count
    /// as always open, with a warning in the log: a typo must not hide chat from every visitor.
    pub fn open_at(&self, at_ms: i64) -> bool {
        self.check(at_ms).unwrap_or_else(|error| {
            tracing::warn!(%error, "unreadable business hours; treating the site as open");
            true
        })
    }

    /// Whether the site is open at `at_ms`, or why the hours cannot be read. Every day's spans
    /// are checked, not only today's, so a bad Sunday is reported on a Monday too.
    pub fn check(&self, at_ms: i64) -> Result<bool, HoursError> {
        let zone = TimeZone::get(&self.time_zone)
            .map_err(|_| HoursError::TimeZone(self.time_zone.clone()))?;
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, spans) in &self.days {
            let index = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| HoursError::Day(day.clone()))?;
            for span in spans.split(',').filter(|s| !s.trim().is_empty()) {
                week[index].push(parse_span(span).ok_or_else(|| HoursError::Span(span.into()))?);
            }
        }
        let Ok(instant) = Timestamp::from_millisecond(at_ms) else {
            return Ok(true);
        };
        let local = instant.to_zoned_datetime(zone).datetime();
        let minute = u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute()))
            .unwrap_or_default();
        let today = usize::try_from(local.weekday().to_monday_zero_offset()).unwrap_or_default();
        Ok(week[today]
            .iter()
            .any(|(from, to)| (*from..*to).contains(&minute)))
    }
}

/// `HH:MM-HH:MM` as minutes of the day, end exclusive; `None` unless the end is after the start.
fn parse_span(span: &str) -> Option<(u32, u32)> {
    let (from, to) = span.trim().split_once('-')?;
    let (from, to) = (minute_of(from)?, minute_of(to)?);
    (from < to).then_some((from, to))
}

/// `HH:MM` (00:00 to 24:00) as minutes since midnight.
fn minute_of(text: &str) -> Option<u32> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 24 * 60).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(zone: &str, days: &[(&str, &str)]) -> BusinessHours {
        BusinessHours {
            time_zone: zone.into(),
            days: days
                .iter()
                .map(|(d, s)| (d.to_string(), s.to_string()))
                .collect(),
        }
    }

    /// Unix milliseconds of a UTC date and time.
    fn utc(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    #[test]
    fn hours_follow_the_sites_zone_and_weekday() {
        // 2026-11-27 is a Friday.
        let shanghai = hours("Asia/Shanghai", &[("fri", "09:00-12:00, 13:30-18:00")]);
        assert_eq!(shanghai.check(utc("2026-11-27T01:00:00Z")), Ok(true)); // 09:00 there
        assert_eq!(shanghai.check(utc("2026-11-27T00:59:00Z")), Ok(false)); // 08:59
        assert_eq!(shanghai.check(utc("2026-11-27T04:30:00Z")), Ok(false)); // lunch, 12:30
        assert_eq!(shanghai.check(utc("2026-11-27T09:59:00Z")), Ok(true)); // 17:59
        assert_eq!(shanghai.check(utc("2026-11-27T10:00:00Z")), Ok(false)); // 18:00, end excluded
        // Saturday is not listed: closed.
        assert_eq!(shanghai.check(utc("2026-11-28T03:00:00Z")), Ok(false));
        // 23:30 UTC on Thursday is already Friday 07:30 in Shanghai.
        let early = hours("Asia/Shanghai", &[("fri", "07:00-24:00")]);
        assert_eq!(early.check(utc("2026-11-26T23:30:00Z")), Ok(true));
    }

    #[test]
    fn daylight_saving_moves_the_hours_with_the_zone() {
        let oslo = hours("Europe/Oslo", &[("mon", "09:00-17:00")]);
        // 09:00 in Oslo is 07:00 UTC in summer (2026-06-29) and 08:00 UTC in winter (2026-11-30).
        assert_eq!(oslo.check(utc("2026-06-29T07:00:00Z")), Ok(true));
        assert_eq!(oslo.check(utc("2026-11-30T07:00:00Z")), Ok(false));
        assert_eq!(oslo.check(utc("2026-11-30T08:00:00Z")), Ok(true));
    }

    #[test]
    fn unreadable_hours_are_reported_and_count_as_open() {
        let at = utc("2026-11-27T03:00:00Z");
        for (bad, error) in [
            (
                hours("Mars/Olympus", &[]),
                HoursError::TimeZone("Mars/Olympus".into()),
            ),
            (
                hours("UTC", &[("friday", "09:00-17:00")]),
                HoursError::Day("friday".into()),
            ),
            (
                hours("UTC", &[("sun", "17:00-09:00")]),
                HoursError::Span("17:00-09:00".into()),
            ),
            (
                hours("UTC", &[("mon", "9-17")]),
                HoursError::Span("9-17".into()),
            ),
            (
                hours("UTC", &[("mon", "09:00-24:01")]),
                HoursError::Span("09:00-24:01".into()),
            ),
        ] {
            assert_eq!(bad.check(at), Err(error));
            assert!(bad.open_at(at));
        }
    }
}
