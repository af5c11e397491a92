//! Configuration: command-line flags with `SECURECHAT_*` environment fallbacks. Every setting
//! has a safe default, so `securechat-relay` with no arguments runs a local relay.

use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The relay's configuration. Its `Debug` output leaves out the passwords of the database
/// and mail URLs, and `--help` never shows their environment values (issue #12 item 16).
#[derive(Clone, Parser)]
#[command(
    name = "securechat-relay",
    version,
    about = "SecureChat relay server: stores and forwards ciphertext, holds accounts, two-factor auth and friendships."
)]
pub struct Config {
    /// Instead of serving: `backup FILE` (see [`Command`]).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// File holding the relay's 32-byte secret key, under which TOTP secrets are encrypted
    /// at rest; created (owner-only) at the first start when missing. Relays sharing one
    /// PostgreSQL database need the same file; back it up with the database.
    #[arg(
        long,
        env = "SECURECHAT_SECRET_KEY_FILE",
        default_value = "./securechat.key"
    )]
    pub secret_key_file: PathBuf,

    /// Address and port to listen on.
    #[arg(long, env = "SECURECHAT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://PATH` (created if missing, WAL mode) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` to share one database between relays.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./securechat.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Outgoing mail: `file://DIR` writes each message as a `.eml` file into DIR (for local
    /// use); `smtp://USER:PASS@HOST:PORT` uses STARTTLS, `smtps://…` implicit TLS, and
    /// `smtp+insecure://HOST:PORT` plain SMTP (loopback test servers only).
    #[arg(
        long,
        env = "SECURECHAT_MAIL_URL",
        default_value = "file://./mail-outbox",
        hide_env_values = true
    )]
    pub mail_url: String,

    /// Sender address of outgoing mail.
    #[arg(
        long,
        env = "SECURECHAT_MAIL_FROM",
        default_value = "SecureChat <no-reply@securechat.invalid>"
    )]
    pub mail_from: String,

    /// PEM certificate chain; with --tls-key, serve HTTPS (rustls) instead of HTTP.
    #[arg(long, env = "SECURECHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key matching --tls-cert.
    #[arg(long, env = "SECURECHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Origins allowed to call the API from a browser (comma-separated, e.g.
    /// `https://chat.example.org`). The relay's own origin is always allowed.
    #[arg(long, env = "SECURECHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Directory of the built web app, served at `/` (optional).
    #[arg(long, env = "SECURECHAT_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Name shown in authenticator apps and e-mails.
    #[arg(long, env = "SECURECHAT_ISSUER", default_value = "SecureChat")]
    pub issuer: String,

    /// Lifetime of a session token, in hours.
    #[arg(long, env = "SECURECHAT_SESSION_TTL_HOURS", default_value_t = 24 * 30)]
    pub session_ttl_hours: u64,

    /// The relay is reached over HTTPS (behind a TLS proxy; implied by --tls-cert): the session
    /// cookie is `Secure`, responses carry `Strict-Transport-Security`, and the WebSocket
    /// accepts the `https://` form of its own origin instead of `http://`.
    #[arg(long, env = "SECURECHAT_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Directory of the encrypted attachment blobs (created if missing).
    #[arg(long, env = "SECURECHAT_BLOB_DIR", default_value = "./blobs")]
    pub blob_dir: PathBuf,

    /// Days an uploaded attachment is kept before it expires.
    #[arg(long, env = "SECURECHAT_ATTACHMENT_TTL_DAYS", default_value_t = 30)]
    pub attachment_ttl_days: u64,

    /// Total size of the live attachments one account may have uploaded, in MiB.
    #[arg(long, env = "SECURECHAT_ATTACHMENT_QUOTA_MIB", default_value_t = 250)]
    pub attachment_quota_mib: u64,

    /// Serve operational metrics at `GET /metrics` (Prometheus/OpenMetrics text) on the same
    /// listener. Aggregate numbers only, but they show when traffic happens: firewall the path
    /// (or scrape over loopback) on a public relay.
    #[arg(long, env = "SECURECHAT_METRICS", default_value_t = false)]
    pub metrics: bool,

    /// Seconds between the WebSocket heartbeat pings; a connection silent for three intervals
    /// is closed (4002). Tests shorten it.
    #[arg(
        long,
        env = "SECURECHAT_WS_HEARTBEAT_SECS",
        default_value_t = 20,
        hide = true
    )]
    pub ws_heartbeat_secs: u64,

    /// Milliseconds one write to a WebSocket may take (the client not reading: its TCP window
    /// stays full); a write that takes longer ends the connection and closes its socket.
    #[arg(long, env = "SECURECHAT_WS_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_write_timeout_ms: u64,

    /// KiB of pushed frames (envelopes, receipts, notices) that may wait for one WebSocket
    /// connection; a client that falls further behind is disconnected (4003) and gets what it
    /// missed from its backlog when it reconnects.
    #[arg(long, env = "SECURECHAT_WS_PUSH_QUEUE_KIB", default_value_t = 8192)]
    pub ws_push_queue_kib: u64,

    /// Seconds a request body may go without a single byte arriving (uploads, JSON); a body
    /// that stalls longer is refused with 408 and its connection closed.
    #[arg(long, env = "SECURECHAT_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Open HTTP and WebSocket connections allowed from one client address (IPv6: one /64);
    /// further ones are answered 429 and closed. 0 turns the cap off.
    #[arg(long, env = "SECURECHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Seconds a request waits for a database connection from the pool, or for SQLite's write
    /// lock, before it fails with 503.
    #[arg(long, env = "SECURECHAT_DB_WAIT_SECS", default_value_t = 10)]
    pub db_wait_secs: u64,

    /// Password hashes (argon2id, 19 MiB each) computed at once in the whole relay; further
    /// logins, registrations and password checks wait briefly, then get 503 with
    /// `Retry-After`. 0 means twice the number of CPU cores.
    #[arg(
        long,
        env = "SECURECHAT_PASSWORD_HASH_CONCURRENCY",
        default_value_t = 0
    )]
    pub password_hash_concurrency: usize,

    /// Milliseconds a password check waits for a free hashing slot before it gets 503.
    #[arg(
        long,
        env = "SECURECHAT_PASSWORD_HASH_WAIT_MS",
        default_value_t = 2000,
        hide = true
    )]
    pub password_hash_wait_ms: u64,

    /// Reverse proxies whose `X-Forwarded-For` names the client (comma-separated addresses or
    /// CIDR ranges, e.g. `127.0.0.1,10.0.0.0/8`). The per-IP rate limits then count each
    /// client by the right-most address in that header that is not a trusted proxy; requests
    /// from any other peer count by the peer's own address and the header is ignored.
    #[arg(
        long,
        env = "SECURECHAT_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_ip_range
    )]
    pub trusted_proxies: Vec<IpRange>,

    /// Turn off the per-IP and per-account rate limits (load tests only; never in production).
    #[arg(
        long,
        env = "SECURECHAT_DISABLE_RATE_LIMITS",
        default_value_t = false,
        hide = true
    )]
    pub disable_rate_limits: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("command", &self.command)
            .field("secret_key_file", &self.secret_key_file)
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("mail_url", &redact_url(&self.mail_url))
            .field("mail_from", &self.mail_from)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("allowed_origins", &self.allowed_origins)
            .field("web_dir", &self.web_dir)
            .field("issuer", &self.issuer)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("secure_cookies", &self.secure_cookies)
            .field("blob_dir", &self.blob_dir)
            .field("attachment_ttl_days", &self.attachment_ttl_days)
            .field("attachment_quota_mib", &self.attachment_quota_mib)
            .field("metrics", &self.metrics)
            .field("ws_heartbeat_secs", &self.ws_heartbeat_secs)
            .field("ws_write_timeout_ms", &self.ws_write_timeout_ms)
            .field("ws_push_queue_kib", &self.ws_push_queue_kib)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("db_wait_secs", &self.db_wait_secs)
            .field("password_hash_concurrency", &self.password_hash_concurrency)
            .field("password_hash_wait_ms", &self.password_hash_wait_ms)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("disable_rate_limits", &self.disable_rate_limits)
            .finish()
    }
}

