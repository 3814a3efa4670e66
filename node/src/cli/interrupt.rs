//! Ctrl-C while the CLI follows a hire (`hire --wait`, `hire watch`): following stops, the
//! hire does not. A watcher thread waits for SIGINT; when it comes, it prints what goes on
//! and how to watch or cancel it, and ends the process with status 130. Never cancels
//! anything itself.

use std::thread::JoinHandle;

use serde_json::json;
use signal_hook::consts::SIGINT;
use signal_hook::iterator::{Handle, Signals};

use super::error::EXIT_INTERRUPTED;

/// While alive, Ctrl-C prints `message` (or, under `--json`, `{"error", "code": 130, ...}`
/// with `details`) on stderr and exits with status 130. Dropping it restores the default.
pub(crate) struct OnInterrupt {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl OnInterrupt {
    /// Installs the handler. `message` is the human text; `details` are extra JSON members.
    pub(crate) fn install(
        message: String,
        details: serde_json::Map<String, serde_json::Value>,
        json: bool,
    ) -> std::io::Result<Self> {
        let mut signals = Signals::new([SIGINT])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    if json {
                        let mut obj = json!({ "error": message, "code": EXIT_INTERRUPTED });
                        if let Some(map) = obj.as_object_mut() {
                            map.extend(details);
                        }
                        eprintln!("{obj}");
                    } else {
                        // Start on a fresh line: the terminal shows `^C` where the cursor was.
                        eprintln!("\n{message}");
                    }
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
            })?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
