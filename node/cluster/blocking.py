"""`SyncCluster`: the `Cluster` for plain (non-trio) scripts and sync test fixtures.

    with SyncCluster(default_network(host), "runs/x") as cluster:
        cluster.wait_relay_height(10)
        print(cluster["ferdie"].rpc("system_health"))
        cluster.assert_para_throughput(15, {2000: range(14, 16)})

It runs a trio loop on a background thread that enters the `Cluster` and stays in it until the
`with` block ends; every attribute is read, and every method called, on that loop through
`trio.from_thread` (coroutines are awaited there and their results returned), so the calling
thread blocks while the loop does the work. Node handles come back wrapped the same way. One loop
thread for the cluster's whole life matters beyond convenience: the nodes are forked from it, and
the kernel's parent-death signal is tied to the thread that forked (see `process`); it is a
daemon thread, so even an interpreter that exits without leaving the `with` block takes the nodes
with it.

Leaving the block (also on an exception or Ctrl-C in the calling thread) stops the network as
`Cluster` does. Calls are not meant to be made from the loop thread itself, nor concurrently from
several threads (they are serialised on the loop but interleave).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from node.cluster.handle import NodeBase
from node.cluster.launcher import Cluster
from node.cluster.spec import NetworkSpec


def _wrap(value: Any, token: trio.lowlevel.TrioToken) -> Any:
    if isinstance(value, NodeBase):
        return Blocking(value, token)
    if isinstance(value, list) and value and all(isinstance(v, NodeBase) for v in value):
        return [Blocking(v, token) for v in value]
    if isinstance(value, dict) and value and all(isinstance(v, NodeBase)
                                                 for v in value.values()):
        return {k: Blocking(v, token) for k, v in value.items()}
    return value


def _unwrap(args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments as the loop side wants them: a handle passed back is the handle itself."""
    def one(v: Any) -> Any:
        return object.__getattribute__(v, "_target") if isinstance(v, Blocking) else v
    return tuple(one(a) for a in args), {k: one(v) for k, v in kwargs.items()}


class Blocking:
    """`target`'s attributes and methods, used from another thread than its trio loop's."""

    def __init__(self, target: Any, token: trio.lowlevel.TrioToken) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_token", token)

    def __getattr__(self, name: str) -> Any:
        token = self._token
        value = trio.from_thread.run_sync(getattr, self._target, name, trio_token=token)
        if inspect.iscoroutinefunction(value):
            def call_async(*args: Any, **kwargs: Any) -> Any:
                args, kwargs = _unwrap(args, kwargs)

                async def run() -> Any:
                    return await value(*args, **kwargs)
                return _wrap(trio.from_thread.run(run, trio_token=token), token)
            return call_async
        if callable(value) and not isinstance(value, type):
            def call(*args: Any, **kwargs: Any) -> Any:
                args, kwargs = _unwrap(args, kwargs)
                return _wrap(trio.from_thread.run_sync(lambda: value(*args, **kwargs),
                                                       trio_token=token), token)
            return call
        return _wrap(value, token)

    def __getitem__(self, key: Any) -> Any:
        return _wrap(trio.from_thread.run_sync(lambda: self._target[key],
                                               trio_token=self._token), self._token)

    def __iter__(self) -> Any:
        return iter(_wrap(trio.from_thread.run_sync(lambda: list(self._target),
                                                    trio_token=self._token), self._token))

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


class SyncCluster:
    def __init__(self, spec: NetworkSpec, run_dir: Path | str, **options: Any) -> None:
        """`options` are `Cluster`'s."""
        self.cluster = Cluster(spec, run_dir, **options)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._leave: trio.Event | None = None
        self._error: BaseException | None = None
        self._proxy: Blocking | None = None

    def __enter__(self) -> Blocking:
        """The cluster, started, as a `Blocking` proxy."""
        entered = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(entered,), daemon=True,
                                        name=f"cluster {self.cluster.spec.name}")
        self._thread.start()
        entered.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        assert self._token is not None
        self._proxy = Blocking(self.cluster, self._token)
        return self._proxy

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the network and the loop thread (what leaving the `with` block does)."""
        thread, leave, token = self._thread, self._leave, self._token
        if thread is None or not thread.is_alive():
            return
        if leave is not None and token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(leave.set, trio_token=token)
        thread.join()
        if self._error is not None:
            raise self._error

    def _run(self, entered: threading.Event) -> None:
        try:
            trio.run(self._main, entered)
        except BaseException as exc:
            self._error = exc
        finally:
            entered.set()

    async def _main(self, entered: threading.Event) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._leave = trio.Event()
        async with self.cluster:
            entered.set()
            await self._leave.wait()

