//! The queue manager: takes messages from `incoming/` and, when they are
//! due, from `deferred/`, delivers each pending recipient, and then removes
//! the message, or defers it with backoff, or returns it to its sender.
//!
//! - A recipient that was delivered (or bounced) is marked done in the
//!   queue file before anything else happens, so a crash repeats at most
//!   the delivery under way, never the finished ones.
//! - A deferred message waits `clamp(age, minimal_backoff_time,
//!   maximal_backoff_time)` before its next attempt (so the waits double);
//!   the time is the queue file's mtime, as in Postfix.
//! - After maximal_queue_lifetime (bounce_queue_lifetime for messages from
//!   `<>`) the remaining recipients are returned to the sender as expired.
//! - Failed recipients are reported to the sender in one RFC 3464
//!   notification, honouring NOTIFY and RET; never to the null sender.
//! - At start, messages left in `active/` by a crash go back to `incoming/`.
//!
//! Each recipient is routed ([`crate::transport`]): local and virtual
//! recipients are delivered one by one; remote ones are grouped by next
//! hop and handed to the SMTP client, up to
//! default_destination_recipient_limit per transaction.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ironpost_conf::{ConfError, Config, params};
use tokio::sync::{Notify, Semaphore};

use crate::bounce;
use crate::local::{Agents, Delivered, Message, Outcome, Status};
use crate::maillog::MailLog;
use crate::queue::{Envelope, Queue, QueueId, QueueName, Recipient};
use crate::resolve::{AddressClass, Resolver};
use crate::transport::{Nexthop, Router, Transport};

/// What the queue manager does with one recipient.
enum Route {
    /// Its outcome is known already (error:, discard:, a lookup failure).
    Now(Delivered),
    /// Local or virtual delivery.
    Deliver((Transport, crate::resolve::Resolved)),
    /// The SMTP client: the transport's name and the next hop.
    Smtp(String, Nexthop),
}

/// `5.7.1 text` → ("5.7.1", "text"); text without a code gets `default`.
fn split_dsn(text: &str, default: &str) -> (String, String) {
    let mut it = text.trim().splitn(2, ' ');
    let first = it.next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        (
            first.to_string(),
            it.next().unwrap_or("").trim().to_string(),
        )
    } else {
        (default.to_string(), text.trim().to_string())
    }
}

/// The queue manager's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub minimal_backoff: Duration,
    pub maximal_backoff: Duration,
    pub queue_run_delay: Duration,
    pub maximal_queue_lifetime: Duration,
    pub bounce_queue_lifetime: Duration,
    pub myhostname: String,
    pub myorigin: String,
    pub syslog_name: String,
    /// Deliveries run at once.
    pub concurrency: usize,
    /// Recipients per SMTP delivery (default_destination_recipient_limit).
    pub recipient_limit: usize,
    /// delay_warning_time; zero: no warnings.
    pub delay_warning: Duration,
    /// 2bounce_notice_recipient; empty: double bounces are dropped.
    pub double_bounce_recipient: String,
    /// double_bounce_sender (a local part of myorigin).
    pub double_bounce_sender: String,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Result<Settings, ConfError> {
        Ok(Settings {
            minimal_backoff: cfg.get_time(params::MINIMAL_BACKOFF_TIME)?,
            maximal_backoff: cfg.get_time(params::MAXIMAL_BACKOFF_TIME)?,
            queue_run_delay: cfg.get_time(params::QUEUE_RUN_DELAY)?,
            maximal_queue_lifetime: cfg.get_time(params::MAXIMAL_QUEUE_LIFETIME)?,
            bounce_queue_lifetime: cfg.get_time(params::BOUNCE_QUEUE_LIFETIME)?,
            myhostname: cfg.get_str(params::MYHOSTNAME)?.trim().to_string(),
            myorigin: cfg.get_str(params::MYORIGIN)?.trim().to_string(),
            syslog_name: cfg.get_str(params::SYSLOG_NAME)?.trim().to_string(),
            concurrency: 20,
            recipient_limit: usize::try_from(
                cfg.get_int(params::DEFAULT_DESTINATION_RECIPIENT_LIMIT)?,
            )
            .unwrap_or(50),
            delay_warning: cfg.get_time(params::DELAY_WARNING_TIME)?,
            double_bounce_recipient: cfg
                .get_str(params::TWO_BOUNCE_NOTICE_RECIPIENT)?
                .trim()
                .to_string(),
            double_bounce_sender: cfg
                .get_str(params::DOUBLE_BOUNCE_SENDER)?
                .trim()
                .to_string(),
        })
    }
}

