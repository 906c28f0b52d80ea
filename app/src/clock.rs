//! Times as the agent reads them beside messages: the time of day and the day, in the
//! browser's own time zone once the page runs there, in UTC while the server renders it.

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

/// `HH:MM`.
pub fn time_of_day(ms: i64) -> String {
    let (hour, minute) = local(ms).time;
    format!("{hour:02}:{minute:02}")
}

/// The day separator's words for the day of `ms`, seen at `now`: today, yesterday, or the date.
pub fn day_label(ms: i64, now: i64, lang: Lang) -> String {
    let day = local(ms).day;
    if day == local(now).day {
        t(lang, Key::Today).to_string()
    } else if day == local(now - 86_400_000).day {
        t(lang, Key::Yesterday).to_string()
    } else {
        let (year, month, date) = day;
        match lang {
            Lang::En => format!("{year}-{month:02}-{date:02}"),
            Lang::Zh => format!("{year}年{month}月{date}日"),
        }
    }
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
    }
}
