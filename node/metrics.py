"""Prometheus metrics with polkadot's names where the meaning matches, so zombienet-style
assertions port unchanged. One registry per node: an in-process cluster keeps them apart.

Each role exports the families it observes, and only those (polkadot's relay full nodes export no
backing metrics, its validators no collation ones): a family that a role exports and never
observes is a bug, which `tests/e2e/test_metrics_observed.py` looks for on a real network. The
other families still exist on every `NodeMetrics` (outside the registry), so a service may update
one without asking which role it runs as. The counters in `MAY_STAY_ZERO` count faults or
incidents and are exported at 0 from the start (an absent metric is no proof of a zero); every
other exported counter and histogram goes above zero in a working network.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from proto import network
from proto.network import ReputationChange

HANDLER_LANES = ("gossip", "direct", "request", "response", "frame")
BUDGETED_LANES = ("gossip", "direct", "request")
LATENCY_BUCKETS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 18, 24, 36)
RELAY_ROLES = ("validator", "relay-node")
MAY_STAY_ZERO = frozenset({
    "substrate_sub_libp2p_handler_errors_total",
    "asyncback_decode_errors_total",
    "asyncback_peer_reputation_changes_total",
    # the lanes' budgets and bans: an honest network never overflows or bans
    "asyncback_frames_over_budget_total",
    "asyncback_peer_bans_total",
    "asyncback_banned_handshakes_refused_total",
    # an honest network raises no dispute; a small one may have no approval checkers (every
    # validator in the backing group: relay/core/approval/voting.py)
    "polkadot_parachain_candidate_disputes_total",
    "polkadot_parachain_candidate_dispute_concluded_total",
    "polkadot_parachain_approvals_produced_total",
})
# Every reputation change a node can apply, by its reason: the label values of the counter.
REPUTATION_REASONS = sorted({v.reason for v in vars(network).values()
                             if isinstance(v, ReputationChange)})


class NodeMetrics:
    def __init__(self, role: str, name: str, start_time: float | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Families only some roles export (see the module doc).
        relay = r if role in RELAY_ROLES else None
        validator = r if role == "validator" else None
        collator = r if role == "collator" else None
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
            "Number of candidates seconded", registry=validator,
        )
        self.signed_statements = Counter(
            "polkadot_parachain_candidate_backing_signed_statements_total",
            "Number of statements signed", registry=validator,
        )
        self.prospective_candidates = Gauge(
            "polkadot_parachain_prospective_parachains_candidate_count",
            "Candidates in prospective parachains", ["type"], registry=validator,
        )
        self.backing_latency = Histogram(
            "polkadot_parachain_collation_backing_latency",
            "Relay blocks (as seconds of slot) from relay parent to backing",
            buckets=LATENCY_BUCKETS, registry=relay,
        )
        self.inclusion_latency = Histogram(
            "polkadot_parachain_collation_inclusion_latency",
            "Seconds of slot from backing to inclusion", buckets=LATENCY_BUCKETS, registry=relay,
        )
        self.bitfields_signed = Counter(
            "polkadot_parachain_bitfields_signed_total", "Number of bitfields signed", registry=validator
        )
        self.candidates_included = Counter(
            "asyncback_candidates_included_total", "Candidates included in imported best blocks",
            ["para_id"], registry=relay,
        )
        self.disputes_total = Counter(
            "polkadot_parachain_candidate_disputes_total",
            "Disputes this validator saw start", registry=r,
        )
        # A gauge only counted up: a prometheus_client Counter would be exposed with `_total`
        # appended, and zombienet tests ask for polkadot's name as it is.
        self.dispute_concluded = Gauge(
            "polkadot_parachain_candidate_dispute_concluded",
            "Disputes this validator saw conclude, by outcome", ["validity"], registry=r,
        )
        for validity in ("valid", "invalid"):  # both series from the start: `is 0` can hold
            self.dispute_concluded.labels(validity)
        self.disputes_finality_lag = Gauge(
            "polkadot_parachain_disputes_finality_lag",
            "Blocks between the best block and the highest one finality may reach past disputes",
            registry=r,
        )
        self.collations_built = Counter(
            "polkadot_parachain_collations_generated_total", "Collations built", registry=collator
        )
        self.collations_seconded = Counter(
            "asyncback_collations_seconded_total",
            "Collations this collator built that a validator seconded (each counted once)",
            registry=collator,
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
        self.para_best_height = Gauge(
            "asyncback_para_best_height", "Number of the best para block this collator holds",
            ["para_id"], registry=collator,
        )
        self.para_finalized_height = Gauge(
            "asyncback_para_finalized_height",
            "Number of the para block the relay chain included, as of the relay head this "
            "collator last built on", ["para_id"], registry=collator,
        )
        for lane in HANDLER_LANES:  # present at 0 from the start: an absent metric is no proof
            self.handler_errors.labels(lane)
        for reason in REPUTATION_REASONS:
            self.reputation_changes.labels(reason)
        # The lanes' budgets and bans (node/net/lanes.py).
        self.frames_over_budget = Counter(
            "asyncback_frames_over_budget_total",
            "Inbound frames dropped unread because their peer was over its lane's budget",
            ["lane"], registry=r,
        )
        for lane in BUDGETED_LANES:
            self.frames_over_budget.labels(lane)
        self.peer_bans = Counter(
            "asyncback_peer_bans_total", "Peers banned (reputation under the threshold)",
            registry=r,
        )
        self.banned_refused = Counter(
            "asyncback_banned_handshakes_refused_total",
            "Handshakes refused because the dialer's key is banned", registry=r,
        )
        # Substrate's role bits: FULL 1, AUTHORITY 4 (a collator runs as an authority too).
        self.node_roles.set({"relay-node": 1, "validator": 4, "collator": 4}.get(role, 0))
        self.start_time.set(time.time() if start_time is None else start_time)
        self.name = name

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def unobserved(role: str, exposition: str) -> list[str]:
    """The families a node of `role` declares that `exposition` (its /metrics text) shows no
    observation of: absent, without a sample, a histogram that counted nothing, or a counter at 0
    that is not in `MAY_STAY_ZERO`. Empty for a node that has done its role's work."""
    from prometheus_client.parser import text_string_to_metric_families

    seen = {f.name: f for f in text_string_to_metric_families(exposition)}
    problems = []
    for declared in NodeMetrics(role, "declared").registry.collect():
        family = seen.get(declared.name)
        samples = family.samples if family is not None else []
        if family is None or not samples:
            problems.append(f"{declared.name}: not exported")
        elif declared.type == "histogram":
            if not any(s.name.endswith("_count") and s.value > 0 for s in samples):
                problems.append(f"{declared.name}: histogram never observed")
        elif (declared.type == "counter" and declared.name + "_total" not in MAY_STAY_ZERO
              and not any(s.name.endswith("_total") and s.value > 0 for s in samples)):
            problems.append(f"{declared.name}: counter still 0")
    return problems