/// What delivery needs; replaced as a whole on reload.
#[derive(Debug)]
pub struct Runtime {
    pub settings: Settings,
    pub resolver: Arc<Resolver>,
    pub router: Router,
    pub agents: Agents,
    /// The SMTP client (and its connection cache).
    pub smtp: Arc<crate::smtp::SmtpAgent>,
    /// virtual_alias_maps, for the messages the queue manager makes
    /// (forwards, bounces), as cleanup does for every new message.
    pub virtual_aliases: Arc<crate::virtual_alias::VirtualAliases>,
}

/// The queue manager, shared by the server's tasks.
pub struct Qmgr {
    queue: Queue,
    log: Arc<MailLog>,
    runtime: Mutex<Arc<Runtime>>,
    wake: Notify,
    /// A flush request: deferred messages are due now.
    flush: Mutex<bool>,
    in_flight: Mutex<HashSet<QueueId>>,
    /// Messages just queued by this process: delivered without a scan.
    submitted: Mutex<Vec<QueueId>>,
    /// A scan of the queue directories was asked for.
    scan: std::sync::atomic::AtomicBool,
}

/// How often `incoming/` is scanned even when nothing asked for it (mail
/// queued by other processes, or missed).
const SCAN_INTERVAL: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Qmgr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qmgr").finish_non_exhaustive()
    }
}

/// When one delivery started and what it took, for the log's `delays=`.
#[derive(Debug, Clone)]
pub struct Times {
    /// When the message entered the active queue (its delivery began).
    entered_active: SystemTime,
    /// The delivery's time...
    elapsed: Duration,
    /// ... of which this much went into setting up a connection (SMTP).
    setup: Duration,
}

/// One recipient of [`Qmgr::deliver_at_once`].
#[derive(Debug, Clone)]
pub struct AtOnce {
    pub outcome: Outcome,
    times: Times,
}

/// What is left to do after [`Qmgr::deliver_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Nothing (the message was deferred, or is gone).
    Done,
    /// Every recipient is finished: remove the queue file once the
    /// deliveries are durable.
    Remove,
}

