"""The chain spec: everything a node needs to start the same relay chain as its peers.

JSON on disk, validated strictly (unknown keys are an error naming the key). Validators are listed
by name and public key; dev networks derive keys from names, so a spec needs no key files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from relay.core.config import ConfigError, HostConfiguration, ParaGenesis, para_from_mapping

SPEC_KEYS = {"name", "id", "validators", "paras", "genesis", "collators"}


@dataclass(frozen=True)
class ValidatorEntry:
    name: str
    public: bytes


@dataclass(frozen=True)
class ChainSpec:
    name: str
    id: str
    validators: tuple[ValidatorEntry, ...]
    paras: tuple[ParaGenesis, ...]
    host: HostConfiguration = field(default_factory=HostConfiguration)
    # Per para, the collators that take turns authoring its blocks (the parachain's Aura
    # authorities, by relay slot). A para listed here admits only these collators; a para not
    # listed has one collator, which authors every slot.
    collators: Mapping[int, tuple[ValidatorEntry, ...]] = field(default_factory=dict)

    def para_authors(self, para_id: int) -> tuple[ValidatorEntry, ...]:
        return tuple(self.collators.get(para_id, ()))

    def validator_index(self, public: bytes) -> int | None:
        for i, v in enumerate(self.validators):
            if v.public == public:
                return i
        return None

    def genesis_id(self) -> bytes:
        """Identifies this chain in handshakes: peers with another spec are refused."""
        return blake2_256(json.dumps(self.to_json(), sort_keys=True).encode())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "validators": [{"name": v.name, "public": "0x" + v.public.hex()} for v in self.validators],
            "paras": [
                {"para_id": p.para_id, "genesis_head": "0x" + p.genesis_head.hex(),
                 "validation_code": p.validation_code.decode(errors="replace"), "cores": p.cores,
                 "velocity": p.velocity, "unincluded_capacity": p.unincluded_capacity,
                 "block_execution_ms": p.block_execution_ms}
                for p in self.paras
            ],
            "genesis": self.host.to_mapping(),
            # Only when set, so the specs (and genesis ids) of networks without them stay as
            # they were.
            **({"collators": {str(pid): [{"name": c.name, "public": "0x" + c.public.hex()}
                                         for c in entries]
                              for pid, entries in sorted(self.collators.items())}}
               if self.collators else {}),
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def dev_validators(n: int) -> tuple[ValidatorEntry, ...]:
    return tuple(
        ValidatorEntry(dev_name(i), Keypair.from_name(dev_name(i)).public) for i in range(n)
    )


def spec_from_json(data: Mapping[str, Any]) -> ChainSpec:
    if not isinstance(data, Mapping):
        raise ConfigError("chain spec must be a JSON object")
    unknown = sorted(set(data) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) in chain spec: {', '.join(unknown)}")
    validators = [_key_entry(v, f"validator {i}", dev_name(i))
                  for i, v in enumerate(data.get("validators", []))]
    if not validators:
        raise ConfigError("chain spec lists no validators")
    paras = tuple(para_from_mapping(p) for p in data.get("paras", []))
    ids = [p.para_id for p in paras]
    if len(set(ids)) != len(ids):
        raise ConfigError("chain spec lists a para id twice")
    collators = _para_collators(data.get("collators", {}), {p.para_id for p in paras})
    return ChainSpec(
        name=str(data.get("name", "asyncback-local")),
        id=str(data.get("id", "local")),
        validators=tuple(validators),
        paras=paras,
        host=HostConfiguration.from_mapping(data.get("genesis", {})),
        collators=collators,
    )


def _key_entry(v: Any, what: str, default_name: str) -> ValidatorEntry:
    if not isinstance(v, Mapping):
        raise ConfigError(f"{what} must be an object with 'name' and 'public'")
    extra = sorted(set(v) - {"name", "public"})
    if extra:
        raise ConfigError(f"unknown key(s) in {what}: {', '.join(extra)}")
    try:
        public = bytes.fromhex(str(v["public"]).removeprefix("0x"))
    except (KeyError, ValueError):
        raise ConfigError(f"{what}: 'public' must be a hex Ed25519 key") from None
    if len(public) != 32:
        raise ConfigError(f"{what}: 'public' must be 32 bytes")
    return ValidatorEntry(str(v.get("name", default_name)), public)


def _para_collators(data: Any, para_ids: set[int]) -> dict[int, tuple[ValidatorEntry, ...]]:
    if not isinstance(data, Mapping):
        raise ConfigError("chain spec 'collators' must map para ids to lists of collators")
    out = {}
    for key, entries in data.items():
        try:
            pid = int(key)
        except ValueError:
            raise ConfigError(f"chain spec 'collators': {key!r} is not a para id") from None
        if pid not in para_ids:
            raise ConfigError(f"chain spec 'collators' names para {pid}, which it does not list")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"chain spec 'collators' of para {pid} must be a non-empty list")
        out[pid] = tuple(_key_entry(c, f"collator {i} of para {pid}", f"collator-{pid}-{i}")
                         for i, c in enumerate(entries))
    return out


def load_spec(path: Path) -> ChainSpec:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"chain spec {path} does not exist") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"chain spec {path} is not valid JSON: {exc}") from None
    return spec_from_json(data)
