//! `/reports`: how the team is doing over a date range, drawn as SVG in the page (no chart
//! library, no JavaScript needed): conversations per day, first-response and resolution time
//! percentiles, missed chats (no agent ever answered), CSAT, the busiest hours as a week ×
//! hour heat map, and each agent's load.
//!
//! The store returns one row per conversation of the range ([`store::ConversationStats`]); the
//! figures are computed here, in [`Report::of`], which is pure and unit-tested.

use crate::auth::{SiteChoice, my_sites};
use crate::error::ConsoleError;
use crate::i18n::{Key, Lang, t};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use protocol::{AgentId, SiteId};
use serde::{Deserialize, Serialize};

use crate::clock::DAY_MS as DAY;
/// The longest range a report covers, in days.
pub const MAX_DAYS: i64 = 366;

/// One conversation's facts, as the report needs them (a copy of the store's row that the
/// browser can hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// When it started (UTC milliseconds).
    pub created_at: i64,
    /// When an agent first answered, if one did.
    pub first_reply_at: Option<i64>,
    /// When it was resolved, if it is.
    pub resolved_at: Option<i64>,
    /// Who had it.
    pub assignee: Option<AgentId>,
    /// The visitor's rating, 1 to 5.
    pub rating: Option<u8>,
}

/// Percentiles of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Spread {
    /// How many there were.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Spread {
    fn of(mut seconds: Vec<f64>) -> Spread {
        if seconds.is_empty() {
            return Spread::default();
        }
        seconds.sort_by(f64::total_cmp);
        let at = |p: f64| {
            seconds[((p * seconds.len() as f64).ceil() as usize).clamp(1, seconds.len()) - 1]
        };
        Spread {
            count: seconds.len(),
            p50: at(0.5),
            p90: at(0.9),
        }
    }
}

/// Everything the report page draws.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Report {
    /// Conversations started on each day of the range, oldest first, as `(YYYY-MM-DD, count)`.
    pub per_day: Vec<(String, u32)>,
    /// Time to the first agent answer.
    pub first_response: Spread,
    /// Time from start to resolved.
    pub resolution: Spread,
    /// Conversations no agent ever answered.
    pub missed: u32,
    /// Conversations in the range.
    pub total: u32,
    /// How many ratings of each score, 1 to 5.
    pub ratings: [u32; 5],
    /// Conversations started per weekday (Monday first) and hour (UTC).
    pub heat: [[u32; 24]; 7],
    /// Conversations per agent, `(name, count)`, most first.
    pub load: Vec<(String, u32)>,
}

impl Report {
    /// The figures of `facts` for the days starting at `from` (UTC midnight), `days` long;
    /// `name` names an agent.
    pub fn of(facts: &[Facts], from: i64, days: i64, name: impl Fn(AgentId) -> String) -> Report {
        let mut report = Report {
            per_day: (0..days).map(|d| (day_label(from + d * DAY), 0)).collect(),
            ..Report::default()
        };
        let mut load: std::collections::BTreeMap<AgentId, u32> = Default::default();
        let (mut first, mut resolution) = (Vec::new(), Vec::new());
        for fact in facts {
            let day = (fact.created_at - from).div_euclid(DAY);
            let Some(slot) = usize::try_from(day)
                .ok()
                .and_then(|d| report.per_day.get_mut(d))
            else {
                continue;
            };
            slot.1 += 1;
            report.total += 1;
            match fact.first_reply_at {
                Some(at) => first.push((at - fact.created_at).max(0) as f64 / 1000.0),
                None => report.missed += 1,
            }
            if let Some(at) = fact.resolved_at {
                resolution.push((at - fact.created_at).max(0) as f64 / 1000.0);
            }
            if let Some(score @ 1..=5) = fact.rating {
                report.ratings[usize::from(score) - 1] += 1;
            }
            // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
            let days_since_epoch = fact.created_at.div_euclid(DAY);
            let weekday = (days_since_epoch + 3).rem_euclid(7) as usize;
            let hour = (fact.created_at.rem_euclid(DAY) / 3_600_000) as usize;
            report.heat[weekday][hour] += 1;
            if let Some(agent) = fact.assignee {
                *load.entry(agent).or_default() += 1;
            }
        }
        report.first_response = Spread::of(first);
        report.resolution = Spread::of(resolution);
        report.load = load.into_iter().map(|(id, n)| (name(id), n)).collect();
        report
            .load
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        report
    }

