//! THE parameter table: every parameter ironpost reads, once, with its
//! default, its type and one line of description. `postconf -d` prints it and
//! the documentation is generated from it. Postfix's names and defaults are
//! kept where Postfix has the parameter; Dovecot's names where only Dovecot
//! has one.
//!
//! A parameter joins this table when the code that reads it lands, so that
//! `unused parameter` warnings tell an administrator which settings have no
//! effect yet.

/// The type of a parameter's value, which decides how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// A path name.
    Path,
    /// `yes` or `no`.
    Bool,
    /// A decimal integer within bounds.
    Int { min: i64, max: i64 },
    /// A size in bytes.
    Size,
    /// A time; a bare number is in `unit` (s, m, h, d or w).
    Time { unit: char },
    /// A list separated by white space or commas.
    List,
    /// A list whose every element is one of these words.
    Words(&'static [&'static str]),
    /// One of these words.
    Enum(&'static [&'static str]),
    /// A list of lookup tables (`type:name`).
    Maps,
    /// A list of networks (mynetworks syntax).
    Networks,
}

/// How a default value is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// A fixed text, which may refer to other parameters with `$name`.
    Text(&'static str),
    /// Computed from the machine or the command line (see [`Computed`]).
    Computed(Computed),
}

/// Defaults that depend on the machine or on how the program was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Computed {
    /// The directory given with `-c`, else `/etc/ironpost`.
    ConfigDirectory,
    /// The host name; when it has no dot, `.$mydomain` or `.localdomain` is
    /// appended (Postfix's check_myhostname).
    MyHostname,
    /// myhostname without its first label, or `localdomain`.
    MyDomain,
    /// The networks of the local interfaces, per mynetworks_style.
    MyNetworks,
    /// The program's version.
    Version,
}

/// One parameter.
#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub doc: &'static str,
}

/// Parameters whose value is a template of attributes (`$rbl_code`,
/// `$client_address`, ...) that the program expands itself: their `$names`
/// are not parameters, and postconf does not call them undefined.
pub const TEMPLATES: &[&str] = &["default_rbl_reply"];

/// The default configuration directory.
pub const DEFAULT_CONFIG_DIRECTORY: &str = "/etc/ironpost";

macro_rules! params {
    ($( $id:ident = $name:literal, $kind:expr, $default:expr, $doc:literal; )*) => {
        $(
            #[doc = $doc]
            pub const $id: &Param = &Param { name: $name, kind: $kind, default: $default, doc: $doc };
        )*
        /// Every parameter, sorted by name.
        pub static PARAMS: &[&Param] = &[ $( $id ),* ];
    };
}

use Computed as C;
use DefaultValue::{Computed as Comp, Text as T};

