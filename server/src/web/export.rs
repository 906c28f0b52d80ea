//! History export: the messages a history filter (and, optionally, a search) selects, written
//! as CSV or JSON a page at a time into a bounded channel, so a year of history streams out in
//! constant memory and stops being read from the database as soon as the client goes away.
//!
//! With a search the rows are the matching messages, newest first (the order the history page
//! shows them in); without one they are the whole transcripts of the selected conversations,
//! most recently updated conversation first, each in its own order.

use std::collections::HashMap;
use std::sync::Arc;

use app::error::ConsoleError;
use app::pages::history::HistoryParams;
use axum::body::{Body, Bytes};
use axum::extract::{Query as UrlQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use store::search::Query;
use store::{HistoryFilter, Message, Store};
use tokio::sync::mpsc;

use crate::web::signed_in::SignedIn;
use crate::web::state::AppState;

/// Rows read from the store per query.
const PAGE: u32 = 500;

/// Conversations read per query when exporting whole transcripts.
const CONVERSATION_PAGE: u32 = 100;

/// Chunks buffered ahead of a slow client: the backpressure that keeps memory constant.
const BUFFERED_CHUNKS: usize = 4;

/// The file formats an export can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row (RFC 4180), for spreadsheets.
    Csv,
    /// One JSON array of message objects.
    Json,
}

impl Format {
    /// The format named `csv` or `json`.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// `GET /console/history/export?format=csv|json&…`: the history page's filters (the same
/// query string), for the signed-in agent's sites, as a download.
pub async fn download(
    State(state): State<AppState>,
    SignedIn(agent): SignedIn,
    UrlQuery(query): UrlQuery<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, text: &'static str| (status, text).into_response();
    let Some(format) = query.get("format").and_then(|f| Format::parse(f)) else {
        return refuse(StatusCode::BAD_REQUEST, "format must be csv or json");
    };
    let store = state.store.clone();
    let sites = match store.agent_sites(agent.id).await {
        Ok(sites) => sites,
        Err(error) => {
            tracing::error!(%error, "history export: reading the agent's sites failed");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let params = HistoryParams::from_query(|key| query.get(key).cloned());
    let (filter, search) = match params.filter(&sites) {
        Ok(selection) => selection,
        Err(ConsoleError::NotFound) => return refuse(StatusCode::NOT_FOUND, "no such site"),
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "invalid filter"),
    };
    let chunks = start(store, filter, search, format);
    let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let day = jiff::Timestamp::now().strftime("%Y%m%d");
    let disposition = format!(
        "attachment; filename=\"kefu-history-{day}.{}\"",
        format.extension()
    );
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Starts writing the export on a task of its own and returns its chunks. A store error ends
/// the stream with an error (the client sees a truncated download, and the log says why).
pub fn start(
    store: Arc<dyn Store>,
    filter: HistoryFilter,
    query: Option<Query>,
    format: Format,
) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel(BUFFERED_CHUNKS);
    tokio::spawn(async move {
        let mut writer = Writer {
            tx: tx.clone(),
            format,
            rows: 0,
        };
        match writer.run(store.as_ref(), &filter, query.as_ref()).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Store(error)) => {
                tracing::error!(%error, "history export failed");
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
        }
    });
    rx
}

/// Why an export ended early.
enum Stop {
    /// The client went away: nobody reads the chunks any more.
    Gone,
    /// The store failed.
    Store(store::Error),
}

impl From<store::Error> for Stop {
    fn from(error: store::Error) -> Self {
        Stop::Store(error)
    }
}

/// Encodes rows and hands each page to the channel.
struct Writer {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    format: Format,
    /// Rows written so far (JSON needs a comma before every row but the first).
    rows: u64,
}

impl Writer {
    async fn run(
        &mut self,
        store: &dyn Store,
        filter: &HistoryFilter,
        query: Option<&Query>,
    ) -> Result<(), Stop> {
        self.send(match self.format {
            Format::Csv => "conversation_id,message_id,seq,sent_at,author,agent_id,text\r\n".into(),
            Format::Json => "[".into(),
        })
        .await?;
        match query {
            Some(query) => {
                let mut before = None;
                loop {
                    let page = store.search_messages(filter, query, before, PAGE).await?;
                    let Some(last) = page.last() else { break };
                    before = Some(last.id);
                    self.write(&page).await?;
                }
            }
            None => {
                let mut after = None;
                loop {
                    let conversations = store.history(filter, after, CONVERSATION_PAGE).await?;
                    let Some(last) = conversations.last() else {
                        break;
                    };
                    after = Some(last.cursor());
                    for conversation in &conversations {
                        let mut seq = 0;
                        loop {
                            let page = store.messages_after(conversation.id, seq, PAGE).await?;
                            let Some(last) = page.last() else { break };
                            seq = last.seq;
                            self.write(&page).await?;
                        }
                    }
                }
            }
        }
        if self.format == Format::Json {
            self.send("]".into()).await?;
        }
        Ok(())
    }

    /// Encodes `messages` and sends them as one chunk.
    async fn write(&mut self, messages: &[Message]) -> Result<(), Stop> {
        let mut chunk = String::new();
        for message in messages {
            match self.format {
                Format::Csv => csv_row(&mut chunk, message),
                Format::Json => {
                    if self.rows > 0 {
                        chunk.push(',');
                    }
                    chunk.push_str(&json_row(message).to_string());
                }
            }
            self.rows += 1;
        }
        self.send(chunk).await
    }

    async fn send(&self, chunk: String) -> Result<(), Stop> {
        self.tx
            .send(Ok(Bytes::from(chunk)))
            .await
            .map_err(|_| Stop::Gone)
    }
}

/// When a message was sent, as RFC 3339 UTC (`2026-11-27T08:00:00Z`).
fn sent_at(message: &Message) -> String {
    jiff::Timestamp::from_millisecond(message.created_at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn json_row(message: &Message) -> serde_json::Value {
    serde_json::json!({
        "conversation_id": message.conversation_id,
        "message_id": message.id,
        "seq": message.seq,
        "sent_at": sent_at(message),
        "author": message.author.as_str(),
        "agent_id": message.agent_id,
        "text": message.body,
        "attachment": message.attachment.as_ref().map(|a| &a.name),
    })
}

fn csv_row(out: &mut String, message: &Message) {
    let fields = [
        message.conversation_id.to_string(),
        message.id.to_string(),
        message.seq.to_string(),
        sent_at(message),
        message.author.as_str().to_owned(),
        message
            .agent_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        message.body.clone(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

/// One CSV field, quoted. Visitor text is hostile: a cell a spreadsheet would run as a formula
/// (`=HYPERLINK(…)`, `+`, `-`, `@`, or a leading tab or carriage return) is prefixed with `'`,
/// as OWASP recommends, so it is shown as text.
fn csv_field(out: &mut String, field: &str) {
    out.push('"');
    if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&field.replace('"', "\"\""));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "say \"hi\", ok");
        out.push(',');
        csv_field(&mut out, "=HYPERLINK(\"http://evil\")");
        out.push(',');
        csv_field(&mut out, "退款\nline two");
        assert_eq!(
            out,
            "\"say \"\"hi\"\", ok\",\"'=HYPERLINK(\"\"http://evil\"\")\",\"退款\nline two\""
        );
    }
}
