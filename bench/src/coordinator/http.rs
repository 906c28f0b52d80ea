//! HTTP-fallback delivery: long-poll clients wait while an agent sends over WebSocket.

use super::latency::{Latency, MakeStamped, error_reader, pace, stamped_writer};
use super::*;
use protocol::ConversationId;

pub(super) struct HttpRun {
    pub(super) server_cpu: String,
    pub(super) summary: Option<Summary>,
    pub(super) sent: u64,
    pub(super) received: usize,
    pub(super) errors: Arc<Errors>,
}

impl HttpRun {
    pub(super) fn counts(&self) -> String {
        let mut counts = format!(
            "{} sent, {} received; {}",
            self.sent, self.received, self.server_cpu
        );
        if self.errors.count() > 0 {
            counts.push_str(&format!("; errors {}", self.errors.describe()));
        }
        counts
    }
}

/// A visitor created over HTTP: hello and a first message in one request.
pub(crate) async fn http_visitor(
    client: &reqwest::Client,
    base: &str,
    fixture: &Fixture,
    i: usize,
) -> Result<(String, ConversationId)> {
    let body = format!(
        "[{},{}]",
        visitor_hello(&fixture.site_key, None, &[]),
        send_frame(None, &format!("http-first-{i}"), "hello")
    );
    let response = client
        .post(format!(
            "{base}{}",
            protocol::transport::HTTP_VISITOR_SEND_PATH
        ))
        .header("content-type", "application/json")
        .header("origin", crate::client::ORIGIN)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let frames: Vec<ServerFrame> = serde_json::from_slice(&response.bytes().await?)?;
    let mut token = None;
    let mut conversation = None;
    for frame in frames {
        match frame {
            ServerFrame::Welcome(welcome) => token = welcome.visitor_token,
            ServerFrame::Ack {
                conversation_id, ..
            } => conversation = Some(conversation_id),
            _ => {}
        }
    }
    match (token, conversation) {
        (Some(token), Some(conversation)) => Ok((token, conversation)),
        _ => Err(format!("HTTP hello + send answered {status} without welcome and ack").into()),
    }
}

/// Long-polls one visitor's conversation again and again, recording agent messages' stamps.
#[allow(clippy::too_many_arguments)]
pub(super) async fn poller(
    client: reqwest::Client,
    base: String,
    token: String,
    conversation: ConversationId,
    latency: Arc<Latency>,
    waiting: Arc<AtomicUsize>,
    errors: Arc<Errors>,
    stop: Arc<AtomicBool>,
) {
    let mut cursor = 1;
    while !stop.load(Ordering::Relaxed) {
        let url = format!(
            "{base}{}?cursors={conversation}:{cursor}&wait=25",
            protocol::transport::HTTP_VISITOR_EVENTS_PATH
        );
        waiting.fetch_add(1, Ordering::SeqCst);
        let response = client
            .get(url)
            .header(protocol::transport::VISITOR_TOKEN_HEADER, &token)
            .header("origin", crate::client::ORIGIN)
            .send()
            .await;
        let body = match response {
            Ok(response) if response.status().is_success() => response.bytes().await,
            Ok(response) => {
                waiting.fetch_sub(1, Ordering::SeqCst);
                errors.note(format!("poll answered {}", response.status()));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(error) => Err(error),
        };
        waiting.fetch_sub(1, Ordering::SeqCst);
        let now = now_us();
        let frames = match body.map_err(|e| e.to_string()).and_then(|body| {
            serde_json::from_slice::<Vec<ServerFrame>>(&body).map_err(|e| e.to_string())
        }) {
            Ok(frames) => frames,
            Err(error) => {
                errors.note(error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for frame in frames {
            if let ServerFrame::Message(message) = frame
                && message.conversation_id == conversation
            {
                cursor = cursor.max(message.seq);
                if message.author == Author::Agent
                    && let Some(stamp) = message
                        .body
                        .strip_prefix("t=")
                        .and_then(|digits| digits.parse().ok())
                {
                    latency.received(stamp, now);
                }
            }
        }
    }
}

pub(super) async fn http_fallback(
    sizes: &Sizes,
    fixture: &Fixture,
    server: &Child,
) -> Result<HttpRun> {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1)))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(40))
        .build()?;
    let base = format!("http://{}", fixture.addr);
    let created: Vec<Result<(String, ConversationId)>> =
        futures_util::stream::iter(0..sizes.http_clients)
            .map(|i| http_visitor(&client, &base, fixture, i))
            .buffer_unordered(32)
            .collect()
            .await;
    let visitors: Vec<(String, ConversationId)> = created.into_iter().collect::<Result<_>>()?;
    let conversations: Vec<ConversationId> = visitors.iter().map(|(_, c)| *c).collect();

    // Everyone polls; wait until every poll is out and give the server a moment to hold them.
    let waiting = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Errors::default());
    let stop = Arc::new(AtomicBool::new(false));
    let lead = Duration::from_secs(1);
    let latency = Latency::new(lead + sizes.warmup, sizes.http_time);
    let mut tasks: Vec<JoinHandle<()>> = visitors
        .into_iter()
        .map(|(token, conversation)| {
            tokio::spawn(poller(
                client.clone(),
                base.clone(),
                token,
                conversation,
                latency.clone(),
                waiting.clone(),
                errors.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiting.load(Ordering::SeqCst) < sizes.http_clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(lead.saturating_sub(Duration::from_millis(100))).await;

    // One agent answers them over WebSocket, round robin.
    let console = agent(fixture.addr, &fixture.cookies[3], &[]).await?;
    let (sink, stream) = console.split();
    tasks.push(error_reader(stream, errors.clone()));
    let mut n = 0usize;
    let make: MakeStamped = Box::new(move |stamp| {
        let conversation = conversations[n % conversations.len()];
        n += 1;
        send_frame(
            Some(conversation),
            &format!("http-agent-{n}"),
            &stamped_body(stamp),
        )
    });
    let writer = stamped_writer(sink, make, latency.clone(), &mut tasks);
    let meter = CpuMeter::start(server);
    let skipped = pace(
        std::slice::from_ref(&writer),
        sizes.http_rate,
        sizes.warmup + sizes.http_time,
    )
    .await;
    let server_cpu = cpu_note(meter, server, "server");
    if skipped > 0 {
        errors.note(format!("{skipped} agent sends skipped (client behind)"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let (sent, samples) = latency.take();
    Ok(HttpRun {
        server_cpu,
        received: samples.len(),
        summary: Summary::of(samples),
        sent,
        errors,
    })
}
