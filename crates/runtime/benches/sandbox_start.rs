//! What the sandbox adds to an agent start: the time from `AgentProcess::spawn` to the
//! agent's result for a trivial agent, unconfined (no sandbox spec), without namespaces
//! (`sandbox = "off"`: helper, cgroup, rlimits), and sandboxed (bubblewrap, cgroup,
//! rlimits), in the same run, interleaved. Median of `SOUK_BENCH_STARTS` (default 100)
//! starts each.
//!
//! `cargo bench -p souk-runtime --bench sandbox_start` (needs bubblewrap).

use std::time::{Duration, Instant};

use serde_json::json;
use souk_runtime::sandbox::{ProbeConfig, SandboxMode, SandboxSpec, probe};
use souk_runtime::{AgentProcess, Outcome, ResourceLimits, RunConfig, Step};

const HIRE: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

struct Mode {
    name: &'static str,
    sandbox: Option<SandboxSpec>,
    limits: ResourceLimits,
}

async fn one_start(cfg: &RunConfig) -> Duration {
    let t = Instant::now();
    let mut agent = AgentProcess::spawn(cfg, HIRE, &json!(null), None)
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    loop {
        match agent.next().await {
            Step::Event(_) => {}
            Step::Ended(Outcome::Completed { .. }) => {
                let took = t.elapsed();
                // Untimed: the agent exits before the next start.
                agent.close().await;
                return took;
            }
            Step::Ended(other) => panic!("agent failed: {other:?}"),
        }
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(v[v.len() / 2]);
    let p90 = ms(v[v.len() * 9 / 10]);
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    (median, p90, mean)
}

fn main() {
    let starts: usize = std::env::var("SOUK_BENCH_STARTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let support = probe(&ProbeConfig {
            mode: SandboxMode::Required,
            helper: vec![env!("CARGO_BIN_EXE_souk-sandbox-helper").into()],
            bwrap: None,
            cgroup_parent: None,
            extra_ro_paths: Vec::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("bubblewrap is needed (apt-get install -y bubblewrap): {e}"));
        println!("sandbox: {}", support.summary());
        let limits = ResourceLimits {
            memory_bytes: Some(256 << 20),
            max_processes: Some(64),
            max_open_files: Some(256),
            max_file_bytes: Some(64 << 20),
            cpu_secs: Some(60),
        };
        let modes = [
            Mode {
                name: "unconfined",
                sandbox: None,
                limits: ResourceLimits::NONE,
            },
            Mode {
                name: "off (helper, cgroup, rlimits)",
                sandbox: Some(SandboxSpec {
                    bwrap: None,
                    ..support.spec.clone()
                }),
                limits,
            },
            Mode {
                name: "sandboxed (bwrap, cgroup, rlimits)",
                sandbox: Some(support.spec.clone()),
                limits,
            },
            Mode {
                name: "sandboxed, no cgroup (bwrap, rlimits)",
                sandbox: Some(SandboxSpec {
                    cgroups: None,
                    ..support.spec.clone()
                }),
                limits,
            },
            Mode {
                name: "off, no cgroup (helper, rlimits)",
                sandbox: Some(SandboxSpec {
                    bwrap: None,
                    cgroups: None,
                    ..support.spec.clone()
                }),
                limits,
            },
        ];
        let agents: [(&str, Vec<String>); 2] = [
            (
                "sh",
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    r#"read -r l; echo '{"type":"result","output":1}'"#.into(),
                ],
            ),
            (
                "python3 (/usr/bin)",
                vec![
                    "/usr/bin/python3".into(),
                    "-c".into(),
                    "import sys; sys.stdin.readline(); print('{\"type\":\"result\",\"output\":1}', flush=True)"
                        .into(),
                ],
            ),
        ];
        let dir = std::env::temp_dir().join(format!("souk-bench-{}", std::process::id()));
        println!("{starts} starts per row, interleaved; spawn to result, in ms");
        println!("{:<20} {:<36} {:>8} {:>8} {:>8}", "agent", "mode", "median", "p90", "mean");
        for (agent_name, command) in &agents {
            let cfgs: Vec<RunConfig> = modes
                .iter()
                .map(|m| RunConfig {
                    command: command.clone(),
                    workdir: dir.join("hire"),
                    sandbox: m.sandbox.clone(),
                    limits: m.limits,
                    ..RunConfig::default()
                })
                .collect();
            for cfg in &cfgs {
                for _ in 0..5 {
                    one_start(cfg).await; // warm-up
                }
            }
            let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(starts); cfgs.len()];
            for _ in 0..starts {
                for (i, cfg) in cfgs.iter().enumerate() {
                    times[i].push(one_start(cfg).await);
                }
            }
            let mut medians = Vec::new();
            for (m, t) in modes.iter().zip(times) {
                let (median, p90, mean) = stats(t);
                medians.push(median);
                println!(
                    "{:<20} {:<36} {:>8.2} {:>8.2} {:>8.2}",
                    agent_name, m.name, median, p90, mean
                );
            }
            println!(
                "{:<20} sandbox adds {:.2} ms to the median start ({:.2} ms without namespaces)",
                agent_name,
                medians[2] - medians[0],
                medians[1] - medians[0]
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
