"""The relay chain's host configuration as a zombienet network file patches it into genesis
(`[relaychain.genesis.runtimeGenesis.patch.configuration.config]`), mapped onto asyncback's
`HostConfiguration`.

polkadot's `HostConfiguration` denies unknown fields, so its key set is fixed per runtime
version. Files written for older runtimes use the flat names of their time
(`scheduling_lookahead`, `group_rotation_frequency`, `coretime_cores` before `scheduler_params`
grouped them), so both spellings are known here; naming one parameter twice with different
values is an error. Keys with a counterpart in asyncback set it; the others (approval voting,
disputes, HRMP deposits, on-demand pricing, ...) have none in this model and are listed as
ignored. A key polkadot never defined is an error naming its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where the configuration sits in `relaychain.genesis`: zombienet's current patch format, and
# the `runtime` form older files (and polkadot-sdk's cumulus tests) still use.
CONFIG_PATHS = (
    ("runtimeGenesis", "patch", "configuration", "config"),
    ("runtimeGenesis", "config", "configuration", "config"),
    ("runtime", "configuration", "config"),
    ("runtime", "runtime_genesis_config", "configuration", "config"),
)

# polkadot key (a nested one as "table.key") -> asyncback HostConfiguration field.
MAPPED: dict[str, str] = {
    "async_backing_params.max_candidate_depth": "max_candidate_depth",
    "async_backing_params.allowed_ancestry_len": "allowed_ancestry_len",
    "scheduler_params.lookahead": "lookahead",
    "scheduling_lookahead": "lookahead",
    "scheduler_params.group_rotation_frequency": "group_rotation_frequency",
    "group_rotation_frequency": "group_rotation_frequency",
    "scheduler_params.paras_availability_period": "paras_availability_period",
    "paras_availability_period": "paras_availability_period",
    "chain_availability_period": "paras_availability_period",
    "scheduler_params.num_cores": "num_cores",
    "coretime_cores": "num_cores",
    "scheduler_params.max_validators_per_core": "max_validators_per_core",
    "max_validators_per_core": "max_validators_per_core",
    "minimum_backing_votes": "minimum_backing_votes",
    "max_pov_size": "max_pov_size",
    "max_head_data_size": "max_head_data_size",
    "max_code_size": "max_code_size",
    "max_upward_queue_count": "max_upward_queue_count",
    "max_upward_queue_size": "max_upward_queue_size",
    "max_upward_message_size": "max_upward_message_size",
    "max_upward_message_num_per_candidate": "max_upward_message_num_per_candidate",
    "hrmp_max_message_num_per_candidate": "hrmp_max_message_num_per_candidate",
    "validation_upgrade_cooldown": "validation_upgrade_cooldown",
    "validation_upgrade_frequency": "validation_upgrade_cooldown",
    "validation_upgrade_delay": "validation_upgrade_delay",
    # approval checking and disputes (relay/core/approval, relay/core/disputes)
    "needed_approvals": "needed_approvals",
    "relay_vrf_modulo_samples": "relay_vrf_modulo_samples",
    "n_delay_tranches": "n_delay_tranches",
    "zeroth_delay_tranche_width": "zeroth_delay_tranche_width",
    "no_show_slots": "no_show_slots",
    "dispute_period": "dispute_period",
    "dispute_post_conclusion_acceptance_period": "dispute_post_conclusion_acceptance_period",
}

# Keys polkadot's HostConfiguration has (had) with no counterpart in asyncback.
WITHOUT_COUNTERPART = frozenset(str.split("""
    max_downward_message_size hrmp_max_parachain_outbound_channels hrmp_sender_deposit
    hrmp_recipient_deposit hrmp_channel_max_capacity hrmp_channel_max_total_size
    hrmp_max_parachain_inbound_channels hrmp_channel_max_message_size executor_params
    code_retention_period max_validators
    pvf_voting_ttl minimum_validation_upgrade_delay node_features
    approval_voting_params.max_approval_coalesce_count
    scheduler_params.max_availability_timeouts scheduler_params.on_demand_queue_max_size
    scheduler_params.on_demand_target_queue_utilization scheduler_params.on_demand_fee_variability
    scheduler_params.on_demand_base_fee scheduler_params.ttl
    on_demand_cores on_demand_retries on_demand_queue_max_size on_demand_target_queue_utilization
    on_demand_fee_variability on_demand_base_fee on_demand_ttl max_availability_timeouts
    parathread_cores parathread_retries thread_availability_period ump_service_total_weight
    ump_max_individual_weight hrmp_open_request_ttl pvf_checking_enabled
    hrmp_max_parathread_inbound_channels hrmp_max_parathread_outbound_channels
    max_parathread_outbound_channels
"""))

NESTED = frozenset(k.split(".", 1)[0] for k in (*MAPPED, *WITHOUT_COUNTERPART) if "." in k)


class HostConfigKeyError(ValueError):
    """A host-configuration key polkadot does not define, or a value asyncback cannot use;
    the message names its path."""


def find_config(genesis: Mapping[str, Any], base: str) -> tuple[str, Mapping[str, Any]] | None:
    """The configuration table under `genesis` and its path (`base` is genesis's own), if the
    file sets one."""
    for steps in CONFIG_PATHS:
        node: Any = genesis
        for step in steps:
            node = node.get(step) if isinstance(node, Mapping) else None
        if node is not None:
            path = f"{base}.{'.'.join(steps)}"
            if not isinstance(node, Mapping):
                raise HostConfigKeyError(f"{path} must be a table")
            return path, node
    return None


def host_overrides(config: Mapping[str, Any], path: str
                   ) -> tuple[dict[str, int], list[str], list[str]]:
    """The `HostConfiguration` fields the table sets, the keys it holds that asyncback
    ignores, and flat keys written inside a parameter group, which polkadot ignores too
    (full paths)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key in NESTED and isinstance(value, Mapping):
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = v
        else:
            flat[key] = value
    overrides: dict[str, int] = {}
    source: dict[str, str] = {}
    ignored, misplaced = [], []
    for key, value in flat.items():
        where = f"{path}.{key}"
        if key in WITHOUT_COUNTERPART:
            ignored.append(where)
            continue
        field = MAPPED.get(key)
        if field is None and "." in key and _is_flat_key(key.split(".", 1)[1]):
            # Only the configuration itself denies unknown fields; its parameter groups
            # skip them, so polkadot-sdk's own files carry a few flat names in a group
            # (`scheduler_params.scheduling_lookahead`) that polkadot never reads.
            misplaced.append(where)
            continue
        if field is None:
            raise HostConfigKeyError(f"unknown key {where}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise HostConfigKeyError(f"{where} must be a non-negative integer, got {value!r}")
        if field in overrides and overrides[field] != value:
            raise HostConfigKeyError(f"{where} = {value} contradicts {path}.{source[field]} = "
                                     f"{overrides[field]} (both set {field})")
        overrides[field], source[field] = value, key
    return overrides, ignored, misplaced


def _is_flat_key(key: str) -> bool:
    return key in MAPPED or key in WITHOUT_COUNTERPART


def outside(genesis: Mapping[str, Any], base: str, config_path: str) -> list[str]:
    """Paths of what `genesis` sets besides the configuration table (balances, sessions, ...):
    zombienet passes them into the chain spec; asyncback's genesis has no such parts."""
    out = []

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            here = f"{path}.{key}"
            if here == config_path:
                continue
            if config_path.startswith(here + ".") and isinstance(value, Mapping):
                walk(value, here)
            else:
                out.append(here)

    walk(genesis, base)
    return out
