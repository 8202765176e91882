//! Files people post in chats: remembered for later commands, and fetched
//! for imports before any transaction begins.
//!
//! Remembering: every incoming message's first photo and first document go
//! to `recent_attachments` (see `store::attachments`), in the transaction of
//! that message. A OneBot `reply` segment carries only the quoted message
//! id, and a QQ file has no caption, so a command that replies to a file
//! (`/done 12` on a photo, `/wishes import 2026圆梦` on a spreadsheet), or a
//! command sent right after one, finds it there. Rather than asking the
//! implementation with `get_msg` (a round trip; and NapCat, Lagrange and
//! go-cqhttp each keep differently sized message caches), this works the
//! same on every platform, the console included, and is deterministic to
//! test. Its limit: a file posted before the bot was in the group, or older
//! than [`KEEP_DAYS`], is not known, and the user is asked to send it again.
//!
//! Fetching: a document to import is downloaded by the platform's
//! [`FileFetcher`](crate::service::FileFetcher) *before* the update's
//! transaction (see `Engine::handle` and `Engine::submit`), so no download
//! holds a database transaction open, or, on SQLite, the one write lock
//! that every claim waits for.

use chrono::{DateTime, Duration, Utc};

use crate::chat::files::FetchError;
use crate::chat::{Attachment, AttachmentKind, Incoming};
use crate::service::Env;
use crate::store::{self, Conn, StoreError, attachments, people};
use crate::table::{Table, TableError};

/// Files are remembered this long for replies.
pub const KEEP_DAYS: i64 = 30;

/// How long a download may take. Telegram's long polling waits for an
/// import before it asks for more updates, so this bounds that pause.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How recent a document must be to be imported by a command that neither
/// carries nor replies to it (the sender's latest in the chat).
pub const LATEST_DOCUMENT_MINUTES: i64 = 10;

/// The first attachment of `kind`.
pub fn first(attachments: &[Attachment], kind: AttachmentKind) -> Option<&Attachment> {
    attachments.iter().find(|a| a.kind == kind)
}

/// Remember the photo and the document `msg` carries, if any, for later
/// commands that reply to it or follow it.
pub async fn remember(conn: &mut Conn, msg: &Incoming) -> Result<(), StoreError> {
    let files: Vec<&Attachment> = [AttachmentKind::Photo, AttachmentKind::Document]
        .into_iter()
        .filter_map(|kind| first(&msg.attachments, kind))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    // A message without an id of its own (a QQ group-upload notice) is
    // remembered by its update id: found as the sender's latest file, not
    // by a reply.
    let id = msg.message_id.as_deref().unwrap_or(&msg.update_id);
    attachments::remember(
        conn,
        msg.platform,
        &msg.chat_id,
        id,
        &msg.sender_id,
        &files,
        store::ms(msg.at),
    )
    .await
}

/// What the message a command replies to carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replied {
    /// The command replies to nothing.
    Nothing,
    File(Attachment),
    /// It replies to a message without a (known) file of the kind asked.
    NoFile,
}

/// The file of `kind` that `msg` replies to: as the platform handed it
/// over, else as remembered.
pub async fn replied_to(
    conn: &mut Conn,
    msg: &Incoming,
    kind: AttachmentKind,
) -> Result<Replied, StoreError> {
    let Some(reply) = msg.reply_to.as_ref() else {
        return Ok(Replied::Nothing);
    };
    if let Some(file) = first(&reply.attachments, kind) {
        return Ok(Replied::File(file.clone()));
    }
    Ok(
        match attachments::find(conn, msg.platform, &msg.chat_id, &reply.message_id, kind).await? {
            Some(file) => Replied::File(file),
            None => Replied::NoFile,
        },
    )
}

/// Forget files older than [`KEEP_DAYS`] (the scheduler's slow sweep).
pub async fn prune(conn: &mut Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    attachments::prune(conn, store::ms(now - Duration::days(KEEP_DAYS))).await
}

/// A document fetched and read for an import, or why there is none.
#[derive(Debug, Clone)]
pub enum Fetched {
    Table(Table),
    /// The command neither carries nor replies to a document, and the
    /// sender posted none here in the last minutes.
    Missing,
    /// It replies to a message that carries no (known) document.
    ReplyWithoutFile,
    /// This platform's adapter can't download files.
    CannotFetch,
    /// The download failed or was refused (the fetchers refuse files over
    /// `chat::files::MAX_FILE_BYTES`, and peers' paths outside
    /// `onebot.file_dir`).
    Failed(FetchError),
    /// It was downloaded but can't be read as a table (not CSV/XLSX, too
    /// many rows or columns, a zip bomb …).
    Unreadable(TableError),
}