params! {
    TWO_BOUNCE_NOTICE_RECIPIENT = "2bounce_notice_recipient", Kind::Str, T("postmaster"),
        "Where bounces that cannot be returned (double bounces) are sent.";
    ACCESS_MAP_DEFER_CODE = "access_map_defer_code", Kind::Int { min: 400, max: 499 }, T("450"),
        "The SMTP reply code for DEFER in an access table.";
    ACCESS_MAP_REJECT_CODE = "access_map_reject_code", Kind::Int { min: 400, max: 599 }, T("554"),
        "The SMTP reply code for REJECT in an access table.";
    ALIAS_DATABASE = "alias_database", Kind::Maps, T("hash:/etc/ironpost/aliases"),
        "The alias tables that newaliases and sendmail -bi rebuild.";
    ALIAS_MAPS = "alias_maps", Kind::Maps, T("hash:/etc/ironpost/aliases"),
        "The alias tables that local delivery consults for local recipients.";
    ALLOW_MAIL_TO_COMMANDS = "allow_mail_to_commands", Kind::Words(&["alias", "forward", "include"]), T("alias, forward"),
        "Where |command destinations are allowed: alias, forward, include.";
    ALLOW_MAIL_TO_FILES = "allow_mail_to_files", Kind::Words(&["alias", "forward", "include"]), T("alias, forward"),
        "Where /file destinations are allowed: alias, forward, include.";
    ALLOW_PERCENT_HACK = "allow_percent_hack", Kind::Bool, T("yes"),
        "Rewrite user%domain in a local address to user@domain (the address is then treated as routed).";
    APPEND_AT_MYORIGIN = "append_at_myorigin", Kind::Bool, T("yes"),
        "Append @$myorigin to addresses without a domain.";
    AUTH_DEFAULT_REALM = "auth_default_realm", Kind::Str, T("$mydomain"),
        "The domain added to a login name without one that is not a system account (Dovecot's auth_default_realm).";
    AUTH_FAILURE_DELAY = "auth_failure_delay", Kind::Time { unit: 's' }, T("2s"),
        "How long a failed password login waits before its answer (Dovecot's setting); successful logins never wait.";
    AUTH_FAILURE_LIMIT = "auth_failure_limit", Kind::Int { min: 0, max: i64::MAX }, T("10"),
        "Failed logins from one client address within auth_failure_window after which it is refused for auth_failure_lockout (0: never).";
    AUTH_FAILURE_LOCKOUT = "auth_failure_lockout", Kind::Time { unit: 's' }, T("10m"),
        "How long an address that failed auth_failure_limit times may not log in.";
    AUTH_FAILURE_WINDOW = "auth_failure_window", Kind::Time { unit: 's' }, T("10m"),
        "The window in which failed logins from one address are counted.";
    AUTH_MECHANISMS = "auth_mechanisms", Kind::Words(&["plain", "login", "scram-sha-1", "scram-sha-256", "scram-sha-1-plus", "scram-sha-256-plus", "apop"]), T("plain login"),
        "The SASL mechanisms offered, in Dovecot's names (SCRAM needs keys stored with the password).";
    AUTH_PASSWD_FILE = "auth_passwd_file", Kind::Path, T(""),
        "A Dovecot passwd-file of virtual users (address:{SCHEME}hash, one per line), checked for logins with a full address; empty: none.";
    AUTH_SYSTEM_USERS = "auth_system_users", Kind::Bool, T("yes"),
        "Let system accounts (passwd_file and shadow_file) log in with their login name, as saslauthd with MECH=shadow does.";
    BOUNCE_QUEUE_LIFETIME = "bounce_queue_lifetime", Kind::Time { unit: 'd' }, T("5d"),
        "How long a bounce message may stay in the queue before it is given up.";
    BROKEN_SASL_AUTH_CLIENTS = "broken_sasl_auth_clients", Kind::Bool, T("no"),
        "Also announce AUTH in the old AUTH=PLAIN LOGIN form that Outlook Express and old Microsoft clients need.";
    COMMAND_TIME_LIMIT = "command_time_limit", Kind::Time { unit: 's' }, T("1000s"),
        "How long a |command delivery may run before it is killed and the delivery deferred.";
    CONFIG_DIRECTORY = "config_directory", Kind::Path, Comp(C::ConfigDirectory),
        "The directory with main.cf, master.cf and the lookup tables.";
    DATA_DIRECTORY = "data_directory", Kind::Path, T("/var/lib/ironpost"),
        "The directory where ironpost keeps its databases and mailbox indexes.";
    DEFAULT_DATABASE_TYPE = "default_database_type", Kind::Enum(&["hash", "texthash"]), T("hash"),
        "The table type that postmap, postalias and newaliases use for a name without a type.";
    DEFAULT_DESTINATION_CONCURRENCY_LIMIT = "default_destination_concurrency_limit", Kind::Int { min: 1, max: 10000 }, T("20"),
        "How many SMTP deliveries may run at once to one destination.";
    DEFAULT_DESTINATION_RATE_DELAY = "default_destination_rate_delay", Kind::Time { unit: 's' }, T("0s"),
        "The pause between two deliveries to the same destination; 0: none.";
    DEFAULT_DESTINATION_RECIPIENT_LIMIT = "default_destination_recipient_limit", Kind::Int { min: 1, max: 100000 }, T("50"),
        "How many recipients one SMTP delivery may carry.";
    DEFAULT_PRIVS = "default_privs", Kind::Str, T("nobody"),
        "The account that commands and files named in aliases run as.";
    DEFAULT_PROCESS_LIMIT = "default_process_limit", Kind::Int { min: 1, max: i64::MAX }, T("100"),
        "The most simultaneous sessions of a service when its master.cf maxproc field is -.";
    DEFAULT_RBL_REPLY = "default_rbl_reply", Kind::Str, T("$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}"),
        "The reply template of reject_rbl_client and reject_rhsbl_*, with $rbl_code, $rbl_class, $rbl_what, $rbl_domain, $rbl_reason, $client_address and more (not main.cf parameters).";
    DEFAULT_TRANSPORT = "default_transport", Kind::Str, T("smtp"),
        "The transport for recipients in no local, virtual or relay domain (transport:nexthop).";
    DEFER_CODE = "defer_code", Kind::Int { min: 400, max: 499 }, T("450"),
        "The SMTP reply code for the defer restriction.";
    DELAY_WARNING_TIME = "delay_warning_time", Kind::Time { unit: 'h' }, T("0h"),
        "After how long the sender of a message still deferred is warned, once; 0: never.";
    DIRECTORY_CACHE_TTL = "directory_cache_ttl", Kind::Time { unit: 's' }, T("1s"),
        "How long the daemon reuses an answer of the user directory; changes made with ironpost domain|user|alias count at once, others after this; 0: no cache.";
    DIRECTORY_URL = "directory_url", Kind::Str, T("sqlite:$data_directory/directory.db"),
        "The user directory (domains, mailboxes, aliases): sqlite:/path, postgresql://user:password@host/db or mysql://user:password@host/db; read by the directory: tables and by logins with a full address.";
    DISABLE_PLAINTEXT_AUTH = "disable_plaintext_auth", Kind::Bool, T("yes"),
        "Refuse passwords over unencrypted connections, except from localhost and login_trusted_networks (Dovecot's setting, for every protocol).";
    DISABLE_VRFY_COMMAND = "disable_vrfy_command", Kind::Bool, T("no"),
        "Disable the SMTP VRFY command, which tells a client whether an address exists.";
    DNS_NAMESERVERS = "dns_nameservers", Kind::List, T(""),
        "The DNS servers to ask (address or address:port, in order); empty: those of /etc/resolv.conf.";
    DNS_TIMEOUT = "dns_timeout", Kind::Time { unit: 's' }, T("5s"),
        "How long to wait for a DNS server's answer before asking again (twice at most) and giving up.";
    DOUBLE_BOUNCE_SENDER = "double_bounce_sender", Kind::Str, T("double-bounce"),
        "The sender (a local part of myorigin) of notifications to the postmaster; mail to it that fails is dropped.";
    FAST_FLUSH_DOMAINS = "fast_flush_domains", Kind::List, T("$relay_domains"),
        "The domains for which a client may ask for deferred mail to be sent at once with ETRN.";
    GROUP_FILE = "group_file", Kind::Path, T("/etc/group"),
        "The group(5) file behind unix:group.byname.";
    HEADER_SIZE_LIMIT = "header_size_limit", Kind::Size, T("102400"),
        "The largest header section kept, in bytes; header lines beyond it are dropped.";
    HOME_MAILBOX = "home_mailbox", Kind::Str, T(""),
        "A local user's mailbox relative to the home directory (Mailbox, or Maildir/ for Maildir); empty means mbox in mail_spool_directory.";
    HOPCOUNT_LIMIT = "hopcount_limit", Kind::Int { min: 1, max: i64::MAX }, T("50"),
        "The most Received headers a message may have before it is bounced as a loop.";
    IMAP_IDLE_TIMEOUT = "imap_idle_timeout", Kind::Time { unit: 's' }, T("30m"),
        "How long an IMAP client may stay silent outside IDLE before it is disconnected (RFC 9051 asks for at least 30 minutes).";
    IMAP_LOGOUT_FORMAT = "imap_logout_format", Kind::Str, T("in=%i out=%o deleted=%{deleted} expunged=%{expunged} trashed=%{trashed} hdr_count=%{fetch_hdr_count} hdr_bytes=%{fetch_hdr_bytes} body_count=%{fetch_body_count} body_bytes=%{fetch_body_bytes}"),
        "The statistics logged when an IMAP session ends (Dovecot's variables: %i bytes in, %o bytes out, %{deleted}, %{expunged}, %{trashed}, %{fetch_hdr_count}, %{fetch_hdr_bytes}, %{fetch_body_count}, %{fetch_body_bytes}).";
    IMAP_MAX_LINE_LENGTH = "imap_max_line_length", Kind::Size, T("64k"),
        "The longest IMAP command line accepted, literals not counted (Dovecot's setting).";
    IMAP_TLS_WRAPPERMODE = "imap_tls_wrappermode", Kind::Bool, T("no"),
        "TLS from the start (imaps, port 993) instead of STARTTLS; set with -o in master.cf.";
    INET_INTERFACES = "inet_interfaces", Kind::List, T("localhost"),
        "The addresses the server listens on: all, localhost, loopback-only, or a list of addresses.";
    INET_PROTOCOLS = "inet_protocols", Kind::Words(&["all", "ipv4", "ipv6"]), T("all"),
        "The IP protocols used for listening and for connecting out: ipv4, ipv6 or all.";
    LINE_LENGTH_LIMIT = "line_length_limit", Kind::Int { min: 256, max: i64::MAX }, T("2048"),
        "The longest SMTP command line accepted, in bytes.";
    LOCAL_RECIPIENT_MAPS = "local_recipient_maps", Kind::Maps, T("proxy:unix:passwd.byname $alias_maps"),
        "Tables of the local recipients that exist; mail to other names in local domains is refused at RCPT. Empty accepts every name.";
    LOCAL_TRANSPORT = "local_transport", Kind::Str, T("local:$myhostname"),
        "The transport for recipients in local domains (mydestination).";
    LOGIN_GREETING = "login_greeting", Kind::Str, T("ironpost ready."),
        "The POP3 greeting after +OK (Dovecot's login_greeting).";
    LOGIN_TRUSTED_NETWORKS = "login_trusted_networks", Kind::Networks, T(""),
        "Networks whose clients may send passwords without TLS (Dovecot's setting).";
    MAIL_LOCATION = "mail_location", Kind::Str, T(""),
        "Where system users' mail is for POP3 and IMAP, in Dovecot's form (maildir:~/Maildir, mbox:~/mail:INBOX=/var/mail/%u); empty: where local delivery puts it (home_mailbox, mail_spool_directory).";
    MAIL_MAX_USERIP_CONNECTIONS = "mail_max_userip_connections", Kind::Int { min: 0, max: i64::MAX }, T("10"),
        "The most IMAP sessions one user may have open from one IP address; 0 means no limit (Dovecot's setting).";
    MAIL_NAME = "mail_name", Kind::Str, T("ironpost"),
        "The mail system's name, used in the SMTP greeting and in Received headers.";
    MAIL_SPOOL_DIRECTORY = "mail_spool_directory", Kind::Path, T("/var/mail"),
        "The directory with the mbox files of local users (used when home_mailbox is empty).";
    MAIL_VERSION = "mail_version", Kind::Str, Comp(C::Version),
        "The version of ironpost.";
    MAILBOX_AUTOCREATE = "mailbox_autocreate", Kind::List, T("Drafts Sent Trash Junk Archive"),
        "IMAP folders created and subscribed at a user's first login, with the special use their name says (RFC 6154).";
    MAILLOG_FILE = "maillog_file", Kind::Path, T("/var/log/ironpost/maillog"),
        "The mail log file, in Postfix's line format; empty means standard error.";
    MAPS_RBL_REJECT_CODE = "maps_rbl_reject_code", Kind::Int { min: 400, max: 599 }, T("554"),
        "The SMTP reply code ($rbl_code) when reject_rbl_client or a reject_rhsbl_* restriction finds a listing.";
    MAXIMAL_BACKOFF_TIME = "maximal_backoff_time", Kind::Time { unit: 's' }, T("4000s"),
        "The longest wait between two delivery attempts of a deferred message.";
    MAXIMAL_QUEUE_LIFETIME = "maximal_queue_lifetime", Kind::Time { unit: 'd' }, T("5d"),
        "How long a message may stay in the queue before it is returned to the sender as undeliverable.";
    MESSAGE_SIZE_LIMIT = "message_size_limit", Kind::Size, T("10240000"),
        "The largest message accepted, in bytes, headers included; 0 means no limit.";
    MINIMAL_BACKOFF_TIME = "minimal_backoff_time", Kind::Time { unit: 's' }, T("300s"),
        "The shortest wait between two delivery attempts of a deferred message.";
    MYDESTINATION = "mydestination", Kind::List, T("$myhostname, localhost.$mydomain, localhost"),
        "The domains this machine delivers locally, to accounts and aliases.";
    MYDOMAIN = "mydomain", Kind::Str, Comp(C::MyDomain),
        "The internet domain of this mail system; by default myhostname without its first label.";
    MYHOSTNAME = "myhostname", Kind::Str, Comp(C::MyHostname),
        "The fully qualified internet host name of this mail system.";
    MYNETWORKS = "mynetworks", Kind::Networks, Comp(C::MyNetworks),
        "The trusted client networks, which may relay; computed from mynetworks_style when not set.";
    MYNETWORKS_STYLE = "mynetworks_style", Kind::Enum(&["host", "subnet", "class"]), T("host"),
        "How mynetworks is computed when it is not set: host (this machine only), subnet or class.";
    MYORIGIN = "myorigin", Kind::Str, T("$myhostname"),
        "The domain that locally posted mail and unqualified addresses appear to come from.";
    NON_FQDN_REJECT_CODE = "non_fqdn_reject_code", Kind::Int { min: 400, max: 599 }, T("504"),
        "The SMTP reply code for reject_non_fqdn_sender, reject_non_fqdn_recipient and reject_non_fqdn_helo_hostname.";
    PARENT_DOMAIN_MATCHES_SUBDOMAINS = "parent_domain_matches_subdomains", Kind::List,
        T("debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps"),
        "Features where the pattern example.com also matches subdomains (elsewhere .example.com is needed).";
    PASSWD_FILE = "passwd_file", Kind::Path, T("/etc/passwd"),
        "The passwd(5) file of the system accounts (local recipients, unix:passwd.byname, home directories).";
    POP3_IDLE_TIMEOUT = "pop3_idle_timeout", Kind::Time { unit: 's' }, T("10m"),
        "How long a POP3 client may stay silent before it is disconnected.";
    POP3_LOGOUT_FORMAT = "pop3_logout_format", Kind::Str, T("top=%t/%p, retr=%r/%b, del=%d/%m, size=%s"),
        "The statistics logged when a POP3 session ends (Dovecot's variables %t %p %r %b %d %m %s).";
    POP3_TLS_WRAPPERMODE = "pop3_tls_wrappermode", Kind::Bool, T("no"),
        "TLS from the start (pop3s, port 995) instead of STLS; set with -o in master.cf.";
    POP3_UIDL_FORMAT = "pop3_uidl_format", Kind::Str, T("%08Xu%08Xv"),
        "The POP3 UIDL of a message (Dovecot's: %u UID, %v UIDVALIDITY, %f file name).";
    PROCESS_ID_DIRECTORY = "process_id_directory", Kind::Path, T("pid"),
        "Where the daemon's PID file (master.pid) is kept, relative to queue_directory.";
    PROPAGATE_UNMATCHED_EXTENSIONS = "propagate_unmatched_extensions", Kind::Words(&["canonical", "virtual", "alias", "forward", "include"]), T("canonical, virtual"),
        "Where an address extension that a table did not match is carried to the result (virtual: virtual_alias_maps).";
    QUEUE_DIRECTORY = "queue_directory", Kind::Path, T("/var/spool/ironpost"),
        "The directory of the mail queue.";
    QUEUE_RUN_DELAY = "queue_run_delay", Kind::Time { unit: 's' }, T("300s"),
        "How often the deferred queue is scanned for messages due for another attempt.";
    RBL_REPLY_MAPS = "rbl_reply_maps", Kind::Maps, T(""),
        "Tables of reply templates by DNS blocklist domain (as default_rbl_reply) for reject_rbl_client and reject_rhsbl_*.";
    RECIPIENT_DELIMITER = "recipient_delimiter", Kind::Str, T(""),
        "The characters that separate a user name from an address extension, as in user+foo.";
    REJECT_CODE = "reject_code", Kind::Int { min: 400, max: 599 }, T("554"),
        "The SMTP reply code for the reject restriction.";
    REJECT_TEMPFAIL_ACTION = "reject_tempfail_action", Kind::Enum(&["defer_if_permit", "defer"]), T("defer_if_permit"),
        "What a reject-type restriction does when a lookup fails temporarily: defer_if_permit (defer only if the mail would be accepted) or defer (at once).";
    RELAY_DOMAINS = "relay_domains", Kind::List, T(""),
        "Remote domains this server accepts mail for and relays.";
    RELAY_DOMAINS_REJECT_CODE = "relay_domains_reject_code", Kind::Int { min: 400, max: 599 }, T("554"),
        "The SMTP reply code when reject_unauth_destination refuses mail for another domain.";
    RELAY_RECIPIENT_MAPS = "relay_recipient_maps", Kind::Maps, T(""),
        "Tables of the recipients that exist in relay_domains; empty accepts every address there.";
    RELAY_TRANSPORT = "relay_transport", Kind::Str, T("relay"),
        "The transport for recipients in relay_domains.";
    RELAYHOST = "relayhost", Kind::Str, T(""),
        "The next-hop host for mail to remote domains; empty means direct delivery by MX lookup.";
    SENDER_DEPENDENT_RELAYHOST_MAPS = "sender_dependent_relayhost_maps", Kind::Maps, T(""),
        "Tables of relay hosts by sender address or @domain, before relayhost.";
    SHADOW_FILE = "shadow_file", Kind::Path, T("/etc/shadow"),
        "The shadow(5) file with the password hashes of the system accounts.";
    SMTP_BIND_ADDRESS = "smtp_bind_address", Kind::Str, T(""),
        "The local IPv4 address the SMTP client connects from; empty: any.";
    SMTP_BIND_ADDRESS6 = "smtp_bind_address6", Kind::Str, T(""),
        "The local IPv6 address the SMTP client connects from; empty: any.";
    SMTP_CONNECT_TIMEOUT = "smtp_connect_timeout", Kind::Time { unit: 's' }, T("30s"),
        "How long the SMTP client waits for a TCP connection to complete.";
    SMTP_CONNECTION_CACHE_ON_DEMAND = "smtp_connection_cache_on_demand", Kind::Bool, T("yes"),
        "Keep SMTP connections open for the next message to the same destination.";
    SMTP_CONNECTION_CACHE_TIME_LIMIT = "smtp_connection_cache_time_limit", Kind::Time { unit: 's' }, T("2s"),
        "How long an idle SMTP connection is kept for reuse.";
    SMTP_DATA_DONE_TIMEOUT = "smtp_data_done_timeout", Kind::Time { unit: 's' }, T("600s"),
        "How long the SMTP client waits for the answer to the end of a message.";
    SMTP_DATA_INIT_TIMEOUT = "smtp_data_init_timeout", Kind::Time { unit: 's' }, T("120s"),
        "How long the SMTP client waits for the answer to DATA.";
    SMTP_DATA_XFER_TIMEOUT = "smtp_data_xfer_timeout", Kind::Time { unit: 's' }, T("180s"),
        "How long sending one part of a message may take.";
    SMTP_FALLBACK_RELAY = "smtp_fallback_relay", Kind::List, T(""),
        "Hosts to try when every mail exchanger of a destination failed temporarily.";
    SMTP_HELO_NAME = "smtp_helo_name", Kind::Str, T("$myhostname"),
        "The name the SMTP client sends in EHLO and HELO.";
    SMTP_HELO_TIMEOUT = "smtp_helo_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the SMTP client waits for the greeting and the answer to EHLO or HELO.";
    SMTP_MAIL_TIMEOUT = "smtp_mail_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the SMTP client waits for the answer to MAIL FROM.";
    SMTP_MX_ADDRESS_LIMIT = "smtp_mx_address_limit", Kind::Int { min: 0, max: 1000 }, T("5"),
        "How many mail exchanger addresses one delivery may try; 0: all.";
    SMTP_MX_SESSION_LIMIT = "smtp_mx_session_limit", Kind::Int { min: 0, max: 1000 }, T("2"),
        "How many SMTP sessions one delivery may try (connections that got a greeting); 0: all.";
    SMTP_QUIT_TIMEOUT = "smtp_quit_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the SMTP client waits for the answer to QUIT.";
    SMTP_RCPT_TIMEOUT = "smtp_rcpt_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the SMTP client waits for the answer to RCPT TO.";
    SMTP_RSET_TIMEOUT = "smtp_rset_timeout", Kind::Time { unit: 's' }, T("20s"),
        "How long the SMTP client waits for the answer to RSET on a cached connection.";
    SMTP_SKIP_5XX_GREETING = "smtp_skip_5xx_greeting", Kind::Bool, T("yes"),
        "Try the next mail exchanger when one greets with a 5xx reply.";
    SMTP_STARTTLS_TIMEOUT = "smtp_starttls_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the TLS handshake of the SMTP client may take.";
    SMTP_TCP_PORT = "smtp_tcp_port", Kind::Str, T("smtp"),
        "The port of mail exchangers (smtp: 25).";
    SMTP_TLS_CAFILE = "smtp_tls_CAfile", Kind::Path, T(""),
        "Trusted CA certificates (PEM) for the verify and secure levels; empty: the system's bundle.";
    SMTP_TLS_POLICY_MAPS = "smtp_tls_policy_maps", Kind::Maps, T(""),
        "TLS levels per destination (domain, [host]:port): none, may, encrypt, verify, secure.";
    SMTP_TLS_SECURITY_LEVEL = "smtp_tls_security_level", Kind::Enum(&["none", "may", "encrypt", "verify", "secure", "dane", "fingerprint"]), T("may"),
        "TLS for the SMTP client: none, may (opportunistic), encrypt (required), verify or secure (required and verified).";
    SMTPD_BANNER = "smtpd_banner", Kind::Str, T("$myhostname ESMTP $mail_name"),
        "The text that follows 220 in the SMTP greeting.";
    SMTPD_CLIENT_CONNECTION_COUNT_LIMIT = "smtpd_client_connection_count_limit", Kind::Int { min: 0, max: i64::MAX }, T("50"),
        "The most simultaneous connections one client address may have (0: no limit); clients in mynetworks are exempt.";
    SMTPD_CLIENT_RESTRICTIONS = "smtpd_client_restrictions", Kind::List, T(""),
        "Restrictions on the client's address and name, checked at RCPT time.";
    SMTPD_DATA_RESTRICTIONS = "smtpd_data_restrictions", Kind::List, T(""),
        "Restrictions checked when the client sends DATA.";
    SMTPD_DATA_TIMEOUT = "smtpd_data_timeout", Kind::Time { unit: 's' }, T("1h"),
        "The longest time one DATA or BDAT transfer may take in all, however fast the client keeps sending.";
    SMTPD_DISCARD_EHLO_KEYWORDS = "smtpd_discard_ehlo_keywords", Kind::List, T(""),
        "EHLO keywords not to announce (and the commands and parameters not to accept), for example chunking, dsn, smtputf8.";
    SMTPD_ERROR_SLEEP_TIME = "smtpd_error_sleep_time", Kind::Time { unit: 's' }, T("1s"),
        "The pause before each error reply once a client has made smtpd_soft_error_limit errors.";
    SMTPD_FORBID_BARE_NEWLINE = "smtpd_forbid_bare_newline", Kind::Enum(&["normalize", "yes", "reject"]), T("normalize"),
        "A bare LF in SMTP input: normalize (or yes) treats it as CRLF; reject refuses the message. DATA always ends only at CRLF.CRLF.";
    SMTPD_HARD_ERROR_LIMIT = "smtpd_hard_error_limit", Kind::Int { min: 1, max: i64::MAX }, T("20"),
        "The number of errors an SMTP client may make before the server disconnects.";
    SMTPD_HELO_REQUIRED = "smtpd_helo_required", Kind::Bool, T("no"),
        "Require HELO or EHLO before MAIL FROM.";
    SMTPD_HELO_RESTRICTIONS = "smtpd_helo_restrictions", Kind::List, T(""),
        "Restrictions on the HELO/EHLO name, checked at RCPT time.";
    SMTPD_PEERNAME_LOOKUP = "smtpd_peername_lookup", Kind::Bool, T("yes"),
        "Look up the client's host name (PTR) and verify that it resolves back to the client address; else the client is unknown.";
    SMTPD_RECIPIENT_LIMIT = "smtpd_recipient_limit", Kind::Int { min: 1, max: i64::MAX }, T("1000"),
        "The most recipients the SMTP server accepts for one message.";
    SMTPD_RECIPIENT_RESTRICTIONS = "smtpd_recipient_restrictions", Kind::List, T(""),
        "Restrictions on the recipient, checked at RCPT time after smtpd_relay_restrictions.";
    SMTPD_REJECT_UNLISTED_RECIPIENT = "smtpd_reject_unlisted_recipient", Kind::Bool, T("yes"),
        "Refuse recipients that do not exist where this server is the final destination, even without reject_unlisted_recipient.";
    SMTPD_REJECT_UNLISTED_SENDER = "smtpd_reject_unlisted_sender", Kind::Bool, T("no"),
        "Refuse senders in our own domains that do not exist, even without reject_unlisted_sender.";
    SMTPD_RELAY_RESTRICTIONS = "smtpd_relay_restrictions", Kind::List, T("permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"),
        "Restrictions that decide who may send mail to other domains through this server, checked at RCPT time.";
    SMTPD_SASL_AUTH_ENABLE = "smtpd_sasl_auth_enable", Kind::Bool, T("no"),
        "Offer SMTP AUTH (RFC 4954) to clients.";
    SMTPD_SASL_LOCAL_DOMAIN = "smtpd_sasl_local_domain", Kind::Str, T(""),
        "The realm added to SMTP AUTH login names without one (empty: auth_default_realm decides).";
    SMTPD_SASL_SECURITY_OPTIONS = "smtpd_sasl_security_options", Kind::Words(&["noanonymous", "noplaintext", "noactive", "nodictionary", "mutual_auth", "forward_secrecy"]), T("noanonymous"),
        "Restrictions on the SASL mechanisms offered without TLS: noplaintext leaves out PLAIN and LOGIN (noanonymous is always in force).";
    SMTPD_SASL_TLS_SECURITY_OPTIONS = "smtpd_sasl_tls_security_options", Kind::Words(&["noanonymous", "noplaintext", "noactive", "nodictionary", "mutual_auth", "forward_secrecy"]), T("$smtpd_sasl_security_options"),
        "The same, for connections with TLS.";
    SMTPD_SENDER_LOGIN_MAPS = "smtpd_sender_login_maps", Kind::Maps, T(""),
        "Tables of which SASL login names own which sender addresses (for reject_sender_login_mismatch).";
    SMTPD_SENDER_RESTRICTIONS = "smtpd_sender_restrictions", Kind::List, T(""),
        "Restrictions on the envelope sender, checked at RCPT time.";
    SMTPD_SOFT_ERROR_LIMIT = "smtpd_soft_error_limit", Kind::Int { min: 1, max: i64::MAX }, T("10"),
        "The number of errors after which the server pauses smtpd_error_sleep_time before each reply.";
    SMTPD_TIMEOUT = "smtpd_timeout", Kind::Time { unit: 's' }, T("300s"),
        "How long the SMTP server waits for a client to send a command or data.";
    SMTPD_TLS_AUTH_ONLY = "smtpd_tls_auth_only", Kind::Bool, T("no"),
        "Offer AUTH only over TLS, whatever disable_plaintext_auth says.";
    SMTPD_TLS_CERT_FILE = "smtpd_tls_cert_file", Kind::Path, T(""),
        "The server certificate chain (PEM) for STARTTLS and smtps.";
    SMTPD_TLS_KEY_FILE = "smtpd_tls_key_file", Kind::Path, T("$smtpd_tls_cert_file"),
        "The private key (PEM) of smtpd_tls_cert_file.";
    SMTPD_TLS_SECURITY_LEVEL = "smtpd_tls_security_level", Kind::Enum(&["", "none", "may", "encrypt"]), T(""),
        "TLS for SMTP clients: none (or empty), may (offer STARTTLS), encrypt (require it before MAIL).";
    SMTPD_TLS_WRAPPERMODE = "smtpd_tls_wrappermode", Kind::Bool, T("no"),
        "Start TLS at once, before the greeting (smtps on port 465).";
    SMTPD_VIRTUAL_DELIVERY = "smtpd_virtual_delivery", Kind::Bool, T("yes"),
        "Deliver a message whose recipients are all in virtual mailbox domains during the SMTP session, on stable storage in the Maildir before the 250, without a queue file; no: every message goes through the queue, as in Postfix.";
    SSL = "ssl", Kind::Enum(&["no", "yes", "required"]), T("yes"),
        "TLS for POP3 and IMAP (Dovecot's ssl): no, yes (offered), required (no login without it).";
    SSL_CERT = "ssl_cert", Kind::Path, T("$smtpd_tls_cert_file"),
        "The certificate (PEM) for POP3 and IMAP.";
    SSL_KEY = "ssl_key", Kind::Path, T("$smtpd_tls_key_file"),
        "The private key (PEM) for POP3 and IMAP.";
    SWAP_BANGPATH = "swap_bangpath", Kind::Bool, T("yes"),
        "Rewrite site!user in a local address to user@site (the address is then treated as routed).";
    SYSLOG_NAME = "syslog_name", Kind::Str, T("ironpost"),
        "The name before the program in mail log lines (ironpost/smtpd); master.cf may set it per service.";
    TRANSPORT_MAPS = "transport_maps", Kind::Maps, T(""),
        "Tables of transport:nexthop by recipient address or domain (transport(5)).";
    UNKNOWN_ADDRESS_REJECT_CODE = "unknown_address_reject_code", Kind::Int { min: 400, max: 599 }, T("450"),
        "The SMTP reply code when reject_unknown_sender_domain or reject_unknown_recipient_domain finds no MX and no address for the domain.";
    UNKNOWN_ADDRESS_TEMPFAIL_ACTION = "unknown_address_tempfail_action", Kind::Enum(&["defer_if_permit", "defer"]), T("$reject_tempfail_action"),
        "What reject_unknown_sender_domain and reject_unknown_recipient_domain do when the DNS fails temporarily.";
    UNKNOWN_CLIENT_REJECT_CODE = "unknown_client_reject_code", Kind::Int { min: 400, max: 599 }, T("450"),
        "The SMTP reply code of reject_unknown_client_hostname and reject_unknown_reverse_client_hostname (always 450 when the lookup failed temporarily).";
    UNKNOWN_HELO_HOSTNAME_TEMPFAIL_ACTION = "unknown_helo_hostname_tempfail_action", Kind::Enum(&["defer_if_permit", "defer"]), T("$reject_tempfail_action"),
        "What reject_unknown_helo_hostname does when the DNS fails temporarily.";
    UNKNOWN_HOSTNAME_REJECT_CODE = "unknown_hostname_reject_code", Kind::Int { min: 400, max: 599 }, T("450"),
        "The SMTP reply code when reject_unknown_helo_hostname finds no A, AAAA or MX record for the HELO name.";
    UNKNOWN_LOCAL_RECIPIENT_REJECT_CODE = "unknown_local_recipient_reject_code", Kind::Int { min: 400, max: 599 }, T("550"),
        "The SMTP reply code for a recipient in a local domain that does not exist.";
    UNKNOWN_RELAY_RECIPIENT_REJECT_CODE = "unknown_relay_recipient_reject_code", Kind::Int { min: 400, max: 599 }, T("550"),
        "The SMTP reply code for a recipient in relay_domains that is not in relay_recipient_maps.";
    UNKNOWN_VIRTUAL_ALIAS_REJECT_CODE = "unknown_virtual_alias_reject_code", Kind::Int { min: 400, max: 599 }, T("550"),
        "The SMTP reply code for an address in a virtual alias domain that has no alias.";
    UNKNOWN_VIRTUAL_MAILBOX_REJECT_CODE = "unknown_virtual_mailbox_reject_code", Kind::Int { min: 400, max: 599 }, T("550"),
        "The SMTP reply code for an address in a virtual mailbox domain that has no mailbox.";
    VIRTUAL_ALIAS_DOMAINS = "virtual_alias_domains", Kind::List, T("$virtual_alias_maps"),
        "Domains whose every address is an alias in virtual_alias_maps (no mailboxes of their own).";
    VIRTUAL_ALIAS_EXPANSION_LIMIT = "virtual_alias_expansion_limit", Kind::Int { min: 1, max: i64::MAX }, T("1000"),
        "How many addresses the virtual aliases of one message may expand to; more defers the message.";
    VIRTUAL_ALIAS_MAPS = "virtual_alias_maps", Kind::Maps, T(""),
        "Tables that rewrite recipient addresses to other addresses, for any domain, before a message is queued.";
    VIRTUAL_ALIAS_RECURSION_LIMIT = "virtual_alias_recursion_limit", Kind::Int { min: 1, max: i64::MAX }, T("1000"),
        "How deep virtual aliases may nest; deeper defers the message.";
    VIRTUAL_GID_MAPS = "virtual_gid_maps", Kind::Maps, T(""),
        "Tables with the group ID of each virtual mailbox (static:5000 for all).";
    VIRTUAL_MAILBOX_BASE = "virtual_mailbox_base", Kind::Path, T(""),
        "The directory that the paths in virtual_mailbox_maps are relative to.";
    VIRTUAL_MAILBOX_DOMAINS = "virtual_mailbox_domains", Kind::List, T("$virtual_mailbox_maps"),
        "Domains delivered by virtual delivery to mailboxes under virtual_mailbox_base.";
    VIRTUAL_MAILBOX_MAPS = "virtual_mailbox_maps", Kind::Maps, T(""),
        "Tables from an address in a virtual mailbox domain to its mailbox, relative to virtual_mailbox_base (a trailing / means Maildir).";
    VIRTUAL_MINIMUM_UID = "virtual_minimum_uid", Kind::Int { min: 0, max: i64::MAX }, T("100"),
        "The smallest user ID that virtual_uid_maps may give.";
    VIRTUAL_TRANSPORT = "virtual_transport", Kind::Str, T("virtual"),
        "The transport for recipients in virtual mailbox domains.";
    VIRTUAL_UID_MAPS = "virtual_uid_maps", Kind::Maps, T(""),
        "Tables with the user ID of each virtual mailbox (static:5000 for all).";
}

