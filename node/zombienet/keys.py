"""The keys a zombienet network file may hold, and what asyncback does with each.

The key set is the union of what zombienet's two readers define: the original TypeScript
orchestrator (its `configTypes.ts`/`sharedTypes.ts` and the network definition spec in its docs)
and zombienet-sdk (its `configuration` crate, which also reads v1 TOML: `addToGenesis`,
`num_cores` per para, `default_command` on a para, `is_validator`, ...). polkadot-sdk's own
functional tests use keys from both, so a file either reader accepts is read here.

Each key is *used* (it shapes the asyncback network), *ignored* (it only means something for
other node binaries or providers: images, commands, polkadot flags, resources, ports, key
types; it is accepted and listed once), or *free* (a table zombienet passes through unchecked,
such as `types` or the parts of `genesis` outside the host configuration). A key in none of
these is a mistake in the file and an error naming its full path.

asyncback's own settings live in one table, `[asyncback]`, documented in `network_file.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

USED = "used"
IGNORED = "ignored"


@dataclass(frozen=True)
class Free:
    """A table or array zombienet does not check; `used` when asyncback reads part of it."""

    used: bool = False


@dataclass(frozen=True)
class Tables:
    """An array of tables (`[[relaychain.nodes]]`), each checked against `item`."""

    item: Mapping[str, Spec]


Spec: TypeAlias = "str | Free | Tables | Mapping[str, Spec]"


class UnknownKeyError(ValueError):
    """A key zombienet does not define; the message is its full path."""


class ShapeError(ValueError):
    """A table where an array of tables belongs, or the other way round."""


def _keys(kind: str, names: str) -> dict[str, Spec]:
    return dict.fromkeys(names.split(), kind)


# A node of the relay chain or a collator (zombienet's NodeConfig and NodeCommonTypes, with
# zombienet-sdk's field names and aliases).
NODE: dict[str, Spec] = {
    **_keys(USED, "name validator is_validator"),
    **_keys(IGNORED, """
        image command subcommand command_with_args args invulnerable is_invulnerable bootnode
        is_bootnode balance initial_balance bootnodes bootnodes_addresses add_to_bootnodes
        ws_port rpc_port p2p_port prometheus_port p2p_cert_hash prometheus_prefix db_snapshot
        substrate_cli_args_version keystore_key_types chain_spec_key_types keystore_path
        node_log_path override_eth_key"""),
    "env": Free(),
    "overrides": Free(),
    "resources": Free(),
    "delay_network_settings": Free(),
}

NODE_GROUP: dict[str, Spec] = {**NODE, "count": USED}

SETTINGS: dict[str, Spec] = {
    **_keys(USED, "timeout provider"),
    **_keys(IGNORED, """
        bootnode bootnode_domain node_spawn_timeout grafana telemetry prometheus jaeger_agent
        tracing_collator_url tracing_collator_service_name tracing_collator_service_namespace
        tracing_collator_service_port enable_tracing polkadot_introspector backchannel
        image_pull_policy local_ip node_verifier isolate_env bootnodes_addresses base_dir
        spawn_concurrency tear_down_on_failure"""),
    "global_volumes": Free(),
    "global_delay_network_global_settings": Free(),
    "observability": Free(),
}

RELAYCHAIN: dict[str, Spec] = {
    **_keys(USED, "chain"),
    **_keys(IGNORED, """
        default_command default_image default_db_snapshot default_prometheus_prefix
        default_substrate_cli_args_version default_keystore_key_types force_decorator
        chain_spec_path chain_spec_command chain_spec_runtime chain_spec_command_is_local
        chain_spec_command_output_path default_args random_nominators_count max_nominations
        total_node_in_groups use_stash_for_validators wasm_override command post_process_script
        override_session_0"""),
    "default_resources": Free(),
    "default_overrides": Free(),
    "default_delay_network_settings": Free(),
    "raw_spec_override": Free(),
    "genesis": Free(used=True),  # the host configuration is read from it (host_config.py)
    "nodes": Tables(NODE),
    "node_groups": Tables(NODE_GROUP),
}

PARACHAIN: dict[str, Spec] = {
    **_keys(USED, """id add_to_genesis addToGenesis register_para registerPara num_cores"""),
    **_keys(IGNORED, """
        chain force_decorator balance onboard_as_parachain with_custom_props genesis_wasm_path
        genesis_wasm_generator genesis_state_path genesis_state_generator chain_spec_path
        chain_spec_command chain_spec_runtime chain_spec_command_is_local
        chain_spec_command_output_path wasm_override post_process_script cumulus_based
        evm_based bootnodes bootnodes_addresses no_default_bootnodes prometheus_prefix
        default_substrate_cli_args_version default_args default_command default_image
        default_db_snapshot"""),
    "genesis": Free(),
    "default_resources": Free(),
    "delayNetworkSettings": Free(),
    "raw_spec_override": Free(),
    "collator": NODE,
    "collators": Tables(NODE),
    "collator_groups": Tables(NODE_GROUP),
}

HRMP_CHANNEL: dict[str, Spec] = _keys(IGNORED, "sender recipient max_capacity max_message_size")

# asyncback's own table (see network_file.py for what each key does).
ASYNCBACK: dict[str, Spec] = {
    **_keys(USED, "slot_ms execution_ms cores_per_para tx_rate blocks_per_relay_parent"),
    "cores": Free(used=True),  # para id -> cores, checked where it is read
}

NETWORK: dict[str, Spec] = {
    "settings": SETTINGS,
    "relaychain": RELAYCHAIN,
    "parachains": Tables(PARACHAIN),
    "hrmp_channels": Tables(HRMP_CHANNEL),
    "types": Free(),
    "custom_processes": Free(),
    "asyncback": ASYNCBACK,
}


def check_keys(doc: Mapping[str, Any], schema: Mapping[str, Spec] = NETWORK,
               path: str = "") -> list[str]:
    """Walk `doc` against `schema`. Returns the ignored keys' paths, with array positions
    written `[]` so each key is listed once however many nodes carry it. Raises
    `UnknownKeyError` naming the first key zombienet does not define (`relaychain.nodes[2].x`),
    or `ShapeError` where a table or an array of tables was expected."""
    ignored: list[str] = []
    _walk(doc, schema, path, "", ignored)
    return sorted(dict.fromkeys(ignored))


def _walk(doc: Mapping[str, Any], schema: Mapping[str, Spec], path: str, generic: str,
          ignored: list[str]) -> None:
    for key, value in doc.items():
        here, gen = f"{path}.{key}" if path else key, f"{generic}.{key}" if generic else key
        spec = schema.get(key)
        if spec is None:
            raise UnknownKeyError(here)
        if spec == IGNORED or (isinstance(spec, Free) and not spec.used):
            ignored.append(gen)
        elif isinstance(spec, Tables):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ShapeError(f"{here} must be an array of tables ([[{here}]])")
            for i, item in enumerate(value):
                _walk(item, spec.item, f"{here}[{i}]", f"{gen}[]", ignored)
        elif isinstance(spec, Mapping):
            if not isinstance(value, dict):
                raise ShapeError(f"{here} must be a table ([{here}])")
            _walk(value, spec, here, gen, ignored)
