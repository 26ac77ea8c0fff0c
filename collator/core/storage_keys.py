"""Every key of the parachain runtime's state, in one place.

The collator writes these keys when it builds a block and the validation function reads them again
from the PoV's state; the service and the tests read a few (capacity, block number, balances). A key
spelled twice can drift apart silently (the state root changes, or a read falls back to its default),
so every reader and writer names the key from here. Prefixes follow the pallet that owns the item in
cumulus (`system`, `balances`, `parachain_system`, `aura_ext`); nonces live under their own prefix
rather than inside an account record to keep the runtime small.
"""

from __future__ import annotations

# Runtime constants, written at genesis and read by the validation function.
PARA_ID_KEY = b"system:para_id"
VELOCITY_KEY = b"system:velocity"
CAPACITY_KEY = b"system:capacity"
RELAY_SLOT_MS_KEY = b"system:relay_slot_ms"
WEIGHT_LIMIT_KEY = b"system:weight_limit"

# The block number, and the validation code with an upgrade waiting for the relay's go-ahead.
NUMBER_KEY = b"system:number"
CODE_KEY = b"system:code"
PENDING_CODE_KEY = b"system:pending_code"

# Outbound messages queued by transactions, sent as the relay's limits allow.
UPWARD_QUEUE_KEY = b"parachain_system:pending_upward_messages"
HORIZONTAL_QUEUE_KEY = b"parachain_system:pending_horizontal_messages"

# The unincluded segment: its ancestors and their aggregate bandwidth.
SEGMENT_KEY = b"parachain_system:unincluded_segment"
TRACKER_KEY = b"parachain_system:aggregated_segment"

# What the runtime remembers of the relay chain between blocks.
LAST_RELAY_KEY = b"parachain_system:last_relay_block_number"
HANDLED_KEY = b"parachain_system:handled_messages"
SLOT_INFO_KEY = b"aura_ext:relay_slot_info"

BALANCES_PREFIX = b"balances:"
NONCES_PREFIX = b"nonces:"


def account_key(account: int) -> bytes:
    """The balance of dev account `account`."""
    return BALANCES_PREFIX + account.to_bytes(4, "big")


def nonce_key(account: int) -> bytes:
    """The next transaction nonce of dev account `account`."""
    return NONCES_PREFIX + account.to_bytes(4, "big")
