//! Outgoing mail through lettre: a local outbox of `.eml` files by default, SMTP when
//! configured. Messages carry one-time codes, so their bodies are never logged.

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;

/// Errors of mail set-up and sending.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail URL is not understood.
    #[error("invalid mail URL: {0}")]
    InvalidUrl(String),
    /// An address is not valid.
    #[error("invalid address: {0}")]
    Address(String),
    /// The transport failed.
    #[error("mail transport: {0}")]
    Transport(String),
}

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sends the relay's e-mails.
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
    from: Mailbox,
    /// Where the file transport writes, if it is the file transport.
    outbox: Option<PathBuf>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Builds the transport named by `url` (see `--mail-url`).
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Address(from.to_owned()))?;
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).map_err(|e| MailError::Transport(e.to_string()))?;
            return Ok(Self {
                transport: Arc::new(Transport::File(AsyncFileTransport::new(&dir))),
                from,
                outbox: Some(dir),
            });
        }
        let transport = if let Some(rest) = url.strip_prefix("smtp+insecure://") {
            let (host, port) = host_port(rest, 25)?;
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(port)
                .build()
        } else if url.starts_with("smtp://") || url.starts_with("smtps://") {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map_err(|e| MailError::InvalidUrl(e.to_string()))?
                .build()
        } else {
            return Err(MailError::InvalidUrl(
                "expected file://, smtp://, smtps:// or smtp+insecure://".into(),
            ));
        };
        Ok(Self {
            transport: Arc::new(Transport::Smtp(transport)),
            from,
            outbox: None,
        })
    }

    /// The outbox folder of the file transport.
    #[must_use]
    pub fn outbox(&self) -> Option<&PathBuf> {
        self.outbox.as_ref()
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| MailError::Address("recipient".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Transport(e.to_string()))?;
        match self.transport.as_ref() {
            Transport::File(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string())),
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(e.to_string())),
        }
    }
}

fn host_port(rest: &str, default_port: u16) -> Result<(String, u16), MailError> {
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse()
                .map_err(|_| MailError::InvalidUrl("port".into()))?;
            Ok((host.to_owned(), port))
        }
        None => Ok((rest.to_owned(), default_port)),
    }
}
