//! Async libraries (sqlx, hickory's resolver) called from synchronous
//! code: lookup tables, password checks and delivery agents run on plain
//! or blocking threads, and SMTP sessions call lookup tables inline.
//!
//! [`block`] runs a future on a background runtime of its own (one worker
//! thread, "bridge") and waits for the result. On a worker of a
//! multi-threaded tokio runtime it steps aside first (`block_in_place`), so
//! the other tasks of that worker go on meanwhile. The background runtime
//! never calls [`block`] itself, so the wait cannot deadlock.

use std::future::Future;
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

/// Why a call got no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeError(pub String);

impl std::fmt::Display for BridgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The background runtime.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, BridgeError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bridge")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| BridgeError(format!("cannot start the background runtime: {e}")))
}

/// Runs `fut` on the background runtime; its result, or an error after
/// `timeout`.
pub fn block<T, F>(fut: F, timeout: Duration) -> Result<T, BridgeError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let wait = move || rx.recv_timeout(timeout);
    let r = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    };
    r.map_err(|_| BridgeError(format!("no answer within {timeout:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_plain_threads_and_from_tokio_workers() {
        assert_eq!(block(async { 1 + 1 }, Duration::from_secs(5)), Ok(2));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let v = rt.block_on(async {
            tokio::spawn(async { block(async { 40 + 2 }, Duration::from_secs(5)) })
                .await
                .unwrap()
        });
        assert_eq!(v, Ok(42));
        // A current-thread runtime is not blocked in place, just waited on.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(
            rt.block_on(async { block(async { 7 }, Duration::from_secs(5)) }),
            Ok(7)
        );
        let e = block(
            async { tokio::time::sleep(Duration::from_secs(10)).await },
            Duration::from_millis(50),
        )
        .unwrap_err();
        assert_eq!(e.0, "no answer within 50ms");
    }
}
