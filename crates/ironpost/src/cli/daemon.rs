//! Running the daemon: `ironpost serve` (foreground) and `ironpost
//! start|stop|reload|status|flush|check` (and `postfix` with the same
//! words), which talk to a running daemon over its control socket.

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use ironpost_conf::params;

use super::{CmdResult, Fatal, getopt, load_config};

/// `ironpost serve [-c DIR]`: runs in the foreground until stopped.
pub fn run_serve(args: &[String]) -> CmdResult {
    let p = getopt::getopt(args, "c:v").map_err(Fatal)?;
    if let Some(extra) = p.operands.first() {
        return Err(Fatal(format!("serve: unexpected argument \"{extra}\"")));
    }
    let dir = super::config_dir(p.value('c'));
    crate::server::serve(dir.as_deref()).map_err(|e| Fatal(e.0))?;
    Ok(ExitCode::SUCCESS)
}

fn queue_dir(flag: Option<&str>) -> Result<PathBuf, Fatal> {
    let cfg = load_config(flag)?;
    Ok(PathBuf::from(cfg.get_str(params::QUEUE_DIRECTORY)?.trim()))
}

fn running(queue: &std::path::Path) -> Option<String> {
    match crate::ctl::request(queue, "status") {
        Ok(reply) => reply.strip_prefix("ok ").map(str::to_string),
        Err(_) => None,
    }
}

/// `ironpost start|stop|reload|status|flush|check [-c DIR]`, also as
/// `postfix start` and so on.
pub fn run_control(word: &str, args: &[String]) -> CmdResult {
    let p = getopt::getopt(args, "c:Dv").map_err(Fatal)?;
    let flag = p.value('c');
    let me = super::program();
    match word {
        "check" => super::check(args),
        "start" => {
            let queue = queue_dir(flag)?;
            if let Some(pid) = running(&queue) {
                return Err(Fatal(format!(
                    "the mail system is already running (PID {pid})"
                )));
            }
            let exe = std::env::current_exe()
                .map_err(|e| Fatal(format!("cannot find the ironpost program: {e}")))?;
            // The daemon's start-up messages, shown if it fails to start.
            let log_path = queue.join("pid").join("start.log");
            let _ = std::fs::create_dir_all(queue.join("pid"));
            let log_file = std::fs::File::create(&log_path).map_err(|e| {
                Fatal(format!(
                    "create {}: {}",
                    log_path.display(),
                    ironpost_conf::io_reason(&e)
                ))
            })?;
            let mut cmd = std::process::Command::new(exe);
            cmd.arg("serve");
            if let Some(dir) = super::config_dir(flag) {
                cmd.arg("-c").arg(dir);
            }
            use std::os::unix::process::CommandExt;
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log_file))
                .process_group(0)
                .spawn()
                .map_err(|e| Fatal(format!("cannot start the daemon: {e}")))?;
            eprintln!("{me}: starting the mail system");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    eprint!("{text}");
                    return Err(Fatal(format!("the daemon did not start ({status})")));
                }
                if running(&queue).is_some() {
                    return Ok(ExitCode::SUCCESS);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(Fatal("the daemon did not answer within 20 seconds".into()))
        }
        "stop" => {
            let queue = queue_dir(flag)?;
            let Some(pid) = running(&queue) else {
                return Err(Fatal("the mail system is not running".into()));
            };
            eprintln!("{me}: stopping the mail system");
            crate::ctl::request(&queue, "stop")
                .map_err(|e| Fatal(format!("cannot reach the daemon: {e}")))?;
            // Wait until the process is gone.
            let pid: i32 = pid.trim().parse().unwrap_or(0);
            let deadline = Instant::now() + Duration::from_secs(20);
            while pid > 0 && Instant::now() < deadline {
                if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(ExitCode::SUCCESS)
        }
        "reload" | "flush" => {
            let queue = queue_dir(flag)?;
            if running(&queue).is_none() {
                return Err(Fatal("the mail system is not running".into()));
            }
            if word == "reload" {
                eprintln!("{me}: refreshing the mail system");
            }
            match crate::ctl::request(&queue, word) {
                Ok(r) if r.starts_with("ok") => Ok(ExitCode::SUCCESS),
                Ok(r) => Err(Fatal(r.trim_start_matches("error ").to_string())),
                Err(e) => Err(Fatal(format!("cannot reach the daemon: {e}"))),
            }
        }
        "status" => {
            let queue = queue_dir(flag)?;
            match running(&queue) {
                Some(pid) => {
                    eprintln!("{me}: the mail system is running: PID: {pid}");
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("{me}: the mail system is not running");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        other => Err(Fatal(format!(
            "unknown command \"{other}\" (start, stop, reload, status, flush, check)"
        ))),
    }
}
