//! Closed-loop throughput: each connection keeps a few sends in flight and sends the next
//! one when an answer (an ack, or the echo) comes back.

use super::*;
use protocol::ConversationId;

/// What a received frame means to a closed-loop sender.
pub(super) enum Completion {
    /// A send completed (with the acked seq, for kefu).
    Done(Option<i64>),
    /// A send was refused.
    Refused(String),
    /// Not an answer to a send.
    Other,
}

/// One closed-loop connection: makes the next frame, and classifies what comes back.
pub(super) struct LoopConn {
    pub(super) ws: Ws,
    pub(super) make: Box<dyn FnMut() -> String + Send>,
    pub(super) classify: fn(&str) -> Completion,
    /// The highest seq acked on this connection.
    pub(super) acked_seq: Arc<AtomicI64>,
}

pub(super) struct Throughput {
    /// `server CPU x cores` over the measured seconds.
    pub(super) server_cpu: String,
    pub(super) rate: f64,
    pub(super) slowest_second: u64,
    pub(super) errors: Arc<Errors>,
}

/// Each connection keeps `window` sends in flight; counts completions per second after the
/// warm-up.
pub(super) async fn closed_loop(
    conns: Vec<LoopConn>,
    window: usize,
    warmup: Duration,
    measured: Duration,
    server: &Child,
) -> Throughput {
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Errors::default());
    let mut tasks = Vec::new();
    for conn in conns {
        let LoopConn {
            ws,
            mut make,
            classify,
            acked_seq,
        } = conn;
        let (mut sink, mut stream) = ws.split();
        let (credit_tx, mut credit_rx) = mpsc::channel::<()>(window + 1);
        let stop_writer = stop.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..window {
                if sink.send(Message::Text(make().into())).await.is_err() {
                    return;
                }
            }
            while credit_rx.recv().await.is_some() {
                if stop_writer.load(Ordering::Relaxed)
                    || sink.send(Message::Text(make().into())).await.is_err()
                {
                    break;
                }
            }
        }));
        let completed = completed.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                match classify(text.as_str()) {
                    Completion::Done(seq) => {
                        completed.fetch_add(1, Ordering::Relaxed);
                        if let Some(seq) = seq {
                            acked_seq.fetch_max(seq, Ordering::Relaxed);
                        }
                        let _ = credit_tx.try_send(());
                    }
                    Completion::Refused(why) => {
                        errors.note(why);
                        let _ = credit_tx.try_send(());
                    }
                    Completion::Other => {}
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    let start_count = completed.load(Ordering::Relaxed);
    let started = Instant::now();
    let meter = CpuMeter::start(server);
    let mut last = start_count;
    let mut slowest_second = u64::MAX;
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    for _ in 0..measured.as_secs().max(1) {
        ticker.tick().await;
        let now = completed.load(Ordering::Relaxed);
        slowest_second = slowest_second.min(now - last);
        last = now;
    }
    let rate = (last - start_count) as f64 / started.elapsed().as_secs_f64();
    let server_cpu = cpu_note(meter, server, "server");
    stop.store(true, Ordering::Relaxed);
    // Let the acks of sends in flight arrive (they are checked against the database).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for task in tasks {
        task.abort();
    }
    Throughput {
        server_cpu,
        rate,
        slowest_second,
        errors,
    }
}

pub(super) fn echo_completion(_: &str) -> Completion {
    Completion::Done(None)
}

pub(super) fn kefu_completion(text: &str) -> Completion {
    match frame_type(text) {
        Some("ack") => match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Ack { seq, .. }) => Completion::Done(Some(seq)),
            _ => Completion::Refused(format!("unreadable ack {text}")),
        },
        Some("error") => Completion::Refused(text.to_string()),
        _ => Completion::Other,
    }
}

pub(super) async fn echo_throughput(
    addr: SocketAddr,
    sizes: &Sizes,
    echo: &Child,
) -> Result<Throughput> {
    let conns = echo_conns(addr, sizes.throughput_conns).await?;
    let conns = conns
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let mut n = 0u64;
            LoopConn {
                ws,
                make: Box::new(move || {
                    n += 1;
                    send_frame(Some(ConversationId(1)), &format!("e{i}-{n}"), BODY)
                }),
                classify: echo_completion,
                acked_seq: Arc::new(AtomicI64::new(0)),
            }
        })
        .collect();
    Ok(closed_loop(
        conns,
        sizes.window,
        sizes.warmup,
        sizes.throughput_time,
        echo,
    )
    .await)
}

pub(super) async fn kefu_throughput(
    sizes: &Sizes,
    fixture: &Fixture,
    server: &Child,
) -> Result<(Throughput, String)> {
    let visitors = open_visitors(fixture, sizes.throughput_conns, "tp").await?;
    let console = tokio::spawn(drain_all(
        agent(fixture.addr, &fixture.cookies[1], &[]).await?,
    ));
    let mut acked = Vec::new();
    let conns = visitors
        .into_iter()
        .enumerate()
        .map(|(i, (ws, conversation))| {
            let acked_seq = Arc::new(AtomicI64::new(1));
            acked.push((conversation, acked_seq.clone()));
            let mut n = 0u64;
            LoopConn {
                ws,
                make: Box::new(move || {
                    n += 1;
                    send_frame(Some(conversation), &format!("tp{i}-{n}"), BODY)
                }),
                classify: kefu_completion,
                acked_seq,
            }
        })
        .collect();
    let run = closed_loop(
        conns,
        sizes.window,
        sizes.warmup,
        sizes.throughput_time,
        server,
    )
    .await;
    console.abort();
    let acked: Vec<(ConversationId, i64)> = acked
        .into_iter()
        .map(|(conversation, seq)| (conversation, seq.load(Ordering::Relaxed)))
        .collect();
    let check = verify_stored(fixture, &acked).await?;
    Ok((run, check.note))
}

/// What the database holds of the acked messages.
pub(crate) struct StoredCheck {
    /// Every acked message is stored.
    pub(crate) complete: bool,
    /// One line for the report.
    pub(crate) note: String,
}

/// Checks in the database that every acked message is stored (seqs are gap-free, so a
/// conversation whose `last_seq` is at least the highest acked seq holds every acked message).
pub(crate) async fn verify_stored(
    fixture: &Fixture,
    acked: &[(ConversationId, i64)],
) -> Result<StoredCheck> {
    let url = store::DatabaseUrl::parse(&format!("sqlite://{}", fixture.database.display()))?;
    let store = store::connect(&url).await?;
    let (mut total, mut short) = (0i64, 0usize);
    for &(conversation, seq) in acked {
        total += seq;
        let stored = store
            .conversation(conversation)
            .await?
            .map_or(0, |c| c.last_seq);
        if stored < seq {
            short += 1;
        }
    }
    Ok(StoredCheck {
        complete: short == 0,
        note: if short == 0 {
            format!(
                "checked in the database: all {} acked messages of the {} conversations are stored",
                number(total as f64),
                acked.len()
            )
        } else {
            format!("checked in the database: {short} conversations MISS acked messages")
        },
    })
}
