//! Times as the agent reads and picks them: the time of day and the day beside messages, the
//! moments a snooze can end, and the status lines (a snooze's end among them) that system
//! messages record. In the browser's own time zone once the page runs there, in
//! UTC while the server renders it.

use crate::i18n::{Key, Lang, t};

/// A calendar day and a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// Year, month (1–12) and day (1–31).
    pub day: (i32, u32, u32),
    /// Hour (0–23) and minute.
    pub time: (u32, u32),
}

/// `ms` (Unix milliseconds) on the agent's clock.
pub fn local(ms: i64) -> Local {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
        Local {
            day: (
                date.get_full_year() as i32,
                date.get_month() + 1,
                date.get_date(),
            ),
            time: (date.get_hours(), date.get_minutes()),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    utc(ms)
}

/// `ms` in UTC (the proleptic Gregorian calendar, from days since 1970).
pub fn utc(ms: i64) -> Local {
    let days = ms.div_euclid(86_400_000);
    let minutes = ms.rem_euclid(86_400_000) / 60_000;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Local {
        day: (year, month, day),
        time: ((minutes / 60) as u32, (minutes % 60) as u32),
    }
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// Milliseconds in a day: date filters, report ranges, ban expiries and retention count in it.
pub const DAY_MS: i64 = 24 * HOUR;

/// Now, in Unix milliseconds.
pub fn now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// `hour`:00 on the agent's clock, `days` days after the day of `now`.
pub fn at_hour(now: i64, days: u32, hour: u32) -> i64 {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now as f64));
        // JavaScript carries an overflowing day into the next month.
        date.set_date(date.get_date() + days);
        date.set_hours(hour);
        date.set_minutes(0);
        date.set_seconds(0);
        date.set_milliseconds(0);
        date.get_time() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        (now.div_euclid(DAY_MS) + i64::from(days)) * DAY_MS + i64::from(hour) * HOUR
    }
}

/// Days from the day of `now` to the next Monday: 1–7 (on a Monday, the one after).
pub fn days_to_monday(now: i64) -> u32 {
    #[cfg(feature = "hydrate")]
    let weekday = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now as f64)).get_day();
    // 1970-01-01 was a Thursday; 0 is Sunday, as in JavaScript.
    #[cfg(not(feature = "hydrate"))]
    let weekday = (now.div_euclid(DAY_MS) + 4).rem_euclid(7) as u32;
    match (8 - weekday) % 7 {
        0 => 7,
        days => days,
    }
}

