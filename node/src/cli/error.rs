//! How a failed command reaches the user: its exit status, chosen from the error's type
//! (never its text), and its message (one `error: ...` line, or one JSON object under
//! `--json`). Commands raise [`CliError`] for failures of their own; errors of the API
//! client and the data directory are classified here too.
//!
//! Exit statuses: 0 success; [`EXIT_FAILED`] the operation failed or was refused (declined,
//! invalid bundle, an error answered by the node, nothing found); [`EXIT_USAGE`] usage or
//! configuration error (and local I/O errors); [`EXIT_UNREACHABLE`] the node cannot be reached;
//! [`EXIT_INTERRUPTED`] Ctrl-C while following a hire (the hire goes on).

use serde_json::json;
use souk_node::api::client::ClientError;
use souk_node::config::ConfigError;
use souk_node::data_dir::DataDirError;

/// The operation failed or was refused.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Bad usage or configuration, unreadable local files.
pub(crate) const EXIT_USAGE: u8 = 2;
/// The node's API cannot be reached (not running, or not answering).
pub(crate) const EXIT_UNREACHABLE: u8 = 3;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A failure raised by a command itself, with the exit status it means.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The operation failed or was refused (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The command line is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The node cannot be reached (exit 3).
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => EXIT_FAILED,
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Unreachable(_) => EXIT_UNREACHABLE,
        }
    }
}

/// `Err(CliError::Failed(..))` from a format string.
macro_rules! failed {
    ($($arg:tt)*) => {
        ::anyhow::Error::new($crate::cli::error::CliError::Failed(format!($($arg)*)))
    };
}

/// `Err(CliError::Usage(..))` from a format string.
macro_rules! usage {
    ($($arg:tt)*) => {
        ::anyhow::Error::new($crate::cli::error::CliError::Usage(format!($($arg)*)))
    };
}

pub(crate) use {failed, usage};

/// The exit status of a failed command: the first classified error in its chain (a
/// command's own [`CliError`], the API client's error, a data directory or config error);
/// anything else is a local error (2).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e {
                _ if e.is_unreachable() => EXIT_UNREACHABLE,
                ClientError::Api { .. } => EXIT_FAILED,
                _ => EXIT_USAGE,
            };
        }
        if cause.is::<DataDirError>() || cause.is::<ConfigError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_USAGE
}

/// Prints a failed command's error on stderr: `error: what failed: because ...` on one line,
/// or under `--json` one object `{"error": ..., "code": EXIT}` (plus the node's machine
/// `api_code` and, for declines, `decline_reason`, when the node answered the error).
pub(crate) fn report(err: &anyhow::Error, json: bool) -> u8 {
    let code = exit_code(err);
    // `{:#}` prints the whole context chain on one line: "what failed: because ...".
    let message = format!("{err:#}");
    if json {
        let mut obj = json!({ "error": message, "code": code });
        if let Some(ClientError::Api { body, .. }) =
            err.chain().find_map(|e| e.downcast_ref::<ClientError>())
        {
            if !body.code.is_empty() {
                obj["api_code"] = json!(body.code);
            }
            if let Some(r) = &body.decline_reason {
                obj["decline_reason"] = json!(r);
            }
            if let Some(id) = &body.current_manifest {
                obj["current_manifest"] = json!(id);
            }
        }
        eprintln!("{obj}");
    } else {
        eprintln!("error: {message}");
        if let Some(ClientError::Api { body, .. }) =
            err.chain().find_map(|e| e.downcast_ref::<ClientError>())
            && let Some(id) = &body.current_manifest
        {
            eprintln!("the agent has changed since: its current manifest is {id}");
        }
    }
    code
}

/// Prints a command-line parsing error (clap's) in the `--json` form, and returns its status.
pub(crate) fn report_usage_json(err: &clap::Error) -> u8 {
    let text = err.to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid command line");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("{}", json!({ "error": message, "code": EXIT_USAGE }));
    EXIT_USAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_codes_follow_the_error_type_through_context() {
        let refused: anyhow::Result<()> = Err(failed!("declined"));
        let e = refused.context("cannot hire").err();
        assert_eq!(e.as_ref().map(exit_code), Some(EXIT_FAILED));
        assert_eq!(exit_code(&usage!("bad flag")), EXIT_USAGE);
        assert_eq!(
            exit_code(&anyhow::Error::new(CliError::Unreachable("x".into()))),
            EXIT_UNREACHABLE
        );
        let down = anyhow::Error::new(ClientError::NotRunning("/d".into())).context("search");
        assert_eq!(exit_code(&down), EXIT_UNREACHABLE);
        let api = ClientError::Api {
            status: 422,
            body: Box::new(souk_node::api::ApiError {
                error: "declined (price): too cheap".into(),
                code: "declined".into(),
                provider_code: None,
                decline_reason: Some("price".into()),
                current_manifest: None,
            }),
        };
        assert_eq!(exit_code(&anyhow::Error::new(api)), EXIT_FAILED);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), EXIT_USAGE);
    }
}
