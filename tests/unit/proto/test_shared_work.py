"""Shared pure work (`proto.shared_work`): off unless installed, a result computed once per key
while installed, failures never kept, and signature checks counted either way."""

from __future__ import annotations

import pytest

from proto.keys import SIGNATURE_CHECKS, Keypair, verify
from proto.shared_work import SharedWork, shared, sharing, sharing_active


def test_nothing_is_shared_unless_installed() -> None:
    calls: list[int] = []
    assert not sharing_active()
    for _ in range(3):
        assert shared("k", "key", lambda: calls.append(1) or 7) == 7
    assert len(calls) == 3


def test_installed_work_computes_each_key_once_and_uninstalls() -> None:
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    with sharing(SharedWork()) as work:
        assert work is not None
        assert [shared("k", k, lambda k=k: compute(k)) for k in "abab"] == list("ABAB")
        assert work.counts() == {"k": {"computed": 2, "reused": 2}}
    assert calls == ["a", "b"]
    assert not sharing_active()


def test_a_failure_is_recomputed_by_every_caller() -> None:
    calls: list[int] = []

    def fail() -> int:
        calls.append(1)
        raise ValueError("bad input")

    with sharing(SharedWork()):
        for _ in range(2):
            with pytest.raises(ValueError):
                shared("k", "key", fail)
    assert len(calls) == 2


def test_the_oldest_half_goes_when_capacity_is_exceeded() -> None:
    work = SharedWork(capacity=4)
    for k in range(5):
        work.get("k", k, lambda k=k: k)
    work.get("k", 4, lambda: -1)
    assert work.get("k", 0, lambda: -1) == -1  # evicted, so recomputed
    assert work.counts()["k"] == {"computed": 6, "reused": 1}


def test_kinds_with_large_results_keep_fewer() -> None:
    work = SharedWork(capacity=16, large_capacity=4)
    for k in range(5):
        work.get("large", k, lambda k=k: k, large=True)
        work.get("small", k, lambda k=k: k)
    assert work.get("large", 0, lambda: -1, large=True) == -1  # past 4: the oldest half went
    assert work.get("small", 0, lambda: -1) == 0  # 5 of 16
    with pytest.raises(ValueError):
        SharedWork(large_capacity=1)


def test_signature_checks_are_shared_only_while_installed() -> None:
    key = Keypair.from_name("alice")
    sig = key.sign(b"TEST", b"payload")
    asked, run = SIGNATURE_CHECKS.requested, SIGNATURE_CHECKS.performed
    assert verify(key.public, b"TEST", b"payload", sig)
    assert verify(key.public, b"TEST", b"payload", sig)
    assert (SIGNATURE_CHECKS.requested - asked, SIGNATURE_CHECKS.performed - run) == (2, 2)
    with sharing(SharedWork()):
        for _ in range(3):
            assert verify(key.public, b"TEST", b"payload", sig)
            assert not verify(key.public, b"TEST", b"other", sig)
    assert (SIGNATURE_CHECKS.requested - asked, SIGNATURE_CHECKS.performed - run) == (8, 4)
