//! Mail: the email copy of each notification, handed to a [`MailSender`]. The default
//! sender writes `.eml` files to a spool directory; a real transfer agent is a sender of its
//! own behind the same trait.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One email, ready to be handed to a [`MailSender`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// The notification it copies; also names the spool file.
    pub notification_id: Uuid,
    /// Recipient address.
    pub to: String,
    /// Recipient name.
    pub to_name: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// When the notification was created.
    pub date: DateTime<Utc>,
}

/// Delivers the email copy of a notification. Implementations must tolerate being called
/// twice for one notification (delivery is at least once).
#[async_trait]
pub trait MailSender: Send + Sync + 'static {
    /// Sends one message.
    async fn send(&self, message: &MailMessage) -> anyhow::Result<()>;
}

/// The default [`MailSender`]: writes each message as an RFC 5322 (`.eml`) file named
/// `<notification_id>.eml` in a spool directory that a mail transfer agent, or a developer,
/// can pick up.
#[derive(Debug, Clone)]
pub struct SpoolMailer {
    dir: PathBuf,
    from: String,
}

impl SpoolMailer {
    /// A spool in `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            from: "Ordo <no-reply@ordo.invalid>".into(),
        }
    }

    /// The directory messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The message as the file's text.
    pub fn render(&self, message: &MailMessage) -> String {
        // Header values come from our own templates and the users table; line breaks are
        // removed so no value can inject a header.
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        format!(
            "From: {}\r\nTo: {} <{}>\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@ordo.invalid>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            self.from,
            clean(&message.to_name),
            clean(&message.to),
            clean(&message.subject),
            message.date.to_rfc2822(),
            message.notification_id,
            message.body.replace('\n', "\r\n"),
        )
    }
}

#[async_trait]
impl MailSender for SpoolMailer {
    async fn send(&self, message: &MailMessage) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let name = format!("{}.eml", message.notification_id);
        // Written beside and renamed, so a reader never sees half a message.
        let partial = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&partial, self.render(message)).await?;
        tokio::fs::rename(&partial, self.dir.join(name)).await?;
        Ok(())
    }
}
