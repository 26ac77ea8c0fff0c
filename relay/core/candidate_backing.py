"""The candidate-backing rules every driver applies alike (polkadot's candidate-backing
subsystem): the table one relay parent's statements go into, and the one step from a statement
to a backed candidate. The validator service (`relay/service/backing.py`) and the ideal driver
(`node/ideal.py`) both call these, so the ideal bound cannot drift from the services.
"""

from __future__ import annotations

from collections.abc import Iterable

from proto.candidate import CommittedCandidateReceipt
from proto.statements import SignedStatement, SigningContext, StatementKind
from relay.core.backing_table import BackingTable
from relay.core.prospective.view import ProspectiveParachains
from relay.core.state import RelayState


def backing_table(signing: SigningContext, state: RelayState) -> BackingTable:
    """The statement table of one relay parent. A validator may second up to
    `max_candidate_depth + 1` candidates there: one per position of the unincluded segment a
    candidate at that relay parent could take (polkadot's seconding limit)."""
    return BackingTable(signing, state.validators, state.config.max_candidate_depth + 1)


def import_statements(table: BackingTable, statements: Iterable[SignedStatement],
                      group: list[int], receipt: CommittedCandidateReceipt,
                      view: ProspectiveParachains, minimum_backing_votes: int) -> bool:
    """Statements about `receipt` into `table`, Seconded first (a Valid needs its candidate in
    the table); the moment the candidate has enough votes, prospective parachains learns it is
    backed. True if any statement was new. The first refused statement's `BackingError` stops
    the import, leaving what came before it imported."""
    new = False
    core, h = receipt.descriptor.core_index, receipt.hash()
    for s in sorted(statements, key=lambda s: s.statement.kind != StatementKind.SECONDED):
        if table.import_statement(s, group, core, receipt):
            new = True
            if table.is_backable(h, minimum_backing_votes):
                view.candidate_backed(receipt.descriptor.para_id, h)
    return new
