//! `souk a2a serve`: the agents this node can hire, as A2A (Agent2Agent 0.3) agents on a
//! loopback HTTP address ([`souk_node::a2a`], docs/a2a.md). Runs until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use souk_node::api::async_client::AsyncApi;
use tokio_util::sync::CancellationToken;

use super::{Ctx, print_json};

/// `souk a2a ...`
#[derive(Debug, Subcommand)]
pub(crate) enum A2aCommand {
    /// Serve the agents this node can hire over A2A (JSON-RPC, A2A 0.3) on a loopback
    /// address, until Ctrl-C. Clients send `Authorization: Bearer <DATA_DIR/a2a-token>`.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8741")]
    listen: SocketAddr,
    /// Longest a blocking message/send waits before it answers with the task still working.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    max_wait: Duration,
}

pub(crate) fn run(ctx: &Ctx, cmd: A2aCommand) -> anyhow::Result<ExitCode> {
    let A2aCommand::Serve(args) = cmd;
    let client = ctx.connect()?;
    // A stale address file (a node that crashed) must fail here, not on every call.
    let _: serde_json::Value = client.get("/v1/info")?;
    let token = ctx.dir.a2a_token()?;
    let token_file = ctx.dir.path(souk_node::data_dir::A2A_TOKEN_FILE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = CancellationToken::new();
    let settings = souk_node::a2a::Settings {
        listen: args.listen,
        token,
        max_wait: args.max_wait,
    };
    let json = ctx.json;
    let served = runtime.block_on(async {
        stop_on_signal(stop.clone());
        souk_node::a2a::serve(AsyncApi::new(client), settings, stop, |bound| {
            let url = format!("http://{bound}");
            if json {
                let _ = print_json(&json!({
                    "url": url,
                    "card": format!("{url}/.well-known/agent-card.json"),
                    "token_file": token_file.display().to_string(),
                }));
            } else {
                out!("A2A gateway on {url}");
                out!("  gateway card: {url}/.well-known/agent-card.json");
                out!("  an agent's card: {url}/agents/<handle>/.well-known/agent-card.json");
                out!(
                    "  clients send: Authorization: Bearer $(cat {})",
                    super::ctx::shell_quote(&token_file)
                );
                out!("Ctrl-C stops the gateway (hires go on in the node).");
            }
        })
        .await
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `stop` on Ctrl-C or SIGTERM (a served gateway's way out).
pub(crate) fn stop_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
        stop.cancel();
    });
}
