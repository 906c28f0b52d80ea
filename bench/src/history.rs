//! `kefu-bench history`: history search on a million messages, per backend.
//!
//! For SQLite (a file in a temporary directory) and for PostgreSQL and MariaDB (a database of
//! its own on `PG_URL` / `MYSQL_URL`, dropped afterwards) it stores 1,000,000 messages
//! (× `KEFU_BENCH_SCALE`) through the store's bulk import — Chinese, Japanese and English
//! customer-service chat made from word lists — and then prints the search latency of the
//! history page's first page (20 hits) for single-term, two-term and CJK queries, p50 and p99
//! against the targets, and the CSV export's throughput.
//!
//! `KEFU_BENCH_BACKENDS=sqlite,postgresql,mariadb` picks backends; `KEFU_BENCH_KEEP=1` keeps
//! the server databases afterwards (their names are printed), for `EXPLAIN`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{Author, ClientId};
use sqlx::{AssertSqlSafe, Connection};
use store::search::Query;
use store::{Backend, DatabaseUrl, HistoryFilter, NewMessage, NewSite, Store};

use crate::Result;
use crate::report::{Figure, Goal, Report};
use crate::stats::Summary;

/// Messages stored at full scale.
const MESSAGES: f64 = 1_000_000.0;
/// Messages per conversation (a long chat; the seed product's average was about 30).
const PER_CONVERSATION: usize = 50;
/// Conversations imported at once.
const PARALLEL: usize = 4;
/// Queries timed per kind.
const QUERIES: usize = 300;
/// Hits on the history page's first page.
const PAGE: u32 = 20;

const CHINESE: &[&str] = &[
    "您好",
    "请问",
    "订单",
    "退款",
    "发货",
    "快递",
    "物流",
    "价格",
    "优惠",
    "颜色",
    "尺寸",
    "质量",
    "包装",
    "地址",
    "电话",
    "付款",
    "支付宝",
    "微信",
    "发票",
    "客服",
    "售后",
    "换货",
    "退货",
    "库存",
    "什么时候",
    "可以",
    "没有",
    "谢谢",
    "麻烦",
    "已经",
    "收到",
    "破损",
    "型号",
    "保修",
    "安装",
    "说明书",
    "运费",
    "包邮",
    "折扣",
    "会员",
    "积分",
    "取消",
    "修改",
    "确认",
    "今天",
    "明天",
    "工作日",
    "尽快",
    "处理",
    "申请",
];
const JAPANESE: &[&str] = &[
    "こんにちは",
    "注文",
    "返金",
    "配送",
    "在庫",
    "価格",
    "お願いします",
    "ありがとう",
    "確認",
    "住所",
    "変更",
    "キャンセル",
    "届きました",
    "商品",
    "サイズ",
    "色",
    "支払い",
    "領収書",
    "到着",
    "いつ",
    "できます",
    "ません",
    "交換",
    "保証",
    "送料",
    "割引",
];
const ENGLISH: &[&str] = &[
    "hello",
    "order",
    "refund",
    "shipping",
    "delivery",
    "invoice",
    "price",
    "discount",
    "colour",
    "size",
    "quality",
    "package",
    "address",
    "phone",
    "payment",
    "paypal",
    "card",
    "support",
    "return",
    "exchange",
    "stock",
    "when",
    "can",
    "please",
    "thanks",
    "already",
    "received",
    "damaged",
    "model",
    "warranty",
    "install",
    "manual",
    "free",
    "coupon",
    "member",
    "points",
    "cancel",
    "change",
    "confirm",
    "today",
    "tomorrow",
    "business",
    "days",
    "soon",
    "process",
    "request",
    "tracking",
    "number",
    "customs",
    "wholesale",
    "sample",
    "quote",
    "minimum",
    "quantity",
    "factory",
    "container",
    "supplier",
    "catalog",
    "the",
    "is",
    "my",
    "your",
    "for",
    "and",
    "with",
    "not",
    "have",
    "did",
    "will",
    "could",
    "would",
];

