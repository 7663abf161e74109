//! One error type for the core; the glue maps it to Python exceptions in one place.

use std::fmt;

#[derive(Debug)]
pub enum CoreError {
    /// Bad client input: the field it concerns and a message for the user.
    Invalid { field: String, message: String },
    /// Storage (LMDB, WAL, segment files) failed.
    Storage(String),
    /// Configuration given at startup is unusable.
    Config(String),
    /// A service shared by several nodes (the Redis session store) cannot serve now: the request
    /// stored nothing and may be retried.
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;

impl CoreError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn storage(e: impl fmt::Display) -> Self {
        CoreError::Storage(e.to_string())
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Invalid { field, message } => write!(f, "{field}: {message}"),
            CoreError::Storage(m) => write!(f, "storage error: {m}"),
            CoreError::Config(m) => write!(f, "configuration error: {m}"),
            CoreError::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

impl std::error::Error for CoreError {}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}

impl From<heed::Error> for CoreError {
    fn from(e: heed::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}
