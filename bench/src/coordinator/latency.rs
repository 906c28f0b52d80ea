//! Latency: sequential round trips on one connection, and open-loop runs that offer a fixed
//! rate and stamp each frame with the time it was written.

use super::*;
use protocol::ConversationId;

pub(super) async fn echo_rtt(addr: SocketAddr, rounds: usize) -> Result<Summary> {
    let mut ws = connect(addr, Some(local_source(0)), "/", None, None).await?;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds + rounds / 10 {
        let sent = now_us();
        send_text(
            &mut ws,
            send_frame(
                Some(ConversationId(1)),
                &format!("r{round}"),
                &stamped_body(sent),
            ),
        )
        .await?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .map_err(|_| "no echo within 5 s")?
                .ok_or("closed")??;
            if let Message::Text(text) = message
                && stamp_of(text.as_str()) == Some(sent)
            {
                break;
            }
        }
        // The first tenth warms the connection up.
        if round >= rounds / 10 {
            samples.push(now_us() - sent);
        }
    }
    Summary::of(samples).ok_or_else(|| "no samples".into())
}

/// Latency samples of frames stamped inside the measured window.
pub(super) struct Latency {
    pub(super) window: (u64, u64),
    pub(super) sent: AtomicU64,
    pub(super) samples: Mutex<Vec<u64>>,
}

impl Latency {
    /// Measures frames stamped between `warmup` and `warmup + measured` from now.
    pub(super) fn new(warmup: Duration, measured: Duration) -> Arc<Latency> {
        let start = now_us() + warmup.as_micros() as u64;
        Arc::new(Latency {
            window: (start, start + measured.as_micros() as u64),
            sent: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn in_window(&self, stamp: u64) -> bool {
        (self.window.0..self.window.1).contains(&stamp)
    }

    pub(super) fn sent(&self, stamp: u64) {
        if self.in_window(stamp) {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn received(&self, stamp: u64, now: u64) {
        if self.in_window(stamp)
            && let Ok(mut samples) = self.samples.lock()
        {
            samples.push(now.saturating_sub(stamp));
        }
    }

    pub(super) fn take(&self) -> (u64, Vec<u64>) {
        let samples = self
            .samples
            .lock()
            .map(|mut samples| std::mem::take(&mut *samples))
            .unwrap_or_default();
        (self.sent.load(Ordering::Relaxed), samples)
    }
}

pub(super) struct Paced {
    /// Connections that sent.
    pub(super) visitors: usize,
    pub(super) server_cpu: String,
    pub(super) summary: Option<Summary>,
    pub(super) sent: u64,
    pub(super) received: usize,
    pub(super) skipped: u64,
    pub(super) errors: Arc<Errors>,
}

impl Paced {
    pub(super) fn note(&self, sizes: &Sizes) -> String {
        let mut note = format!(
            "{} visitors, {:.0} s measured; {} sent, {} received; {}",
            self.visitors,
            sizes.paced_time.as_secs_f64(),
            self.sent,
            self.received,
            self.server_cpu
        );
        if self.skipped > 0 {
            note.push_str(&format!("; {} sends skipped (client behind)", self.skipped));
        }
        if self.errors.count() > 0 {
            note.push_str(&format!("; errors {}", self.errors.describe()));
        }
        note
    }
}

pub(super) type Sink = SplitSink<Ws, Message>;
pub(super) type MakeStamped = Box<dyn FnMut(u64) -> String + Send>;

/// A writer task per sink: each credit sends one frame stamped with the time it is written.
pub(super) fn stamped_writer(
    mut sink: Sink,
    mut make: MakeStamped,
    latency: Arc<Latency>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> mpsc::Sender<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1024);
    tasks.push(tokio::spawn(async move {
        while rx.recv().await.is_some() {
            let stamp = now_us();
            latency.sent(stamp);
            if sink.send(Message::Text(make(stamp).into())).await.is_err() {
                break;
            }
        }
    }));
    tx
}

/// Offers `rate` credits per second, round robin over `writers`, for `total`.
pub(super) async fn pace(writers: &[mpsc::Sender<()>], rate: f64, total: Duration) -> u64 {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let (mut offered, mut skipped) = (0u64, 0u64);
    loop {
        ticker.tick().await;
        let elapsed = started.elapsed();
        if elapsed >= total {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while offered < due {
            if writers[offered as usize % writers.len()]
                .try_send(())
                .is_err()
            {
                skipped += 1;
            }
            offered += 1;
        }
    }
    skipped
}

/// Records the stamps of every frame arriving on `stream`.
pub(super) fn stamp_reader(
    mut stream: futures_util::stream::SplitStream<Ws>,
    latency: Arc<Latency>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message
                && let Some(stamp) = stamp_of(text.as_str())
            {
                latency.received(stamp, now_us());
            }
        }
    })
}

/// Reads a visitor's frames, noting error frames.
pub(super) fn error_reader(
    mut stream: futures_util::stream::SplitStream<Ws>,
    errors: Arc<Errors>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message
                && frame_type(text.as_str()) == Some("error")
            {
                errors.note(text.as_str());
            }
        }
    })
}

