//! `souk mcp`: serves the Model Context Protocol on stdin/stdout for an LLM host, driving the
//! running node ([`souk_node::mcp`]). Configure a host with the command and its data dir,
//! e.g. `{"command": "souk", "args": ["--data-dir", "/home/me/.souk", "mcp"]}`.

use std::process::ExitCode;

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub(crate) struct McpArgs {}

pub(crate) fn run(ctx: &Ctx, _args: &McpArgs) -> anyhow::Result<ExitCode> {
    // The node must be running: say so now, on stderr, rather than fail every tool call.
    let client = ctx.connect()?;
    // A stale address file (a node that crashed) must fail here too, not on every call.
    let _: serde_json::Value = client.get("/v1/info")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime.block_on(souk_node::mcp::serve_stdio(client));
    // The host closed the session: do not wait for API calls still in flight.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}
