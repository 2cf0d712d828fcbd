//! The control socket: how the commands (`sendmail`, `postqueue -f`,
//! `postfix reload`, ...) talk to a running `ironpost serve`.
//!
//! A Unix stream socket at `<queue_directory>/public/ctl`, mode 0666 so that
//! the sendmail of any user can announce new mail. One request per
//! connection:
//!
//! ```text
//! client: wake\n            (or flush, reload, status, stop)
//! server: ok\n              (or "ok TEXT", or "error TEXT"), then closes
//! ```
//!
//! - [`request`]: the blocking client the commands use.
//! - [`serve`]: the daemon's side (tokio), calling a handler per command.
//!
//! The server reads at most [`MAX_REQUEST`] bytes and gives a client
//! [`TIMEOUT`] to send its line; the handler's reply is one line.

use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 1024;
/// How long either side waits for the other.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The handler the server calls with each command (without its `\n`); it
/// returns the reply line: `ok`, `ok TEXT` or `error TEXT`.
pub type Handler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Where the socket of the instance with this queue directory is.
pub fn socket_path(queue_directory: &Path) -> PathBuf {
    queue_directory.join("public").join("ctl")
}

/// Sends one command to the running daemon and returns its reply line
/// (without the `\n`). When no daemon runs, the error is `NotFound` (no
/// socket) or `ConnectionRefused` (a socket left by a stopped daemon).
pub fn request(queue_directory: &Path, command: &str) -> io::Result<String> {
    if command.contains('\n') || command.len() >= MAX_REQUEST {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a control command is one short line",
        ));
    }
    let mut stream = StdUnixStream::connect(socket_path(queue_directory))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = Vec::new();
    // The reply is one line; a longer answer is cut rather than read forever.
    stream
        .take(64 * 1024)
        .read_to_end(&mut reply)
        .map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => io::Error::new(
                io::ErrorKind::TimedOut,
                "the mail system did not answer in time",
            ),
            _ => e,
        })?;
    let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line)
        .trim_end_matches('\r')
        .to_string();
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the mail system closed the control connection without a reply",
        ));
    }
    Ok(line)
}

/// Serves the control socket at `path` until the future is dropped.
///
/// Creates the socket's directory if missing; removes a socket file left
/// by a daemon that is gone, but fails with `AddrInUse` when another daemon
/// answers on it, and with `AlreadyExists` when something other than a
/// socket has the name.
pub async fn serve(path: PathBuf, handler: Handler) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(&path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another daemon is running", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(session(stream, handler.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: try again shortly
                // rather than give up the socket.
                tracing::warn!("{}: accept: {e}", path.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection: read a line, answer it, close.
async fn session(mut stream: UnixStream, handler: Handler) {
    let request = tokio::time::timeout(TIMEOUT, read_line(&mut stream)).await;
    let too_long = matches!(request, Ok(Ok(None)));
    let reply = match request {
        Err(_) => "error timeout".to_string(),
        Ok(Err(e)) => format!("error {e}"),
        Ok(Ok(None)) => "error request too long".to_string(),
        // A probe (a connection closed without a word) needs no handler.
        Ok(Ok(Some(command))) if command.is_empty() => "error empty request".to_string(),
        Ok(Ok(Some(command))) => {
            // The handler may block (a reload reads main.cf): keep it off
            // the reactor's threads.
            let h = handler.clone();
            match tokio::task::spawn_blocking(move || h(&command)).await {
                Ok(reply) => reply,
                Err(_) => "error internal error".to_string(),
            }
        }
    };
    let mut line = reply.replace(['\r', '\n'], " ");
    line.push('\n');
    let _ = tokio::time::timeout(TIMEOUT, async {
        stream.write_all(line.as_bytes()).await?;
        stream.shutdown().await?;
        if too_long {
            // Closing with unread input would reset the connection before
            // the client reads the reply: take (a bounded amount of) it.
            let mut sink = [0u8; 4096];
            let mut left: usize = 64 * 1024;
            while left > 0 {
                let n = stream.read(&mut sink).await?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n);
            }
        }
        io::Result::Ok(())
    })
    .await;
}

/// Reads the request line: `Some(line)` without its line end (a line ended
/// by EOF counts), `None` when it exceeds [`MAX_REQUEST`].
async fn read_line(stream: &mut UnixStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            buf.truncate(nl);
            break;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.len() > MAX_REQUEST {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(Some(text.trim_end_matches('\r').trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A server on a temporary queue directory, recording the commands.
    async fn start(
        dir: &Path,
    ) -> (
        tokio::task::JoinHandle<io::Result<()>>,
        Arc<Mutex<Vec<String>>>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handler: Handler = Arc::new(move |cmd: &str| {
            s.lock().unwrap().push(cmd.to_string());
            match cmd {
                "flush" | "wake" => "ok".to_string(),
                "status" => "ok running\nreally".to_string(),
                other => format!("error unknown command: {other}"),
            }
        });
        let task = tokio::spawn(serve(socket_path(dir), handler));
        for _ in 0..200 {
            if StdUnixStream::connect(socket_path(dir)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (task, seen)
    }

    async fn ask(dir: &Path, cmd: &str) -> io::Result<String> {
        let dir = dir.to_path_buf();
        let cmd = cmd.to_string();
        tokio::task::spawn_blocking(move || request(&dir, &cmd))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn flush_round_trip_and_replies() {
        let dir = tempfile::tempdir().unwrap();
        let (task, seen) = start(dir.path()).await;
        assert_eq!(ask(dir.path(), "flush").await.unwrap(), "ok");
        assert_eq!(
            ask(dir.path(), "bogus").await.unwrap(),
            "error unknown command: bogus"
        );
        // A reply is always one line.
        assert_eq!(
            ask(dir.path(), "status").await.unwrap(),
            "ok running really"
        );
        assert_eq!(*seen.lock().unwrap(), vec!["flush", "bogus", "status"]);
        let mode = std::fs::metadata(socket_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666);
        // Another daemon cannot take the socket while this one answers.
        let err = serve(socket_path(dir.path()), Arc::new(|_: &str| "ok".into()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        task.abort();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn no_daemon_stale_socket_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let err = ask(dir.path(), "wake").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);

        // A socket file nobody listens on: refused, then replaced by serve.
        std::fs::create_dir_all(dir.path().join("public")).unwrap();
        drop(std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap());
        let err = ask(dir.path(), "wake").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let (task, seen) = start(dir.path()).await;
        assert_eq!(ask(dir.path(), "wake").await.unwrap(), "ok");

        // Over 1 KB without a line end: refused without calling the handler.
        let path = socket_path(dir.path());
        let reply = tokio::task::spawn_blocking(move || {
            let mut s = StdUnixStream::connect(path).unwrap();
            let _ = s.write_all(&[b'x'; 3000]);
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            r
        })
        .await
        .unwrap();
        assert_eq!(reply, "error request too long\n");
        assert_eq!(*seen.lock().unwrap(), vec!["wake"]);
        task.abort();
    }
}