pub(super) async fn finish_paced(
    visitors: usize,
    latency: &Latency,
    tasks: Vec<JoinHandle<()>>,
    skipped: u64,
    errors: Arc<Errors>,
    server_cpu: String,
) -> Paced {
    // Stragglers: everything sent in the window has a second to arrive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for task in tasks {
        task.abort();
    }
    let (sent, samples) = latency.take();
    let received = samples.len();
    Paced {
        visitors,
        server_cpu,
        summary: Summary::of(samples),
        sent,
        received,
        skipped,
        errors,
    }
}

pub(super) async fn echo_paced(addr: SocketAddr, sizes: &Sizes, echo: &Child) -> Result<Paced> {
    let conns = echo_conns(addr, sizes.paced_conns).await?;
    let latency = Latency::new(sizes.warmup, sizes.paced_time);
    let mut tasks = Vec::new();
    let mut writers = Vec::new();
    for (i, ws) in conns.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let mut n = 0u64;
        let make: MakeStamped = Box::new(move |stamp| {
            n += 1;
            send_frame(
                Some(ConversationId(1)),
                &format!("p{i}-{n}"),
                &stamped_body(stamp),
            )
        });
        writers.push(stamped_writer(sink, make, latency.clone(), &mut tasks));
        tasks.push(stamp_reader(stream, latency.clone()));
    }
    let meter = CpuMeter::start(echo);
    let skipped = pace(&writers, sizes.paced_rate, sizes.warmup + sizes.paced_time).await;
    let cpu = cpu_note(meter, echo, "echo server");
    let visitors = sizes.paced_conns;
    let errors = Arc::new(Errors::default());
    Ok(finish_paced(visitors, &latency, tasks, skipped, errors, cpu).await)
}

/// `visitors` new visitors (named from `prefix`) offering `rate` messages per second in all to
/// one agent console.
pub(super) async fn kefu_paced(
    sizes: &Sizes,
    fixture: &Fixture,
    server: &Child,
    (count, rate): (usize, f64),
    prefix: &'static str,
) -> Result<Paced> {
    let visitors = open_visitors(fixture, count, prefix).await?;
    // The console follows each conversation while the protocol lets one hello name them all
    // (`max_cursors`, 1,000); past that it has them from its site's live stream only.
    let cursors: Vec<(ConversationId, i64)> = if visitors.len() <= 1_000 {
        visitors.iter().map(|(_, c)| (*c, 1)).collect()
    } else {
        Vec::new()
    };
    let console = agent(fixture.addr, &fixture.cookies[2], &cursors).await?;
    let latency = Latency::new(sizes.warmup, sizes.paced_time);
    let errors = Arc::new(Errors::default());
    let mut tasks = Vec::new();
    let (console_sink, console_stream) = console.split();
    tasks.push(stamp_reader(console_stream, latency.clone()));
    let mut writers = Vec::new();
    for (i, (ws, conversation)) in visitors.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        let mut n = 0u64;
        let make: MakeStamped = Box::new(move |stamp| {
            n += 1;
            send_frame(
                Some(conversation),
                &format!("{prefix}{i}-{n}"),
                &stamped_body(stamp),
            )
        });
        writers.push(stamped_writer(sink, make, latency.clone(), &mut tasks));
        tasks.push(error_reader(stream, errors.clone()));
    }
    let meter = CpuMeter::start(server);
    let skipped = pace(&writers, rate, sizes.warmup + sizes.paced_time).await;
    let cpu = cpu_note(meter, server, "server");
    let run = finish_paced(count, &latency, tasks, skipped, errors, cpu).await;
    drop(console_sink);
    Ok(run)
}
