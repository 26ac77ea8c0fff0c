"""Approval checking (polkadot-sdk's approval-voting), pure.

After a candidate is included, validators outside its backing group are assigned to re-check it:
`criteria` draws each validator's assignments from a stand-in for the relay VRF (tranche 0 from
`RelayVRFModulo`, a delay tranche per core from `RelayVRFDelay`); `checking` decides from the
assignments and approvals seen so far which tranches a candidate needs (`tranches_to_approve`: a
checker silent for `no_show_slots` is a no-show and pulls in the next tranche) and whether it is
approved (`check_approval`); `voting` keeps that per relay block and candidate, imports signed
assignments and approvals, says when this validator's own assignment triggers, and gives the
finality target (`approved_ancestor`). Time is counted in ticks (`ticks`) passed in by the caller.
`waiting` holds gossip that came before its block, bounded in all and per peer.
"""
