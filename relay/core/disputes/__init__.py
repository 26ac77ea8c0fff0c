"""Disputes (polkadot-sdk's dispute-coordinator and the runtime's dispute rules), pure.

`state` counts one dispute's votes and says when it concludes and who lost; `coordinator` keeps
every candidate's signed votes, starts disputes, issues this validator's statements and turns a
conclusion into relay-chain events (`DisputeInitiated`, `DisputeConcluded`, `Revert`, `Offence`),
offenders to disable and blocks to revert; `revert` finds those blocks in a block tree; `votes`
turns backing and approval votes into dispute statements.
"""
