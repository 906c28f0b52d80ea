//! Automatic assignment within an agent's capacity ([`crate::Assignment::assign_within_capacity`]),
//! once for every backend: each brings its SQL and begins the transaction its own way (SQLite
//! takes the write lock up front, MySQL reads committed rows), and the steps are the same.
//!
//! The conversation's row is locked before the agent's. Every other writer takes them in that
//! order too — a message or a manual assignment changes the conversation's row first, and the
//! foreign-key check then locks the agent's row in share mode — so an assignment can wait for
//! them but never deadlock with them.

use crate::{AgentId, ConversationId, Error, Result};

/// One backend's statements for an assignment, in the order they run; each binds the
/// parameters listed, in that order.
pub(crate) struct Sql {
    /// Locks the conversation's row and selects its `assignee_id` (conversation).
    pub lock_conversation: &'static str,
    /// Locks the agent's row and selects its `id` (agent).
    pub lock_agent: &'static str,
    /// Counts the agent's load as [`crate::Assignment::agent_loads`] does: its `open`
    /// conversations (agent).
    pub load: &'static str,
    /// Sets the conversation's assignee (agent, conversation).
    pub assign: &'static str,
    /// Sets the agent's `last_assigned_at` (turn, agent).
    pub take_turn: &'static str,
}

/// Runs [`crate::Assignment::assign_within_capacity`] in `tx`, which the backend has begun: commits
/// it when the conversation was assigned, and otherwise rolls it back here and now (a dropped
/// transaction is only rolled back when its connection is next used, and MySQL would hold the
/// locks until then).
pub(crate) async fn within_capacity<DB>(
    mut tx: sqlx::Transaction<'_, DB>,
    sql: &Sql,
    conversation: ConversationId,
    agent: AgentId,
    max_chats: i64,
    turn_ms: i64,
) -> Result<bool>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
{
    let outcome = steps(&mut tx, sql, conversation, agent, max_chats, turn_ms).await;
    let ended = if matches!(outcome, Ok(true)) {
        tx.commit().await
    } else {
        tx.rollback().await
    };
    let assigned = outcome?;
    ended?;
    Ok(assigned)
}

/// The reads and, if the agent has room, the writes of an assignment; `Ok(true)` once written.
async fn steps<DB>(
    conn: &mut DB::Connection,
    sql: &Sql,
    conversation: ConversationId,
    agent: AgentId,
    max_chats: i64,
    turn_ms: i64,
) -> Result<bool>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Decode<'t, DB> + sqlx::Type<DB>,
{
    let assignee: Option<Option<AgentId>> = sqlx::query_scalar(sql.lock_conversation)
        .bind(conversation)
        .fetch_optional(&mut *conn)
        .await?;
    match assignee {
        None => return Err(Error::NotFound),
        Some(Some(_)) => return Ok(false),
        Some(None) => {}
    }
    let found: Option<AgentId> = sqlx::query_scalar(sql.lock_agent)
        .bind(agent)
        .fetch_optional(&mut *conn)
        .await?;
    if found.is_none() {
        return Err(Error::NotFound);
    }
    let load: i64 = sqlx::query_scalar(sql.load)
        .bind(agent)
        .fetch_one(&mut *conn)
        .await?;
    if load >= max_chats {
        return Ok(false);
    }
    // The conversation's row is locked and was unassigned, so this changes it.
    sqlx::query(sql.assign)
        .bind(agent)
        .bind(conversation)
        .execute(&mut *conn)
        .await?;
    sqlx::query(sql.take_turn)
        .bind(turn_ms)
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