/// The table an import command brought (its `Ctx::document`), or the one
/// reply that says why there is none, from the texts under `prefix`
/// (`need_file`, `reply_without_file`, `cannot_fetch`, `unreadable`).
pub fn document_table<'d>(
    document: Option<&'d Fetched>,
    locale: &str,
    prefix: &str,
) -> Result<&'d Table, String> {
    let text = |key: &str| rust_i18n::t!(format!("{prefix}.{key}"), locale = locale).into_owned();
    let unreadable = |error: String| {
        rust_i18n::t!(
            format!("{prefix}.unreadable"),
            locale = locale,
            error = error
        )
        .into_owned()
    };
    match document.unwrap_or(&Fetched::Missing) {
        Fetched::Table(table) => Ok(table),
        Fetched::Missing => Err(text("need_file")),
        Fetched::ReplyWithoutFile => Err(text("reply_without_file")),
        Fetched::CannotFetch => Err(text("cannot_fetch")),
        Fetched::Failed(e) => Err(unreadable(e.message(locale))),
        Fetched::Unreadable(e) => Err(unreadable(e.message(locale))),
    }
}

/// The document an import command carries itself, or that the message it
/// replies to carries as the platform handed it over (Telegram): known
/// without reading the store.
pub fn carried_document(msg: &Incoming) -> Option<&Attachment> {
    first(&msg.attachments, AttachmentKind::Document).or_else(|| {
        msg.reply_to
            .as_ref()
            .and_then(|r| first(&r.attachments, AttachmentKind::Document))
    })
}

/// The document an import command means, downloaded and read as a table:
/// the one it carries ([`carried_document`]), else the one it replies to as
/// remembered, else the sender's latest in this chat (within
/// [`LATEST_DOCUMENT_MINUTES`]). Reads through a pooled connection;
/// downloads and parses outside any transaction. `None` when the sender is
/// not staff: nothing is downloaded for them and the service refuses as
/// usual.
pub async fn fetch_document(env: &Env, msg: &Incoming) -> Result<Option<Fetched>, StoreError> {
    let mut conn = env.store.conn().await?;
    let staff = env.settings.is_admin(msg.platform, &msg.sender_id)
        || people::find(&mut *conn, msg.platform, &msg.sender_id)
            .await?
            .is_some_and(|p| p.role == crate::domain::Role::Staff);
    if !staff {
        return Ok(None);
    }
    let file = match carried_document(msg) {
        Some(file) => Some(file.clone()),
        None => match replied_to(&mut conn, msg, AttachmentKind::Document).await? {
            Replied::NoFile => return Ok(Some(Fetched::ReplyWithoutFile)),
            Replied::File(file) => Some(file),
            Replied::Nothing => {
                let since = msg.at - Duration::minutes(LATEST_DOCUMENT_MINUTES);
                attachments::latest_from(
                    &mut conn,
                    msg.platform,
                    &msg.chat_id,
                    &msg.sender_id,
                    AttachmentKind::Document,
                    store::ms(since),
                )
                .await?
            }
        },
    };
    drop(conn);
    let Some(file) = file else {
        return Ok(Some(Fetched::Missing));
    };
    let Some(fetcher) = env.file_fetcher(msg.platform) else {
        return Ok(Some(Fetched::CannotFetch));
    };
    let name = file.file_name.unwrap_or(file.file_ref.clone());
    let bytes = match tokio::time::timeout(FETCH_TIMEOUT, fetcher.fetch(&file.file_ref)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Ok(Some(Fetched::Failed(e))),
        Err(_) => return Ok(Some(Fetched::Failed(FetchError::TimedOut(name)))),
    };
    // An XLSX is a zip: reading it is CPU work, kept off the async threads.
    let read = tokio::task::spawn_blocking(move || Table::from_bytes(&name, &bytes)).await;
    Ok(Some(match read {
        Ok(Ok(table)) => Fetched::Table(table),
        Ok(Err(e)) => Fetched::Unreadable(e),
        // Reading panicked: said as a file that can't be read, logged.
        Err(e) => {
            tracing::error!(error = %e, "reading a table panicked");
            Fetched::Unreadable(TableError::Xlsx("internal error".into()))
        }
    }))
}