    /// The average rating, if there is any.
    pub fn csat(&self) -> Option<f64> {
        let count: u32 = self.ratings.iter().sum();
        let sum: u32 = self.ratings.iter().zip(1..).map(|(n, s)| n * s).sum();
        (count > 0).then(|| f64::from(sum) / f64::from(count))
    }
}

/// `YYYY-MM-DD` of a UTC instant (civil-from-days, Howard Hinnant's algorithm).
fn day_label(ms: i64) -> String {
    let z = ms.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A duration in seconds, short: `45 s`, `12 min`, `3.5 h`.
fn short(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// The report for the agent's sites (or one of them) over `from`..=`to` (`YYYY-MM-DD`, UTC);
/// the last 30 days when not given.
#[server(endpoint = "reports")]
pub async fn team_report(
    #[server(default)] site: Option<SiteId>,
    #[server(default)] from: Option<String>,
    #[server(default)] to: Option<String>,
) -> Result<Report, ConsoleError> {
    use crate::context;
    let agent = context::require_agent().await?;
    let store = context::store()?;
    let mine = store.agent_sites(agent.id).await?;
    let sites = match site {
        Some(site) if mine.contains(&site) => vec![site],
        Some(_) => return Err(ConsoleError::NotFound),
        None => mine,
    };
    let day = |text: &Option<String>| -> Result<Option<i64>, ConsoleError> {
        match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => {
                let date: jiff::civil::Date = text.parse().map_err(|_| ConsoleError::Invalid)?;
                jiff::tz::TimeZone::UTC
                    .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
                    .map(|t| Some(t.as_millisecond()))
                    .map_err(|_| ConsoleError::Invalid)
            }
        }
    };
    let today = crate::clock::now().div_euclid(DAY) * DAY;
    let to = day(&to)?.unwrap_or(today) + DAY;
    let from = day(&from)?.unwrap_or(to - 30 * DAY);
    let days = (to - from) / DAY;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ConsoleError::Invalid);
    }
    let rows = store.conversation_stats(&sites, from, to).await?;
    let facts: Vec<Facts> = rows
        .iter()
        .map(|r| Facts {
            created_at: r.created_at,
            first_reply_at: r.first_reply_at,
            resolved_at: r.resolved_at,
            assignee: r.assignee_id,
            rating: r.rating.and_then(|s| u8::try_from(s).ok()),
        })
        .collect();
    let mut names = std::collections::HashMap::new();
    for agent in store.site_agents(&sites).await? {
        names.insert(agent.id, agent.display_name);
    }
    Ok(Report::of(&facts, from, days, |id| {
        names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    }))
}

/// `/reports`.
#[component]
pub fn ReportsPage() -> impl IntoView {
    let query = use_query_map();
    let shell = crate::shell::use_shell();
    let sites = Resource::new(|| (), |_| my_sites());
    let data = Resource::new(
        move || {
            query.with(|q| {
                let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
                (
                    get("site").and_then(|s| s.parse().ok()),
                    get("from"),
                    get("to"),
                )
            })
        },
        |(site, from, to)| team_report(site, from, to),
    );
    view! {
        <crate::ui::Page class="reports">
            <Suspense fallback=|| view! { <p>"…"</p> }>
                {move || {
                    let lang = shell.lang();
                    Suspend::new(async move {
                        let lang = lang.await;
                        match (sites.await, data.await) {
                            (Ok(sites), Ok(report)) => view! {
                                <h1>{t(lang, Key::Reports)}</h1>
                                <RangeForm sites lang />
                                <Figures report=report.clone() lang />
                                <PerDay report=report.clone() lang />
                                <Heat report=report.clone() lang />
                                <Load report lang />
                            }
                            .into_any(),
                            (first, second) => {
                                crate::ui::refusal(first.err().into_iter().chain(second.err()), lang)
                            }
                        }
                    })
                }}
            </Suspense>
        </crate::ui::Page>
    }
}

