//! The migrations go up, all the way down, and up again on both backends.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Backend, drop_pg_database, fresh_database};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use relay_server::db::{DbConnection, revert_all_migrations, run_migrations};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

const TABLES: &[&str] = &[
    "users",
    "sessions",
    "login_challenges",
    "email_codes",
    "recovery_codes",
    "ms_id_holds",
    "friend_requests",
    "friendships",
    "blocks",
    "security_events",
    "devices",
    "signed_prekeys",
    "one_time_prekeys",
    "envelopes",
    "attachments",
    "rooms",
    "room_members",
];

fn tables(conn: &mut DbConnection) -> Vec<String> {
    let rows = match conn {
        DbConnection::Sqlite(c) => {
            diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'").load::<Name>(c)
        }
        DbConnection::Pg(c) => diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public'",
        )
        .load::<Name>(c),
    };
    rows.unwrap().into_iter().map(|n| n.name).collect()
}

fn up_down_up(backend: Backend) {
    let Some((url, pg_name, sqlite_path)) = fresh_database(backend) else {
        return;
    };
    let target = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
    let mut conn = DbConnection::establish(&target).unwrap();
    run_migrations(&mut conn).unwrap();
    let present = tables(&mut conn);
    for t in TABLES {
        assert!(present.iter().any(|p| p == t), "{t} missing after up");
    }
    revert_all_migrations(&mut conn).unwrap();
    let present = tables(&mut conn);
    for t in TABLES {
        assert!(!present.iter().any(|p| p == t), "{t} left after down");
    }
    run_migrations(&mut conn).unwrap();
    let present = tables(&mut conn);
    for t in TABLES {
        assert!(present.iter().any(|p| p == t), "{t} missing after up again");
    }
    drop(conn);
    if let Some(name) = pg_name {
        drop_pg_database(&name);
    }
    if let Some(path) = sqlite_path {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn migrations_sqlite() {
    up_down_up(Backend::Sqlite);
}

#[test]
fn migrations_postgres() {
    up_down_up(Backend::Postgres);
}

/// Start-up on a SQLite database whose lock another connection holds waits for the lock
/// (`busy_timeout` is set before any statement that needs it) instead of failing at once with
/// "database is locked". The holder lets go only after the relay has started opening the
/// database, so without the wait the open fails every time; with it, it always succeeds.
#[test]
fn sqlite_start_waits_for_a_locked_database() {
    let (url, _, path) = fresh_database(Backend::Sqlite).unwrap();
    let target = url.strip_prefix("sqlite://").unwrap().to_owned();
    let mut holder = diesel::SqliteConnection::establish(&target).unwrap();
    holder
        .batch_execute("CREATE TABLE t (x INTEGER); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
        .unwrap();
    let (started, opening) = std::sync::mpsc::channel();
    let opener = std::thread::spawn(move || {
        started.send(()).unwrap();
        relay_server::db::Db::connect_waiting(&url, std::time::Duration::from_secs(120))
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    opening.recv().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    holder.batch_execute("COMMIT").unwrap();
    let opened = opener.join().unwrap();
    drop(holder);
    if let Some(path) = path {
        let _ = std::fs::remove_file(path);
    }
    assert_eq!(opened, Ok(()), "start-up must wait for the lock");
}
