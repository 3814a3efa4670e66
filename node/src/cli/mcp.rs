//! `souk mcp`: serves the Model Context Protocol for an LLM host, driving the running node
//! ([`souk_node::mcp`]): on stdin/stdout (configure a host with the command and its data dir,
//! e.g. `{"command": "souk", "args": ["--data-dir", "/home/me/.souk", "mcp"]}`), or with
//! `--http ADDR` over Streamable HTTP at `http://ADDR/mcp` with a bearer token.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Ctx, print_json};

#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    /// Serve Streamable HTTP on this loopback address (port 0 picks one) instead of stdio;
    /// clients send `Authorization: Bearer <DATA_DIR/mcp-token>`.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

pub(crate) fn run(ctx: &Ctx, args: &McpArgs) -> anyhow::Result<ExitCode> {
    // The node must be running: say so now, on stderr, rather than fail every tool call.
    let client = ctx.connect()?;
    // A stale address file (a node that crashed) must fail here too, not on every call.
    let _: serde_json::Value = client.get("/v1/info")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = match args.http {
        None => runtime
            .block_on(souk_node::mcp::serve_stdio(client))
            .map_err(anyhow::Error::from),
        Some(listen) => {
            let token = ctx.dir.mcp_token()?;
            let token_file = ctx.dir.path(souk_node::data_dir::MCP_TOKEN_FILE);
            let json = ctx.json;
            runtime.block_on(async {
                let stop = CancellationToken::new();
                super::a2a::stop_on_signal(stop.clone());
                souk_node::mcp::serve_http(client, listen, token, stop, |bound| {
                    let url = format!("http://{bound}{}", souk_node::mcp::HTTP_PATH);
                    if json {
                        let _ = print_json(&json!({
                            "url": url,
                            "token_file": token_file.display().to_string(),
                        }));
                    } else {
                        out!("MCP (Streamable HTTP) on {url}");
                        out!(
                            "  clients send: Authorization: Bearer $(cat {})",
                            super::ctx::shell_quote(&token_file)
                        );
                        out!("Ctrl-C stops it (hires go on in the node).");
                    }
                })
                .await
                .map_err(anyhow::Error::from)
            })
        }
    };
    // The host closed the session: do not wait for API calls still in flight.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}