/// Postfix's way of writing delays: `0`, `0.01`, `1.2`, `37`.
pub fn format_delay(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 0.005 {
        "0".to_string()
    } else if s < 1.0 {
        format!("{:.2}", s)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else if s < 10.0 {
        format!("{:.1}", s)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{}", s.round() as u64)
    }
}

impl Qmgr {
    pub fn new(queue: Queue, log: Arc<MailLog>, runtime: Arc<Runtime>) -> Arc<Qmgr> {
        Arc::new(Qmgr {
            queue,
            log,
            runtime: Mutex::new(runtime),
            wake: Notify::new(),
            flush: Mutex::new(false),
            in_flight: Mutex::new(HashSet::new()),
            submitted: Mutex::new(Vec::new()),
            scan: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Replaces the settings (reload).
    pub fn set_runtime(&self, rt: Arc<Runtime>) {
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = rt;
    }

    fn rt(&self) -> Arc<Runtime> {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// New mail may be in `incoming/`: scan it.
    pub fn wake(&self) {
        self.scan.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// This message was just queued in `incoming/`: deliver it (no scan).
    pub fn submit(&self, id: QueueId) {
        self.submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id);
        self.wake.notify_one();
    }

    /// `postqueue -f`: every deferred message is due now.
    pub fn flush(&self) {
        *self.flush.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake();
    }

    /// ETRN and `postqueue -s SITE`: the deferred messages with a pending
    /// recipient in `site` (or below it) are due now.
    pub fn flush_site(&self, site: &str) {
        let site = site.trim().trim_end_matches('.').to_ascii_lowercase();
        let Ok(ids) = self.queue.list(QueueName::Deferred) else {
            return;
        };
        for id in ids {
            let Ok(qf) = self.queue.read(QueueName::Deferred, &id) else {
                continue;
            };
            let hit = qf.envelope.recipients.iter().any(|r| {
                !r.done
                    && r.address.rsplit_once('@').is_some_and(|(_, d)| {
                        let d = d.to_ascii_lowercase();
                        d == site || d.ends_with(&format!(".{site}"))
                    })
            });
            drop(qf);
            if hit {
                let _ = self
                    .queue
                    .set_next_attempt(QueueName::Deferred, &id, SystemTime::now());
            }
        }
        self.wake();
    }

    /// `postqueue -i ID`: one deferred message is due now.
    pub fn flush_id(&self, id: &str) {
        if let Some(id) = QueueId::parse(id) {
            let _ = self
                .queue
                .set_next_attempt(QueueName::Deferred, &id, SystemTime::now());
        }
        self.wake();
    }

    fn log(&self, program: &str, text: &str) {
        let rt = self.rt();
        self.log
            .log(&format!("{}/{program}", rt.settings.syslog_name), text);
    }

    /// Puts messages a crash left in `active/` back into `incoming/`, and
    /// removes files that were never finished (never acknowledged).
    pub fn recover(&self) -> io::Result<()> {
        self.queue.remove_unfinished()?;
        for id in self.queue.list(QueueName::Active)? {
            self.queue
                .move_to(&id, QueueName::Active, QueueName::Incoming)?;
        }
        for id in self.queue.list(QueueName::Incoming)? {
            if let Err(e) = self.queue.read(QueueName::Incoming, &id)
                && e.kind() == io::ErrorKind::InvalidData
            {
                // Incomplete: the client never got a 250 for it.
                let age = std::fs::metadata(self.queue.path(QueueName::Incoming, &id))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or_default();
                if age > Duration::from_secs(2) {
                    let _ = self.queue.remove(QueueName::Incoming, &id);
                }
            }
        }
        Ok(())
    }

    /// Runs forever: scans the queues and delivers.
    pub async fn run(self: Arc<Self>) {
        let rt = self.rt();
        let limit = Arc::new(Semaphore::new(rt.settings.concurrency.max(1)));
        let mut last_scan = Instant::now() - SCAN_INTERVAL;
        let mut next_due: Option<SystemTime> = None;
        loop {
            let flush = std::mem::take(&mut *self.flush.lock().unwrap_or_else(|p| p.into_inner()));
            let mut todo: Vec<(QueueId, QueueName)> =
                std::mem::take(&mut *self.submitted.lock().unwrap_or_else(|p| p.into_inner()))
                    .into_iter()
                    .map(|id| (id, QueueName::Incoming))
                    .collect();
            let now = SystemTime::now();
            let scan = self.scan.swap(false, std::sync::atomic::Ordering::Relaxed)
                || flush
                || last_scan.elapsed() >= SCAN_INTERVAL
                || next_due.is_some_and(|d| d <= now);
            if scan {
                last_scan = Instant::now();
                next_due = None;
                if let Ok(ids) = self.queue.list(QueueName::Incoming) {
                    todo.extend(ids.into_iter().map(|id| (id, QueueName::Incoming)));
                }
                if let Ok(ids) = self.queue.list(QueueName::Deferred) {
                    for id in ids {
                        let due = std::fs::metadata(self.queue.path(QueueName::Deferred, &id))
                            .and_then(|m| m.modified())
                            .unwrap_or(now);
                        if flush || due <= now {
                            todo.push((id, QueueName::Deferred));
                        } else {
                            next_due = Some(next_due.map_or(due, |n: SystemTime| n.min(due)));
                        }
                    }
                }
            }
            for (id, from) in todo {
                {
                    let mut busy = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                    if !busy.insert(id.clone()) {
                        continue;
                    }
                }
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    // Deliver without waiting for the Maildir commits, then
                    // wait for them here without holding a thread, then
                    // remove the queue file.
                    let me2 = me.clone();
                    let id2 = id.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        crate::durable::deferring(|| me2.deliver_message(&id2, from))
                    })
                    .await;
                    if let Ok((Finish::Remove, paths)) = done {
                        let committed = crate::durable::commit_all_async(&paths).await;
                        if let Err(e) = &committed {
                            me.log(
                                "qmgr",
                                &format!(
                                    "warning: {id}: commit failed: {e}; delivering again later"
                                ),
                            );
                        }
                        if committed.is_ok() {
                            if me.queue.remove(QueueName::Active, &id).is_ok() {
                                me.log("qmgr", &format!("{id}: removed"));
                            }
                        } else {
                            let _ = me
                                .queue
                                .move_to(&id, QueueName::Active, QueueName::Deferred);
                        }
                    }
                    me.in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    drop(permit);
                });
            }
            let rt = self.rt();
            let mut wait = rt.settings.queue_run_delay.min(SCAN_INTERVAL);
            if let Some(due) = next_due {
                let until = due
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                wait = wait.min(until);
            }
            let wait = wait.max(Duration::from_millis(10));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers one message (blocking: file I/O, local delivery). When every
    /// recipient is finished it returns [`Finish::Remove`]: the caller
    /// removes the queue file once what was delivered is durable (inside
    /// [`crate::durable::deferring`], the caller commits; outside, the
    /// deliveries already waited for their commits).
    pub fn deliver_message(&self, id: &QueueId, from: QueueName) -> Finish {
        let rt = self.rt();
        if self.queue.move_to(id, from, QueueName::Active).is_err() {
            return Finish::Done;
        }
        let entered_active = SystemTime::now();
        let mut qf = match self.queue.read(QueueName::Active, id) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                self.log("qmgr", &format!("warning: {e}; moved to the corrupt queue"));
                let _ = self
                    .queue
                    .move_to(id, QueueName::Active, QueueName::Corrupt);
                return Finish::Done;
            }
            Err(e) => {
                self.log("qmgr", &format!("warning: {id}: {e}"));
                let _ = self
                    .queue
                    .move_to(id, QueueName::Active, QueueName::Deferred);
                return Finish::Done;
            }
        };
        let env = qf.envelope.clone();
        let pending: Vec<usize> = (0..env.recipients.len())
            .filter(|&i| !env.recipients[i].done)
            .collect();
        self.log_active(id, &env, qf.content_len());
        let content = match qf.read_content() {
            Ok(c) => c,
            Err(e) => {
                self.log("qmgr", &format!("warning: {id}: read: {e}"));
                let _ = self.defer(id, &env, &[]);
                return Finish::Done;
            }
        };
        let age = env.arrival.elapsed().unwrap_or_default();
        let lifetime = if env.sender.is_empty() {
            rt.settings.bounce_queue_lifetime
        } else {
            rt.settings.maximal_queue_lifetime
        };
        let expired = age > lifetime;
        let msg = Message {
            queue_id: id.as_str(),
            sender: &env.sender,
            content: &content,
            arrival: env.arrival,
        };
        let mut failed: Vec<bounce::Failed> = Vec::new();
        let mut deferred: Vec<(String, String)> = Vec::new();
        // Recipients finished in this attempt; marked done only once their
        // deliveries are durable (a mark on disk for a delivery that is not
        // would lose the message).
        let mut finished: Vec<usize> = Vec::new();
        // Every pending recipient's result: local and virtual ones one by
        // one, remote ones per next hop in SMTP transactions.
        // (recipient, result, time taken, connection setup time of SMTP).
        let mut results: Vec<(usize, Delivered, Duration, Duration)> =
            Vec::with_capacity(pending.len());
        let mut remote: Vec<(String, Nexthop, Vec<usize>)> = Vec::new();
        for &i in &pending {
            let r = &env.recipients[i];
            let started = Instant::now();
            if expired {
                let reason = deferred_reason(&self.queue, id, &r.address)
                    .unwrap_or_else(|| "delivery temporarily suspended".to_string());
                let mut o = Outcome::failed(
                    &r.address,
                    "none",
                    "5.4.7",
                    format!("message expired: {reason}"),
                );
                o.dsn = "4.4.7".into();
                o.status = Status::Bounced;
                results.push((
                    i,
                    Delivered {
                        outcomes: vec![o],
                        forward: Vec::new(),
                    },
                    Duration::ZERO,
                    Duration::ZERO,
                ));
                continue;
            }
            match self.route(&rt, &env, r) {
                Route::Now(d) => results.push((i, d, started.elapsed(), Duration::ZERO)),
                Route::Deliver(t) => {
                    let d = self.deliver_recipient(&rt, &msg, r, &t);
                    results.push((i, d, started.elapsed(), Duration::ZERO));
                }
                Route::Smtp(name, hop) => {
                    match remote.iter_mut().find(|(n, h, _)| *n == name && *h == hop) {
                        Some((_, _, list)) => list.push(i),
                        None => remote.push((name, hop, vec![i])),
                    }
                }
            }
        }
        let limit = rt.settings.recipient_limit.max(1);
        for (name, hop, list) in &remote {
            let log = |text: &str| self.log(name, text);
            for chunk in list.chunks(limit) {
                let started = Instant::now();
                let job = crate::smtp::Job {
                    msg: &msg,
                    env: &env,
                    recipients: chunk.iter().map(|&i| &env.recipients[i]).collect(),
                    nexthop: hop,
                    transport: name,
                    transaction_start: std::cell::Cell::new(None),
                    log: &log,
                };
                let outcomes = rt.smtp.deliver(&job);
                let elapsed = started.elapsed();
                let setup = job
                    .transaction_start
                    .get()
                    .map_or(elapsed, |t| t.duration_since(started));
                for (&i, o) in chunk.iter().zip(outcomes) {
                    results.push((
                        i,
                        Delivered {
                            outcomes: vec![o],
                            forward: Vec::new(),
                        },
                        elapsed,
                        setup,
                    ));
                }
            }
        }
        for (i, result, elapsed, setup) in results {
            let r = &env.recipients[i];
            let mut any_deferred = false;
            let mut outcomes = result.outcomes;
            if !result.forward.is_empty() {
                outcomes.extend(self.forward(&rt, &msg, r, &result.forward));
            }
            for o in &outcomes {
                let times = Times {
                    entered_active,
                    elapsed,
                    setup,
                };
                self.log_outcome(id, env.arrival, r, o, &times, expired);
                match o.status {
                    Status::Deferred => {
                        any_deferred = true;
                        deferred.push((r.address.clone(), o.text.clone()));
                    }
                    Status::Bounced => {
                        if wants_failure_notice(r) {
                            failed.push(bounce::Failed {
                                address: o.to.clone(),
                                original: r.orcpt.clone().unwrap_or_else(|| r.original.clone()),
                                // A bounce is permanent: the class becomes 5.
                                status: match o.dsn.strip_prefix('4') {
                                    Some(rest) => format!("5{rest}"),
                                    None => o.dsn.clone(),
                                },
                                diagnostic: o.text.clone(),
                                remote: o.remote.clone(),
                            });
                        }
                    }
                    Status::Sent => {}
                }
            }
            if !any_deferred {
                finished.push(i);
            }
        }
        if !failed.is_empty() {
            self.notify_sender(&rt, id, &env, &content, &failed);
        }
        if deferred.is_empty() {
            // Every recipient is finished: no marks needed, the caller
            // removes the file once the deliveries are durable.
            return Finish::Remove;
        }
        if let Err(e) = crate::durable::commit_deferred_now() {
            self.log("qmgr", &format!("warning: {id}: commit failed: {e}"));
            finished.clear();
        }
        for &i in &finished {
            if let Err(e) = qf.mark_done(i) {
                self.log(
                    "qmgr",
                    &format!("warning: {id}: cannot mark recipient done: {e}"),
                );
            }
        }
        drop(qf);
        self.warn_delayed(&rt, id, &env, &content, &deferred);
        let _ = self.defer(id, &env, &deferred);
        Finish::Done
    }

    /// `ID: from=<...>, size=N, nrcpt=N (queue active)`: a delivery of
    /// the message begins.
    fn log_active(&self, id: &QueueId, env: &Envelope, size: impl std::fmt::Display) {
        self.log(
            "qmgr",
            &format!(
                "{id}: from=<{}>, size={size}, nrcpt={} (queue active)",
                env.sender,
                env.recipients.len()
            ),
        );
    }

    /// The log line of one recipient's outcome: `ID: to=<...>, relay=...,
    /// delay=..., delays=a/b/c/d, dsn=..., status=... (text)`.
    fn log_outcome(
        &self,
        id: &QueueId,
        arrival: SystemTime,
        r: &Recipient,
        o: &Outcome,
        t: &Times,
        expired: bool,
    ) {
        let orig = if r.original != o.to {
            format!(", orig_to=<{}>", r.original)
        } else {
            String::new()
        };
        let a = t.entered_active.duration_since(arrival).unwrap_or_default();
        let total = arrival.elapsed().unwrap_or_default();
        let b = total.saturating_sub(a).saturating_sub(t.elapsed);
        // c: connection setup (SMTP), d: the delivery itself.
        let (c, d) = (t.setup, t.elapsed.saturating_sub(t.setup));
        let status = match o.status {
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Bounced if expired => "expired, returned to sender",
            Status::Bounced => "bounced",
        };
        self.log(
            o.relay_program(),
            &format!(
                "{id}: to=<{}>{orig}, relay={}, delay={}, delays={}/{}/{}/{}, dsn={}, status={status} ({})",
                o.to,
                o.relay,
                format_delay(total),
                format_delay(a),
                format_delay(b),
                format_delay(c),
                format_delay(d),
                o.dsn,
                o.text
            ),
        );
    }

    /// Delivers a message whose client still waits for its `250`, before
    /// any queue file is written: only when every recipient goes to
    /// virtual(8) (a virtual mailbox domain). `None` when the message must
    /// go through the queue instead; nothing was written then. Otherwise
    /// every recipient's outcome, in order: those not sent are for the
    /// queue to handle as usual (retry, defer, bounce), and nothing is
    /// logged for them here.
    ///
    /// Called inside [`crate::durable::deferring`]: the caller commits the
    /// Maildirs (and the queue file it writes for the rest) before the
    /// `250`, then logs with [`Qmgr::log_delivered_at_once`].
    pub fn deliver_at_once(
        &self,
        id: &QueueId,
        env: &Envelope,
        content: &[u8],
    ) -> Option<Vec<AtOnce>> {
        let rt = self.rt();
        let mut routes = Vec::with_capacity(env.recipients.len());
        for r in &env.recipients {
            if r.done {
                return None;
            }
            match self.route(&rt, env, r) {
                Route::Deliver(t @ (Transport::Virtual, _)) if !t.1.routed => routes.push(t),
                _ => return None,
            }
        }
        let msg = Message {
            queue_id: id.as_str(),
            sender: &env.sender,
            content,
            arrival: env.arrival,
        };
        let entered_active = SystemTime::now();
        Some(
            env.recipients
                .iter()
                .zip(&routes)
                .map(|(r, t)| {
                    let started = Instant::now();
                    let d = self.deliver_recipient(&rt, &msg, r, t);
                    let outcome = d.outcomes.into_iter().next().unwrap_or_else(|| {
                        Outcome::failed(&r.address, "none", "4.3.0", "no delivery outcome")
                    });
                    AtOnce {
                        outcome,
                        times: Times {
                            entered_active,
                            elapsed: started.elapsed(),
                            setup: Duration::ZERO,
                        },
                    }
                })
                .collect(),
        )
    }

    /// The mail log of [`Qmgr::deliver_at_once`], once its deliveries are
    /// durable: the queue manager's `from=` line, a `to=` line per
    /// recipient sent, and `removed` when none was left for the queue.
    pub fn log_delivered_at_once(
        &self,
        id: &QueueId,
        env: &Envelope,
        size: usize,
        done: &[AtOnce],
    ) {
        self.log_active(id, env, size);
        for (r, d) in env.recipients.iter().zip(done) {
            if d.outcome.status == Status::Sent {
                self.log_outcome(id, env.arrival, r, &d.outcome, &d.times, false);
            }
        }
        if done.iter().all(|d| d.outcome.status == Status::Sent) {
            self.log("qmgr", &format!("{id}: removed"));
        }
    }

    /// Where a recipient goes: resolved and routed (transport_maps,
    /// relayhost, the address class).
    fn route(&self, rt: &Runtime, env: &Envelope, r: &Recipient) -> Route {
        let now = |to: &str, dsn: &str, text: String| {
            Route::Now(Delivered {
                outcomes: vec![Outcome::failed(to, "none", dsn, text)],
                forward: Vec::new(),
            })
        };
        let resolved = match rt.resolver.resolve(&r.address) {
            Ok(Some(res)) => res,
            Ok(None) => return now(&r.address, "5.1.3", "bad address syntax".into()),
            Err(e) => return now(&r.address, "4.3.0", e.to_string()),
        };
        if resolved.class == AddressClass::VirtualAlias {
            // Not expanded before queueing: no entry in virtual_alias_maps.
            return now(
                &resolved.address,
                "5.1.1",
                "User unknown in virtual alias table".into(),
            );
        }
        let transport = match rt.router.route(&resolved, &env.sender) {
            Ok(t) => t,
            Err(e) => return now(&resolved.address, "4.3.0", e.to_string()),
        };
        match transport {
            Transport::Smtp { name, nexthop } => Route::Smtp(name, nexthop),
            Transport::Error(text) => {
                let (dsn, text) = split_dsn(&text, "5.0.0");
                let dsn = if dsn.starts_with('5') {
                    dsn
                } else {
                    "5.0.0".to_string()
                };
                now(&resolved.address, &dsn, text)
            }
            Transport::Retry(text) => {
                let (dsn, text) = split_dsn(&text, "4.0.0");
                let dsn = if dsn.starts_with('4') {
                    dsn
                } else {
                    "4.0.0".to_string()
                };
                now(&resolved.address, &dsn, text)
            }
            Transport::Discard(text) => Route::Now(Delivered {
                outcomes: vec![Outcome::sent(&resolved.address, "none", text)],
                forward: Vec::new(),
            }),
            t @ (Transport::Local | Transport::Virtual) => Route::Deliver((t, resolved)),
        }
    }

    fn deliver_recipient(
        &self,
        rt: &Runtime,
        msg: &Message<'_>,
        r: &Recipient,
        (transport, resolved): &(Transport, crate::resolve::Resolved),
    ) -> Delivered {
        let single = |o: Outcome| Delivered {
            outcomes: vec![o],
            forward: Vec::new(),
        };
        if resolved.routed {
            return single(Outcome::failed(
                &resolved.address,
                "none",
                "5.1.3",
                "sender-specified routing is not allowed for local addresses",
            ));
        }
        match transport {
            Transport::Local => rt.agents.deliver_local(msg, &resolved.address, &r.original),
            _ => single(
                rt.agents
                    .deliver_virtual(msg, &resolved.address, &r.original),
            ),
        }
    }

    /// Queues one new message for the non-local addresses an alias or
    /// .forward file named, and reports `forwarded as ID` for each.
    fn forward(
        &self,
        rt: &Runtime,
        msg: &Message<'_>,
        r: &Recipient,
        to: &[String],
    ) -> Vec<Outcome> {
        let mut content = format!("Delivered-To: {}\r\n", r.address).into_bytes();
        content.extend_from_slice(msg.content);
        let recipients: Vec<Recipient> = to
            .iter()
            .map(|a| Recipient {
                original: r.original.clone(),
                ..Recipient::new(a)
            })
            .collect();
        let mut env = Envelope::new(msg.sender, recipients);
        env.arrival = msg.arrival;
        let result = match rt
            .virtual_aliases
            .expand(std::mem::take(&mut env.recipients))
        {
            Ok(r) => {
                env.recipients = r;
                self.queue.enqueue(&env, &content)
            }
            Err(e) => Err(std::io::Error::other(e.0)),
        };
        to.iter()
            .map(|a| match &result {
                Ok(new_id) => Outcome {
                    to: a.clone(),
                    status: Status::Sent,
                    dsn: "2.0.0".into(),
                    text: format!("forwarded as {new_id}"),
                    relay: "local".into(),
                    program: None,
                    remote: None,
                },
                Err(e) => Outcome {
                    to: a.clone(),
                    status: Status::Deferred,
                    dsn: "4.3.0".into(),
                    text: format!("cannot queue forwarded message: {e}"),
                    relay: "local".into(),
                    program: None,
                    remote: None,
                },
            })
            .collect()
    }

    /// Sends the failure notification to the sender. A message from `<>`
    /// that fails (a bounce that bounced) goes to 2bounce_notice_recipient
    /// from double_bounce_sender, as Postfix's double bounce; one from the
    /// double-bounce sender itself is discarded, so nothing loops.
    fn notify_sender(
        &self,
        rt: &Runtime,
        id: &QueueId,
        env: &Envelope,
        content: &[u8],
        failed: &[bounce::Failed],
    ) {
        self.notify(rt, id, env, content, failed, bounce::Kind::Failure);
    }

    fn notify(
        &self,
        rt: &Runtime,
        id: &QueueId,
        env: &Envelope,
        content: &[u8],
        failed: &[bounce::Failed],
        kind: bounce::Kind,
    ) {
        let double = format!(
            "{}@{}",
            rt.settings.double_bounce_sender, rt.settings.myorigin
        );
        let (to, from, what) = if env.sender.is_empty() {
            if kind == bounce::Kind::Delay || rt.settings.double_bounce_recipient.is_empty() {
                self.log(
                    "bounce",
                    &format!("{id}: undeliverable bounce from <>: discarded"),
                );
                return;
            }
            (
                rt.settings.double_bounce_recipient.clone(),
                double.clone(),
                "postmaster non-delivery notification",
            )
        } else if env.sender.eq_ignore_ascii_case(&double) {
            self.log(
                "bounce",
                &format!("{id}: undeliverable postmaster notification discarded"),
            );
            return;
        } else if kind == bounce::Kind::Delay {
            (
                env.sender.clone(),
                String::new(),
                "sender delay notification",
            )
        } else {
            (
                env.sender.clone(),
                String::new(),
                "sender non-delivery notification",
            )
        };
        let now = chrono::Local::now().fixed_offset();
        let arrival: chrono::DateTime<chrono::Local> = env.arrival.into();
        // The new message's ID is its file name, known only once written;
        // the notification names the original's ID, which is what matters.
        let report = bounce::Report {
            kind,
            queue_id: id.as_str(),
            sender: &env.sender,
            envid: env.attr("envid"),
            headers_only: env.attr("ret") == Some("HDRS"),
            arrival: arrival.fixed_offset(),
            now,
            myhostname: &rt.settings.myhostname,
            origin: &rt.settings.myorigin,
            new_id: id.as_str(),
            recipients: failed,
            message: content,
        };
        let body = bounce::build_to(&report, &to);
        let to = rt.resolver.canonical(&to);
        let mut benv = Envelope::new(&from, vec![Recipient::new(&to)]);
        match rt.virtual_aliases.expand(benv.recipients.clone()) {
            Ok(r) => benv.recipients = r,
            // Sent to the address as written; its delivery says what failed.
            Err(e) => self.log("bounce", &format!("warning: {id}: {e}")),
        }
        match self.queue.enqueue(&benv, &body) {
            Ok(new_id) => {
                self.log("bounce", &format!("{id}: {what}: {new_id}"));
                self.wake();
            }
            Err(e) => self.log(
                "bounce",
                &format!("warning: {id}: cannot queue the {what}: {e}"),
            ),
        }
    }

    /// delay_warning_time: once a message has waited that long, its sender
    /// hears which recipients are still deferred (those whose NOTIFY asks
    /// for it; no NOTIFY counts as FAILURE,DELAY), once.
    fn warn_delayed(
        &self,
        rt: &Runtime,
        id: &QueueId,
        env: &Envelope,
        content: &[u8],
        deferred: &[(String, String)],
    ) {
        let after = rt.settings.delay_warning;
        if after.is_zero() || env.arrival.elapsed().unwrap_or_default() < after {
            return;
        }
        let mark = self.queue.warn_mark(id);
        if mark.exists() {
            return;
        }
        let delayed: Vec<bounce::Failed> = deferred
            .iter()
            .filter_map(|(address, why)| {
                let r = env.recipients.iter().find(|r| r.address == *address)?;
                let wants = match &r.notify {
                    None => true,
                    Some(n) => n.split(',').any(|w| w.trim().eq_ignore_ascii_case("DELAY")),
                };
                wants.then(|| bounce::Failed {
                    address: address.clone(),
                    original: r.orcpt.clone().unwrap_or_else(|| r.original.clone()),
                    status: "4.4.7".into(),
                    diagnostic: why.clone(),
                    remote: None,
                })
            })
            .collect();
        if let Some(dir) = mark.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&mark, b"");
        if !delayed.is_empty() {
            self.notify(rt, id, env, content, &delayed, bounce::Kind::Delay);
        }
    }

    /// Moves a message to `deferred/` with its next attempt time and the
    /// reasons for mailq.
    fn defer(&self, id: &QueueId, env: &Envelope, reasons: &[(String, String)]) -> io::Result<()> {
        let rt = self.rt();
        let mut log = String::new();
        for (rcpt, why) in reasons {
            log.push_str(&format!("{rcpt}\t{}\n", why.replace('\n', " ")));
        }
        std::fs::write(self.queue.defer_log(id), log)?;
        self.queue
            .move_to(id, QueueName::Active, QueueName::Deferred)?;
        let age = env.arrival.elapsed().unwrap_or_default();
        let backoff = age
            .max(rt.settings.minimal_backoff)
            .min(rt.settings.maximal_backoff);
        self.queue
            .set_next_attempt(QueueName::Deferred, id, SystemTime::now() + backoff)
    }
}

