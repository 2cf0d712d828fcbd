//! One IMAP session (RFC 3501): not authenticated, authenticated,
//! selected, logout.
//!
//! Answers follow Dovecot 2.3's words where clients or scripts look at
//! them. Unsolicited updates (EXISTS, RECENT, FETCH FLAGS, EXPUNGE) are
//! sent before a command's tagged answer; EXPUNGE is held back during
//! FETCH, STORE and SEARCH (RFC 3501 §7.4.1). In IDLE a change made by
//! delivery or another session of this process is reported at once;
//! changes by other programs at the next poll (every few seconds).
//! The mail log gets Dovecot's lines:
//! `imap-login: Login: user=<...>, method=PLAIN, rip=..., lip=..., mpid=N, TLS`
//! and `imap(USER): Disconnected: Logged out in=.. out=.. ...`.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ironpost_proto::imap::command::{
    CommandKind, FetchCommand, ListCommand, State, StatusItem, StoreCommand, StoreMode,
};
use ironpost_proto::imap::reader::{self as rd, Continuation, LITERAL_MINUS_MAX};
use ironpost_proto::imap::response::{
    self as resp, Code, ListItem, MailboxAttr, Namespace, Status,
};
use ironpost_proto::imap::{
    Event, FetchAttr, Flag, Limits, MailboxName, Reader, SearchKey, SearchReturn, SequenceSet,
    ThreadAlgorithm, eval, thread,
};
use ironpost_proto::sasl::{self, Mechanism, SaslError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::compress::Deflate;
use super::fetch::{self, Structure};
use super::folders::{DELIMITER, Folders};
use super::mailbox::{Folder, Update, View, to_imap, unix_seconds};
use super::{Imapd, UserIp};
use crate::auth::sasl::{Challenger, Context, Outcome};
use crate::auth::system::{Check, Identity};
use crate::auth::throttle::Throttle;
use crate::maillog::MailLog;
use crate::store::Flags;
use crate::store::index::Sub;
use crate::store::location::MailboxPath;
use crate::tls::Conn;

/// Why the session ended.
enum End {
    Lost,
    Idle,
    /// LOGOUT, or we closed it (BYE sent).
    Done,
}

/// A STORE that changes the flags of at least this many messages of a
/// Maildir answers before renaming their files.
const DEFER_RENAMES: usize = 64;

/// Answers queued past this size are written before the next command.
const FLUSH_AT: usize = 64 * 1024;
/// A SASL response line.
const SASL_LINE: usize = 64 * 1024;
/// How often IDLE looks for changes made by other programs.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How often IDLE tells the client it is still there.
const IDLE_KEEPALIVE: Duration = Duration::from_secs(120);
/// The one quota root: every folder of the user.
const QUOTA_ROOT: &str = "User quota";
/// Commands in a row that were not understood before the session ends.
const MAX_BAD: u32 = 20;

/// The user after login.
struct User {
    name: String,
    folders: Folders,
    /// The directory's quota in bytes (RFC 9208 STORAGE), if any.
    quota: Option<u64>,
    _count: UserIp,
}

/// Counters for imap_logout_format.
#[derive(Default)]
struct Counters {
    deleted: u64,
    expunged: u64,
    trashed: u64,
    fetch: fetch::Stats,
}

struct Session<'a, S> {
    io: Conn<S>,
    reader: Reader,
    out: Vec<u8>,
    p: &'a Imapd,
    log: &'a MailLog,
    client: IpAddr,
    local: IpAddr,
    number: u32,
    secure: bool,
    state: State,
    user: Option<User>,
    view: Option<View>,
    condstore: bool,
    /// QRESYNC enabled: expunges are told as VANISHED.
    qresync: bool,
    /// IMAP4rev2 enabled (RFC 9051): no \Recent, ESEARCH answers, UTF-8
    /// names.
    rev2: bool,
    utf8: bool,
    /// The saved search result `$` (RFC 5182), as UIDs ascending.
    saved: Option<Vec<u32>>,
    bad: u32,
    bytes_in: u64,
    bytes_out: u64,
    counters: Counters,
    started: Instant,
    failed_logins: u32,
    /// When the selected folder was last scanned.
    scanned: Instant,
    /// COMPRESS=DEFLATE is active.
    z: Option<Box<Deflate>>,
}

/// Reads client input into `target`: as it arrives, or inflated when
/// COMPRESS is active. Cancel-safe (a `select!` branch in IDLE): nothing
/// is taken from the connection except by the read that completes.
async fn read_input<S>(
    io: &mut Conn<S>,
    z: Option<&mut Deflate>,
    target: &mut Vec<u8>,
) -> io::Result<usize>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(z) = z else {
        return io.read_buf(target).await;
    };
    loop {
        let n = z.inflate(target)?;
        if n > 0 || z.ended() {
            return Ok(n);
        }
        if io.read_buf(z.input_target(16 * 1024)).await? == 0 {
            return Ok(0);
        }
    }
}

/// Runs a session on an accepted connection.
pub async fn run<S>(io: S, client: IpAddr, local: IpAddr, p: Arc<Imapd>, log: Arc<MailLog>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = Limits {
        line: p.max_line,
        literal: p.max_line as u64,
        message: p.max_message,
        literal_plus: true,
    };
    let mut s = Session {
        io: Conn::Plain(io),
        reader: Reader::new(limits),
        out: Vec::with_capacity(1024),
        p: &p,
        log: &log,
        client,
        local,
        number: crate::maillog::session_number(),
        secure: false,
        state: State::NotAuthenticated,
        user: None,
        view: None,
        condstore: false,
        qresync: false,
        rev2: false,
        utf8: false,
        saved: None,
        bad: 0,
        bytes_in: 0,
        bytes_out: 0,
        counters: Counters::default(),
        started: Instant::now(),
        failed_logins: 0,
        scanned: Instant::now(),
        z: None,
    };
    if let (true, Some(config)) = (p.login.wrapper, p.login.tls.clone())
        && s.handshake(config).await.is_err()
    {
        return;
    }
    let end = s.serve().await;
    let _ = s.flush().await;
    s.finish(end);
}

impl<S: AsyncRead + AsyncWrite + Unpin> Challenger for Session<'_, S> {
    type Stop = End;

    async fn challenge(&mut self, data: &[u8]) -> Result<Result<Vec<u8>, SaslError>, End> {
        resp::continuation(&mut self.out, &sasl::encode_challenge(data));
        let line = self.next_line(SASL_LINE).await?;
        let Some(line) = line else {
            return Ok(Err(SaslError::Malformed("response line too long")));
        };
        if rd::is_sasl_cancel(&line) {
            return Ok(Err(SaslError::Cancelled));
        }
        Ok(sasl::decode_response(&String::from_utf8_lossy(&line)))
    }
}

/// A folder operation failed: the NO to send.
struct No(Option<Code>, String);