/// `scheme://user:password@host/…` with the password replaced by `***` (URLs without one
/// unchanged).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// An IP address or a CIDR range of them (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address as its IPv4 address).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => same_prefix(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                same_prefix(u128::from(n), u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, width: u32, prefix: u8) -> bool {
    let host_bits = width.saturating_sub(u32::from(prefix));
    let differing = a ^ b;
    differing.checked_shr(host_bits).unwrap_or(0) == 0
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {width}"))?,
        };
        Ok(Self { network, prefix })
    }
}

fn parse_ip_range(s: &str) -> Result<IpRange, String> {
    s.parse()
}

/// What `securechat-relay` does instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Write a consistent copy of the SQLite database to FILE (a new file), safely while the
    /// relay runs, then exit. PostgreSQL: use `pg_dump`. Attachments are files under the blob
    /// directory: copy them too (docs/deployment.md).
    Backup {
        /// The backup file to create (refused if it exists).
        file: PathBuf,
    },
}

impl Config {
    /// Defaults, as if no flag and no environment variable were given.
    #[must_use]
    pub fn defaults() -> Self {
        Self::parse_from(["securechat-relay"])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Issue #12 item 16: a printed configuration (a log line, a panic) never shows the
    /// passwords of the database and mail URLs.
    #[test]
    fn debug_output_leaves_out_url_passwords() {
        let c = Config::parse_from([
            "securechat-relay",
            "--database-url",
            "postgres://relay:db-pw-7f3a@127.0.0.1/chat",
            "--mail-url",
            "smtps://relay:mail-pw-91c2@mail.example.org:465",
        ]);
        let printed = format!("{c:?}");
        assert!(printed.contains("127.0.0.1/chat"), "{printed}");
        assert!(printed.contains("mail.example.org"), "{printed}");
        for secret in ["db-pw-7f3a", "mail-pw-91c2"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    fn range(s: &str) -> IpRange {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        assert!(range("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range(" 127.0.0.1 ").contains(ip("127.0.0.1")));
        assert!(!range("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(range("0.0.0.0/0").contains(ip("203.0.113.7")));
        assert!(!range("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(range("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!range("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(range("::/0").contains(ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "example.org",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_come_from_the_environment_format() {
        let c = Config::parse_from([
            "securechat-relay",
            "--trusted-proxies",
            "127.0.0.1, fd00::/8",
        ]);
        assert_eq!(
            c.trusted_proxies,
            vec![range("127.0.0.1"), range("fd00::/8")]
        );
        assert!(Config::defaults().trusted_proxies.is_empty());
        assert!(Config::try_parse_from(["securechat-relay", "--trusted-proxies", "nope"]).is_err());
    }
}