impl Outcome {
    fn relay_program(&self) -> &str {
        if let Some(p) = &self.program {
            return p;
        }
        match self.relay.as_str() {
            "virtual" => "virtual",
            "local" => "local",
            _ => "qmgr",
        }
    }
}

/// Whether the sender asked to hear about failures for this recipient
/// (RFC 3461 NOTIFY; failures are reported when NOTIFY is absent).
fn wants_failure_notice(r: &Recipient) -> bool {
    match &r.notify {
        None => true,
        Some(n) => n
            .split(',')
            .any(|w| w.trim().eq_ignore_ascii_case("FAILURE")),
    }
}

/// The last reason a recipient was deferred (from the defer log).
pub fn deferred_reason(queue: &Queue, id: &QueueId, rcpt: &str) -> Option<String> {
    let text = std::fs::read_to_string(queue.defer_log(id)).ok()?;
    text.lines().find_map(|l| {
        let (r, why) = l.split_once('\t')?;
        (r == rcpt).then(|| why.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_written_as_postfix_writes_them() {
        for (ms, want) in [
            (0, "0"),
            (4, "0"),
            (10, "0.01"),
            (250, "0.25"),
            (100, "0.1"),
            (1200, "1.2"),
            (3000, "3"),
            (37_400, "37"),
        ] {
            assert_eq!(format_delay(Duration::from_millis(ms)), want, "{ms} ms");
        }
    }
}
