//! `souk config show|check`: the node's effective configuration (config.toml over the
//! defaults of its mode), and a check that names every problem it can find before
//! `souk node run` would trip on it. Never writes the file.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;
use souk_node::config::Config;
use souk_node::data_dir::CONFIG_FILE;

use super::Ctx;
use super::error::usage;

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration: config.toml, with every key it leaves out at the
    /// default of its mode.
    Show,
    /// Check config.toml: syntax, unknown keys, ranges, addresses, certificate files.
    /// Exit status 2 when it is invalid.
    Check,
}

pub(crate) fn run(ctx: &Ctx, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let path = ctx.dir.path(CONFIG_FILE);
    if !ctx.dir.is_initialized() && !path.exists() {
        return Err(usage!(
            "{} is not initialized: run `{}` first",
            ctx.dir.root().display(),
            ctx.cmd("init")
        ));
    }
    let exists = path.exists();
    let config = if exists {
        Config::load(&path)?
    } else {
        Config::default()
    };
    match cmd {
        ConfigCommand::Show => {
            if ctx.json {
                super::print_json(&json!({
                    "file": path.display().to_string(),
                    "file_exists": exists,
                    "config": config,
                }))?;
            } else {
                if exists {
                    out!(
                        "# {} (keys it leaves out at their defaults)",
                        path.display()
                    );
                } else {
                    out!(
                        "# {} does not exist: the defaults of a full node",
                        path.display()
                    );
                }
                out!("{}", toml::to_string(&config)?.trim_end());
            }
        }
        ConfigCommand::Check => {
            // What `node run` reads beyond the file itself: the extra root certificates.
            config.egress_settings()?;
            if ctx.json {
                super::print_json(&json!({
                    "file": path.display().to_string(),
                    "file_exists": exists,
                    "valid": true,
                }))?;
            } else if exists {
                out!("{}: valid", path.display());
            } else {
                out!(
                    "{}: missing; the defaults of a full node apply",
                    path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
