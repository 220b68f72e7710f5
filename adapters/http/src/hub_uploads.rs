//! `POST /upload/shared`: a file into the shared hub, through the streaming upload pipeline
//! of [`crate::uploads`].

use crate::server::HttpState;
use crate::uploads::{authenticate, receive, FileStart, KeyFn, UploadError, UploadSpec};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use ecto_core::model::shared_file_key;
use ecto_core::ports::BlobKey;
use ecto_core::usecases::{files, hub};
use ecto_core::CoreError;
use std::collections::HashMap;
use uuid::Uuid;

/// The folder of an upload: absent or empty is the root.
fn parse_folder(raw: Option<&str>) -> Result<Option<Uuid>, UploadError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => ecto_core::parse_id(s)
            .map(Some)
            .ok_or_else(|| UploadError::new(StatusCode::BAD_REQUEST, "folder_id must be a UUID")),
    }
}

async fn shared(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<HttpState>,
    query: HashMap<String, String>,
) -> Result<HttpResponse, UploadError> {
    let up = authenticate(&req, &state).await?;
    let svc = state.services.clone();
    // A folder given in the query string is checked before the body is read; otherwise the
    // `folder_id` form field (sent before the file part) is checked when the file starts.
    let query_folder = match query.get("folder_id") {
        Some(raw) => {
            let folder = parse_folder(Some(raw))?;
            hub::uploads::authorize_shared_upload(&svc, &up.server, &up.caller, folder).await?;
            Some(folder)
        }
        None => None,
    };
    let per_file = files::upload_limit(&svc, &up.server).await?;
    let space = hub::quota::shared_space_left(&svc, &up.server).await?;
    if space == 0 {
        return Err(CoreError::shared_quota_exceeded().into());
    }
    let (limit, too_large) = if space < per_file {
        (space, "Shared storage quota exceeded")
    } else {
        (per_file, "File too large")
    };
    let quota_left = files::quota_left(&svc, &up.server).await?;
    let id = Uuid::now_v7();
    let folder_cell = std::rc::Rc::new(std::cell::Cell::new(query_folder));
    let key: KeyFn = {
        let (svc, up, folder_cell) = (svc.clone(), up.clone(), folder_cell.clone());
        Box::new(move |start: FileStart| {
            Box::pin(async move {
                let folder = match folder_cell.get() {
                    Some(f) => f,
                    None => {
                        let f = parse_folder(start.fields.get("folder_id").map(String::as_str))?;
                        hub::uploads::authorize_shared_upload(&svc, &up.server, &up.caller, f)
                            .await?;
                        folder_cell.set(Some(f));
                        f
                    }
                };
                Ok(BlobKey::new(&shared_file_key(up.server.id, folder, id))?)
            })
        })
    };
    let spec = UploadSpec {
        limit,
        too_large: too_large.into(),
        image_only: false,
        quota_left,
        key,
    };
    let received = receive(&req, payload, &state, spec).await?;
    let upload = hub::uploads::StoredSharedFile {
        id,
        folder_id: folder_cell.get().flatten(),
        filename: received.filename.clone(),
        key: received.key.clone(),
        content_type: received.content_type.clone(),
        size: received.size,
    };
    match hub::uploads::record_shared_file(&svc, &up.server, &up.caller, upload).await {
        Ok(file) => Ok(HttpResponse::Ok().json(file)),
        Err(e) => {
            received.discard(&svc).await;
            Err(e.into())
        }
    }
}

/// `POST /upload/shared`: a file for the shared hub, optionally into the folder `folder_id`
/// (form field before the file part, or `?folder_id=`).
pub async fn upload_shared(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<HttpState>,
) -> HttpResponse {
    shared(req, payload, state, query.into_inner())
        .await
        .unwrap_or_else(|e| e.response())
}