fn io_no(e: io::Error) -> No {
    if e.kind() == io::ErrorKind::Unsupported {
        // What the folder cannot do.
        return No(Some(Code::Cannot), format!("{e}."));
    }
    No(
        Some(Code::ServerBug),
        format!("Internal error occurred: {e}"),
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    fn log_login(&self, text: &str) {
        self.log.log_as(
            &self.p.login.syslog_name,
            self.number,
            &format!("imap-login: {text}"),
        );
    }

    fn log_user(&self, text: &str) {
        let user = self.user.as_ref().map(|u| u.name.as_str()).unwrap_or("");
        self.log.log_as(
            &self.p.login.syslog_name,
            self.number,
            &format!("imap({user}): {text}"),
        );
    }

    fn addresses(&self) -> String {
        format!("rip={}, lip={}", self.client, self.local)
    }

    fn protection(&self) -> &'static str {
        self.p
            .login
            .protection(self.secure, self.client, self.local)
    }

    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let wire = match &mut self.z {
            Some(z) => z.deflate(&self.out).map_err(|_| End::Lost)?,
            None => &self.out,
        };
        match tokio::time::timeout(self.p.idle_timeout, self.io.write_all(wire)).await {
            Ok(Ok(())) => {}
            _ => return Err(End::Lost),
        }
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out = Vec::with_capacity(FLUSH_AT + 16 * 1024);
        }
        match tokio::time::timeout(self.p.idle_timeout, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Lost),
        }
    }

    /// Reads more input into the reader.
    async fn read_more(&mut self, timeout: Duration) -> Result<(), End> {
        self.flush().await?;
        let target = self.reader.read_target(16 * 1024);
        let before = target.len();
        let input = read_input(&mut self.io, self.z.as_deref_mut(), target);
        match tokio::time::timeout(timeout, input).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(End::Lost),
            Ok(Ok(_)) => {
                let n = self.reader.read_target(0).len() - before;
                self.bytes_in += n as u64;
                Ok(())
            }
            Err(_) => Err(End::Idle),
        }
    }

    /// A raw line (AUTHENTICATE, IDLE); `None` when it was too long.
    async fn next_line(&mut self, limit: usize) -> Result<Option<Vec<u8>>, End> {
        loop {
            if let Some(l) = self.reader.next_line(limit) {
                return Ok(l.ok());
            }
            self.read_more(self.p.idle_timeout).await?;
        }
    }

    async fn handshake(&mut self, config: Arc<rustls::ServerConfig>) -> Result<(), ()> {
        match tokio::time::timeout(self.p.idle_timeout, self.io.start_tls(config)).await {
            Ok(Ok(())) => {
                self.secure = true;
                Ok(())
            }
            Ok(Err(e)) => {
                self.log_login(&format!(
                    "Disconnected: TLS handshaking: {e} ({})",
                    self.addresses()
                ));
                Err(())
            }
            Err(_) => {
                self.log_login(&format!(
                    "Disconnected: TLS handshaking timed out ({})",
                    self.addresses()
                ));
                Err(())
            }
        }
    }

    fn tagged(&mut self, tag: &str, st: Status, code: Option<Code>, text: &str) {
        resp::tagged(&mut self.out, tag, st, code.as_ref(), text);
    }

    fn ok(&mut self, tag: &str, text: &str) {
        self.tagged(tag, Status::Ok, None, text);
    }

    fn no(&mut self, tag: &str, no: No) {
        self.tagged(tag, Status::No, no.0, &no.1);
    }

    fn bad_text(&mut self, tag: &str, text: &str) {
        self.tagged(tag, Status::Bad, None, text);
    }

    fn plaintext_allowed(&self) -> bool {
        self.p
            .login
            .plaintext_allowed(self.secure, self.client, self.local)
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        let plain_ok = self.plaintext_allowed();
        self.p
            .login
            .mechanisms
            .iter()
            .copied()
            .filter(|m| plain_ok || !m.is_plaintext())
            .filter(|m| self.secure || !m.is_plus())
            .collect()
    }

    /// The capability list now.
    fn capabilities(&self) -> String {
        let mut caps: Vec<String> = vec![
            "IMAP4rev1".into(),
            "IMAP4rev2".into(),
            "SASL-IR".into(),
            "ID".into(),
            "ENABLE".into(),
            "IDLE".into(),
            "LITERAL+".into(),
        ];
        if self.state == State::NotAuthenticated {
            if self.p.login.tls.is_some() && !self.secure {
                caps.push("STARTTLS".into());
            }
            if !self.plaintext_allowed() {
                caps.push("LOGINDISABLED".into());
            }
            for m in self.mechanisms() {
                caps.push(format!("AUTH={}", m.name()));
            }
        } else {
            for c in [
                "MULTIAPPEND",
                "UNSELECT",
                "CHILDREN",
                "NAMESPACE",
                "UIDPLUS",
                "LIST-EXTENDED",
                "CONDSTORE",
                "QRESYNC",
                "BINARY",
                "MOVE",
                "STATUS=SIZE",
                "SPECIAL-USE",
                "CREATE-SPECIAL-USE",
                "LIST-STATUS",
                "UTF8=ACCEPT",
                "SORT",
                "SORT=DISPLAY",
                "THREAD=REFERENCES",
                "THREAD=REFS",
                "THREAD=ORDEREDSUBJECT",
                "ESEARCH",
                "SEARCHRES",
                "WITHIN",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "COMPRESS=DEFLATE",
            ] {
                caps.push(c.into());
            }
            caps.push(format!("APPENDLIMIT={}", self.p.max_message));
        }
        caps.join(" ")
    }

    async fn serve(&mut self) -> Result<(), End> {
        let caps = self.capabilities();
        resp::untagged(
            &mut self.out,
            Status::Ok,
            Some(&Code::Capability(caps)),
            &self.p.login.greeting,
        );
        loop {
            if self.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
            let Some(event) = self.reader.next() else {
                self.read_more(self.p.idle_timeout).await?;
                continue;
            };
            match event {
                Event::Continue(c) => self.continuation(c),
                Event::Error(e) => {
                    if self.state == State::NotAuthenticated {
                        self.out.extend_from_slice(&e.response_before_login());
                    } else {
                        self.out.extend_from_slice(&e.response());
                    }
                    self.bad += 1;
                    if self.bad > MAX_BAD {
                        resp::untagged(
                            &mut self.out,
                            Status::Bye,
                            None,
                            "Too many invalid IMAP commands.",
                        );
                        return Err(End::Done);
                    }
                }
                Event::Command(cmd) => {
                    let tag = cmd.tag;
                    if !cmd.kind.allowed_in(self.state) {
                        self.bad += 1;
                        let text = match self.state {
                            State::NotAuthenticated => {
                                ironpost_proto::imap::command::LOGIN_ERROR_TEXT.to_string()
                            }
                            State::Authenticated if needs_selected(&cmd.kind) => {
                                "No mailbox selected.".to_string()
                            }
                            _ => format!(
                                "Error in IMAP command {}: Command not allowed in this state.",
                                cmd.kind.name()
                            ),
                        };
                        self.bad_text(&tag, &text);
                        continue;
                    }
                    self.bad = 0;
                    self.command(&tag, cmd.kind).await?;
                    if self.state == State::Logout {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// A synchronizing literal: go on, or refuse it.
    fn continuation(&mut self, c: Continuation) {
        let logged_in = self.state != State::NotAuthenticated;
        if c.message && !logged_in {
            self.reader.refuse_literal();
            let tag = c.tag.unwrap_or_else(|| "*".into());
            self.bad_text(&tag, ironpost_proto::imap::command::LOGIN_ERROR_TEXT);
            return;
        }
        if !logged_in && c.size > LITERAL_MINUS_MAX * 4 {
            // Before login nothing needs large literals (RFC 7888 §4).
            self.reader.refuse_literal();
            let tag = c.tag.unwrap_or_else(|| "*".into());
            self.tagged(&tag, Status::Bad, Some(Code::TooBig), "Literal too large.");
            return;
        }
        self.out.extend_from_slice(resp::LITERAL_CONTINUATION_LINE);
    }

    async fn command(&mut self, tag: &str, kind: CommandKind) -> Result<(), End> {
        // The renames a STORE left for after its answer are done before
        // any command looks at the files.
        if let Some(v) = &self.view
            && v.folder.renames_due()
        {
            let folder = v.folder.clone();
            if let Err(e) = tokio::task::block_in_place(|| folder.settle()) {
                self.log_user(&format!("Error: renaming for new flags: {e}"));
            }
        }
        match kind {
            CommandKind::Capability => {
                let caps = self.capabilities();
                resp::capability(&mut self.out, &caps);
                self.ok(tag, "Capability completed.");
            }
            CommandKind::Noop => {
                self.report(true, true, false)?;
                self.ok(tag, "NOOP completed.");
            }
            CommandKind::Check => {
                self.write_back();
                self.report(true, true, false)?;
                self.ok(tag, "Check completed.");
            }
            CommandKind::Logout => {
                self.write_back();
                resp::untagged(&mut self.out, Status::Bye, None, "Logging out");
                self.ok(tag, "Logout completed.");
                self.state = State::Logout;
            }
            CommandKind::Id(_) => {
                resp::id(
                    &mut self.out,
                    Some(&[
                        ("name", Some("ironpost")),
                        ("version", Some(env!("CARGO_PKG_VERSION"))),
                    ]),
                );
                self.report(false, false, false)?;
                self.ok(tag, "ID completed.");
            }
            CommandKind::StartTls => {
                let Some(config) = self.p.login.tls.clone() else {
                    self.bad_text(tag, "TLS support isn't enabled.");
                    return Ok(());
                };
                if self.secure {
                    self.bad_text(tag, "TLS is already active.");
                    return Ok(());
                }
                self.ok(tag, "Begin TLS negotiation now.");
                self.flush().await?;
                self.reader.discard_pending();
                if self.handshake(config).await.is_err() {
                    return Err(End::Lost);
                }
            }
            CommandKind::Login { username, password } => {
                if !self.plaintext_allowed() {
                    self.tagged(
                        tag,
                        Status::No,
                        Some(Code::PrivacyRequired),
                        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                    );
                    return Ok(());
                }
                if self.locked_out(tag) {
                    return Ok(());
                }
                let password = String::from_utf8_lossy(password.as_bytes()).into_owned();
                let check = crate::auth::sasl::check_password(
                    self.p.login.accounts.clone(),
                    username.clone(),
                    password,
                )
                .await;
                self.verdict(tag, username, "PLAIN", check).await?;
            }
            CommandKind::Authenticate { mechanism, initial } => {
                self.authenticate(tag, &mechanism, initial.map(|s| s.0))
                    .await?;
            }
            CommandKind::Enable(caps) => {
                let mut on = Vec::new();
                for c in &caps {
                    match c.as_str() {
                        "CONDSTORE" => {
                            self.condstore = true;
                            on.push("CONDSTORE");
                        }
                        "QRESYNC" => {
                            // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                            self.condstore = true;
                            self.qresync = true;
                            on.push("QRESYNC");
                        }
                        "IMAP4REV2" => {
                            self.rev2 = true;
                            self.utf8 = true;
                            self.reader.set_utf8(true);
                            on.push("IMAP4rev2");
                        }
                        "UTF8=ACCEPT" => {
                            self.utf8 = true;
                            self.reader.set_utf8(true);
                            on.push("UTF8=ACCEPT");
                        }
                        _ => {}
                    }
                }
                resp::enabled(&mut self.out, &on);
                self.ok(tag, "Enabled.");
            }
            CommandKind::Select { mailbox, params } => {
                self.select(tag, &mailbox, params, false)?;
            }
            CommandKind::Examine { mailbox, params } => {
                self.select(tag, &mailbox, params, true)?;
            }
            CommandKind::Create {
                mailbox,
                special_use,
            } => {
                let r = self.create(&mailbox, &special_use);
                self.done(tag, r, "Create completed.");
            }
            CommandKind::Delete(mailbox) => {
                let r = self.delete(&mailbox);
                self.done(tag, r, "Delete completed.");
            }
            CommandKind::Rename { from, to } => {
                let r = tokio::task::block_in_place(|| self.rename(&from, &to));
                self.done(tag, r, "Rename completed.");
            }
            CommandKind::Subscribe(m) => {
                let r = self.subscribe(&m, true);
                self.done(tag, r, "Subscribe completed.");
            }
            CommandKind::Unsubscribe(m) => {
                let r = self.subscribe(&m, false);
                self.done(tag, r, "Unsubscribe completed.");
            }
            CommandKind::List(l) => {
                let r = tokio::task::block_in_place(|| self.list(&l));
                self.report(false, false, false)?;
                self.done(tag, r, "List completed.");
            }
            CommandKind::Lsub { reference, pattern } => {
                let r = self.lsub(&reference, &pattern);
                self.report(false, false, false)?;
                self.done(tag, r, "Lsub completed.");
            }
            CommandKind::Namespace => {
                resp::namespace(
                    &mut self.out,
                    &[Namespace {
                        prefix: "",
                        delimiter: Some(DELIMITER),
                    }],
                    &[],
                    &[],
                    self.utf8,
                );
                self.ok(tag, "Namespace completed.");
            }
            CommandKind::Status { mailbox, items } => {
                let r = tokio::task::block_in_place(|| self.status(&mailbox, &items));
                self.report(false, false, false)?;
                self.done(tag, r, "Status completed.");
            }
            CommandKind::Append { mailbox, messages } => {
                let r = tokio::task::block_in_place(|| self.append(&mailbox, messages));
                self.report(false, true, false)?;
                match r {
                    Ok(code) => self.tagged(tag, Status::Ok, Some(code), "Append completed."),
                    Err(no) => self.no(tag, no),
                }
            }
            CommandKind::Idle => self.idle(tag).await?,
            CommandKind::Close => {
                if let Some(v) = &self.view
                    && !v.read_only
                {
                    let r = tokio::task::block_in_place(|| self.expunge_deleted(None));
                    if let Err(e) = r {
                        self.log_user(&format!("Error: expunge: {}", e.1));
                    }
                }
                self.write_back();
                self.view = None;
                self.state = State::Authenticated;
                self.ok(tag, "Close completed.");
            }
            CommandKind::Unselect => {
                self.write_back();
                self.view = None;
                self.state = State::Authenticated;
                self.ok(tag, "Unselect completed.");
            }
            CommandKind::Expunge => self.expunge(tag, None)?,
            CommandKind::UidExpunge(set) => self.expunge(tag, Some(set))?,
            CommandKind::Search(s) => {
                tokio::task::block_in_place(|| self.search(tag, s))?;
            }
            CommandKind::Fetch(f) => self.fetch(tag, f).await?,
            CommandKind::Store(s) => {
                tokio::task::block_in_place(|| self.store(tag, s))?;
            }
            CommandKind::Copy { uid, set, mailbox } => {
                tokio::task::block_in_place(|| self.copy(tag, uid, &set, &mailbox, false))?;
            }
            CommandKind::Move { uid, set, mailbox } => {
                tokio::task::block_in_place(|| self.copy(tag, uid, &set, &mailbox, true))?;
            }
            CommandKind::Sort(srt) => {
                tokio::task::block_in_place(|| self.sort(tag, srt))?;
            }
            CommandKind::Thread(t) => {
                tokio::task::block_in_place(|| self.thread(tag, t))?;
            }
            CommandKind::GetQuotaRoot(mailbox) => {
                if let Err(no) = self.existing(&mailbox, false) {
                    self.no(tag, no);
                    return Ok(());
                }
                let has = self.user.as_ref().is_some_and(|u| u.quota.is_some());
                let roots: &[&str] = if has { &[QUOTA_ROOT] } else { &[] };
                resp::quotaroot(&mut self.out, &mailbox, roots, self.utf8);
                if has {
                    tokio::task::block_in_place(|| self.quota_response());
                }
                self.ok(tag, "Getquotaroot completed.");
            }
            CommandKind::GetQuota(root) => {
                if root != QUOTA_ROOT || self.user.as_ref().is_none_or(|u| u.quota.is_none()) {
                    self.tagged(
                        tag,
                        Status::No,
                        Some(Code::Nonexistent),
                        "Quota root does not exist",
                    );
                    return Ok(());
                }
                tokio::task::block_in_place(|| self.quota_response());
                self.ok(tag, "Getquota completed.");
            }
            CommandKind::SetQuota { .. } => {
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::NoPerm),
                    "Quota can't be changed over IMAP (ironpost user quota does it).",
                );
            }
            CommandKind::Compress(mechanism) => {
                if self.z.is_some() {
                    self.tagged(
                        tag,
                        Status::No,
                        Some(Code::CompressionActive),
                        "COMPRESSION already enabled.",
                    );
                } else if mechanism != "DEFLATE" {
                    self.no(
                        tag,
                        No(None, format!("Unknown compression mechanism: {mechanism}")),
                    );
                } else {
                    self.ok(tag, "Begin compression.");
                    self.flush().await?;
                    // Whatever the client sent after the command line is
                    // already compressed.
                    self.z = Some(Box::new(Deflate::new(self.reader.take_pending())));
                }
            }
        }
        Ok(())
    }

    /// `* QUOTA "User quota" (STORAGE used limit)`, in KiB (RFC 9208).
    fn quota_response(&mut self) {
        let Some(user) = &self.user else { return };
        let Some(limit) = user.quota else { return };
        let used = crate::store::quota::usage(user.folders.root()).unwrap_or(0);
        resp::quota(
            &mut self.out,
            QUOTA_ROOT,
            &[resp::QuotaResource {
                name: "STORAGE",
                usage: used.div_ceil(1024),
                limit: limit / 1024,
            }],
        );
    }

    /// Refuses adding `bytes` past the user's quota.
    fn check_quota(&self, bytes: u64) -> Result<(), No> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        let Some(limit) = user.quota else {
            return Ok(());
        };
        let used = crate::store::quota::usage(user.folders.root()).map_err(io_no)?;
        if used.saturating_add(bytes) > limit {
            return Err(No(
                Some(Code::OverQuota),
                "Quota exceeded (mailbox for user is full)".into(),
            ));
        }
        Ok(())
    }

    /// A folder command's tagged answer.
    fn done(&mut self, tag: &str, r: Result<(), No>, text: &str) {
        match r {
            Ok(()) => self.ok(tag, text),
            Err(no) => self.no(tag, no),
        }
    }

    /// Refuses a client locked out after too many failed logins.
    fn locked_out(&mut self, tag: &str) -> bool {
        if Throttle::global().locked(self.client, &self.p.login.limits, Instant::now()) {
            self.log_login(&format!(
                "Disconnected: too many failed authentications, login refused ({})",
                self.addresses()
            ));
            self.tagged(
                tag,
                Status::No,
                Some(Code::Unavailable),
                "Temporary authentication failure.",
            );
            return true;
        }
        false
    }

    async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Result<(), End> {
        let offered = self.mechanisms();
        let mech = match Mechanism::parse(mechanism) {
            Some(m) if offered.contains(&m) => m,
            Some(m) if m.is_plaintext() && self.p.login.mechanisms.contains(&m) => {
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::PrivacyRequired),
                    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                );
                return Ok(());
            }
            _ => {
                self.no(
                    tag,
                    No(None, "Unsupported authentication mechanism.".into()),
                );
                return Ok(());
            }
        };
        if self.locked_out(tag) {
            return Ok(());
        }
        let initial = match initial {
            None => None,
            Some(i) => match sasl::decode_response(&String::from_utf8_lossy(&i)) {
                Ok(v) => Some(v),
                Err(SaslError::Cancelled) => {
                    self.bad_text(tag, "Authentication aborted by client.");
                    return Ok(());
                }
                Err(_) => {
                    self.bad_text(tag, "Invalid base64 data in initial response");
                    return Ok(());
                }
            },
        };
        let accounts = self.p.login.accounts.clone();
        let plus = match mech {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Mechanism::ScramSha1Plus,
            _ => Mechanism::ScramSha256Plus,
        };
        let complete = |n: &str| n.to_string();
        let cx = Context {
            accounts: &accounts,
            channel_binding: self.io.channel_binding(),
            plus_offered: offered.contains(&plus),
            complete: &complete,
        };
        match crate::auth::sasl::authenticate(self, &cx, mech, initial).await? {
            Outcome::Checked { login, check } => {
                self.verdict(tag, login, mech.name(), check).await?
            }
            Outcome::AuthzRefused => self.failed_login(tag, None, mech.name()).await?,
            Outcome::Error(SaslError::Cancelled) => {
                self.bad_text(tag, "Authentication aborted by client.")
            }
            Outcome::Error(SaslError::BadBase64) => {
                self.bad_text(tag, "Invalid base64 data in continued response")
            }
            Outcome::Error(_) => self.failed_login(tag, None, mech.name()).await?,
        }
        Ok(())
    }

    async fn verdict(
        &mut self,
        tag: &str,
        login: String,
        method: &str,
        check: Check,
    ) -> Result<(), End> {
        match check {
            Check::Accepted => {
                Throttle::global().succeeded(self.client);
                self.logged_in(tag, login, method).await
            }
            Check::Refused => self.failed_login(tag, Some(&login), method).await,
            Check::Unavailable(why) => {
                self.log_login(&format!("Error: authentication: {why}"));
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::Unavailable),
                    "Temporary authentication failure.",
                );
                Ok(())
            }
        }
    }

    async fn failed_login(
        &mut self,
        tag: &str,
        login: Option<&str>,
        method: &str,
    ) -> Result<(), End> {
        self.failed_logins += 1;
        self.flush().await?;
        tokio::time::sleep(self.p.login.limits.delay).await;
        let who = login.map(|l| format!("user=<{l}>, ")).unwrap_or_default();
        if Throttle::global().failed(self.client, &self.p.login.limits, Instant::now()) {
            self.log_login(&format!(
                "Disconnected (auth failed, {} attempts): {who}method={method}, {}: too many failed authentications, logins refused for {}s",
                self.failed_logins,
                self.addresses(),
                self.p.login.limits.lockout.as_secs()
            ));
        } else {
            self.log_login(&format!(
                "Aborted login (auth failed, {} attempts): {who}method={method}, {}",
                self.failed_logins,
                self.addresses()
            ));
        }
        self.tagged(
            tag,
            Status::No,
            Some(Code::AuthenticationFailed),
            "Authentication failed.",
        );
        Ok(())
    }

    async fn logged_in(&mut self, tag: &str, login: String, method: &str) -> Result<(), End> {
        let accounts = self.p.login.accounts.clone();
        let who = {
            let l = login.clone();
            tokio::task::spawn_blocking(move || accounts.identify(&l))
                .await
                .map_err(|_| End::Lost)?
        };
        let who = match who {
            Ok(w) => w,
            Err(e) => {
                self.log_login(&format!("Error: {login}: {e}"));
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::Unavailable),
                    "Temporary authentication failure.",
                );
                return Ok(());
            }
        };
        let name = match &who {
            Identity::System(u) => u.clone(),
            Identity::Virtual(a) => a.clone(),
        };
        let (root, mbox) = match self.p.location.inbox(&who) {
            Ok(Some(MailboxPath::Maildir(p))) => (p, None),
            Ok(Some(MailboxPath::Mbox(p))) => (
                crate::store::index::state_dir(&self.p.location.data_directory, "imap", &p),
                Some(p),
            ),
            Ok(None) => {
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::Unavailable),
                    "No mailbox for this user.",
                );
                return Ok(());
            }
            Err(e) => {
                self.log_login(&format!("Error: {name}: {e}"));
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::Unavailable),
                    "Temporary authentication failure.",
                );
                return Ok(());
            }
        };
        let Some(count) = UserIp::take(&name, self.client, self.p.max_userip) else {
            self.log_login(&format!(
                "Maximum number of connections from user+IP exceeded (mail_max_userip_connections={}): user=<{name}>, method={method}, {}",
                self.p.max_userip,
                self.addresses()
            ));
            self.tagged(
                tag,
                Status::No,
                Some(Code::Limit),
                &format!(
                    "Maximum number of connections from user+IP exceeded (mail_max_userip_connections={})",
                    self.p.max_userip
                ),
            );
            return Ok(());
        };
        let folders = match &mbox {
            Some(p) => Folders::with_mbox_inbox(p, &root),
            None => Folders::new(&root),
        };
        let autocreate = if mbox.is_some() {
            Vec::new()
        } else {
            self.p.autocreate.clone()
        };
        let made = tokio::task::block_in_place(|| -> io::Result<()> {
            if mbox.is_some() {
                std::fs::create_dir_all(&root)?;
                return Ok(());
            }
            crate::store::Maildir::open(&root, true)?;
            let mut subs = folders.subscriptions()?;
            let mut changed = false;
            for f in &autocreate {
                if !folders.exists(f) {
                    folders.create(f)?;
                    changed |= subs.insert(f.clone());
                }
            }
            if changed {
                folders.save_subscriptions(&subs)?;
            }
            Ok(())
        });
        if let Err(e) = made {
            self.log.log_as(
                &self.p.login.syslog_name,
                self.number,
                &format!("imap({name}): Error: {}: {e}", root.display()),
            );
            self.tagged(
                tag,
                Status::No,
                Some(Code::ServerBug),
                "Internal error occurred. Refer to server log for more information.",
            );
            return Ok(());
        }
        self.log_login(&format!(
            "Login: user=<{name}>, method={method}, {}, mpid={}{}",
            self.addresses(),
            self.number,
            self.protection()
        ));
        let quota = match &who {
            Identity::Virtual(a) => {
                let url = self.p.login.accounts.directory_url.clone();
                let a = a.clone();
                tokio::task::block_in_place(|| crate::store::quota::limit(url.as_deref(), &a))
                    .unwrap_or_else(|e| {
                        self.log_login(&format!("Error: quota of {name}: {e}"));
                        None
                    })
            }
            Identity::System(_) => None,
        };
        self.user = Some(User {
            name,
            folders,
            quota,
            _count: count,
        });
        self.state = State::Authenticated;
        let caps = self.capabilities();
        self.tagged(tag, Status::Ok, Some(Code::Capability(caps)), "Logged in");
        Ok(())
    }

    fn folders(&self) -> &Folders {
        &self.user.as_ref().expect("logged in").folders
    }

    /// The directory of a folder that exists.
    fn existing(&self, name: &MailboxName, trycreate: bool) -> Result<std::path::PathBuf, No> {
        let f = self.folders();
        let path = f
            .path(name.as_str())
            .map_err(|_| No(Some(Code::Cannot), "Invalid mailbox name".into()))?;
        if !f.exists(name.as_str()) {
            let code = if trycreate {
                Code::TryCreate
            } else {
                Code::Nonexistent
            };
            return Err(No(Some(code), format!("Mailbox doesn't exist: {name}")));
        }
        Ok(path)
    }

    fn open_folder(&self, path: &std::path::Path) -> Result<Arc<Folder>, No> {
        let data = &self.p.location.data_directory;
        match self.folders().mbox_inbox() {
            Some(inbox) if inbox == path => Folder::open_mbox(path, data),
            _ => Folder::open(path, data, false),
        }
        .map_err(io_no)
    }

    fn select(
        &mut self,
        tag: &str,
        name: &MailboxName,
        params: ironpost_proto::imap::command::SelectParams,
        read_only: bool,
    ) -> Result<(), End> {
        if params.qresync.is_some() && !self.qresync {
            self.bad_text(tag, "Error in IMAP command SELECT: QRESYNC not enabled");
            return Ok(());
        }
        if params.condstore {
            self.condstore = true;
        }
        if self.view.take().is_some() && (self.qresync || self.rev2) {
            // RFC 7162 §3.2.11.
            resp::untagged(&mut self.out, Status::Ok, Some(&Code::Closed), "");
        }
        self.state = State::Authenticated;
        let path = match self.existing(name, false) {
            Ok(p) => p,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let opened = tokio::task::block_in_place(|| {
            let folder = self.open_folder(&path)?;
            View::open(folder, read_only).map_err(io_no)
        });
        let view = match opened {
            Ok(v) => v,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let (flags, uidnext, highest, unseen) = {
            let st = view.folder.lock();
            let mut unseen = None;
            for (i, k) in view.msgs.iter().enumerate() {
                if let Some(r) = st.index.get(k.uid)
                    && !r.flags().seen
                {
                    unseen = Some(i as u32 + 1);
                    break;
                }
            }
            (
                st.keyword_flags(),
                st.snapshot.uidnext,
                st.index.highestmodseq(),
                unseen,
            )
        };
        let mut all = system_flags();
        all.extend(flags);
        resp::flags(&mut self.out, &all);
        let mut permanent = if read_only { Vec::new() } else { all.clone() };
        if !read_only {
            permanent.push(Flag::Wildcard);
        }
        resp::untagged(
            &mut self.out,
            Status::Ok,
            Some(&Code::PermanentFlags(permanent)),
            if read_only {
                "Read-only mailbox."
            } else {
                "Flags permitted."
            },
        );
        resp::exists(&mut self.out, view.exists());
        if self.rev2 {
            // RFC 9051 §6.3.2: the mailbox's LIST response, its name as
            // the server writes it.
            let prefix = format!("{name}{DELIMITER}");
            let children = !name.is_inbox()
                && self
                    .folders()
                    .list()
                    .is_ok_and(|l| l.iter().any(|n| n.starts_with(&prefix)));
            let mut attrs = vec![if children {
                MailboxAttr::HasChildren
            } else {
                MailboxAttr::HasNoChildren
            }];
            attrs.extend(
                self.folders()
                    .special_uses(name.as_str())
                    .iter()
                    .filter_map(|u| MailboxAttr::special_use(u)),
            );
            resp::list(
                &mut self.out,
                "LIST",
                &ListItem {
                    attributes: &attrs,
                    delimiter: Some(DELIMITER),
                    name,
                    child_info_subscribed: false,
                    old_name: None,
                },
                self.utf8,
            );
        }
        // IMAP4rev2 has neither RECENT nor the UNSEEN code (RFC 9051 §E).
        if !self.rev2 {
            resp::recent(&mut self.out, view.recent());
        }
        if let Some(n) = unseen.filter(|_| !self.rev2) {
            resp::untagged(
                &mut self.out,
                Status::Ok,
                Some(&Code::Unseen(n)),
                "First unseen.",
            );
        }
        resp::untagged(
            &mut self.out,
            Status::Ok,
            Some(&Code::UidValidity(view.uidvalidity)),
            "UIDs valid",
        );
        resp::untagged(
            &mut self.out,
            Status::Ok,
            Some(&Code::UidNext(uidnext)),
            "Predicted next UID",
        );
        resp::untagged(
            &mut self.out,
            Status::Ok,
            Some(&Code::HighestModSeq(highest)),
            "Highest",
        );
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        let text = if read_only {
            "Examine completed."
        } else {
            "Select completed."
        };
        if let Some(q) = &params.qresync
            && q.uid_validity == view.uidvalidity
        {
            self.qresync_catch_up(&view, q);
        }
        self.view = Some(view);
        self.scanned = Instant::now();
        self.state = State::Selected;
        self.tagged(tag, Status::Ok, Some(code), text);
        Ok(())
    }

    /// SELECT (QRESYNC ...): what the client missed since its MODSEQ
    /// (RFC 7162 §3.2.5): the UIDs expunged since, then the messages
    /// changed since, with their flags.
    fn qresync_catch_up(&mut self, view: &View, q: &ironpost_proto::imap::command::Qresync) {
        let st = view.folder.lock();
        let max = view.max_uid().max(st.snapshot.uidnext.saturating_sub(1));
        let known = |u: u32| q.known_uids.as_ref().is_none_or(|set| set.contains(u, max));
        let vanished: Vec<u32> = match st.index.vanished_since(q.mod_seq) {
            Some(v) => v.into_iter().filter(|&u| known(u)).collect(),
            None => {
                // History too short: every known UID that is not here
                // (RFC 7162 §3.2.5.1 allows this answer).
                let mut v = Vec::new();
                if let Some(set) = &q.known_uids
                    && let Ok(ranges) = set.resolve_uid(max)
                {
                    for r in ranges {
                        for u in r.take(1_000_000) {
                            if view.msgs.binary_search_by_key(&u, |m| m.uid).is_err() {
                                v.push(u);
                            }
                        }
                    }
                }
                v
            }
        };
        resp::vanished(&mut self.out, true, &ranges_of(&vanished));
        for (i, k) in view.msgs.iter().enumerate() {
            let Some(r) = st.index.get(k.uid) else {
                continue;
            };
            if r.modseq <= q.mod_seq || !known(k.uid) {
                continue;
            }
            let mut flags = to_imap(&r.flags(), &st.keywords);
            if k.recent && !self.rev2 {
                flags.push(Flag::Recent);
            }
            let mut f = resp::FetchResponse::new(i as u32 + 1);
            f.uid(k.uid);
            f.flags(&flags);
            f.modseq(r.modseq);
            f.finish_into(&mut self.out);
        }
    }

    fn create(&mut self, name: &MailboxName, uses: &[String]) -> Result<(), No> {
        // RFC 6154 §3: only the special uses we know; nothing is made
        // otherwise.
        let mut wanted = Vec::new();
        for u in uses {
            match MailboxAttr::special_use(u) {
                Some(a) => wanted.push(a.as_str().to_string()),
                None => {
                    return Err(No(
                        Some(Code::Other("USEATTR".into(), None)),
                        format!("Unsupported special-use attribute {u}"),
                    ));
                }
            }
        }
        // `CREATE a.b.` creates `a.b` (RFC 3501 §6.3.3).
        let n = name.as_str().trim_end_matches(DELIMITER);
        if n.eq_ignore_ascii_case("INBOX") {
            return Err(No(
                Some(Code::AlreadyExists),
                "Mailbox already exists".into(),
            ));
        }
        let f = self.folders();
        if f.path(n).is_err() {
            return Err(No(Some(Code::Cannot), "Invalid mailbox name".into()));
        }
        match f.create(n) {
            Ok(()) if wanted.is_empty() => Ok(()),
            Ok(()) => f.set_special_uses(n, &wanted).map_err(io_no),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(No(
                Some(Code::AlreadyExists),
                "Mailbox already exists".into(),
            )),
            Err(e) => Err(io_no(e)),
        }
    }

    fn delete(&mut self, name: &MailboxName) -> Result<(), No> {
        if name.is_inbox() {
            return Err(No(Some(Code::Cannot), "INBOX can't be deleted.".into()));
        }
        let path = self.existing(name, false)?;
        if let Some(v) = &self.view
            && v.folder.path == path
        {
            self.view = None;
            self.state = State::Authenticated;
        }
        Folder::forget(&path);
        self.folders().delete(name.as_str()).map_err(io_no)?;
        let _ = self.folders().subscribe(name.as_str(), false);
        Ok(())
    }

    fn rename(&mut self, from: &MailboxName, to: &MailboxName) -> Result<(), No> {
        let f = self.folders().clone();
        let target = to.as_str().trim_end_matches(DELIMITER);
        if target.eq_ignore_ascii_case("INBOX") || f.path(target).is_err() {
            return Err(No(Some(Code::Cannot), "Invalid mailbox name".into()));
        }
        if f.exists(target) {
            return Err(No(
                Some(Code::AlreadyExists),
                "Target mailbox already exists".into(),
            ));
        }
        if from.is_inbox() {
            // RFC 3501 §6.3.5: INBOX's messages move to the new folder;
            // INBOX stays, empty.
            f.create(target).map_err(io_no)?;
            let src = self.open_folder(f.root())?;
            let dst = self.open_folder(
                &f.path(target)
                    .map_err(|_| No(None, "Invalid mailbox name".into()))?,
            )?;
            let st = src.sync().map_err(io_no)?;
            let snap = st.snapshot.clone();
            drop(st);
            let sources: Vec<(&crate::store::Message, Flags)> =
                snap.messages.iter().map(|m| (m, m.flags.clone())).collect();
            let keywords = dst.lock().keywords.clone();
            dst.store.copy_in(&sources, &keywords).map_err(io_no)?;
            let msgs: Vec<&crate::store::Message> = snap.messages.iter().collect();
            src.store.expunge(&msgs).map_err(io_no)?;
            drop(src.sync());
            drop(dst.sync());
            return Ok(());
        }
        self.existing(from, false)?;
        let moved = f.rename(from.as_str(), target).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                No(
                    Some(Code::AlreadyExists),
                    "Target mailbox already exists".into(),
                )
            } else {
                io_no(e)
            }
        })?;
        for (a, b) in &moved {
            for n in [a, b] {
                if let Ok(p) = f.path(n) {
                    Folder::forget(&p);
                }
            }
        }
        // Subscriptions follow the names.
        if let Ok(mut subs) = f.subscriptions() {
            let mut changed = false;
            for (a, b) in &moved {
                if subs.remove(a) {
                    subs.insert(b.clone());
                    changed = true;
                }
            }
            if changed {
                let _ = f.save_subscriptions(&subs);
            }
        }
        if let Some(v) = &self.view
            && moved
                .iter()
                .any(|(a, _)| f.path(a).is_ok_and(|p| p == v.folder.path))
        {
            self.view = None;
            self.state = State::Authenticated;
        }
        Ok(())
    }

    fn subscribe(&mut self, name: &MailboxName, on: bool) -> Result<(), No> {
        let f = self.folders();
        if !name.is_inbox() && f.path(name.as_str()).is_err() {
            return Err(No(Some(Code::Cannot), "Invalid mailbox name".into()));
        }
        if on && !f.exists(name.as_str()) {
            return Err(No(
                Some(Code::Nonexistent),
                format!("Mailbox doesn't exist: {name}"),
            ));
        }
        f.subscribe(name.as_str(), on).map_err(io_no)
    }

    /// Every folder name with whether it exists (parents implied by a
    /// child's name exist only as names).
    fn tree(&self) -> Result<Vec<(String, bool)>, No> {
        let names = self.folders().list().map_err(io_no)?;
        let mut all: BTreeSet<(String, bool)> = BTreeSet::new();
        let mut real: BTreeSet<String> = names.iter().cloned().collect();
        real.insert("INBOX".into());
        for n in &real {
            all.insert((n.clone(), true));
            let mut parent = n.as_str();
            while let Some(i) = parent.rfind(DELIMITER) {
                parent = &parent[..i];
                if !real.contains(parent) {
                    all.insert((parent.to_string(), false));
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    fn list(&mut self, l: &ListCommand) -> Result<(), No> {
        if l.patterns.len() == 1 && l.patterns[0].is_empty() && !l.extended {
            // The delimiter and the root (RFC 3501 §6.3.8).
            let root = MailboxName::new("");
            resp::list(
                &mut self.out,
                "LIST",
                &ListItem {
                    attributes: &[MailboxAttr::NoSelect],
                    delimiter: Some(DELIMITER),
                    name: &root,
                    child_info_subscribed: false,
                    old_name: None,
                },
                self.utf8,
            );
            return Ok(());
        }
        let tree = self.tree()?;
        let subs = self.folders().subscriptions().map_err(io_no)?;
        let patterns: Vec<String> = l
            .patterns
            .iter()
            .map(|p| format!("{}{}", l.reference, p))
            .collect();
        let matches = |name: &str| patterns.iter().any(|p| pattern_match(p, name));
        let mut items: Vec<(String, Vec<MailboxAttr>, bool)> = Vec::new();
        let mut seen = BTreeSet::new();
        let candidates: Vec<(String, bool)> = if l.select.subscribed {
            // Subscribed names, existing or not (RFC 5258 §3.1).
            subs.iter()
                .map(|s| (s.clone(), tree.iter().any(|(n, e)| n == s && *e)))
                .collect()
        } else {
            tree.clone()
        };
        for (name, exists) in &candidates {
            if !matches(name) || !seen.insert(name.clone()) {
                continue;
            }
            let mut attrs = Vec::new();
            if !exists {
                attrs.push(if l.select.subscribed {
                    MailboxAttr::NonExistent
                } else {
                    MailboxAttr::NoSelect
                });
            }
            let prefix = format!("{name}{DELIMITER}");
            let children = name != "INBOX" && tree.iter().any(|(n, _)| n.starts_with(&prefix));
            attrs.push(if children {
                MailboxAttr::HasChildren
            } else {
                MailboxAttr::HasNoChildren
            });
            if (l.select.subscribed || l.returns.subscribed) && subs.contains(name) {
                attrs.push(MailboxAttr::Subscribed);
            }
            let uses: Vec<MailboxAttr> = self
                .folders()
                .special_uses(name)
                .iter()
                .filter_map(|u| MailboxAttr::special_use(u))
                .collect();
            if uses.is_empty() && l.select.special_use {
                continue;
            }
            attrs.extend(uses);
            let child_subscribed = l.select.recursive_match
                && l.select.subscribed
                && subs.iter().any(|s| s.starts_with(&prefix));
            items.push((name.clone(), attrs, child_subscribed && *exists));
        }
        for (name, attrs, child_info) in items {
            let mn = MailboxName::new(name.clone());
            resp::list(
                &mut self.out,
                "LIST",
                &ListItem {
                    attributes: &attrs,
                    delimiter: Some(DELIMITER),
                    name: &mn,
                    child_info_subscribed: child_info,
                    old_name: None,
                },
                self.utf8,
            );
            if let Some(items) = &l.returns.status
                && !attrs.contains(&MailboxAttr::NoSelect)
                && !attrs.contains(&MailboxAttr::NonExistent)
            {
                // LIST-STATUS: a folder that cannot be read is left out.
                let _ = self.status(&mn, items);
            }
        }
        Ok(())
    }

    fn lsub(&mut self, reference: &str, pattern: &str) -> Result<(), No> {
        let subs = self.folders().subscriptions().map_err(io_no)?;
        let tree = self.tree()?;
        let full = format!("{reference}{pattern}");
        for s in subs {
            if !pattern_match(&full, &s) {
                continue;
            }
            let exists = tree.iter().any(|(n, e)| *n == s && *e);
            let attrs: Vec<MailboxAttr> = if exists {
                Vec::new()
            } else {
                vec![MailboxAttr::NoSelect]
            };
            let mn = MailboxName::new(s);
            resp::list(
                &mut self.out,
                "LSUB",
                &ListItem {
                    attributes: &attrs,
                    delimiter: Some(DELIMITER),
                    name: &mn,
                    child_info_subscribed: false,
                    old_name: None,
                },
                self.utf8,
            );
        }
        Ok(())
    }

    fn status(&mut self, name: &MailboxName, items: &[StatusItem]) -> Result<(), No> {
        let path = self.existing(name, false)?;
        let folder = self.open_folder(&path)?;
        let st = folder.sync().map_err(io_no)?;
        let records = st.index.records();
        let mut out = Vec::new();
        for item in items {
            let n: u64 = match item {
                StatusItem::Messages => records.len() as u64,
                StatusItem::UidNext => u64::from(st.snapshot.uidnext),
                StatusItem::UidValidity => u64::from(st.index.uidvalidity()),
                StatusItem::Unseen => records.iter().filter(|r| !r.flags().seen).count() as u64,
                StatusItem::Deleted => records.iter().filter(|r| r.flags().deleted).count() as u64,
                StatusItem::Size => records.iter().map(|r| r.wire_size).sum(),
                StatusItem::Recent => records.iter().filter(|r| r.sub == Sub::New).count() as u64,
                StatusItem::HighestModSeq => st.index.highestmodseq(),
                StatusItem::AppendLimit => self.p.max_message,
                StatusItem::DeletedStorage => records
                    .iter()
                    .filter(|r| r.flags().deleted)
                    .map(|r| r.wire_size)
                    .sum(),
            };
            out.push((*item, n));
        }
        drop(st);
        resp::status_data(&mut self.out, name, &out, self.utf8);
        Ok(())
    }

    fn append(
        &mut self,
        name: &MailboxName,
        messages: Vec<ironpost_proto::imap::command::AppendMessage>,
    ) -> Result<Code, No> {
        let path = self.existing(name, true)?;
        let folder = self.open_folder(&path)?;
        let mut uids = Vec::with_capacity(messages.len());
        for m in &messages {
            if m.data.is_empty() {
                return Err(No(None, "Can't save a zero byte message.".into()));
            }
            if m.data.len() as u64 > self.p.max_message {
                return Err(No(
                    Some(Code::TooBig),
                    "Mail size is larger than the maximum size allowed by server configuration."
                        .into(),
                ));
            }
        }
        let total: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        self.check_quota(total)?;
        // MULTIAPPEND is all or nothing (RFC 3502 §6.3.11).
        let mut flags = Vec::with_capacity(messages.len());
        let keywords = {
            let mut st = folder.lock();
            for m in &messages {
                flags.push(st.to_maildir(&m.flags, &Flags::default()).map_err(io_no)?);
            }
            st.keywords.clone()
        };
        let items: Vec<_> = messages
            .iter()
            .zip(&flags)
            .map(|(m, f)| {
                let date = m.date.map(|d| {
                    let t = d.timestamp();
                    if t >= 0 {
                        std::time::UNIX_EPOCH + Duration::from_secs(t as u64)
                    } else {
                        std::time::UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
                    }
                });
                (&m.data[..], f, date)
            })
            .collect();
        let stored = match folder.store.append_all(&items, &keywords) {
            Ok(s) => s,
            Err(e) => {
                drop(folder.sync());
                return Err(io_no(e));
            }
        };
        uids.extend(stored.iter().map(|(u, _)| *u));
        self.added_to(&folder, &uids);
        let st = folder.sync().map_err(io_no)?;
        let v = st.index.uidvalidity();
        drop(st);
        folder.sync_soon();
        Ok(Code::append_uid(v, &uids))
    }

    /// This session put `uids` into `folder`: \Recent for it if that is
    /// the selected folder.
    fn added_to(&mut self, folder: &Folder, uids: &[u32]) {
        if let Some(v) = self.view.as_mut()
            && v.folder.path == folder.path
        {
            v.added.extend(uids);
        }
    }

    /// Sends what changed in the selected folder: EXPUNGE only when
    /// `expunges`; a fresh scan of the Maildir when `rescan` (else only
    /// when told of a change, or a second after the last).
    fn report(&mut self, expunges: bool, rescan: bool, uid: bool) -> Result<(), End> {
        let Some(view) = self.view.as_mut() else {
            return Ok(());
        };
        let rescan = rescan
            || view.watch.receiver.has_changed().unwrap_or(false)
            || self.scanned.elapsed() >= Duration::from_secs(1);
        if rescan {
            view.watch.receiver.mark_unchanged();
            self.scanned = Instant::now();
        }
        let up = match tokio::task::block_in_place(|| view.refresh(expunges, rescan)) {
            Ok(u) => u,
            Err(e) => {
                self.log_user(&format!("Error: sync: {e}"));
                return Ok(());
            }
        };
        self.write_update(up, uid)
    }

    /// `* FLAGS` and PERMANENTFLAGS again when the folder has keywords the
    /// session has not been told of.
    fn announce_keywords(&mut self) {
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let st = view.folder.lock();
        let n = st.keywords.names().count();
        if n == view.keyword_count {
            return;
        }
        view.keyword_count = n;
        let mut all = system_flags();
        all.extend(st.keyword_flags());
        drop(st);
        resp::flags(&mut self.out, &all);
        if !view.read_only {
            let mut permanent = all;
            permanent.push(Flag::Wildcard);
            resp::untagged(
                &mut self.out,
                Status::Ok,
                Some(&Code::PermanentFlags(permanent)),
                "Flags permitted.",
            );
        }
    }

    fn write_update(&mut self, up: Update, uid: bool) -> Result<(), End> {
        if up.reset {
            resp::untagged(
                &mut self.out,
                Status::Bye,
                None,
                "Mailbox UIDVALIDITY changed",
            );
            return Err(End::Done);
        }
        let Some(view) = self.view.as_ref() else {
            return Ok(());
        };
        if self.qresync {
            resp::vanished(&mut self.out, false, &ranges_of(&up.vanished));
        } else {
            for n in &up.expunged {
                resp::expunge(&mut self.out, *n);
            }
        }
        if up.keywords {
            let st = view.folder.lock();
            let mut all = system_flags();
            all.extend(st.keyword_flags());
            drop(st);
            resp::flags(&mut self.out, &all);
            if !view.read_only {
                let mut permanent = all.clone();
                permanent.push(Flag::Wildcard);
                resp::untagged(
                    &mut self.out,
                    Status::Ok,
                    Some(&Code::PermanentFlags(permanent)),
                    "Flags permitted.",
                );
            }
        }
        if let Some(n) = up.exists {
            resp::exists(&mut self.out, n);
        }
        if let Some(n) = up.recent.filter(|_| !self.rev2) {
            resp::recent(&mut self.out, n);
        }
        if !up.flags.is_empty() {
            let st = view.folder.lock();
            for (seq, u) in &up.flags {
                let Some(r) = st.index.get(*u) else { continue };
                let recent =
                    !self.rev2 && view.msgs.get(*seq as usize - 1).is_some_and(|k| k.recent);
                let mut flags = to_imap(&r.flags(), &st.keywords);
                if recent {
                    flags.push(Flag::Recent);
                }
                let mut f = resp::FetchResponse::new(*seq);
                if uid {
                    f.uid(*u);
                }
                f.flags(&flags);
                if self.condstore {
                    f.modseq(r.modseq);
                }
                f.finish_into(&mut self.out);
            }
        }
        Ok(())
    }

    /// The view's indices of a sequence or UID set (UIDs that do not exist
    /// are skipped). `Err` is the BAD text.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, String> {
        let view = self.view.as_ref().expect("selected");
        let n = view.msgs.len();
        let mut out = Vec::new();
        if set.is_saved() {
            // RFC 5182: `$` is the saved UIDs, in either command.
            for u in self.saved.iter().flatten() {
                if let Ok(i) = view.msgs.binary_search_by_key(u, |m| m.uid) {
                    out.push(i);
                }
            }
            return Ok(out);
        }
        if uid {
            let ranges = set
                .resolve_uid(view.max_uid())
                .map_err(|e| format!("Invalid uidset: {e}"))?;
            for r in ranges {
                let lo = view.msgs.partition_point(|m| m.uid < *r.start());
                let hi = view.msgs.partition_point(|m| m.uid <= *r.end());
                out.extend(lo..hi);
            }
        } else {
            if n == 0 {
                return Err("No messages.".into());
            }
            let ranges = set
                .resolve_seq(n as u32)
                .map_err(|_| "Invalid messageset".to_string())?;
            for r in ranges {
                out.extend((*r.start().max(&1) as usize - 1)..(*r.end() as usize).min(n));
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn fetch(&mut self, tag: &str, f: FetchCommand) -> Result<(), End> {
        let verb = if f.uid { "UID FETCH" } else { "FETCH" };
        let idx = match self.resolve(&f.set, f.uid) {
            Ok(i) => i,
            Err(e) => {
                self.bad_text(tag, &format!("Error in IMAP command {verb}: {e}"));
                return Ok(());
            }
        };
        if f.changed_since.is_some() {
            self.condstore = true;
        }
        let modseq =
            self.condstore && (f.changed_since.is_some() || f.items.contains(&FetchAttr::ModSeq));
        let mut items = f.items.clone();
        let sets_seen = items.iter().any(FetchAttr::sets_seen);
        let content = fetch::needs_content(&items);
        let structure = fetch::needs_structure(&items);
        let mut missing = false;
        let mut binary_error = None;
        let view = self.view.as_ref().expect("selected");
        let folder = view.folder.clone();
        let read_only = view.read_only;
        if sets_seen && !read_only && !items.contains(&FetchAttr::Flags) {
            items.push(FetchAttr::Flags);
        }
        let mut seen_changes: Vec<(u32, u64)> = Vec::new();
        if f.vanished
            && let Some(since) = f.changed_since
        {
            if !self.qresync {
                self.bad_text(tag, "Error in IMAP command UID FETCH: QRESYNC not enabled");
                return Ok(());
            }
            // RFC 7162 §3.2.6: the UIDs of the set expunged since.
            let st = folder.lock();
            let max = view.max_uid().max(st.snapshot.uidnext.saturating_sub(1));
            let gone: Vec<u32> = st
                .index
                .vanished_since(since)
                .unwrap_or_default()
                .into_iter()
                .filter(|&u| f.set.contains(u, max))
                .collect();
            drop(st);
            resp::vanished(&mut self.out, true, &ranges_of(&gone));
        }
        // The message files are read ahead on another thread while this
        // one builds and sends the responses.
        let mut ahead = if content && idx.len() >= fetch::READ_AHEAD_MIN {
            let uids = idx.iter().map(|&i| view.msgs[i].uid).collect();
            fetch::ReadAhead::start(&folder, uids)
        } else {
            None
        };
        for (n, &i) in idx.iter().enumerate() {
            // One result per message, taken first whatever happens next.
            let mut read_ahead = ahead.as_mut().and_then(fetch::ReadAhead::take);
            let Some(view) = self.view.as_ref() else {
                break;
            };
            let known = view.msgs[i].clone();
            let seq = i as u32 + 1;
            let item = {
                let mut st = folder.lock();
                let Some(r) = st.index.get(known.uid) else {
                    missing = true;
                    continue;
                };
                let (r_flags, r_modseq, r_wire, r_date) =
                    (r.flags(), r.modseq, r.wire_size, r.internal_date());
                if let Some(since) = f.changed_since
                    && r_modseq <= since
                {
                    continue;
                }
                let cached = if structure {
                    st.structure(known.uid)
                } else {
                    None
                };
                let need_raw = content || (structure && cached.is_none());
                let wants_seen = sets_seen && !read_only && !r_flags.seen;
                // The file is only looked for when it is to be read (and
                // was not read ahead) or renamed.
                let msg = if (need_raw && read_ahead.is_none()) || wants_seen {
                    st.message(known.uid).map(|m| {
                        let mut m = m.clone();
                        if let Some(r) = st.index.get(known.uid) {
                            m.path = folder.path.join(r.rel_path());
                        }
                        m
                    })
                } else {
                    None
                };
                let flags = to_imap(&r_flags, &st.keywords);
                (
                    r_flags, r_modseq, r_wire, r_date, cached, msg, flags, need_raw,
                )
            };
            let (r_flags, r_modseq, r_wire, r_date, mut cached, msg, mut imap_flags, need_raw) =
                item;
            let raw = if need_raw {
                let got = match (read_ahead.take(), &msg) {
                    (Some(got), _) => got,
                    (None, Some(msg)) => folder.store.read(msg),
                    (None, None) => {
                        missing = true;
                        continue;
                    }
                };
                match got {
                    Ok(d) => Some(d),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        missing = true;
                        continue;
                    }
                    Err(e) => {
                        self.log_user(&format!("Error: read UID {}: {e}", known.uid));
                        missing = true;
                        continue;
                    }
                }
            } else {
                None
            };
            if structure
                && cached.is_none()
                && let Some(raw) = &raw
            {
                let s = Arc::new(Structure::of(raw));
                folder.lock().set_structure(known.uid, &s);
                cached = Some(s);
            }
            let mut flags = r_flags;
            let mut modseq_now = r_modseq;
            if sets_seen
                && !read_only
                && !flags.seen
                && let Some(msg) = &msg
            {
                flags.seen = true;
                let mut st = folder.lock_settled();
                if let Ok(p) = folder.store.set_flags(msg, &flags)
                    && let Some(name) = p.file_name().and_then(|n| n.to_str())
                    && let Ok(Some(m)) = st.index.renamed(known.uid, Sub::Cur, name)
                {
                    modseq_now = m;
                    seen_changes.push((known.uid, m));
                }
                imap_flags = to_imap(&flags, &st.keywords);
            }
            let it = fetch::Item {
                seq,
                uid: known.uid,
                flags: &imap_flags,
                recent: known.recent && !self.rev2,
                internal_date: r_date,
                wire_size: r_wire,
                modseq: modseq_now,
                structure: cached.as_deref(),
                raw: raw.as_deref(),
            };
            let err = fetch::respond_into(
                &mut self.out,
                &items,
                &it,
                f.uid,
                modseq,
                self.utf8,
                &mut self.counters.fetch,
            );
            if err.is_some() {
                binary_error = err;
            }
            if self.out.len() >= FLUSH_AT || (n % 256 == 255 && !self.out.is_empty() && content) {
                self.flush().await?;
            }
        }
        if !seen_changes.is_empty()
            && let Some(v) = self.view.as_mut()
        {
            {
                for (u, m) in &seen_changes {
                    if let Ok(i) = v.msgs.binary_search_by_key(u, |k| k.uid) {
                        v.msgs[i].modseq = *m;
                    }
                }
                v.watch.changed();
                v.folder.sync_soon();
            }
        }
        self.report(f.uid, false, f.uid)?;
        if let Some(e) = binary_error {
            self.tagged(
                tag,
                Status::No,
                Some(Code::Other(e.code().into(), None)),
                e.text(),
            );
        } else if missing {
            self.tagged(
                tag,
                Status::No,
                Some(Code::ExpungeIssued),
                "Some messages were expunged or could not be read.",
            );
        } else {
            self.ok(tag, "Fetch completed.");
        }
        Ok(())
    }

    fn store(&mut self, tag: &str, s: StoreCommand) -> Result<(), End> {
        let verb = if s.uid { "UID STORE" } else { "STORE" };
        let idx = match self.resolve(&s.set, s.uid) {
            Ok(i) => i,
            Err(e) => {
                self.bad_text(tag, &format!("Error in IMAP command {verb}: {e}"));
                return Ok(());
            }
        };
        let view = self.view.as_ref().expect("selected");
        if view.read_only {
            self.no(tag, No(None, "Mailbox is read-only.".into()));
            return Ok(());
        }
        if s.unchanged_since.is_some() {
            self.condstore = true;
        }
        let folder = view.folder.clone();
        let mut modified = Vec::new();
        let mut results: Vec<(u32, u32, Vec<Flag>, u64)> = Vec::new();
        let mut deleted = 0u64;
        {
            let mut st = folder.lock_settled();
            let mut changes: Vec<(crate::store::Message, Flags, u32, u32)> = Vec::new();
            let mut same: Vec<(u32, u32)> = Vec::new();
            for &i in &idx {
                let k = &view.msgs[i];
                let Some(r) = st.index.get(k.uid).cloned() else {
                    continue;
                };
                if let Some(u) = s.unchanged_since
                    && r.modseq > u
                {
                    modified.push(if s.uid { k.uid } else { i as u32 + 1 });
                    continue;
                }
                let old = r.flags();
                let given = match st.to_maildir(&s.flags, &old) {
                    Ok(f) => f,
                    Err(e) => {
                        drop(st);
                        self.no(tag, io_no(e));
                        return Ok(());
                    }
                };
                let new = match s.mode {
                    StoreMode::Replace => given,
                    StoreMode::Add => union(&old, &given),
                    StoreMode::Remove => minus(&old, &given),
                };
                if new.deleted && !old.deleted {
                    deleted += 1;
                }
                let Some(m) = st.message(k.uid).cloned() else {
                    continue;
                };
                let mut m = m;
                m.path = folder.path.join(r.rel_path());
                if new == old {
                    same.push((i as u32 + 1, k.uid));
                } else {
                    changes.push((m, new, i as u32 + 1, k.uid));
                }
            }
            let pairs: Vec<(&crate::store::Message, Flags)> =
                changes.iter().map(|(m, f, _, _)| (m, f.clone())).collect();
            // Many files of a Maildir are renamed after the answer (see
            // Folder::defer_renames); a few at once, as other Maildir
            // programs see them the moment the client does.
            let deferred = if pairs.len() >= DEFER_RENAMES {
                folder.store.flag_targets(&pairs)
            } else {
                None
            };
            let defer = deferred.is_some();
            let paths = match deferred.map_or_else(|| folder.store.set_flags_many(&pairs), Ok) {
                Ok(p) => p,
                Err(e) => {
                    drop(st);
                    self.no(tag, io_no(e));
                    return Ok(());
                }
            };
            drop(pairs);
            let names: Vec<(usize, String)> = paths
                .iter()
                .enumerate()
                .filter_map(|(k, p)| {
                    let n = p.as_ref()?.file_name()?.to_str()?.to_string();
                    Some((k, n))
                })
                .collect();
            let renames: Vec<(u32, Sub, &str)> = names
                .iter()
                .map(|(k, n)| (changes[*k].3, Sub::Cur, n.as_str()))
                .collect();
            let modseqs = match st.index.renamed_many(&renames) {
                Ok(m) => m,
                Err(e) => {
                    drop(st);
                    self.no(tag, io_no(e));
                    return Ok(());
                }
            };
            for ((k, _), m) in names.iter().zip(modseqs) {
                let (_, flags, seq, u) = &changes[*k];
                if let Some(m) = m {
                    results.push((*seq, *u, to_imap(flags, &st.keywords), m));
                }
            }
            if defer {
                folder.defer_renames(changes.into_iter().map(|(m, f, _, _)| (m, f)).collect());
            }
            if !same.is_empty() && s.unchanged_since.is_some() {
                // RFC 7162 §3.1.3: a conditional STORE is a change even
                // when the flags were already so.
                let uids: Vec<u32> = same.iter().map(|(_, u)| *u).collect();
                if let Ok(m) = st.index.touch(&uids) {
                    for (seq, u) in &same {
                        if let Some(r) = st.index.get(*u) {
                            results.push((*seq, *u, to_imap(&r.flags(), &st.keywords), m));
                        }
                    }
                }
            } else {
                for (seq, u) in &same {
                    if let Some(r) = st.index.get(*u) {
                        results.push((*seq, *u, to_imap(&r.flags(), &st.keywords), r.modseq));
                    }
                }
            }
        }
        self.counters.deleted += deleted;
        // New keywords are announced before the FETCH that shows them.
        self.announce_keywords();
        results.sort_unstable_by_key(|r| r.0);
        if let Some(v) = self.view.as_mut() {
            for (seq, _, _, m) in &results {
                v.msgs[*seq as usize - 1].modseq = *m;
            }
            // Our own change is no reason to read the folder again below
            // (that would do the deferred renames before the answer).
            let other = v.watch.receiver.has_changed().unwrap_or(false);
            v.watch.changed();
            if !other {
                v.watch.receiver.mark_unchanged();
            }
            v.folder.settle_soon();
            v.folder.sync_soon();
        }
        if !s.silent || self.condstore {
            for (seq, u, flags, m) in &results {
                let recent = self
                    .view
                    .as_ref()
                    .is_some_and(|v| v.msgs[*seq as usize - 1].recent);
                let mut f = resp::FetchResponse::new(*seq);
                if s.uid {
                    f.uid(*u);
                }
                if !s.silent {
                    let mut flags = flags.clone();
                    if recent && !self.rev2 {
                        flags.push(Flag::Recent);
                    }
                    f.flags(&flags);
                }
                if self.condstore {
                    f.modseq(*m);
                }
                f.finish_into(&mut self.out);
            }
        }
        self.report(s.uid, false, s.uid)?;
        if modified.is_empty() {
            self.ok(tag, "Store completed.");
        } else {
            modified.sort_unstable();
            self.tagged(
                tag,
                Status::Ok,
                Some(Code::Modified(ironpost_proto::imap::sequence::compact(
                    &modified,
                ))),
                "Conditional store failed.",
            );
        }
        Ok(())
    }

    /// An mbox INBOX gets the flags changed over IMAP written into its
    /// headers ([`Folder::write_back`]); a failure is logged, the flags
    /// stay in the index and are written next time.
    fn write_back(&mut self) {
        let Some(view) = &self.view else {
            return;
        };
        let folder = view.folder.clone();
        if let Err(e) = tokio::task::block_in_place(|| folder.write_back()) {
            self.log_user(&format!(
                "Error: writing flags into {}: {e}",
                folder.path.display()
            ));
        }
    }

    /// Expunges the \Deleted messages (of `only` UIDs if given). Returns
    /// how many.
    fn expunge_deleted(&mut self, only: Option<&[u32]>) -> Result<u64, No> {
        let view = self.view.as_ref().expect("selected");
        let folder = view.folder.clone();
        let st = folder.lock();
        let mut msgs = Vec::new();
        for k in &view.msgs {
            if let Some(only) = only
                && only.binary_search(&k.uid).is_err()
            {
                continue;
            }
            let Some(r) = st.index.get(k.uid) else {
                continue;
            };
            if !r.flags().deleted {
                continue;
            }
            if let Some(m) = st.message(k.uid) {
                let mut m = m.clone();
                m.path = folder.path.join(r.rel_path());
                msgs.push(m);
            }
        }
        drop(st);
        let refs: Vec<&crate::store::Message> = msgs.iter().collect();
        folder.store.expunge(&refs).map_err(io_no)?;
        self.counters.expunged += msgs.len() as u64;
        drop(folder.sync().map_err(io_no)?);
        folder.sync_soon();
        Ok(msgs.len() as u64)
    }

    fn expunge(&mut self, tag: &str, set: Option<SequenceSet>) -> Result<(), End> {
        if self.view.as_ref().is_some_and(|v| v.read_only) {
            self.no(tag, No(None, "Mailbox is read-only.".into()));
            return Ok(());
        }
        let only = match &set {
            None => None,
            Some(set) => match self.resolve(set, true) {
                Ok(idx) => {
                    let v = self.view.as_ref().expect("selected");
                    Some(idx.iter().map(|&i| v.msgs[i].uid).collect::<Vec<u32>>())
                }
                Err(e) => {
                    self.bad_text(tag, &format!("Error in IMAP command UID EXPUNGE: {e}"));
                    return Ok(());
                }
            },
        };
        let r = tokio::task::block_in_place(|| self.expunge_deleted(only.as_deref()));
        self.write_back();
        self.report(true, false, set.is_some())?;
        match r {
            Ok(_) => self.ok(tag, "Expunge completed."),
            Err(no) => self.no(tag, no),
        }
        Ok(())
    }

    fn copy(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        dest: &MailboxName,
        is_move: bool,
    ) -> Result<(), End> {
        let verb = match (uid, is_move) {
            (false, false) => "COPY",
            (true, false) => "UID COPY",
            (false, true) => "MOVE",
            (true, true) => "UID MOVE",
        };
        let idx = match self.resolve(set, uid) {
            Ok(i) => i,
            Err(e) => {
                self.bad_text(tag, &format!("Error in IMAP command {verb}: {e}"));
                return Ok(());
            }
        };
        if is_move && self.view.as_ref().is_some_and(|v| v.read_only) {
            self.no(tag, No(None, "Mailbox is read-only.".into()));
            return Ok(());
        }
        let path = match self.existing(dest, true) {
            Ok(p) => p,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let target = match self.open_folder(&path) {
            Ok(f) => f,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let view = self.view.as_ref().expect("selected");
        let src = view.folder.clone();
        // The sources with their flags, keywords by name.
        let mut sources: Vec<(crate::store::Message, Vec<Flag>, Flags)> = Vec::new();
        {
            let st = src.lock();
            for &i in &idx {
                let u = view.msgs[i].uid;
                let (Some(r), Some(m)) = (st.index.get(u), st.message(u)) else {
                    continue;
                };
                let mut m = m.clone();
                m.path = src.path.join(r.rel_path());
                let f = r.flags();
                sources.push((m, to_imap(&f, &st.keywords), f));
            }
        }
        let same = Arc::ptr_eq(&src, &target);
        // A move within the user's folders takes no more room.
        let bytes: u64 = sources.iter().map(|(m, _, _)| m.size).sum();
        if let Err(no) = self.check_quota(if is_move { 0 } else { bytes }) {
            self.no(tag, no);
            return Ok(());
        }
        let copied = (|| -> Result<(Vec<u32>, Vec<u32>, u32), No> {
            let mut pairs = Vec::with_capacity(sources.len());
            let keywords = {
                let mut st = target.lock();
                for (m, imap, f) in &sources {
                    let mut flags = if same {
                        f.clone()
                    } else {
                        st.to_maildir(imap, f).map_err(io_no)?
                    };
                    flags.passed = f.passed;
                    pairs.push((m, flags));
                }
                st.keywords.clone()
            };
            let refs: Vec<(&crate::store::Message, Flags)> =
                pairs.iter().map(|(m, f)| (*m, f.clone())).collect();
            let placed = target.store.copy_in(&refs, &keywords).map_err(io_no)?;
            let mut from = Vec::new();
            let mut to = Vec::new();
            for ((m, _), p) in pairs.iter().zip(placed) {
                if let Some((u, _)) = p {
                    from.push(m.uid);
                    to.push(u);
                }
            }
            let st = target.sync().map_err(io_no)?;
            target.sync_soon();
            Ok((from, to, st.index.uidvalidity()))
        })();
        let (from, to, validity) = match copied {
            Ok(c) => c,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        self.added_to(&target, &to);
        let code = Code::CopyUid {
            uid_validity: validity,
            source: ironpost_proto::imap::sequence::compact(&from),
            dest: ironpost_proto::imap::sequence::compact(&to),
        };
        if !is_move {
            self.report(uid, false, uid)?;
            if from.is_empty() && !idx.is_empty() {
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::ExpungeIssued),
                    "Some of the requested messages no longer exist.",
                );
            } else if from.is_empty() {
                self.ok(tag, "No messages found.");
            } else {
                self.tagged(tag, Status::Ok, Some(code), "Copy completed.");
            }
            return Ok(());
        }
        // MOVE: COPYUID untagged, then the sources' EXPUNGEs (RFC 6851).
        if !from.is_empty() {
            resp::untagged(&mut self.out, Status::Ok, Some(&code), "Moved UIDs.");
        }
        let msgs: Vec<&crate::store::Message> = sources
            .iter()
            .map(|(m, _, _)| m)
            .filter(|m| from.contains(&m.uid))
            .collect();
        if let Err(e) = src.store.expunge(&msgs) {
            self.log_user(&format!("Error: move: expunge the sources: {e}"));
        }
        drop(src.sync());
        src.sync_soon();
        self.counters.expunged += msgs.len() as u64;
        self.report(true, false, uid)?;
        self.ok(tag, "Move completed.");
        Ok(())
    }

    /// Charsets SEARCH, SORT and THREAD take.
    fn charset_ok(&mut self, tag: &str, charset: Option<&str>) -> bool {
        match charset {
            None => true,
            Some(c) if c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("US-ASCII") => {
                true
            }
            Some(_) => {
                self.tagged(
                    tag,
                    Status::No,
                    Some(Code::BadCharset(vec!["US-ASCII".into(), "UTF-8".into()])),
                    "Unsupported charset",
                );
                false
            }
        }
    }

    /// The messages `key` matches: (seq, uid, modseq, header), ascending;
    /// the header of each match only when `header` (SORT, THREAD).
    fn evaluate(&mut self, key: &SearchKey, header: bool) -> Result<Vec<Found>, No> {
        let view = self.view.as_ref().expect("selected");
        let folder = view.folder.clone();
        let mut needs = eval::needs(key);
        if header && needs < eval::Needs::Header {
            needs = eval::Needs::Header;
        }
        let now = chrono::Utc::now().timestamp();
        let cx = eval::Context {
            max_seq: view.exists(),
            max_uid: view.max_uid(),
            saved: self.saved.as_deref(),
            now,
            tz_offset: i32::from(fetch::zone_minutes(now)) * 60,
        };
        let mut out = Vec::new();
        // Message files to match against are read ahead on another thread,
        // as for a FETCH of bodies.
        let mut ahead = if needs > eval::Needs::Nothing && view.msgs.len() >= fetch::READ_AHEAD_MIN
        {
            fetch::ReadAhead::start(&folder, view.msgs.iter().map(|k| k.uid).collect())
        } else {
            None
        };
        for (i, k) in view.msgs.iter().enumerate() {
            // One result per message, taken first whatever happens next.
            let read_ahead = ahead.as_mut().and_then(fetch::ReadAhead::take);
            let (record, flags, msg) = {
                let st = folder.lock();
                let Some(r) = st.index.get(k.uid) else {
                    continue;
                };
                let msg = if needs > eval::Needs::Nothing && read_ahead.is_none() {
                    st.message(k.uid).map(|m| {
                        let mut m = m.clone();
                        m.path = folder.path.join(r.rel_path());
                        m
                    })
                } else {
                    None
                };
                (r.clone(), to_imap(&r.flags(), &st.keywords), msg)
            };
            let got = match (read_ahead, &msg) {
                (Some(got), _) => Some(got),
                (None, Some(m)) => Some(folder.store.read(m)),
                (None, None) => None,
            };
            let raw = match got {
                Some(Ok(mut d)) => {
                    if needs == eval::Needs::Header {
                        d.truncate(header_end(&d));
                    }
                    Some(d)
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => continue,
                Some(Err(e)) => return Err(io_no(e)),
                None => None,
            };
            let c = eval::Candidate {
                seq: i as u32 + 1,
                uid: k.uid,
                flags: &flags,
                recent: k.recent,
                internal_date: unix_seconds(record.internal_date()),
                size: record.wire_size,
                modseq: record.modseq,
                raw: raw.as_deref(),
            };
            if eval::matches(key, &c, &cx) {
                let h = if header {
                    raw.map(|mut d| {
                        d.truncate(header_end(&d));
                        d
                    })
                } else {
                    None
                };
                out.push(Found {
                    seq: i as u32 + 1,
                    uid: k.uid,
                    modseq: record.modseq,
                    internal_date: unix_seconds(record.internal_date()),
                    size: record.wire_size,
                    header: h,
                });
            }
        }
        Ok(out)
    }

    fn search(
        &mut self,
        tag: &str,
        s: ironpost_proto::imap::command::SearchCommand,
    ) -> Result<(), End> {
        if !self.charset_ok(tag, s.charset.as_deref()) {
            return Ok(());
        }
        let found = match self.evaluate(&s.key, false) {
            Ok(f) => f,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let nums: Vec<u32> = found
            .iter()
            .map(|f| if s.uid { f.uid } else { f.seq })
            .collect();
        let modseq = has_modseq(&s.key)
            .then(|| found.iter().map(|f| f.modseq).max())
            .flatten();
        if has_modseq(&s.key) {
            self.condstore = true;
        }
        match &s.returns {
            // IMAP4rev2 answers SEARCH with ESEARCH only (RFC 9051 §6.4.4).
            None if self.rev2 => {
                let ranges = ranges_of(&nums);
                resp::esearch(
                    &mut self.out,
                    &resp::Esearch {
                        tag: Some(tag),
                        uid: s.uid,
                        all: Some(&ranges[..]),
                        modseq,
                        ..resp::Esearch::default()
                    },
                );
            }
            None => resp::search(&mut self.out, &nums, modseq),
            Some(ret) => {
                let wanted = |r: SearchReturn| ret.contains(&r);
                let save = wanted(SearchReturn::Save);
                // RETURN () is ALL (RFC 4731 §3.1).
                let all = ret.is_empty() || wanted(SearchReturn::All);
                let ranges = ranges_of(&nums);
                if !(save && ret.len() == 1) {
                    resp::esearch(
                        &mut self.out,
                        &resp::Esearch {
                            tag: Some(tag),
                            uid: s.uid,
                            min: if wanted(SearchReturn::Min) {
                                nums.first().copied()
                            } else {
                                None
                            },
                            max: if wanted(SearchReturn::Max) {
                                nums.last().copied()
                            } else {
                                None
                            },
                            count: wanted(SearchReturn::Count).then_some(nums.len() as u32),
                            all: all.then_some(&ranges[..]),
                            modseq,
                        },
                    );
                }
                if save {
                    // RFC 5182 §2.1: with MIN and/or MAX and neither ALL
                    // nor COUNT, only those are saved.
                    let uids: Vec<u32> = found.iter().map(|f| f.uid).collect();
                    let minmax = (wanted(SearchReturn::Min) || wanted(SearchReturn::Max))
                        && !wanted(SearchReturn::All)
                        && !wanted(SearchReturn::Count);
                    let saved = if minmax {
                        let mut v = Vec::new();
                        if wanted(SearchReturn::Min)
                            && let Some(u) = uids.first()
                        {
                            v.push(*u);
                        }
                        if wanted(SearchReturn::Max)
                            && let Some(u) = uids.last()
                            && !v.contains(u)
                        {
                            v.push(*u);
                        }
                        v
                    } else {
                        uids
                    };
                    self.saved = Some(saved);
                }
            }
        }
        self.report(s.uid, false, s.uid)?;
        self.ok(tag, "Search completed.");
        Ok(())
    }

    fn sort(
        &mut self,
        tag: &str,
        s: ironpost_proto::imap::command::SortCommand,
    ) -> Result<(), End> {
        if !self.charset_ok(tag, Some(&s.charset)) {
            return Ok(());
        }
        let found = match self.evaluate(&s.key, true) {
            Ok(f) => f,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let order = thread::sort(&s.criteria, &items_of(&found));
        let nums: Vec<u32> = order
            .iter()
            .map(|&i| if s.uid { found[i].uid } else { found[i].seq })
            .collect();
        resp::sort(&mut self.out, &nums, None);
        self.report(s.uid, false, s.uid)?;
        self.ok(tag, "Sort completed.");
        Ok(())
    }

    fn thread(
        &mut self,
        tag: &str,
        t: ironpost_proto::imap::command::ThreadCommand,
    ) -> Result<(), End> {
        if matches!(t.algorithm, ThreadAlgorithm::Other(_)) {
            self.bad_text(
                tag,
                "Error in IMAP command THREAD: Unknown thread algorithm",
            );
            return Ok(());
        }
        if !self.charset_ok(tag, Some(&t.charset)) {
            return Ok(());
        }
        let found = match self.evaluate(&t.key, true) {
            Ok(f) => f,
            Err(no) => {
                self.no(tag, no);
                return Ok(());
            }
        };
        let roots = thread::thread(&t.algorithm, &items_of(&found), t.uid);
        resp::thread(&mut self.out, &roots);
        self.report(t.uid, false, t.uid)?;
        self.ok(tag, "Thread completed.");
        Ok(())
    }

    async fn idle(&mut self, tag: &str) -> Result<(), End> {
        resp::continuation(&mut self.out, "idling");
        let mut rx = self.view.as_ref().map(|v| v.watch.receiver.clone());
        let mut last_poll = Instant::now();
        let mut last_write = Instant::now();
        let started = Instant::now();
        loop {
            self.report(true, last_poll.elapsed() >= IDLE_POLL, false)?;
            if last_poll.elapsed() >= IDLE_POLL {
                last_poll = Instant::now();
            }
            if !self.out.is_empty() {
                last_write = Instant::now();
            }
            self.flush().await?;
            if let Some(line) = self.reader.next_line(1024) {
                let done = line.as_deref().is_ok_and(rd::is_done);
                if done {
                    break;
                }
                self.bad_text(tag, "Expected DONE.");
                return Ok(());
            }
            if started.elapsed() >= self.p.idle_timeout.max(Duration::from_secs(1800)) {
                return Err(End::Idle);
            }
            let wait = IDLE_POLL.saturating_sub(last_poll.elapsed());
            let target = self.reader.read_target(4096);
            let before = target.len();
            tokio::select! {
                r = read_input(&mut self.io, self.z.as_deref_mut(), target) => match r {
                    Ok(0) | Err(_) => return Err(End::Lost),
                    Ok(_) => {
                        let n = self.reader.read_target(0).len() - before;
                        self.bytes_in += n as u64;
                    }
                },
                _ = async {
                    match rx.as_mut() {
                        Some(rx) => { let _ = rx.changed().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = tokio::time::sleep(wait) => {}
            }
            if last_write.elapsed() >= IDLE_KEEPALIVE {
                resp::untagged(&mut self.out, Status::Ok, None, "Still here");
            }
        }
        self.ok(tag, "Idle completed.");
        Ok(())
    }

    fn finish(&mut self, end: Result<(), End>) {
        let end = match end {
            Ok(()) => End::Done,
            Err(e) => e,
        };
        if self.user.is_none() {
            let why = match end {
                End::Idle => "Disconnected: Inactivity during authentication",
                End::Lost if self.failed_logins > 0 => "Disconnected (auth failed)",
                End::Lost => "Disconnected (no auth attempts)",
                End::Done if self.failed_logins > 0 => "Disconnected (auth failed)",
                End::Done => "Disconnected (no auth attempts)",
            };
            self.log_login(&format!(
                "{why} ({}s): {}",
                self.started.elapsed().as_secs(),
                self.addresses()
            ));
            return;
        }
        let why = match end {
            End::Done => "Logged out",
            End::Idle => "Inactivity",
            End::Lost => "Connection closed",
        };
        let stats = self.logout_stats();
        self.log_user(&format!("Disconnected: {why} {stats}"));
    }

    /// imap_logout_format with Dovecot's variables.
    fn logout_stats(&self) -> String {
        let c = &self.counters;
        let vars: HashMap<&str, u64> = HashMap::from([
            ("i", self.bytes_in),
            ("o", self.bytes_out),
            ("input", self.bytes_in),
            ("output", self.bytes_out),
            ("deleted", c.deleted),
            ("expunged", c.expunged),
            ("trashed", c.trashed),
            ("fetch_hdr_count", c.fetch.hdr_count),
            ("fetch_hdr_bytes", c.fetch.hdr_bytes),
            ("fetch_body_count", c.fetch.body_count),
            ("fetch_body_bytes", c.fetch.body_bytes),
        ]);
        let mut out = String::new();
        let f = &self.p.logout_format;
        let mut rest = f.as_str();
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('{')
                && let Some(end) = r.find('}')
            {
                match vars.get(&r[..end]) {
                    Some(v) => out.push_str(&v.to_string()),
                    None => out.push_str(&format!("%{{{}}}", &r[..end])),
                }
                rest = &r[end + 1..];
                continue;
            }
            let mut chars = rest.chars();
            match chars.next() {
                Some('%') => out.push('%'),
                Some(c) => match vars.get(c.to_string().as_str()) {
                    Some(v) => out.push_str(&v.to_string()),
                    None => {
                        out.push('%');
                        out.push(c);
                    }
                },
                None => out.push('%'),
            }
            rest = chars.as_str();
        }
        out.push_str(rest);
        out
    }
}

/// A message a search found.
struct Found {
    seq: u32,
    uid: u32,
    modseq: u64,
    internal_date: i64,
    size: u64,
    header: Option<Vec<u8>>,
}

fn items_of(found: &[Found]) -> Vec<thread::Item<'_>> {
    found
        .iter()
        .map(|f| thread::Item {
            seq: f.seq,
            uid: f.uid,
            internal_date: f.internal_date,
            size: f.size,
            header: f.header.as_deref().unwrap_or(b""),
        })
        .collect()
}

/// Where a message's header ends (after the blank line), LF or CRLF.
fn header_end(d: &[u8]) -> usize {
    let mut i = 0;
    while i < d.len() {
        match d[i..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                let next = i + p + 1;
                let line = &d[i..i + p];
                if line.is_empty() || line == b"\r" {
                    return next;
                }
                i = next;
            }
            None => return d.len(),
        }
    }
    d.len()
}

/// Whether a search key uses MODSEQ (its answer then carries the highest).
fn has_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(a) => has_modseq(a),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::And(v) => v.iter().any(has_modseq),
        _ => false,
    }
}

/// Numbers as sorted, merged ranges.
fn ranges_of(nums: &[u32]) -> Vec<std::ops::RangeInclusive<u32>> {
    let mut sorted = nums.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
    for n in sorted {
        match out.last_mut() {
            Some(r) if *r.end() == n => {}
            Some(r) if *r.end() + 1 == n => *r = *r.start()..=n,
            _ => out.push(n..=n),
        }
    }
    out
}

fn system_flags() -> Vec<Flag> {
    vec![
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Seen,
        Flag::Draft,
    ]
}

fn union(a: &Flags, b: &Flags) -> Flags {
    let mut k = a.keywords.clone();
    k.extend(&b.keywords);
    k.sort_unstable();
    k.dedup();
    Flags {
        seen: a.seen || b.seen,
        answered: a.answered || b.answered,
        flagged: a.flagged || b.flagged,
        deleted: a.deleted || b.deleted,
        draft: a.draft || b.draft,
        passed: a.passed,
        keywords: k,
    }
}

fn minus(a: &Flags, b: &Flags) -> Flags {
    Flags {
        seen: a.seen && !b.seen,
        answered: a.answered && !b.answered,
        flagged: a.flagged && !b.flagged,
        deleted: a.deleted && !b.deleted,
        draft: a.draft && !b.draft,
        passed: a.passed,
        keywords: a
            .keywords
            .iter()
            .copied()
            .filter(|k| !b.keywords.contains(k))
            .collect(),
    }
}

/// LIST pattern matching (RFC 3501 §6.3.8): `*` matches anything, `%`
/// anything but the delimiter; INBOX in any case is INBOX. Patterns
/// longer than 1024 characters match nothing.
pub fn pattern_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    if p.len() > 1024 {
        return false;
    }
    let n: Vec<char> = name.chars().collect();
    // INBOX (and the INBOX of INBOX.x) in any case.
    let inbox = name == "INBOX" || name.starts_with("INBOX.");
    let same = |j: usize, c: char| {
        if inbox && j < 5 {
            n[j].eq_ignore_ascii_case(&c)
        } else {
            n[j] == c
        }
    };
    // prev[j]: the pattern so far matches the first j characters.
    let mut prev = vec![false; n.len() + 1];
    prev[0] = true;
    for &c in &p {
        let mut cur = vec![false; n.len() + 1];
        for j in 0..=n.len() {
            cur[j] = match c {
                '*' => prev[j] || (j > 0 && cur[j - 1]),
                '%' => prev[j] || (j > 0 && n[j - 1] != DELIMITER && cur[j - 1]),
                _ => j > 0 && prev[j - 1] && same(j - 1, c),
            };
        }
        prev = cur;
    }
    prev[n.len()]
}

/// Commands that need a selected mailbox.
fn needs_selected(k: &CommandKind) -> bool {
    matches!(
        k,
        CommandKind::Check
            | CommandKind::Close
            | CommandKind::Unselect
            | CommandKind::Expunge
            | CommandKind::UidExpunge(_)
            | CommandKind::Search(_)
            | CommandKind::Fetch(_)
            | CommandKind::Store(_)
            | CommandKind::Copy { .. }
            | CommandKind::Move { .. }
            | CommandKind::Sort(_)
            | CommandKind::Thread(_)
    )
}

#[cfg(test)]
mod tests {
    use super::pattern_match;

    #[test]
    fn list_patterns() {
        assert!(pattern_match("*", "Archive.2024"));
        assert!(pattern_match("%", "Archive"));
        assert!(!pattern_match("%", "Archive.2024"));
        assert!(pattern_match("Archive.%", "Archive.2024"));
        assert!(pattern_match("inbox", "INBOX"));
        assert!(pattern_match("In*", "INBOX"));
        assert!(!pattern_match("inbox", "Inbox2"));
        assert!(pattern_match("A*4", "Archive.2024"));
        assert!(!pattern_match("A%4", "Archive.2024"));
        assert!(pattern_match("", ""));
        assert!(!pattern_match("x", ""));
        let many = "*a".repeat(200) + "b";
        assert!(!pattern_match(&many, &"a".repeat(200)));
    }
}
