//! One POP3 session (RFC 1939 §3): AUTHORIZATION, TRANSACTION, UPDATE.
//!
//! The commands each state allows, and the words of the replies, are
//! Dovecot 2.3's (see `ironpost_proto::pop3`):
//!
//! | state          | commands                                               |
//! |----------------|--------------------------------------------------------|
//! | AUTHORIZATION  | CAPA, USER, PASS, APOP, AUTH, STLS, QUIT               |
//! | TRANSACTION    | STAT, LIST, RETR, TOP, DELE, NOOP, RSET, UIDL, CAPA, QUIT |
//!
//! Before login the third bad command in a row ends the session; after
//! login the twenty-first. Pipelined commands are answered in order and
//! the answers sent together (RFC 2449 PIPELINING). Nothing pipelined
//! after STLS is executed (RFC 2595 §4). A session that drops without QUIT
//! deletes nothing (RFC 1939 §6). The mail log gets Dovecot's lines:
//! `pop3-login: Login: user=<...>, method=PLAIN, rip=..., lip=..., mpid=N, TLS`
//! and `pop3(USER): Disconnected: Logged out top=0/0, retr=1/512, del=1/1, size=512`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use ironpost_proto::pop3::response::{self as resp, code, text};
use ironpost_proto::pop3::{
    COMMAND_LINE_LIMIT, CapaOptions, Command, CommandError, LineBuffer, SASL_LINE_LIMIT,
    capabilities, parse,
};
use ironpost_proto::sasl::{self, Mechanism, SaslError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Pop3d;
use super::inbox::{Inbox, OpenError};
use crate::auth::sasl::{Challenger, Context, Outcome};
use crate::auth::system::{Check, Identity};
use crate::auth::throttle::Throttle;
use crate::maillog::MailLog;
use crate::tls::Conn;

/// Why the session ended.
enum End {
    /// The client went away (EOF or error).
    Lost,
    /// No command for pop3_idle_timeout.
    Idle,
    /// We ended it (QUIT, too many errors); the last reply is queued.
    Done,
}

/// After login.
struct Mailbox {
    user: String,
    inbox: Inbox,
    /// Counters for pop3_logout_format.
    top: (u64, u64),
    retr: (u64, u64),
    deleted: u64,
    count: u32,
    size: u64,
}

struct Session<'a, S> {
    io: Conn<S>,
    input: LineBuffer,
    out: Vec<u8>,
    p: &'a Pop3d,
    log: &'a MailLog,
    client: IpAddr,
    local: IpAddr,
    number: u32,
    secure: bool,
    /// USER given, waiting for PASS.
    user: Option<String>,
    /// The APOP timestamp of the greeting.
    apop_stamp: Option<String>,
    bad: u32,
    mailbox: Option<Mailbox>,
    started: Instant,
    failed_logins: u32,
}

/// Runs a session on an accepted connection.
/// Answers queued past this size are written before the next pipelined
/// command is read.
const FLUSH_AT: usize = 64 * 1024;

