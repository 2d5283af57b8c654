//! Another client of the test database, kept open across steps of a
//! scenario: a transaction that holds a lock or a snapshot while keel runs.

use std::sync::mpsc::{Sender, channel};

type Reply = Sender<Result<(), String>>;

pub struct Session {
    requests: Option<Sender<(String, Reply)>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    /// Connects to `url` on a thread of its own.
    pub fn open(url: &str) -> Session {
        let url = url.to_string();
        let (requests, incoming) = channel::<(String, Reply)>();
        let (ready_tx, ready_rx) = channel();
        let worker = std::thread::spawn(move || {
            super::block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                ready_tx.send(()).unwrap();
                while let Ok((sql, reply)) = incoming.recv() {
                    let result = sqlx::raw_sql(&sql)
                        .execute(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
            })
        });
        ready_rx.recv().expect("the session connected");
        Session {
            requests: Some(requests),
            worker: Some(worker),
        }
    }

    /// Runs `sql` in this session and waits for it; panics on an error.
    pub fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("{sql}: {e}");
        }
    }

    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        let (reply, answer) = channel();
        self.requests
            .as_ref()
            .unwrap()
            .send((sql.to_string(), reply))
            .unwrap();
        answer.recv().unwrap()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Closing the channel ends the worker, which closes the connection
        // (and so rolls back whatever it left open).
        drop(self.requests.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
