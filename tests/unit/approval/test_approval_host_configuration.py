"""The approval and dispute parameters of the host configuration: polkadot's local-testnet
defaults, validated, carried by chain specs."""

from __future__ import annotations

import pytest

from node.chainspec import ChainSpec, dev_validators, spec_from_json
from relay.core.config import ConfigError, HostConfiguration, ParaGenesis

APPROVAL_KEYS = {
    "needed_approvals": 2, "relay_vrf_modulo_samples": 2, "n_delay_tranches": 25,
    "zeroth_delay_tranche_width": 0, "no_show_slots": 2, "dispute_period": 6,
    "dispute_post_conclusion_acceptance_period": 100,
}


def test_defaults_are_polkadots_local_testnet_values() -> None:
    mapping = HostConfiguration().to_mapping()
    assert {k: mapping[k] for k in APPROVAL_KEYS} == APPROVAL_KEYS


def test_approval_parameters_round_trip_through_mapping_and_chain_spec() -> None:
    host = HostConfiguration(needed_approvals=4, relay_vrf_modulo_samples=1, n_delay_tranches=9,
                             zeroth_delay_tranche_width=3, no_show_slots=1, dispute_period=2,
                             dispute_post_conclusion_acceptance_period=7)
    assert HostConfiguration.from_mapping(host.to_mapping()) == host
    spec = ChainSpec("t", "t", dev_validators(4), (ParaGenesis(2000, b"\x01"),), host)
    again = spec_from_json(spec.to_json())
    assert again.host == host and again.genesis_id() == spec.genesis_id()


@pytest.mark.parametrize("key", ["needed_approvals", "n_delay_tranches", "no_show_slots"])
def test_approval_counts_that_cannot_be_zero_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        HostConfiguration(**{key: 0})


def test_negative_and_unknown_approval_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="zeroth_delay_tranche_width"):
        HostConfiguration(zeroth_delay_tranche_width=-1)
    with pytest.raises(ConfigError, match="needed_approval"):
        HostConfiguration.from_mapping({"needed_approval": 3})
