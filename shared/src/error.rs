//! One error type for the whole product. Each error carries a protocol code
//! (docs/PROTOCOL.md, "Error codes"), which fixes its seed message, whether a client may
//! recover by retrying, and the HTTP status a REST route answers with.

use serde::Serialize;

/// The protocol's error codes. 5xxx are the seed (Beefree) codes, 4xxx are ours for
/// client mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    Unexpected,
    OpenFailed,
    SessionNotFound,
    SyncFailed,
    ConnectionLost,
    PlanWithoutCoediting,
    Unavailable,
    Malformed,
    InvalidPatch,
    Unauthorized,
    Conflict,
    TooLarge,
    Locked,
    LimitReached,
    TokenNotValid,
}

impl Code {
    pub fn number(self) -> u16 {
        match self {
            Code::Unexpected => 5001,
            Code::OpenFailed => 5100,
            Code::SessionNotFound => 5150,
            Code::SyncFailed => 5200,
            Code::ConnectionLost => 5300,
            Code::PlanWithoutCoediting => 5500,
            Code::Unavailable => 5600,
            Code::Malformed => 4000,
            Code::InvalidPatch => 4001,
            Code::Conflict => 4009,
            Code::Unauthorized => 4010,
            Code::TooLarge => 4013,
            Code::Locked => 4023,
            Code::LimitReached => 4029,
            Code::TokenNotValid => 4030,
        }
    }

    /// The message clients show; the seed codes use Beefree's text verbatim.
    pub fn message(self) -> &'static str {
        match self {
            Code::Unexpected => "Unexpected error occurred during co-editing.",
            Code::OpenFailed => "Failed to open co-editing session.",
            Code::SessionNotFound => "Session does not exist.",
            Code::SyncFailed => "Failed to synchronize changes.",
            Code::ConnectionLost => "Connection to the synchronization server was lost.",
            Code::PlanWithoutCoediting => "Co-editing is not supported for your current plan.",
            Code::Unavailable => "Co-editing server is not available.",
            Code::Malformed => "Malformed message.",
            Code::InvalidPatch => "Invalid patch.",
            Code::Conflict => "The change conflicts with a newer change.",
            Code::Unauthorized => "Missing or invalid credential.",
            Code::TooLarge => "Message too large.",
            Code::Locked => "Element locked by another user.",
            Code::LimitReached => "Co-editor limit reached.",
            Code::TokenNotValid => "Token not valid for this session.",
        }
    }

    pub fn recoverable(self) -> bool {
        matches!(
            self,
            Code::Unexpected | Code::OpenFailed | Code::ConnectionLost
        )
    }

    pub fn http_status(self) -> u16 {
        match self {
            Code::Malformed | Code::InvalidPatch => 400,
            Code::Unauthorized => 401,
            Code::PlanWithoutCoediting | Code::TokenNotValid => 403,
            Code::SessionNotFound => 404,
            Code::Conflict | Code::Locked => 409,
            Code::TooLarge => 413,
            Code::LimitReached => 429,
            Code::Unexpected | Code::SyncFailed | Code::ConnectionLost => 500,
            Code::OpenFailed | Code::Unavailable => 503,
        }
    }
}

/// An error with its protocol code and a detail that says what and where.
/// The detail is shown to the caller: it never contains secrets or another
/// tenant's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({}): {detail}", code.message(), code.number())]
pub struct Error {
    pub code: Code,
    pub detail: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest detail an error carries: details quote what a client sent (a path,
/// a field), which must not make answers and logs as long as the request. A longer
/// one loses its middle.
pub const MAX_DETAIL_BYTES: usize = 300;

impl Error {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if detail.len() > MAX_DETAIL_BYTES {
            // Where comes first and why last (`<path>: <reason>`): keep both ends.
            let keep = (MAX_DETAIL_BYTES - '…'.len_utf8()) / 2;
            let mut head = keep;
            while !detail.is_char_boundary(head) {
                head -= 1;
            }
            let mut tail = detail.len() - keep;
            while !detail.is_char_boundary(tail) {
                tail += 1;
            }
            detail = format!("{}…{}", &detail[..head], &detail[tail..]);
        }
        Error { code, detail }
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Error::new(Code::Malformed, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Error::new(Code::TooLarge, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Error::new(Code::Unauthorized, detail)
    }

    /// Unknown, expired, erased and foreign sessions all answer with this same
    /// error, so a caller cannot tell them apart.
    pub fn session_not_found() -> Self {
        Error::new(
            Code::SessionNotFound,
            "no session with this id is open for this caller",
        )
    }

    pub fn unexpected(detail: impl Into<String>) -> Self {
        Error::new(Code::Unexpected, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Error::new(Code::Unavailable, detail)
    }

    /// The REST error body: `{code, message, detail}`.
    pub fn to_rest_body(&self) -> RestError<'_> {
        RestError {
            code: self.code.number(),
            message: self.code.message(),
            detail: &self.detail,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RestError<'a> {
    pub code: u16,
    pub message: &'static str,
    pub detail: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_codes_keep_their_numbers_and_messages() {
        assert_eq!(Code::SessionNotFound.number(), 5150);
        assert_eq!(Code::SessionNotFound.message(), "Session does not exist.");
        assert_eq!(Code::PlanWithoutCoediting.number(), 5500);
        assert!(Code::OpenFailed.recoverable());
        assert!(!Code::SessionNotFound.recoverable());
        assert_eq!(Code::SessionNotFound.http_status(), 404);
        assert_eq!(Code::TooLarge.http_status(), 413);
    }

    #[test]
    fn details_are_cut_in_the_middle_keeping_where_and_why() {
        let long = format!("/page/{} does not exist", "é".repeat(1000));
        let e = Error::new(Code::InvalidPatch, long.clone());
        assert!(e.detail.len() <= MAX_DETAIL_BYTES, "{}", e.detail.len());
        let (head, tail) = e.detail.split_once('…').unwrap();
        assert!(long.starts_with(head) && head.starts_with("/page/"));
        assert!(long.ends_with(tail) && tail.ends_with(" does not exist"));
        assert_eq!(Error::malformed("short").detail, "short");
    }

    #[test]
    fn rest_body_has_code_message_detail() {
        let e = Error::malformed("userid: expected a string");
        let body = serde_json::to_value(e.to_rest_body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": 4000, "message": "Malformed message.", "detail": "userid: expected a string"})
        );
    }
}
