//! The one place the backends' SQL differs in writing: a query is written once in the
//! canonical form that the table in [`crate::sql`] describes, and [`render`] writes it in the
//! dialect of the backend it runs on. A leaf: the query modules and the copy both use it.

/// Which backend's SQL [`render`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: the canonical form, but `MAX`/`MIN` for `GREATEST`/`LEAST` and no `FOR UPDATE`.
    Sqlite,
    /// PostgreSQL: numbered placeholders.
    Postgres,
    /// MySQL/MariaDB: backquoted names, `ON DUPLICATE KEY`, no `RETURNING`.
    MySql,
}

impl Dialect {
    /// `name` quoted as an identifier: `"name"`, or `` `name` `` on MySQL/MariaDB.
    pub(crate) fn quote(self, name: &str) -> String {
        match self {
            Dialect::MySql => format!("`{name}`"),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{name}\""),
        }
    }
}

/// `text`, written in the canonical form (see the module's table), in `dialect`.
pub(crate) fn render(dialect: Dialect, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut placeholder = 0;
    let mut code = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // A string literal, copied as it is ('' is an escaped quote inside it).
                out.push_str(&rewrite_code(dialect, &std::mem::take(&mut code)));
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\'' {
                        if chars.peek() == Some(&'\'') {
                            out.extend(chars.next());
                        } else {
                            break;
                        }
                    }
                }
            }
            '?' if dialect == Dialect::Postgres => {
                placeholder += 1;
                code.push_str(&format!("${placeholder}"));
            }
            '"' if dialect == Dialect::MySql => code.push('`'),
            _ => code.push(c),
        }
    }
    out.push_str(&rewrite_code(dialect, &code));
    out
}

/// The keyword rewrites of [`render`] on a stretch of SQL with no string literal in it.
fn rewrite_code(dialect: Dialect, code: &str) -> String {
    match dialect {
        Dialect::Postgres => code.to_owned(),
        Dialect::Sqlite => code
            .replace("GREATEST(", "MAX(")
            .replace("LEAST(", "MIN(")
            .replace(" FOR UPDATE SKIP LOCKED", "")
            .replace(" FOR UPDATE", ""),
        Dialect::MySql => {
            let code = code
                .split_once(" RETURNING ")
                .map_or(code, |(head, _)| head);
            let code = &code
                .replace(" AS BIGINT)", " AS SIGNED)")
                .replace(" AS TEXT)", " AS CHAR)")
                .replace(" IS NOT DISTINCT FROM ", " <=> ");
            match code.split_once("ON CONFLICT (") {
                None => code.to_owned(),
                Some((head, rest)) => {
                    let (keys, action) = rest.split_once(')').unwrap_or((rest, ""));
                    let action = action.trim_start();
                    let update = match action.strip_prefix("DO UPDATE SET ") {
                        Some(sets) => sets
                            .replace("excluded.`", "VALUES(`")
                            .replace("excluded.", "VALUES("),
                        None => {
                            let first = keys.split(',').next().unwrap_or(keys).trim();
                            format!("{first} = {first}")
                        }
                    };
                    format!("{head}ON DUPLICATE KEY UPDATE {}", close_values(&update))
                }
            }
        }
    }
}

/// Closes each `VALUES(name` that [`rewrite_code`] opened for an `excluded.name`.
fn close_values(sets: &str) -> String {
    let mut out = String::with_capacity(sets.len() + 8);
    let mut rest = sets;
    while let Some(at) = rest.find("VALUES(") {
        let (before, after) = rest.split_at(at + "VALUES(".len());
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '`'))
            .unwrap_or(after.len());
        out.push_str(&after[..end]);
        out.push(')');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Dialect, render};

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let text = "SELECT a FROM t WHERE b = ? AND c = ?";
        assert_eq!(
            render(Dialect::Postgres, text),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
        assert_eq!(render(Dialect::MySql, text), text);
        assert_eq!(render(Dialect::Sqlite, text), text);
    }

    #[test]
    fn string_literals_are_left_alone() {
        let text = r#"SELECT '?', 'it''s "x"?' FROM t WHERE "key" = ?"#;
        assert_eq!(
            render(Dialect::Postgres, text),
            r#"SELECT '?', 'it''s "x"?' FROM t WHERE "key" = $1"#
        );
        assert_eq!(
            render(Dialect::MySql, text),
            r#"SELECT '?', 'it''s "x"?' FROM t WHERE `key` = ?"#
        );
    }

    #[test]
    fn upserts_become_on_duplicate_key_on_mysql() {
        let text = r#"INSERT INTO settings ("key", value) VALUES (?, ?) ON CONFLICT ("key") DO UPDATE SET value = excluded.value, n = excluded.n + 1"#;
        assert_eq!(
            render(Dialect::MySql, text),
            "INSERT INTO settings (`key`, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), n = VALUES(n) + 1"
        );
        assert_eq!(render(Dialect::Sqlite, text), text);
        let nothing = "INSERT INTO m (a, b) VALUES (?, ?) ON CONFLICT (a, b) DO NOTHING";
        assert_eq!(
            render(Dialect::MySql, nothing),
            "INSERT INTO m (a, b) VALUES (?, ?) ON DUPLICATE KEY UPDATE a = a"
        );
    }

    #[test]
    fn mysql_casts_to_signed_and_char() {
        assert_eq!(
            render(Dialect::MySql, "SELECT CAST(SUM(a) AS BIGINT) FROM t"),
            "SELECT CAST(SUM(a) AS SIGNED) FROM t"
        );
        assert_eq!(
            render(Dialect::MySql, "SELECT CAST(MAX(id) AS TEXT) FROM t"),
            "SELECT CAST(MAX(id) AS CHAR) FROM t"
        );
    }

    #[test]
    fn null_safe_equality_is_spaceship_on_mysql() {
        let text = "UPDATE t SET a = ? WHERE b IS NOT DISTINCT FROM ?";
        assert_eq!(
            render(Dialect::MySql, text),
            "UPDATE t SET a = ? WHERE b <=> ?"
        );
        assert_eq!(render(Dialect::Sqlite, text), text);
    }

    #[test]
    fn returning_is_dropped_on_mysql_only() {
        assert_eq!(
            render(
                Dialect::MySql,
                "UPDATE t SET a = ? WHERE id = ? RETURNING id, a"
            ),
            "UPDATE t SET a = ? WHERE id = ?"
        );
        let text = "INSERT INTO t (a) VALUES (?) RETURNING id";
        assert_eq!(render(Dialect::MySql, text), "INSERT INTO t (a) VALUES (?)");
        assert_eq!(
            render(Dialect::Postgres, text),
            "INSERT INTO t (a) VALUES ($1) RETURNING id"
        );
    }

    #[test]
    fn sqlite_has_max_for_greatest_and_no_row_locks() {
        assert_eq!(
            render(
                Dialect::Sqlite,
                "UPDATE t SET a = GREATEST(a, ?) WHERE id = (SELECT id FROM u FOR UPDATE)"
            ),
            "UPDATE t SET a = MAX(a, ?) WHERE id = (SELECT id FROM u)"
        );
        assert_eq!(
            render(
                Dialect::Sqlite,
                "SELECT id FROM u LIMIT ? FOR UPDATE SKIP LOCKED"
            ),
            "SELECT id FROM u LIMIT ?"
        );
    }
}