/// A small deterministic generator (SplitMix64): the same data and queries on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }

    /// A word of `words` with the early ones far more common than the late ones (as in real
    /// text): the first of 50 comes up ~14 % of the time, the last ~0.3 %.
    fn pick_skewed<'a>(&mut self, words: &[&'a str]) -> &'a str {
        let u = (self.next() >> 11) as f64 / (1_u64 << 53) as f64;
        words[((u * u) * words.len() as f64) as usize]
    }
}

/// One chat line of 4 to 14 words in `words`' language, joined as that language writes.
fn sentence(rng: &mut Rng, words: &[&str], spaced: bool) -> String {
    let count = 4 + rng.below(11);
    let picked: Vec<&str> = (0..count).map(|_| rng.pick_skewed(words)).collect();
    if spaced {
        picked.join(" ")
    } else {
        let mut text = picked.concat();
        text.push(if rng.below(2) == 0 { '。' } else { '？' });
        text
    }
}

/// The kinds of query timed, as the issue lists them.
#[derive(Clone, Copy)]
enum Kind {
    /// One English word.
    SingleTerm,
    /// Two English words, both required.
    TwoTerm,
    /// A Chinese word (two in three) or a Japanese one.
    Cjk,
    /// An order number, which one conversation mentions: the rare word, found by the index
    /// rather than by scanning recent rows.
    OrderNumber,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::SingleTerm => "single-term",
            Kind::TwoTerm => "two-term",
            Kind::Cjk => "CJK",
            Kind::OrderNumber => "order number",
        }
    }

    /// A query of this kind; English words come from the content words (not "the", "is" …).
    fn query(self, rng: &mut Rng, conversations: usize) -> String {
        let content = &ENGLISH[..58];
        match self {
            Kind::SingleTerm => rng.pick(content).to_owned(),
            Kind::TwoTerm => format!("{} {}", rng.pick(content), rng.pick(content)),
            Kind::Cjk if rng.below(3) == 0 => rng.pick(JAPANESE).to_owned(),
            Kind::Cjk => rng.pick(CHINESE).to_owned(),
            Kind::OrderNumber => order_number(rng.below(conversations)),
        }
    }
}

/// The order number conversation `n` is about (its first message mentions it).
fn order_number(n: usize) -> String {
    format!("SO{:07}", n * 7 + 1_000_003)
}