/// The parameter reference in Markdown, generated from the table
/// (docs/parameters.md is this text; a test keeps it current).
pub fn markdown_reference() -> String {
    let mut out = String::from(
        "# Parameters\n\n\
         Generated from the parameter table in `crates/conf/src/params.rs` by\n\
         `ironpost doc parameters`; do not edit by hand. `postconf -d` prints the\n\
         same defaults. Computed defaults depend on the machine.\n\n\
         | name | default | type | description |\n|---|---|---|---|\n",
    );
    for p in PARAMS {
        let default = match p.default {
            DefaultValue::Text("") => "(empty)".to_string(),
            DefaultValue::Text(t) => format!("`{t}`"),
            DefaultValue::Computed(c) => match c {
                Computed::ConfigDirectory => format!("`{DEFAULT_CONFIG_DIRECTORY}` (or `-c DIR`)"),
                Computed::MyHostname => {
                    "the host name, completed with `.$mydomain` or `.localdomain`".into()
                }
                Computed::MyDomain => "`$myhostname` without its first label".into(),
                Computed::MyNetworks => "from `mynetworks_style`".into(),
                Computed::Version => "the version".into(),
            },
        };
        let kind = match p.kind {
            Kind::Str => "text".to_string(),
            Kind::Path => "path".to_string(),
            Kind::Bool => "yes/no".to_string(),
            Kind::Int { min, max } if max == i64::MAX => format!("integer >= {min}"),
            Kind::Int { min, max } => format!("integer {min}..{max}"),
            Kind::Size => "size".to_string(),
            Kind::Time { unit } => format!("time (bare number: {unit})"),
            Kind::List => "list".to_string(),
            Kind::Words(w) => format!("list of {}", w.join(", ")),
            Kind::Enum(w) => w.join(" \\| "),
            Kind::Maps => "lookup tables".to_string(),
            Kind::Networks => "networks".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {kind} | {} |\n",
            p.name, p.doc
        ));
    }
    out
}

/// The parameter called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Param> {
    PARAMS
        .binary_search_by(|p| p.name.cmp(name))
        .ok()
        .map(|i| PARAMS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} must come before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_parameter_is_described() {
        for p in PARAMS {
            assert!(p.doc.ends_with('.'), "{}: {}", p.name, p.doc);
            assert!(!p.doc.contains('\n'), "{}", p.name);
        }
    }

    #[test]
    fn find_by_name() {
        assert_eq!(find("myhostname").unwrap().name, "myhostname");
        assert!(find("no_such_parameter").is_none());
    }
}