/// A `datetime-local` field's value (`YYYY-MM-DDTHH:MM`) on the agent's clock, as Unix ms.
pub fn parse_local(value: &str) -> Option<i64> {
    let (date, time) = value.split_once('T')?;
    let mut date = date.splitn(3, '-').map(str::parse::<u32>);
    let (year, month, day) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time
        .splitn(3, ':')
        .map(|part| part.get(..2).and_then(|p| p.parse::<u32>().ok()));
    let (hour, minute) = (time.next()??, time.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new_with_year_month_day_hr_min(
            year,
            month as i32 - 1,
            day as i32,
            hour as i32,
            minute as i32,
        );
        let ms = date.get_time();
        (!ms.is_nan()).then_some(ms as i64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Some(
            days_from_civil(year as i64, month, day) * DAY_MS
                + i64::from(hour) * HOUR
                + i64::from(minute) * MINUTE,
        )
    }
}

/// Days since 1970-01-01 of a calendar date (Howard Hinnant's days_from_civil).
#[cfg(not(feature = "hydrate"))]
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A moment as the agent reads it: its day (today, tomorrow, …) and time.
pub fn moment(ms: i64, lang: Lang) -> String {
    format!("{} {}", day_label(ms, now(), lang), time_of_day(ms))
}

/// `HH:MM`.
pub fn time_of_day(ms: i64) -> String {
    let (hour, minute) = local(ms).time;
    format!("{hour:02}:{minute:02}")
}

/// The words for the day of `ms`, seen at `now`: today, yesterday, tomorrow, or the date.
pub fn day_label(ms: i64, now: i64, lang: Lang) -> String {
    let day = local(ms).day;
    if day == local(now).day {
        t(lang, Key::Today).to_string()
    } else if day == local(now - DAY_MS).day {
        t(lang, Key::Yesterday).to_string()
    } else if day == local(now + DAY_MS).day {
        t(lang, Key::Tomorrow).to_string()
    } else {
        let (year, month, date) = day;
        match lang {
            Lang::En => format!("{year}-{month:02}-{date:02}"),
            Lang::Zh => format!("{year}年{month}月{date}日"),
        }
    }
}

#[cfg(feature = "ssr")]
/// `YYYY-MM-DD HH:MM` (UTC) of a Unix-millisecond instant.
pub fn minute(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A `system` message's record of a transcript e-mailed from the conversation, in words
/// ("Transcript sent to mei@example.com"); `None` for any other record.
pub fn transcript_sent(lang: Lang, body: &str) -> Option<String> {
    protocol::transcript_sent_to(body)
        .map(|address| format!("{} {address}", t(lang, Key::TranscriptSent)))
}

/// What a conversation's `system` message says in `lang`: a status change, or where its
/// transcript was mailed; a body this console does not know is shown as it is.
pub fn system_text(lang: Lang, body: &str) -> String {
    use protocol::{ConversationStatus, StatusRecord};
    if let Some(sent) = transcript_sent(lang, body) {
        return sent;
    }
    let Some(record) = StatusRecord::parse(body) else {
        return body.to_owned();
    };
    if let Some(until) = record.until {
        return format!("{} {}", t(lang, Key::SnoozedUntil), moment(until, lang));
    }
    t(
        lang,
        match record.status {
            ConversationStatus::Open => Key::StatusOpen,
            ConversationStatus::Pending => Key::StatusPending,
            ConversationStatus::Resolved => Key::StatusResolved,
        },
    )
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days_and_times_match_the_calendar() {
        assert_eq!(
            utc(0),
            Local {
                day: (1970, 1, 1),
                time: (0, 0)
            }
        );
        // 2024-02-29 23:59 UTC, a leap day.
        assert_eq!(
            utc(1_709_251_140_000),
            Local {
                day: (2024, 2, 29),
                time: (23, 59)
            }
        );
        // 2026-12-06 14:02 UTC.
        assert_eq!(utc(1_796_565_720_000).day, (2026, 12, 6));
        assert_eq!(utc(1_796_565_720_000).time, (14, 2));
        // Before 1970.
        assert_eq!(utc(-86_400_000).day, (1969, 12, 31));
    }

    #[test]
    fn day_labels_say_today_yesterday_or_the_date() {
        let now = 1_796_565_720_000;
        assert_eq!(day_label(now - 60_000, now, Lang::En), "Today");
        assert_eq!(day_label(now - 86_400_000, now, Lang::Zh), "昨天");
        assert_eq!(day_label(now - 3 * 86_400_000, now, Lang::En), "2026-12-03");
        assert_eq!(
            day_label(now - 3 * 86_400_000, now, Lang::Zh),
            "2026年12月3日"
        );
        assert_eq!(day_label(now + 86_400_000, now, Lang::En), "Tomorrow");
    }

    #[test]
    fn snooze_moments_land_on_the_hour_and_on_monday() {
        // 2026-12-06 14:02 UTC, a Sunday.
        let sunday = 1_796_565_720_000;
        assert_eq!(
            utc(at_hour(sunday, 1, 9)),
            Local {
                day: (2026, 12, 7),
                time: (9, 0)
            }
        );
        assert_eq!(
            utc(at_hour(sunday, 26, 9)).day,
            (2027, 1, 1),
            "across a year"
        );
        assert_eq!(days_to_monday(sunday), 1);
        assert_eq!(
            days_to_monday(sunday + DAY_MS),
            7,
            "a Monday snoozes to the next one"
        );
        assert_eq!(days_to_monday(sunday + 2 * DAY_MS), 6);
        let friday = sunday + 5 * DAY_MS;
        assert_eq!(
            utc(at_hour(friday, days_to_monday(friday), 9)).day,
            (2026, 12, 14)
        );
    }

    #[test]
    fn datetime_fields_are_read_or_refused() {
        let at = parse_local("2026-12-06T14:02").expect("a time");
        assert_eq!(
            utc(at),
            Local {
                day: (2026, 12, 6),
                time: (14, 2)
            }
        );
        assert_eq!(parse_local("2024-02-29T23:59:30"), Some(1_709_251_140_000));
        assert_eq!(parse_local("1969-12-31T00:00"), Some(-DAY_MS));
        for bad in [
            "",
            "2026-12-06",
            "2026-13-01T10:00",
            "2026-12-06T24:00",
            "soon",
            "2026-12-06Tab:cd",
        ] {
            assert_eq!(parse_local(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn system_lines_are_translated() {
        for status in protocol::ConversationStatus::ALL {
            let said = system_text(Lang::Zh, status.as_str());
            assert!(
                !said.chars().any(|c| c.is_ascii_alphabetic()),
                "{status:?} in Chinese: {said}"
            );
            assert_ne!(system_text(Lang::En, status.as_str()), status.as_str());
        }
        // 2024-02-29 23:59 UTC: a day long past, so the test never meets "today".
        assert_eq!(
            system_text(Lang::Zh, "pending until 1709251140000"),
            "稍后处理至 2024年2月29日 23:59"
        );
        assert_eq!(
            system_text(Lang::En, "pending until soon"),
            "pending until soon"
        );
        assert_eq!(
            system_text(Lang::Zh, "transcript_sent:mei@example.com"),
            "聊天记录已发送至 mei@example.com"
        );
    }
}
