"""Prometheus metrics with polkadot's names where the meaning matches, so zombienet-style
assertions port unchanged. One registry per node: an in-process cluster keeps them apart."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

HANDLER_LANES = ("gossip", "direct", "request", "response", "frame")
LATENCY_BUCKETS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 18, 24, 36)


class NodeMetrics:
    def __init__(self, role: str, name: str, start_time: float | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.block_height = Gauge(
            "substrate_block_height", "Block height info of the chain", ["status"], registry=r
        )
        self.node_roles = Gauge("substrate_node_roles", "The roles the node is running as", registry=r)
        self.peers = Gauge(
            "substrate_sub_libp2p_peers_count", "Number of connected peers", registry=r
        )
        self.major_syncing = Gauge(
            "substrate_sub_libp2p_is_major_syncing", "Whether the node is catching up (1) or "
            "not (0)", registry=r,
        )
        self.start_time = Gauge(
            "process_start_time_seconds", "Start time of the process since unix epoch", registry=r
        )
        self.seconded = Counter(
            "polkadot_parachain_candidate_backing_candidates_seconded_total",
            "Number of candidates seconded", registry=r,
        )
        self.signed_statements = Counter(
            "polkadot_parachain_candidate_backing_signed_statements_total",
            "Number of statements signed", registry=r,
        )
        self.prospective_candidates = Gauge(
            "polkadot_parachain_prospective_parachains_candidate_count",
            "Candidates in prospective parachains", ["type"], registry=r,
        )
        self.backing_latency = Histogram(
            "polkadot_parachain_collation_backing_latency",
            "Relay blocks (as seconds of slot) from relay parent to backing",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.inclusion_latency = Histogram(
            "polkadot_parachain_collation_inclusion_latency",
            "Seconds of slot from backing to inclusion", buckets=LATENCY_BUCKETS, registry=r,
        )
        self.bitfields_signed = Counter(
            "polkadot_parachain_bitfields_signed_total", "Number of bitfields signed", registry=r
        )
        self.candidates_included = Counter(
            "asyncback_candidates_included_total", "Candidates included in imported best blocks",
            ["para_id"], registry=r,
        )
        self.collations_built = Counter(
            "polkadot_parachain_collations_generated_total", "Collations built", registry=r
        )
        self.collations_seconded = Counter(
            "asyncback_collations_seconded_total",
            "Collations this collator built that a validator seconded (each counted once)",
            registry=r,
        )
        self.approvals_produced = Counter(
            "polkadot_parachain_approvals_produced_total",
            "Approval votes this validator signed after re-executing a candidate", registry=r,
        )
        self.approval_checking_finality_lag = Gauge(
            "polkadot_parachain_approval_checking_finality_lag",
            "Relay blocks between the best block and the highest approved ancestor this "
            "validator votes final", registry=r,
        )
        self.reputation_changes = Counter(
            "asyncback_peer_reputation_changes_total", "Reputation changes applied", ["kind"],
            registry=r,
        )
        self.decode_errors = Counter(
            "asyncback_decode_errors_total", "Inbound frames that failed to decode", registry=r
        )
        # Substrate's network metrics live under substrate_sub_libp2p_*; this one is ours (no
        # handler of a Substrate node can throw), named to sit beside them.
        self.handler_errors = Counter(
            "substrate_sub_libp2p_handler_errors_total",
            "Peer messages whose handler failed with an unexpected error (logged, peer charged)",
            ["protocol"], registry=r,
        )
        for lane in HANDLER_LANES:  # present at 0 from the start: an absent metric is no proof
            self.handler_errors.labels(lane)
        # Substrate's role bits: FULL 1, AUTHORITY 4 (a collator runs as an authority too).
        self.node_roles.set({"relay-node": 1, "validator": 4, "collator": 4}.get(role, 0))
        self.start_time.set(time.time() if start_time is None else start_time)
        self.name = name

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
