//! Proof photos (a delivered wish's 圆梦 photo): a photo attached to the
//! command itself, or the photo of the message the command replies to.
//!
//! A reply finds its photo as `service::files` describes (the platform's
//! quoted message, else the photos remembered per chat).

use crate::chat::{AttachmentKind, Incoming};
use crate::store::{Conn, StoreError};

use super::files;

/// Where a command's proof photo stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The photo's platform file reference.
    Photo(String),
    /// The command replies to a message that carries no (known) photo.
    ReplyWithoutPhoto,
    /// No photo attached and no reply.
    Missing,
}

/// The proof photo of `msg`: attached to it, else carried by the message it
/// replies to (as the platform handed it over, else as remembered).
pub async fn resolve(conn: &mut Conn, msg: &Incoming) -> Result<Proof, StoreError> {
    if let Some(photo) = files::first(&msg.attachments, AttachmentKind::Photo) {
        return Ok(Proof::Photo(photo.file_ref.clone()));
    }
    Ok(
        match files::replied_to(conn, msg, AttachmentKind::Photo).await? {
            files::Replied::File(photo) => Proof::Photo(photo.file_ref),
            files::Replied::Nothing => Proof::Missing,
            files::Replied::NoFile => Proof::ReplyWithoutPhoto,
        },
    )
}