pub async fn run<S>(io: S, client: IpAddr, local: IpAddr, p: Arc<Pop3d>, log: Arc<MailLog>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut s = Session {
        io: Conn::Plain(io),
        input: LineBuffer::new(),
        out: Vec::with_capacity(512),
        p: &p,
        log: &log,
        client,
        local,
        number: crate::maillog::session_number(),
        secure: false,
        user: None,
        apop_stamp: None,
        bad: 0,
        mailbox: None,
        started: Instant::now(),
        failed_logins: 0,
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
        self.out
            .extend_from_slice(&resp::continuation(&sasl::encode_challenge(data)));
        let line = self.next_line(SASL_LINE_LIMIT).await?;
        let line = match line {
            Ok(l) => l,
            Err(()) => return Ok(Err(SaslError::Malformed("response line too long"))),
        };
        Ok(sasl::decode_response(&String::from_utf8_lossy(&line)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    fn log_login(&self, text: &str) {
        self.log.log_as(
            &self.p.login.syslog_name,
            self.number,
            &format!("pop3-login: {text}"),
        );
    }

    fn log_user(&self, user: &str, text: &str) {
        self.log.log_as(
            &self.p.login.syslog_name,
            self.number,
            &format!("pop3({user}): {text}"),
        );
    }

    /// `rip=..., lip=...`.
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
        match tokio::time::timeout(self.p.idle_timeout, self.io.write_all(&self.out)).await {
            Ok(Ok(())) => {}
            _ => return Err(End::Lost),
        }
        // The buffer is kept for the next answers, unless a large one
        // made it large.
        self.out.clear();
        if self.out.capacity() > 4 * FLUSH_AT {
            self.out = Vec::with_capacity(FLUSH_AT + 16 * 1024);
        }
        match tokio::time::timeout(self.p.idle_timeout, self.io.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Lost),
        }
    }

    /// The next line; `Err(())` inside when it was too long. Replies
    /// queued so far go out first, unless another command is already
    /// waiting (pipelining).
    async fn next_line(&mut self, limit: usize) -> Result<Result<Vec<u8>, ()>, End> {
        loop {
            if self.out.len() >= FLUSH_AT {
                // Pipelined commands: answers go out in pieces of about
                // this size instead of piling up.
                self.flush().await?;
            }
            if let Some(l) = self.input.next_line(limit) {
                return Ok(l.map_err(|_| ()));
            }
            self.flush().await?;
            let target = self.input.read_target(16 * 1024);
            match tokio::time::timeout(self.p.idle_timeout, self.io.read_buf(target)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(End::Lost),
                Ok(Ok(_)) => {}
                Err(_) => return Err(End::Idle),
            }
        }
    }

    /// The TLS handshake (STLS, or at once on pop3s).
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

    fn ok(&mut self, t: &str) {
        self.out.extend_from_slice(&resp::ok(t));
    }

    fn err(&mut self, code: Option<&str>, t: &str) {
        self.out.extend_from_slice(&resp::err(code, t));
    }

    async fn serve(&mut self) -> Result<(), End> {
        let mut greeting = self.p.login.greeting.clone();
        if self.p.login.apop {
            let stamp = format!(
                "<{}.{}@{}>",
                self.number,
                chrono::Utc::now().timestamp(),
                crate::host::facts().hostname
            );
            greeting = format!("{greeting} {stamp}");
            self.apop_stamp = Some(stamp);
        }
        self.ok(&greeting);
        loop {
            let limit = COMMAND_LINE_LIMIT.max(1024);
            let line = match self.next_line(limit).await? {
                Ok(l) => l,
                Err(()) => {
                    if self.mailbox.is_some() {
                        self.err(None, text::INPUT_LINE_TOO_LONG);
                    } else {
                        self.err(None, text::INPUT_BUFFER_FULL);
                    }
                    return Err(End::Done);
                }
            };
            let cmd = match parse(&line) {
                Ok(c) => c,
                Err(e) => {
                    self.bad_command(Some(e))?;
                    continue;
                }
            };
            if self.mailbox.is_none() {
                self.authorization(cmd).await?;
            } else {
                self.transaction(cmd).await?;
            }
        }
    }

    /// A command that was not understood or not allowed now.
    fn bad_command(&mut self, e: Option<CommandError>) -> Result<(), End> {
        self.bad += 1;
        if self.mailbox.is_none() {
            if self.bad >= text::MAX_BAD_COMMANDS_LOGIN {
                self.err(None, text::TOO_MANY_BAD_COMMANDS_LOGIN);
                return Err(End::Done);
            }
            match e {
                Some(CommandError::Unknown(_)) | None => {
                    self.err(None, text::UNKNOWN_COMMAND_LOGIN)
                }
                Some(e) => self.out.extend_from_slice(&e.response()),
            }
        } else {
            if self.bad > text::MAX_BAD_COMMANDS {
                self.err(None, text::TOO_MANY_BAD_COMMANDS);
                return Err(End::Done);
            }
            match e {
                Some(e) => self.out.extend_from_slice(&e.response()),
                None => self.err(None, "Unknown command."),
            }
        }
        Ok(())
    }

    fn plaintext_allowed(&self) -> bool {
        self.p
            .login
            .plaintext_allowed(self.secure, self.client, self.local)
    }

    /// The mechanisms AUTH offers now.
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

    fn capa(&mut self) {
        let mechs: Vec<&str> = if self.mailbox.is_some() {
            Vec::new()
        } else {
            self.mechanisms().iter().map(|m| m.name()).collect()
        };
        let before = self.mailbox.is_none();
        let opts = CapaOptions {
            stls: before && self.p.login.tls.is_some() && !self.secure,
            user: before && self.plaintext_allowed(),
            sasl: &mechs,
            expire: Some(ironpost_proto::pop3::Expire::Never),
            // RFC 6856: messages go out as stored, and USER, PASS and AUTH
            // take UTF-8 already; the UTF8 command is for the
            // AUTHORIZATION state only.
            utf8: before,
            utf8_user: before && self.plaintext_allowed(),
            implementation: (!before).then_some("ironpost"),
            ..CapaOptions::default()
        };
        self.out.extend_from_slice(&capabilities(&opts));
    }

    async fn authorization(&mut self, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Capa => self.capa(),
            Command::Quit => {
                self.ok(text::LOGOUT_LOGIN);
                return Err(End::Done);
            }
            Command::Stls => {
                let Some(config) = self.p.login.tls.clone() else {
                    self.err(None, text::TLS_NOT_ENABLED);
                    return Ok(());
                };
                if self.secure {
                    self.err(None, text::TLS_ALREADY_ACTIVE);
                    return Ok(());
                }
                self.ok(text::BEGIN_TLS);
                self.flush().await?;
                // RFC 2595 §4: what came after STLS is not executed.
                self.input.discard_pending();
                if self.handshake(config).await.is_err() {
                    return Err(End::Lost);
                }
                self.user = None;
            }
            Command::User(name) => {
                if !self.plaintext_allowed() {
                    self.err(Some(code::AUTH), text::PLAINTEXT_DISALLOWED);
                    return Ok(());
                }
                self.bad = 0;
                self.user = Some(name);
                self.ok("");
            }
            Command::Pass(password) => {
                let Some(user) = self.user.take() else {
                    self.err(None, text::NO_USERNAME);
                    return Ok(());
                };
                if !self.plaintext_allowed() {
                    self.err(Some(code::AUTH), text::PLAINTEXT_DISALLOWED);
                    return Ok(());
                }
                if self.locked_out() {
                    return Ok(());
                }
                let check = crate::auth::sasl::check_password(
                    self.p.login.accounts.clone(),
                    user.clone(),
                    password,
                )
                .await;
                self.verdict(user, "PLAIN", check).await?;
            }
            Command::Apop { name, digest } => {
                let Some(stamp) = self.apop_stamp.clone().filter(|_| self.p.login.apop) else {
                    self.err(None, text::APOP_NOT_ENABLED);
                    return Ok(());
                };
                if self.locked_out() {
                    return Ok(());
                }
                let accounts = self.p.login.accounts.clone();
                let name2 = name.clone();
                let check = tokio::task::spawn_blocking(move || {
                    accounts.check_apop(&name2, &stamp, &digest)
                })
                .await
                .unwrap_or_else(|_| Check::Unavailable("APOP check failed".into()));
                self.verdict(name, "APOP", check).await?;
            }
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial).await?,
            Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Noop
            | Command::Rset
            | Command::Top { .. }
            | Command::Uidl(_)
            | Command::Lang(_) => self.bad_command(None)?,
            Command::Utf8 => self.ok("UTF8 enabled"),
        }
        Ok(())
    }

    /// Refuses a client locked out after too many failed logins.
    fn locked_out(&mut self) -> bool {
        if Throttle::global().locked(self.client, &self.p.login.limits, Instant::now()) {
            self.log_login(&format!(
                "Disconnected: too many failed authentications, login refused ({})",
                self.addresses()
            ));
            self.err(Some(code::SYS_TEMP), text::AUTH_TEMP_FAILED);
            return true;
        }
        false
    }

    async fn auth(
        &mut self,
        mechanism: Option<String>,
        initial: Option<String>,
    ) -> Result<(), End> {
        let offered = self.mechanisms();
        let Some(name) = mechanism else {
            // Outlook's old way to ask for the mechanisms.
            let names: Vec<&str> = offered.iter().map(|m| m.name()).collect();
            self.out.extend_from_slice(&resp::multiline("", names));
            return Ok(());
        };
        let mech = match Mechanism::parse(&name) {
            Some(m) if offered.contains(&m) => m,
            Some(m) if m.is_plaintext() && self.p.login.mechanisms.contains(&m) => {
                self.err(Some(code::AUTH), text::PLAINTEXT_DISALLOWED);
                return Ok(());
            }
            _ => {
                self.err(Some(code::AUTH), text::UNSUPPORTED_MECHANISM);
                return Ok(());
            }
        };
        if self.locked_out() {
            return Ok(());
        }
        let initial = match initial.map(|i| sasl::decode_response(&i)).transpose() {
            Ok(i) => i,
            Err(SaslError::Cancelled) => {
                self.err(None, text::AUTH_ABORTED);
                return Ok(());
            }
            Err(_) => {
                self.err(None, text::INVALID_BASE64_INITIAL);
                return Ok(());
            }
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
            Outcome::Checked { login, check } => self.verdict(login, mech.name(), check).await?,
            Outcome::AuthzRefused => {
                self.failed_login(None, mech.name()).await?;
            }
            Outcome::Error(SaslError::Cancelled) => self.err(None, text::AUTH_ABORTED),
            Outcome::Error(SaslError::BadBase64) => self.err(None, text::INVALID_BASE64_CONTINUED),
            Outcome::Error(_) => self.failed_login(None, mech.name()).await?,
        }
        Ok(())
    }

    /// The end of a login attempt.
    async fn verdict(&mut self, login: String, method: &str, check: Check) -> Result<(), End> {
        match check {
            Check::Accepted => {
                Throttle::global().succeeded(self.client);
                self.logged_in(login, method).await
            }
            Check::Refused => self.failed_login(Some(&login), method).await,
            Check::Unavailable(why) => {
                self.log_login(&format!("Error: authentication: {why}"));
                self.err(Some(code::SYS_TEMP), text::AUTH_TEMP_FAILED);
                Ok(())
            }
        }
    }

    async fn failed_login(&mut self, login: Option<&str>, method: &str) -> Result<(), End> {
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
        self.err(Some(code::AUTH), text::AUTH_FAILED);
        Ok(())
    }

    /// Opens the user's INBOX (TRANSACTION state).
    async fn logged_in(&mut self, login: String, method: &str) -> Result<(), End> {
        let p_accounts = self.p.login.accounts.clone();
        let who = {
            let l = login.clone();
            tokio::task::spawn_blocking(move || p_accounts.identify(&l))
                .await
                .map_err(|_| End::Lost)?
        };
        let who = match who {
            Ok(w) => w,
            Err(e) => {
                self.log_login(&format!("Error: {login}: {e}"));
                self.err(Some(code::SYS_TEMP), text::AUTH_TEMP_FAILED);
                return Ok(());
            }
        };
        let user = match &who {
            Identity::System(u) => u.clone(),
            Identity::Virtual(a) => a.clone(),
        };
        let path = match self.p.location.inbox(&who) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.log_user(
                    &user,
                    "Error: no mailbox for this user in virtual_mailbox_maps",
                );
                self.err(Some(code::SYS_PERM), "No mailbox for this user.");
                return Ok(());
            }
            Err(e) => {
                self.log_user(&user, &format!("Error: {e}"));
                self.err(Some(code::SYS_TEMP), text::SYNC_FAILED);
                return Ok(());
            }
        };
        let format = self.p.uidl_format.clone();
        let data_directory = self.p.location.data_directory.clone();
        let opened =
            tokio::task::spawn_blocking(move || Inbox::open(&path, &format, &data_directory))
                .await
                .map_err(|_| End::Lost)?;
        let inbox = match opened {
            Ok(i) => i,
            Err(OpenError::Io(e)) => {
                self.log_user(&user, &format!("Error: Couldn't open INBOX: {e}"));
                self.err(Some(code::SYS_TEMP), text::SYNC_FAILED);
                return Ok(());
            }
        };
        let (count, size) = inbox.stat();
        self.log_login(&format!(
            "Login: user=<{user}>, method={method}, {}, mpid={}{}",
            self.addresses(),
            self.number,
            self.protection()
        ));
        self.mailbox = Some(Mailbox {
            user,
            inbox,
            top: (0, 0),
            retr: (0, 0),
            deleted: 0,
            count,
            size,
        });
        self.bad = 0;
        self.ok(text::LOGGED_IN);
        Ok(())
    }

    async fn transaction(&mut self, cmd: Command) -> Result<(), End> {
        let Some(mb) = self.mailbox.as_mut() else {
            return Ok(());
        };
        match cmd {
            Command::Capa => self.capa(),
            Command::Noop => self.ok(""),
            Command::Stat => {
                let (n, size) = mb.inbox.stat();
                self.ok(&text::stat(n, size));
            }
            Command::List(None) => {
                let (n, _) = mb.inbox.stat();
                let mut out = resp::multiline_start(&text::list_header(n));
                for (i, e) in mb.inbox.entries.iter().enumerate() {
                    if !e.deleted {
                        resp::push_line(&mut out, format!("{} {}", i + 1, e.size).as_bytes());
                    }
                }
                resp::multiline_end(&mut out);
                self.out.extend_from_slice(&out);
            }
            Command::List(Some(n)) => match mb.inbox.get(n) {
                None => self.err(None, &text::no_such_message(n)),
                Some(e) if e.deleted => self.err(None, text::MESSAGE_DELETED),
                Some(e) => {
                    let line = text::scan_listing(n, e.size);
                    self.ok(&line);
                }
            },
            Command::Uidl(None) => {
                let mut out = resp::multiline_start("");
                for (i, e) in mb.inbox.entries.iter().enumerate() {
                    if !e.deleted {
                        resp::push_line(&mut out, format!("{} {}", i + 1, e.uidl).as_bytes());
                    }
                }
                resp::multiline_end(&mut out);
                self.out.extend_from_slice(&out);
            }
            Command::Uidl(Some(n)) => match mb.inbox.get(n) {
                None => self.err(None, &text::no_such_message(n)),
                Some(e) if e.deleted => self.err(None, text::MESSAGE_DELETED),
                Some(e) => {
                    let line = format!("{n} {}", e.uidl);
                    self.ok(&line);
                }
            },
            Command::Dele(n) => match mb.inbox.get(n) {
                None => self.err(None, &text::no_such_message(n)),
                Some(e) if e.deleted => self.err(None, text::MESSAGE_DELETED),
                Some(_) => {
                    mb.inbox.set_deleted(n, true);
                    mb.deleted += 1;
                    self.ok(text::MARKED_DELETED);
                }
            },
            Command::Rset => {
                mb.inbox.undelete_all();
                mb.deleted = 0;
                self.ok("");
            }
            Command::Retr(n) | Command::Top { msg: n, .. } => {
                let lines = match cmd {
                    Command::Top { lines, .. } => Some(lines),
                    _ => None,
                };
                let size = match mb.inbox.get(n) {
                    None => {
                        self.err(None, &text::no_such_message(n));
                        return Ok(());
                    }
                    Some(e) if e.deleted => {
                        self.err(None, text::MESSAGE_DELETED);
                        return Ok(());
                    }
                    Some(e) => e.size,
                };
                // A message file is read at once from the page cache, as
                // a rule: not worth a hand-over to another thread.
                match mb.inbox.read(n) {
                    Ok(message) => {
                        // Counted as Dovecot counts them for the logout
                        // line: the status line and the dot-stuffed
                        // message, not the final ".".
                        let start = self.out.len();
                        match lines {
                            None => {
                                self.out
                                    .extend_from_slice(&resp::ok(&text::retr_header(size)));
                                resp::dot_stuff_into(&mut self.out, &message);
                                mb.retr.0 += 1;
                                mb.retr.1 += (self.out.len() - start - 3) as u64;
                            }
                            Some(l) => {
                                self.out.extend_from_slice(&resp::ok(""));
                                resp::top_into(&mut self.out, &message, l);
                                mb.top.0 += 1;
                                mb.top.1 += (self.out.len() - start - 3) as u64;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.err(None, &text::message_expunged(n));
                    }
                    Err(e) => {
                        let user = mb.user.clone();
                        self.log_user(&user, &format!("Error: read message {n}: {e}"));
                        self.err(Some(code::SYS_TEMP), text::SYNC_FAILED);
                    }
                }
            }
            Command::Quit => {
                // UPDATE (RFC 1939 §6).
                let expunged = {
                    let inbox = &mb.inbox;
                    tokio::task::block_in_place(|| inbox.expunge_deleted())
                };
                match expunged {
                    Ok(0) => self.ok(text::LOGOUT),
                    Ok(_) => self.ok(text::LOGOUT_DELETED),
                    Err(e) => {
                        let user = mb.user.clone();
                        self.log_user(&user, &format!("Error: expunge: {e}"));
                        self.err(Some(code::SYS_TEMP), text::SYNC_FAILED);
                    }
                }
                return Err(End::Done);
            }
            Command::User(_)
            | Command::Pass(_)
            | Command::Apop { .. }
            | Command::Auth { .. }
            | Command::Stls
            | Command::Utf8
            | Command::Lang(_) => {
                let name = cmd.name().to_ascii_uppercase();
                self.bad_command(Some(CommandError::Unknown(name)))?;
                return Ok(());
            }
        }
        self.bad = 0;
        Ok(())
    }

    /// Logs how the session ended (and says so to an idle client).
    fn finish(&mut self, end: Result<(), End>) {
        let end = match end {
            Ok(()) => End::Done,
            Err(e) => e,
        };
        let Some(mb) = &self.mailbox else {
            let why = match end {
                End::Idle => "Disconnected: Inactivity during authentication",
                End::Lost if self.failed_logins > 0 => "Disconnected (auth failed)",
                End::Lost => "Disconnected (no auth attempts)",
                End::Done => return,
            };
            self.log_login(&format!(
                "{why} ({}s): {}",
                self.started.elapsed().as_secs(),
                self.addresses()
            ));
            return;
        };
        let why = match end {
            End::Done => "Logged out",
            End::Idle => "Inactivity",
            End::Lost => "Connection closed",
        };
        let stats = logout_stats(&self.p.logout_format, mb);
        let user = mb.user.clone();
        self.log_user(&user, &format!("Disconnected: {why} {stats}"));
    }
}

/// pop3_logout_format: `%t/%p` TOP count/bytes, `%r/%b` RETR count/bytes,
/// `%d` deleted, `%m` messages at login, `%s` their size, `%%`.
fn logout_stats(format: &str, mb: &Mailbox) -> String {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push_str(&mb.top.0.to_string()),
            Some('p') => out.push_str(&mb.top.1.to_string()),
            Some('r') => out.push_str(&mb.retr.0.to_string()),
            Some('b') => out.push_str(&mb.retr.1.to_string()),
            Some('d') => out.push_str(&mb.deleted.to_string()),
            Some('m') => out.push_str(&mb.count.to_string()),
            Some('s') => out.push_str(&mb.size.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}
