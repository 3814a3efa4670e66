#!/usr/bin/env bash
# Souk's manifest propagation beside plain gossipsub, measured in the same run on the same
# machine, at three publication rates (issue #13): N full nodes in one process each
# (node/benches/propagation.rs and node/benches/gossip_baseline.rs, same wiring, same load).
#
#   bench/propagation-rates/run.sh            # N = 200; 2, 10 and 50 manifests/s
#   NODES=100 RATES="2 10" bench/propagation-rates/run.sh
#
# Prints one Markdown table: delivery and p50/p99 for each, and Souk's p99 over plain
# gossipsub's (goal: at most 1.1). Needs an otherwise idle machine: both benches measure
# wall-clock latency on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
NODES=${NODES:-200}
RATES=${RATES:-"2 10 50"}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-15}
out=$(mktemp -d)
cargo bench -p souk-node --bench propagation --bench gossip_baseline --no-run >/dev/null 2>&1
row() { # file -> "delivery p50 p99"
  grep -E "^\| $NODES \|" "$1" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); gsub(/ /,"",$4); gsub(/ /,"",$5); print $3, $4, $5}'
}
echo "| rate (manifests/s) | manifests | souk delivery | souk p50 ms | souk p99 ms | gossipsub delivery | gossipsub p50 ms | gossipsub p99 ms | p99 ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
for rate in $RATES; do
  interval=$((1000 / rate))
  m=$((rate * SECONDS_PER_RATE))
  SOUK_BENCH_INTERVAL_MS=$interval SOUK_BENCH_MANIFESTS=$m \
    cargo bench -q -p souk-node --bench propagation -- "$NODES" >"$out/souk-$rate.txt" 2>"$out/souk-$rate.err"
  SOUK_BENCH_INTERVAL_MS=$interval SOUK_BENCH_MANIFESTS=$m \
    cargo bench -q -p souk-node --bench gossip_baseline -- "$NODES" >"$out/plain-$rate.txt" 2>"$out/plain-$rate.err"
  read -r sd s50 s99 <<<"$(row "$out/souk-$rate.txt")"
  read -r pd p50 p99 <<<"$(row "$out/plain-$rate.txt")"
  ratio=$(python3 -c "print(f'{float(\"$s99\")/float(\"$p99\"):.2f}')" 2>/dev/null || echo "-")
  echo "| $rate | $m | $sd | $s50 | $s99 | $pd | $p50 | $p99 | $ratio |"
done
echo
echo "raw outputs: $out"
