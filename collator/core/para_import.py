"""Importing a para block another collator of the same para built (para-chain block sync):
re-execute it on our copy of its parent's state and keep it only if it reproduces the header it
declares, state root included. Pure; the collator service fetches the bytes."""

from __future__ import annotations

from collator.core.consensus_hook import BlockInvalid
from collator.core.para_chain import ParaChain
from collator.core.para_runtime import ParaBlock
from collator.core.parachain_system import execute_block
from collator.core.validation import InvalidBlock


def import_para_block(chain: ParaChain, block: ParaBlock) -> bool:
    """Add `block` to `chain`; False if its parent is unknown (fetch that first), `InvalidBlock`
    if it does not re-execute to its own header."""
    header = block.header
    if header.hash() in chain:
        return True
    if header.parent_hash not in chain:
        return False
    parent_entries, parent_header = chain.state(header.parent_hash), chain.header(header.parent_hash)
    if header.para_id != parent_header.para_id or header.number != parent_header.number + 1:
        raise InvalidBlock("not a child of its parent (para id or number)")
    try:
        entries, out = execute_block(parent_entries, parent_header, block.inherent,
                                     list(block.extrinsics), header.core_selector)
    except BlockInvalid as exc:
        raise InvalidBlock(str(exc)) from None
    if out.header != header:
        raise InvalidBlock("re-execution produced another header")
    chain.add(entries, header)
    return True
