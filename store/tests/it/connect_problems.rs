//! The usual set-up mistakes, against the real PostgreSQL and MariaDB servers (and a port
//! nothing listens on): `store::check`, the setup wizard's "test connection", says which
//! mistake each is, quickly; and a user who may connect but not create tables is found out.

use store::{ConnectProblem, DatabaseUrl};

fn pg_url() -> String {
    std::env::var("PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn mysql_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// The problem `store::check` reports for `url`.
async fn problem(url: &str) -> Option<ConnectProblem> {
    let url = DatabaseUrl::parse(url).expect("a database URL");
    match store::check(&url).await {
        Ok(()) => panic!("{url} connected"),
        Err(error) => error.connect_problem(),
    }
}

/// `url` with `user:password@` put in front of the host.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` naming database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database");
    format!("{base}/{name}")
}

#[tokio::test]
async fn each_set_up_mistake_is_told_apart_on_postgres_and_mariadb() {
    for url in [pg_url(), mysql_url()] {
        let scheme = url.split_once("://").expect("scheme").0.to_owned();
        assert_eq!(
            problem(&format!("{scheme}://kefu@127.0.0.1:9/kefu")).await,
            Some(ConnectProblem::Unreachable),
            "{scheme}: nothing listens"
        );
        assert_eq!(
            problem(&with_user(&url, "kefu_nobody", "wrong password")).await,
            Some(ConnectProblem::BadCredentials),
            "{scheme}: unknown user or wrong password"
        );
        assert_eq!(
            problem(&with_database(&url, "kefu_no_such_database")).await,
            Some(ConnectProblem::NoDatabase),
            "{scheme}: missing database"
        );
    }
}

#[tokio::test]
async fn a_working_database_passes_and_a_user_without_create_rights_does_not() {
    for url in [pg_url(), mysql_url()] {
        store::check(&DatabaseUrl::parse(&url).expect("url"))
            .await
            .expect("the suite's own database passes");
    }
    // A PostgreSQL role that may log in and connect, but not create tables in `public`.
    let admin = DatabaseUrl::parse(&pg_url()).expect("url");
    let database = format!("kefu_probe_{}", std::process::id());
    let role = format!("kefu_reader_{}", std::process::id());
    let statements = [
        format!("DROP DATABASE IF EXISTS {database}"),
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN PASSWORD 'reader'"),
        format!("CREATE DATABASE {database}"),
        format!("REVOKE CREATE ON DATABASE {database} FROM PUBLIC"),
    ];
    run(&admin, &statements).await;
    let probe = with_database(&pg_url(), &database);
    run(
        &DatabaseUrl::parse(&probe).expect("url"),
        &["REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned()],
    )
    .await;
    let reader = with_user(&probe, &role, "reader");
    assert_eq!(problem(&reader).await, Some(ConnectProblem::NoPrivilege));
    run(
        &admin,
        &[
            format!("DROP DATABASE {database}"),
            format!("DROP ROLE {role}"),
        ],
    )
    .await;
}

/// Runs `statements` on `url` as they are.
async fn run(url: &DatabaseUrl, statements: &[String]) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url.expose_secret())
        .await
        .expect("connect");
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut conn)
            .await
            .expect("statement");
    }
}
