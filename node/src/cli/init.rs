//! `souk init [--light]`: creates the data directory.

use std::process::ExitCode;

use clap::Args;
use souk_node::config::Mode;
use souk_node::data_dir::DB_FILE;

use super::Ctx;

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Configure a light node (a client: small, no index).
    #[arg(long)]
    light: bool,
}

pub(crate) fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<ExitCode> {
    let dir = &ctx.dir;
    let mode = if args.light { Mode::Light } else { Mode::Full };
    let key = dir.init(mode)?;
    let id = key.id();
    // Create the database now, so a broken disk shows up at init, not at first run.
    let cache = (souk_node::config::Config::for_mode(mode).cache_size_mib as usize) << 20;
    souk_store::Store::open(
        &dir.path(DB_FILE),
        &souk_store::StoreConfig { cache_size: cache },
    )
    .map_err(|e| anyhow::anyhow!("cannot create the database: {e}"))?;
    if ctx.json {
        super::print_json(&serde_json::json!({
            "node_id": id.to_string(),
            "peer_id": id.peer_id_text(),
            "data_dir": dir.root().display().to_string(),
            "mode": if args.light { "light" } else { "full" },
        }))?;
    } else {
        out!("{id}");
        eprintln!(
            "initialized a {} node in {} (peer id {})",
            if args.light { "light" } else { "full" },
            dir.root().display(),
            id.peer_id_text()
        );
        eprintln!("next: {}", ctx.cmd("node run"));
    }
    Ok(ExitCode::SUCCESS)
}
