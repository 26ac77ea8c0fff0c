"""Benchmark: `asyncback probe-peer` for 60 s against each role of the default local network
(alice..eve, relay node ferdie, paras 2000 and 2001 with a collator each) at 1 s slots, one role
after the other: frames sent per kind, links the target closed, identities it refused, its chain
before and after, and whether any node of the network died or counted a handler failure.

Prints figures; asserts nothing. Run: `.venv/bin/python benchmarks/probe_peer.py [SECONDS]`
(default 60; the e2e test, tests/e2e/test_link_faults.py, fires for 15 s).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import trio

from node.cluster import Cluster, default_network
from relay.core.config import HostConfiguration

TARGETS = ("alice", "ferdie", "collator-2000-0")
HANDLER_ERRORS = "substrate_sub_libp2p_handler_errors_total"


async def main(seconds: float) -> None:
    run_dir = Path(tempfile.mkdtemp(prefix="probe-peer-"))
    async with Cluster(default_network(HostConfiguration(slot_ms=1000)), run_dir) as cluster:
        await cluster.wait_relay_height(10)
        for name in TARGETS:
            node = cluster[name]
            report_path = run_dir / f"probe-{name}.json"
            argv = [sys.executable, "-m", "node.cli", "probe-peer",
                    f"{node.host}:{node.ports['p2p']}", "--chain", str(cluster.chain_spec_path),
                    "--seconds", str(seconds), "--rpc-url", node.rpc_url,
                    "--json", str(report_path)]
            done = await trio.run_process(argv, check=False, capture_stdout=True)
            report = json.loads(report_path.read_text())
            sent = report["frames_sent"]
            errors = {n.name: sum(v for k, v in (await n.metrics()).items()
                                  if k.startswith(HANDLER_ERRORS + "{")) for n in cluster}
            print(f"{name} ({report['role']}): exit {done.returncode}, "
                  f"{report['duration_s']} s, {report['frames_sent_total']} frames of "
                  f"{len(sent)} kinds (min {min(sent.values())}, max {max(sent.values())} per "
                  f"kind), empty-statements AttestedCandidate "
                  f"{sent.get('crafted:attested-no-statements', 0)}, links "
                  f"{report['connections']}, closed by the target {report['closed_by_target']}, "
                  f"identities refused {report['refused_identities']} of "
                  f"{report['identities_used']}; best {report['before']['best']} -> "
                  f"{report['after']['best']}, finalized {report['before']['finalized']} -> "
                  f"{report['after']['finalized']}; crashed nodes "
                  f"{[n.name for n in cluster.crashed()]}; handler errors "
                  f"{sum(errors.values()):.0f}")
            print("   per kind: " + ", ".join(f"{k} {v}" for k, v in sorted(sent.items())))
        print(f"run directory: {run_dir}")


if __name__ == "__main__":
    trio.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