/// Runs the scenario on every backend and prints its figures.
pub fn main() -> Result<bool> {
    let scale = crate::coordinator::Sizes::from_env()?.scale;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut report = Report::default();
    let messages = ((MESSAGES * scale) as usize).max(PER_CONVERSATION * 10);
    println!("history search: {messages} messages per backend (KEFU_BENCH_SCALE={scale})");
    let pg = std::env::var("PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mysql = std::env::var("MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let backends = [
        ("sqlite", None, 10.0),
        ("postgresql", Some(pg), 50.0),
        ("mariadb", Some(mysql), 50.0),
    ];
    let chosen = std::env::var("KEFU_BENCH_BACKENDS").unwrap_or_default();
    let keep = std::env::var("KEFU_BENCH_KEEP").is_ok_and(|v| v == "1");
    for (name, server, target_ms) in backends {
        if !chosen.is_empty() && !chosen.split(',').any(|c| c.trim() == name) {
            continue;
        }
        let outcome = runtime.block_on(async {
            let db = BenchDb::create(server.as_deref()).await?;
            let result = measure(&mut report, name, &db, messages, target_ms).await;
            match (&db.server, keep) {
                (Some((_, database)), true) => println!("  kept database {database}"),
                _ => db.drop_database().await,
            }
            result
        });
        if let Err(error) = outcome {
            report.fail(&format!("history search on {name}"), error);
        }
    }
    for line in report.summary() {
        println!("{line}");
    }
    Ok(!report.has_failures())
}

/// Fills `store`, then times the queries and the export.
async fn measure(
    report: &mut Report,
    name: &str,
    db: &BenchDb,
    messages: usize,
    target_ms: f64,
) -> Result<()> {
    let store = &db.store;
    let started = Instant::now();
    let site = fill(store, messages).await?;
    let elapsed = started.elapsed().as_secs_f64();
    db.analyze().await?;
    report.info(format!(
        "{name}: stored {messages} messages in {elapsed:.0} s ({:.0} msg/s, bulk import)",
        messages as f64 / elapsed
    ));
    let filter = HistoryFilter {
        sites: vec![site],
        ..HistoryFilter::default()
    };
    let mut rng = Rng(7);
    let conversations = messages / PER_CONVERSATION;
    for kind in [
        Kind::SingleTerm,
        Kind::TwoTerm,
        Kind::Cjk,
        Kind::OrderNumber,
    ] {
        let mut samples = Vec::with_capacity(QUERIES);
        let mut hits = 0;
        for _ in 0..QUERIES {
            let text = kind.query(&mut rng, conversations);
            let query = Query::parse(&text).ok_or("unsearchable generated query")?;
            let started = Instant::now();
            let page = store.search_messages(&filter, &query, None, PAGE).await?;
            samples.push(started.elapsed().as_micros() as u64);
            hits += page.len();
        }
        let summary = Summary::of(samples).ok_or("no samples")?;
        let note = format!(
            "p50 {:.2} ms, max {:.1} ms; {QUERIES} queries, first page of {PAGE}, \
             {:.1} hits on average",
            summary.p50 as f64 / 1000.0,
            summary.max as f64 / 1000.0,
            hits as f64 / QUERIES as f64
        );
        report.print(
            &Figure::new(
                format!("{name} search p99 ({})", kind.name()),
                summary.p99 as f64 / 1000.0,
                "ms",
            )
            .goal(Goal::AtMost(target_ms))
            .note(note),
        );
    }
    export(report, name, store, &filter).await
}

/// Times a CSV export of every message matching a common word: the streamed export path the
/// console's download uses, read as fast as it is written.
async fn export(
    report: &mut Report,
    name: &str,
    store: &Arc<dyn Store>,
    filter: &HistoryFilter,
) -> Result<()> {
    let query = Query::parse("订单").ok_or("unsearchable")?;
    let started = Instant::now();
    let mut chunks = server::web::export::start(
        store.clone(),
        filter.clone(),
        Some(query),
        server::web::export::Format::Csv,
    );
    let (mut bytes, mut rows) = (0_usize, 0_usize);
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        bytes += chunk.len();
        rows += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    report.info(format!(
        "{name} export (CSV, every message with 订单): {:.0} rows/s, {:.1} MB/s \
         ({rows} lines, {:.1} MB in {seconds:.1} s)",
        rows as f64 / seconds,
        bytes as f64 / 1e6 / seconds,
        bytes as f64 / 1e6
    ));
    Ok(())
}

/// Stores `messages` messages in conversations of [`PER_CONVERSATION`] on a new site and
/// returns the site's id.
async fn fill(store: &Arc<dyn Store>, messages: usize) -> Result<store::SiteId> {
    let now = store::now_millis();
    let site = store
        .create_site(NewSite {
            public_key: "bench-history".to_owned(),
            name: "History bench".to_owned(),
            allowed_origins: Vec::new(),
            widget_settings: serde_json::json!({}),
            created_at: now,
        })
        .await?;
    let conversations = messages / PER_CONVERSATION;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..PARALLEL {
        let store = store.clone();
        tasks.spawn(async move {
            let mut rng = Rng(worker as u64 + 1);
            for n in (worker..conversations).step_by(PARALLEL) {
                let visitor = store
                    .upsert_visitor(site.id, &format!("v{}", n % 2000), now)
                    .await?;
                let conversation = store.create_conversation(site.id, visitor.id, now).await?;
                let language = rng.below(5);
                // Ninety days of history, one conversation after another.
                let start =
                    now - 90 * 86_400_000 + (n as i64 * 86_400_000 * 90) / conversations as i64;
                let batch: Vec<NewMessage> = (0..PER_CONVERSATION)
                    .map(|i| {
                        let visitor_turn = i % 2 == 0;
                        let mut body = match language {
                            0 | 1 => sentence(&mut rng, CHINESE, false),
                            2 => sentence(&mut rng, JAPANESE, false),
                            _ => sentence(&mut rng, ENGLISH, true),
                        };
                        if i == 0 {
                            body.push(' ');
                            body.push_str(&order_number(n));
                        }
                        NewMessage {
                            client_id: ClientId(format!("b{n}-{i}")),
                            author: if visitor_turn {
                                Author::Visitor
                            } else {
                                Author::Agent
                            },
                            agent_id: None,
                            body,
                            attachment: None,
                            created_at: start + i as i64 * 20_000,
                        }
                    })
                    .collect();
                store.import_messages(conversation.id, &batch).await?;
            }
            Ok::<(), store::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(site.id)
}

/// A database of the bench's own: a SQLite file in a temporary directory, or a new database on
/// a server, dropped again by [`BenchDb::drop_database`].
struct BenchDb {
    store: Arc<dyn Store>,
    /// The server's admin URL and the database's name, for dropping it.
    server: Option<(String, String)>,
    /// Keeps the SQLite file's directory until the bench is done.
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    async fn create(server: Option<&str>) -> Result<BenchDb> {
        let Some(admin) = server else {
            let dir = tempfile::tempdir()?;
            let url = DatabaseUrl::parse(&format!(
                "sqlite://{}",
                dir.path().join("kefu.db").display()
            ))?;
            return Ok(BenchDb {
                store: store::connect(&url).await?,
                server: None,
                _dir: Some(dir),
            });
        };
        let name = format!("kefu_bench_history_{}", std::process::id());
        admin_execute(admin, &format!("CREATE DATABASE {name}")).await?;
        let mut url = url::Url::parse(admin)?;
        url.set_path(&format!("/{name}"));
        let store = store::connect(&DatabaseUrl::parse(url.as_str())?).await?;
        Ok(BenchDb {
            store,
            server: Some((admin.to_owned(), name)),
            _dir: None,
        })
    }

    /// Updates the planner's statistics, as autovacuum (PostgreSQL) and InnoDB's automatic
    /// recalculation (MariaDB) do on a live install some time after a bulk load.
    async fn analyze(&self) -> Result<()> {
        if let Some((admin, name)) = &self.server {
            let mut url = url::Url::parse(admin)?;
            url.set_path(&format!("/{name}"));
            let sql = if admin.starts_with("postgres") {
                "ANALYZE"
            } else {
                "ANALYZE TABLE messages, conversations"
            };
            admin_execute(url.as_str(), sql).await?;
        }
        Ok(())
    }

    async fn drop_database(self) {
        let BenchDb { store, server, .. } = self;
        drop(store);
        if let Some((admin, name)) = server {
            // Give the pool a moment to close its connections before PostgreSQL refuses.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let force = if admin.starts_with("postgres") {
                " WITH (FORCE)"
            } else {
                ""
            };
            if let Err(error) =
                admin_execute(&admin, &format!("DROP DATABASE IF EXISTS {name}{force}")).await
            {
                eprintln!("kefu-bench: could not drop {name}: {error}");
            }
        }
    }
}

/// Runs one administrative statement on its own connection to `admin`.
pub(crate) async fn admin_execute(admin: &str, sql: &str) -> Result<()> {
    let statement = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match DatabaseUrl::parse(admin)?.backend() {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin).await?;
            statement.execute(&mut conn).await?;
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(admin).await?;
            statement.execute(&mut conn).await?;
        }
        Backend::Sqlite => return Err("a server URL was expected".into()),
    }
    Ok(())
}
