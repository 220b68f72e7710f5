//! The one place where core errors become tRPC error envelopes (reference §2.2).

use ecto_core::{CoreError, EctoCode, ErrorKind};
use serde_json::{json, Value};

/// tRPC error codes with their JSON-RPC numbers and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrpcCode {
    ParseError,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotSupported,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    /// The request body came too slowly (408).
    Timeout,
    InternalServerError,
    ServiceUnavailable,
}

impl TrpcCode {
    pub fn key(self) -> &'static str {
        match self {
            Self::ParseError => "PARSE_ERROR",
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            Self::Conflict => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::Timeout => "TIMEOUT",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }
    pub fn json_rpc(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::BadRequest => -32600,
            Self::Unauthorized => -32001,
            Self::Forbidden => -32003,
            Self::NotFound => -32004,
            Self::MethodNotSupported => -32005,
            Self::Conflict => -32009,
            Self::PayloadTooLarge => -32013,
            Self::UnsupportedMediaType => -32015,
            Self::TooManyRequests => -32029,
            Self::Timeout => -32008,
            Self::InternalServerError | Self::ServiceUnavailable => -32603,
        }
    }
    pub fn http_status(self) -> u16 {
        match self {
            Self::ParseError | Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotSupported => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Timeout => 408,
            Self::InternalServerError => 500,
            Self::ServiceUnavailable => 503,
        }
    }
}

/// An error on its way to the wire.
#[derive(Debug)]
pub struct ApiError {
    pub code: TrpcCode,
    pub message: String,
    pub ecto: Option<EctoCode>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: TrpcCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            ecto: None,
            retry_after: None,
        }
    }

    /// The tRPC error envelope for the procedure at `path`.
    pub fn envelope(&self, path: &str) -> Value {
        let mut data = json!({
            "code": self.code.key(),
            "httpStatus": self.code.http_status(),
            "path": path,
            "ecto_code": self.ecto.map(EctoCode::number),
            "ecto_error": self.ecto.map(EctoCode::identifier),
        });
        if let Some(secs) = self.retry_after {
            data["retry_after"] = json!(secs);
        }
        json!({ "error": { "message": self.message, "code": self.code.json_rpc(), "data": data } })
    }
}

impl ApiError {
    /// The answer of a plain (non-tRPC) route: `{"error": message}` with this error's status,
    /// plus `retry_after` and a `Retry-After` header when the call was limited.
    pub fn plain_response(&self) -> actix_web::HttpResponse {
        let status = actix_web::http::StatusCode::from_u16(self.code.http_status())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = actix_web::HttpResponse::build(status);
        let mut resp = match self.retry_after {
            Some(secs) => {
                resp.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
                resp.json(json!({ "error": self.message, "retry_after": secs }))
            }
            None => resp.json(json!({ "error": self.message })),
        };
        crate::observe::describe(
            &mut resp,
            None,
            self.ecto.map(EctoCode::number).into_iter().collect(),
        );
        resp
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = match e.kind {
            ErrorKind::BadRequest => TrpcCode::BadRequest,
            ErrorKind::Unauthorized => TrpcCode::Unauthorized,
            ErrorKind::Forbidden => TrpcCode::Forbidden,
            ErrorKind::NotFound => TrpcCode::NotFound,
            ErrorKind::Conflict => TrpcCode::Conflict,
            ErrorKind::TooManyRequests => TrpcCode::TooManyRequests,
            ErrorKind::PayloadTooLarge => TrpcCode::PayloadTooLarge,
            ErrorKind::Internal => TrpcCode::InternalServerError,
            ErrorKind::Unavailable => TrpcCode::ServiceUnavailable,
        };
        if e.is_fault() {
            // The cause chain goes to the log, on the request's failure line (each cause
            // once: `CoreError`'s Display would repeat the first); the caller gets a generic
            // message.
            let mut chain = e.message.clone();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                chain.push_str(&format!(" <- {s}"));
                src = s.source();
            }
            crate::observe::internal_cause(chain);
        }
        Self {
            code,
            message: e.message,
            ecto: e.ecto,
            retry_after: e.retry_after,
        }
    }
}