/// The site and date range, as a GET form.
#[component]
fn RangeForm(sites: Vec<SiteChoice>, lang: Lang) -> impl IntoView {
    view! {
        <form method="get" action="/reports" class="history-filters">
            <label>
                {t(lang, Key::Site)}
                <select name="site">
                    <option value="">{t(lang, Key::All)}</option>
                    {sites.into_iter().map(|s| view! { <option value=s.id.0>{s.name}</option> }).collect_view()}
                </select>
            </label>
            <label>{t(lang, Key::FromDay)} <input type="date" name="from" /></label>
            <label>{t(lang, Key::ToDay)} <input type="date" name="to" /></label>
            <button type="submit">{t(lang, Key::Show)}</button>
        </form>
    }
}

/// The headline numbers.
#[component]
fn Figures(report: Report, lang: Lang) -> impl IntoView {
    let csat = report
        .csat()
        .map(|c| format!("{c:.2} / 5"))
        .unwrap_or_else(|| "—".to_owned());
    let spread = |s: Spread| {
        if s.count == 0 {
            "—".to_owned()
        } else {
            format!("p50 {} · p90 {}", short(s.p50), short(s.p90))
        }
    };
    view! {
        <dl class="figures">
            <div data-figure="total"><dt>{t(lang, Key::Conversations)}</dt><dd>{report.total}</dd></div>
            <div data-figure="missed"><dt>{t(lang, Key::Missed)}</dt><dd>{report.missed}</dd></div>
            <div data-figure="first-response"><dt>{t(lang, Key::FirstResponse)}</dt><dd>{spread(report.first_response)}</dd></div>
            <div data-figure="resolution"><dt>{t(lang, Key::ResolutionTime)}</dt><dd>{spread(report.resolution)}</dd></div>
            <div data-figure="csat"><dt>"CSAT"</dt><dd>{csat}</dd></div>
        </dl>
    }
}

/// Conversations per day as bars.
#[component]
fn PerDay(report: Report, lang: Lang) -> impl IntoView {
    let max = report.per_day.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let width = (report.per_day.len() * 12).max(12);
    let view_box = format!("0 0 {width} 110");
    view! {
        <section class="chart">
            <h2>{t(lang, Key::ConversationsPerDay)}</h2>
            <svg viewBox=view_box role="img" aria-label=t(lang, Key::ConversationsPerDay) class="bars">
                {report
                    .per_day
                    .into_iter()
                    .enumerate()
                    .map(|(i, (day, n))| {
                        let h = f64::from(n) * 100.0 / f64::from(max);
                        view! {
                            <rect x=i * 12 + 1 y=format!("{:.1}", 105.0 - h) width="10" height=format!("{h:.1}") data-day=day.clone() data-count=n>
                                <title>{format!("{day}: {n}")}</title>
                            </rect>
                        }
                    })
                    .collect_view()}
            </svg>
        </section>
    }
}

/// The busiest hours: weekday rows, hour columns, darker is busier.
#[component]
fn Heat(report: Report, lang: Lang) -> impl IntoView {
    let max = report
        .heat
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let days: Vec<String> = (0..7)
        .map(|day| crate::i18n::weekday_short(lang, day))
        .collect();
    view! {
        <section class="chart">
            <h2>{t(lang, Key::BusiestHours)}</h2>
            <svg viewBox="0 0 268 78" role="img" aria-label=t(lang, Key::BusiestHours) class="heat">
                {days
                    .into_iter()
                    .enumerate()
                    .map(|(d, name)| {
                        let row = report.heat[d];
                        view! {
                            <text x="0" y=d * 11 + 9 font-size="8">{name.clone()}</text>
                            {row
                                .into_iter()
                                .enumerate()
                                .map(|(h, n)| {
                                    let opacity = format!("{:.2}", 0.08 + 0.92 * f64::from(n) / f64::from(max));
                                    view! {
                                        <rect x=24 + h * 10 y=d * 11 width="9" height="10" fill="#2563eb" fill-opacity=opacity data-cell=format!("{d}-{h}") data-count=n>
                                            <title>{format!("{name} {h:02}:00 UTC: {n}")}</title>
                                        </rect>
                                    }
                                })
                                .collect_view()}
                        }
                    })
                    .collect_view()}
            </svg>
        </section>
    }
}

