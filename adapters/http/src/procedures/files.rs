//! The `files` router: `files.upload` (metadata only) and `files.getUrl`.

use crate::trpc::{Access, Registry};
use crate::validate::{length, range, Id, Validate};
use crate::ApiError;
use ecto_core::usecases::{files, serving};
use serde::Deserialize;

#[derive(Deserialize)]
struct Upload {
    channel_id: Id,
    filename: String,
    content_type: String,
    size_bytes: i64,
}
impl Validate for Upload {
    fn validate(&self) -> Result<(), ApiError> {
        length("filename", &self.filename, 1, 255)?;
        length("content_type", &self.content_type, 1, 100)?;
        range("size_bytes", self.size_bytes, 1, i64::from(i32::MAX))
    }
}

#[derive(Deserialize)]
struct GetUrl {
    attachment_id: Id,
}
impl Validate for GetUrl {}

pub fn register(r: &mut Registry) {
    r.mutation(
        "files.upload",
        Access::Protected,
        |ctx, u: Upload| async move {
            let input = files::MetadataUpload {
                channel_id: u.channel_id.into(),
                filename: u.filename,
                content_type: u.content_type,
                size_bytes: u.size_bytes,
            };
            files::upload_metadata(&ctx.svc, &ctx.server, ctx.caller(), input).await
        },
    );
    r.query(
        "files.getUrl",
        Access::Protected,
        |ctx, g: GetUrl| async move {
            serving::get_url(&ctx.svc, &ctx.server, ctx.caller(), g.attachment_id.into()).await
        },
    );
}
