"""Malus modes: a validator that misbehaves on purpose, for tests (polkadot-sdk's malus binary,
whose behaviours these are named after). One mode per validator, chosen with `asyncback validator
--malus MODE`, the sim's `--malus NODE:MODE`, or a network file's `command = "malus MODE"`.

- `suggest-garbage-candidate` (backing.py): seconds, instead of the collation it validated, one
  with a garbage PoV whose erasure root matches, so it is available and only re-execution finds it.
- `back-garbage` (backing.py): vouches for whatever its group seconds, without checking it.
- `dispute-valid` (backing.py, disputes.py): disputes what it checks instead of vouching, and votes
  invalid in every dispute.
- `no-show` (approvals.py): announces its approval assignments and never approves, so the
  candidates it was assigned wait `no_show_slots` for it and the next tranche covers it. (One that
  never announced would not be counted at all, which tests nothing.)
"""

from __future__ import annotations

MALUS_MODES = ("suggest-garbage-candidate", "back-garbage", "dispute-valid", "no-show")