/// Conversations per agent, as horizontal bars.
#[component]
fn Load(report: Report, lang: Lang) -> impl IntoView {
    let max = report.load.iter().map(|l| l.1).max().unwrap_or(0).max(1);
    let height = (report.load.len() * 14).max(14);
    let view_box = format!("0 0 300 {height}");
    view! {
        <section class="chart">
            <h2>{t(lang, Key::AgentLoad)}</h2>
            <svg viewBox=view_box role="img" aria-label=t(lang, Key::AgentLoad) class="load">
                {report
                    .load
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, n))| {
                        let w = f64::from(n) * 180.0 / f64::from(max);
                        view! {
                            <text x="0" y=i * 14 + 10 font-size="9">{name.clone()}</text>
                            <rect x="100" y=i * 14 + 2 width=format!("{w:.1}") height="10" fill="#2563eb" data-agent=name data-count=n />
                            <text x=format!("{:.1}", 104.0 + w) y=i * 14 + 10 font-size="9">{n}</text>
                        }
                    })
                    .collect_view()}
            </svg>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23, a Monday, 00:00 UTC.
    const MONDAY: i64 = 1_795_392_000_000;

    #[test]
    fn days_are_labelled_in_utc() {
        assert_eq!(day_label(MONDAY), "2026-11-23");
        assert_eq!(day_label(0), "1970-01-01");
        assert_eq!(day_label(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn figures_come_from_the_conversations_of_the_range() {
        let hour = 3_600_000;
        let facts = [
            // Monday 09:00, answered after 30 s, resolved after an hour, rated 5, by agent 1.
            Facts {
                created_at: MONDAY + 9 * hour,
                first_reply_at: Some(MONDAY + 9 * hour + 30_000),
                resolved_at: Some(MONDAY + 10 * hour),
                assignee: Some(AgentId(1)),
                rating: Some(5),
            },
            // Monday 09:30, answered after 90 s, open, rated 3, by agent 2.
            Facts {
                created_at: MONDAY + 9 * hour + 1_800_000,
                first_reply_at: Some(MONDAY + 9 * hour + 1_890_000),
                resolved_at: None,
                assignee: Some(AgentId(2)),
                rating: Some(3),
            },
            // Tuesday 23:00, never answered (missed), agent 1.
            Facts {
                created_at: MONDAY + DAY + 23 * hour,
                first_reply_at: None,
                resolved_at: None,
                assignee: Some(AgentId(1)),
                rating: None,
            },
            // Outside the three-day range: ignored.
            Facts {
                created_at: MONDAY + 5 * DAY,
                first_reply_at: None,
                resolved_at: None,
                assignee: None,
                rating: None,
            },
        ];
        let report = Report::of(&facts, MONDAY, 3, |id| format!("agent {id}"));
        assert_eq!(
            report.per_day,
            [
                ("2026-11-23".to_owned(), 2),
                ("2026-11-24".to_owned(), 1),
                ("2026-11-25".to_owned(), 0)
            ]
        );
        assert_eq!((report.total, report.missed), (3, 1));
        assert_eq!(
            report.first_response,
            Spread {
                count: 2,
                p50: 30.0,
                p90: 90.0
            }
        );
        assert_eq!(report.resolution.count, 1);
        assert_eq!(report.resolution.p50, 3600.0);
        assert_eq!(report.ratings, [0, 0, 1, 0, 1]);
        assert_eq!(report.csat(), Some(4.0));
        assert_eq!(report.heat[0][9], 2, "Monday 09:00");
        assert_eq!(report.heat[1][23], 1, "Tuesday 23:00");
        assert_eq!(report.heat.iter().flatten().sum::<u32>(), 3);
        assert_eq!(
            report.load,
            [("agent 1".to_owned(), 2), ("agent 2".to_owned(), 1)]
        );
    }
}
