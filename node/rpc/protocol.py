"""The JSON-RPC 2.0 envelope, apart from any transport: one request or a batch in, the response
text out (None when every request was a notification). Nothing a client sends escapes as an
exception: bad JSON is -32700, a malformed request -32600, a failing method -32603."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from node.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError

MAX_BATCH = 256

# (method name, raw params) -> result; raises RpcError for an error response.
Call = Callable[[str, Any], Awaitable[Any]]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity: Python accepts them, JSON does not


def error_text(request_id: Any, error: RpcError) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error.to_json()})


def _valid_id(value: Any) -> bool:
    # Numbers with fractions and booleans are not ids worth echoing back.
    return value is None or isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool))


async def handle_payload(raw: bytes | str, call: Call, *, log: Any = None) -> str | None:
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except Exception:  # ValueError, UnicodeDecodeError, RecursionError on deep nesting, ...
        return error_text(None, RpcError(PARSE_ERROR, "Parse error"))
    if not isinstance(payload, list):
        return await _handle_one(payload, call, log)
    if not payload:
        return error_text(None, RpcError(INVALID_REQUEST, "Invalid request: empty batch"))
    if len(payload) > MAX_BATCH:
        return error_text(None, RpcError(
            INVALID_REQUEST, f"Invalid request: batch of more than {MAX_BATCH} requests"))
    parts = []
    for request in payload:
        part = await _handle_one(request, call, log)
        if part is not None:
            parts.append(part)
        await trio.lowlevel.checkpoint()  # a long batch must not starve the node's own tasks
    return "[" + ",".join(parts) + "]" if parts else None


async def _handle_one(request: Any, call: Call, log: Any) -> str | None:
    if not isinstance(request, dict):
        return error_text(None, RpcError(INVALID_REQUEST, "Invalid request: not an object"))
    request_id = request.get("id")
    if not _valid_id(request_id):
        return error_text(None, RpcError(INVALID_REQUEST, "Invalid request: bad id"))
    method, params = request.get("method"), request.get("params")
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str) \
            or not (params is None or isinstance(params, list | dict)):
        return error_text(request_id, RpcError(INVALID_REQUEST, "Invalid request"))
    notification = "id" not in request
    try:
        text = json.dumps({"jsonrpc": "2.0", "id": request_id,
                           "result": await call(method, params)})
    except RpcError as exc:
        text = error_text(request_id, exc)
    except Exception as exc:  # a bug in a method: answer, log, keep serving
        if log is not None:
            log.exception("rpc method failed", method=method)
        text = error_text(request_id, RpcError(INTERNAL_ERROR, "Internal error",
                                               type(exc).__name__))
    return None if notification else text
