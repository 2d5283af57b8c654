//! The PostgreSQL server of the test run: a throwaway cluster (see
//! [`super::cluster`]) started once per test process with durability off, or
//! the existing server that `KEEL_TEST_DATABASE_URL` names.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Server {
    /// URL of a database to connect to for CREATE DATABASE.
    admin_url: String,
    /// How to build a URL for database `name`.
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("KEEL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => external(url),
        _ => start_cluster(),
    })
}

impl Server {
    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let name = format!("keel_test_{}_{n}", std::process::id());
        let admin = self.admin_url.clone();
        let sql = format!("CREATE DATABASE \"{name}\"");
        super::block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test server");
            sqlx::Executor::execute(&mut conn, sql.as_str())
                .await
                .expect("CREATE DATABASE");
        });
        (self.url_for)(&name)
    }
}

fn external(url: String) -> Server {
    let base = url.clone();
    Server {
        admin_url: url,
        url_for: Box::new(move |db| {
            let mut u = url::Url::parse(&base).expect("KEEL_TEST_DATABASE_URL is a URL");
            u.set_path(&format!("/{db}"));
            u.to_string()
        }),
    }
}

fn start_cluster() -> Server {
    let cluster = super::cluster::start(super::cluster::Durability::Off);
    Server {
        admin_url: cluster.url("postgres"),
        url_for: Box::new(move |db| cluster.url(db)),
    }
}
