"""Zombienet's test DSL (`.zndsl`), parsed line by line into steps the runner executes.

The grammar follows zombienet's own (`crates/parser/src/zombienet.pest`): headers
`Description:`, `Network: ./file.toml` (required) and `Creds: config|path`; comments (`#`,
`//`); and, one per line:

    NODE: is up [within N seconds]
    NODE: parachain P is registered [within N seconds]
    NODE: parachain P block height CMP N [within N seconds]
    NODE: reports METRIC CMP N [within N seconds]
    NODE: reports METRIC +|-|plus|minus METRIC CMP N [within N seconds]
    NODE: log line contains|matches [regex|glob] "PATTERN" [within N seconds]
    NODE: count of log lines containing|matching [regex|glob] "PATTERN" is [CMP] N [within ...]
    NODE: system event contains|matches [regex|glob] "PATTERN" [within N seconds]
    NODE: restart|pause|resume [after N seconds]
    sleep N seconds

and asyncback's link faults (no zombienet equivalent; they need a network whose links can be cut,
which `asyncback test` starts when a file has one of these lines):

    NODE: partition [reset]          cut NODE (or the group) off from every other node
    NODE: degrade [latency N ms] [jitter N ms] [loss N%]   impair every link of NODE
    heal                             lift every partition and degradation

CMP is `is`, `equals`, `is equal to`, `==`, `=`, `!=`, `is at least`, `at least`, `>=`, `is at
most`, `<=`, `is lower than`, `<`, `is greater than`, `greater than`, `>` (`is at most` and
`after` on pause/resume go beyond zombienet's grammar). `seconds` may be `secs` or `s`. METRIC
is a Prometheus name with optional labels (`substrate_block_height{status="finalized"}`), or
zombienet's aliases `block height`/`best block`, `finalised height`/`finalised block`,
`peers`/`peers count`. NODE is a node or a node group; a line naming a group must hold on each
of its nodes. Patterns are case-insensitive regular expressions, as zombienet's are (both for
`contains` and `matches`), or globs over the whole line.

`system event` lines match the relay chain's recent events as the node's `system_events` RPC
method gives them (each a line of text: candidate events, disputes, `Revert`, offences, which
read "There is an offence reported: ...", and the blocks a validator reverted).

Lines zombienet has but asyncback cannot run (`js-script`, `ts-script`, `run`, `trace`,
`reports histogram`, runtime upgrades) are errors naming the line and why: a test never passes a
line it did not check.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from node.zombienet import read_named_file

DEFAULT_WITHIN_S = 10.0  # zombienet's DEFAULT_INDIVIDUAL_TEST_TIMEOUT
DEFAULT_RESTART_AFTER_S = 5.0  # zombienet restarts a node 5 s after killing it unless told


class ZndslError(ValueError):
    """A test file that cannot run; one line naming the file and line."""


OPS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    ">=": ("is at least", operator.ge), "<=": ("is at most", operator.le),
    ">": ("is greater than", operator.gt), "<": ("is lower than", operator.lt),
    "==": ("is", operator.eq), "!=": ("is not", operator.ne),
}
# Longest spelling first, so `is at least` is not read as `is`.
_OP_WORDS = [
    ("is at least", ">="), ("is at most", "<="), ("is lower than", "<"),
    ("is greater than", ">"), ("is equal to", "=="), ("at least", ">="), ("at most", "<="),
    ("lower than", "<"), ("greater than", ">"), ("equal to", "=="), ("equals", "=="),
    ("is", "=="), ("<=", "<="), (">=", ">="), ("==", "=="), ("!=", "!="), ("<", "<"),
    (">", ">"), ("=", "=="),
]
_OP_RE = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w, _ in _OP_WORDS)
CMP = rf"(?P<op>{_OP_RE})\s*(?P<target>-?\d+)"
WITHIN = r"(?:\s+within\s+(?P<within>\d+)\s*(?:seconds|secs|s))?"
AFTER = r"(?:\s+after\s+(?P<after>\d+)\s*(?:seconds|secs|s))?"
PATTERN = r"(?:(?P<kind>regex|glob)\s+)?\"(?P<pattern>[^\"]*)\""
ALIASES = {
    "blockheight": 'block_height{status="best"}', "block height": 'block_height{status="best"}',
    "best block": 'block_height{status="best"}',
    "finalised height": 'block_height{status="finalized"}',
    "finalised block": 'block_height{status="finalized"}',
    "peers count": "sub_libp2p_peers_count", "peers": "sub_libp2p_peers_count",
}
_ALIAS_RE = "|".join(re.escape(a).replace(r"\ ", r"\s+")
                     for a in sorted(ALIASES, key=len, reverse=True))
METRIC = rf"(?:{_ALIAS_RE}|[A-Za-z_:][A-Za-z0-9_:]*(?:\{{[^}}]*\}})?)"
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Comparison:
    op: str  # a key of OPS
    target: int

    def holds(self, value: float) -> bool:
        return OPS[self.op][1](value, self.target)

    def __str__(self) -> str:
        return f"{OPS[self.op][0]} {self.target}"


@dataclass(frozen=True)
class Metric:
    """A metric as a line names it: zombienet matches `name` with or without the series'
    namespace (`node_roles` is `substrate_node_roles`) and the labels exactly, leaving out a
    `chain` label."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Metric:
        text = ALIASES.get(" ".join(text.split()), text)
        name, _, rest = text.partition("{")
        labels: list[tuple[str, str]] = []
        body = rest.removesuffix("}").strip()
        pos = 0
        while pos < len(body):
            m = _LABEL.match(body, pos)
            if m is None:
                raise ValueError(f"bad labels in {text!r}")
            labels.append((m.group(1), m.group(2)))
            pos = m.end()
        return cls(name, tuple(sorted(labels)))

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        if name != self.name and not (name.endswith("_" + self.name)
                                      and "_" not in name[: -len(self.name) - 1]):
            return False
        wanted = dict(self.labels)
        return labels == wanted or {k: v for k, v in labels.items() if k != "chain"} == wanted

    def __str__(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.name}{{{labels}}}" if labels else self.name


@dataclass(frozen=True)
class Step:
    line: int
    text: str


@dataclass(frozen=True)
class NodeStep(Step):
    node: str


@dataclass(frozen=True)
class Timed(NodeStep):
    within: float | None  # seconds as written; None: zombienet's default

    @property
    def within_s(self) -> float:
        return DEFAULT_WITHIN_S if self.within is None else self.within


@dataclass(frozen=True)
class IsUp(Timed):
    pass


@dataclass(frozen=True)
class ParaRegistered(Timed):
    para_id: int


@dataclass(frozen=True)
class ParaHeight(Timed):
    para_id: int
    cmp: Comparison


@dataclass(frozen=True)
class Reports(Timed):
    metric: Metric
    cmp: Comparison
    # `reports A + B` / `reports A - B`: the second metric and its sign
    other: Metric | None = None
    sign: int = 1


@dataclass(frozen=True)
class LogMatch(Timed):
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class LogCount(Timed):
    pattern: re.Pattern[str]
    cmp: Comparison


@dataclass(frozen=True)
class SystemEvent(Timed):
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Action(NodeStep):
    verb: str  # restart | pause | resume
    after: float | None  # seconds as written

    @property
    def after_s(self) -> float:
        if self.after is not None:
            return self.after
        return DEFAULT_RESTART_AFTER_S if self.verb == "restart" else 0.0


@dataclass(frozen=True)
class Sleep(Step):
    seconds: float


@dataclass(frozen=True)
class Partition(NodeStep):
    mode: str  # "hold": what crosses is delayed to the heal; "reset": connections are closed


@dataclass(frozen=True)
class Degrade(NodeStep):
    latency_ms: float
    jitter_ms: float
    loss: float  # a fraction


@dataclass(frozen=True)
class Heal(Step):
    pass


LINK_STEPS = (Partition, Degrade, Heal)


@dataclass(frozen=True)
class ZndslFile:
    path: Path
    network: str  # as written, relative to the test file
    description: str | None = None
    creds: str | None = None
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def network_path(self) -> Path:
        return (self.path.parent / self.network).resolve()

    def node_names(self) -> list[tuple[int, str]]:
        return [(s.line, s.node) for s in self.steps if isinstance(s, NodeStep)]

    @property
    def needs_link_faults(self) -> bool:
        return any(isinstance(s, LINK_STEPS) for s in self.steps)


UNSUPPORTED = [
    (r"js-script\b", "js-script runs JavaScript against polkadot.js, which asyncback nodes "
                     "do not serve"),
    (r"ts-script\b", "ts-script runs TypeScript against polkadot.js, which asyncback nodes "
                     "do not serve"),
    (r"run\s+\S", "shell scripts are not run by asyncback test"),
    (r"trace\s+with\b", "asyncback nodes export no Jaeger traces"),
    (r"reports\s+histogram\b", "histogram sample counts are not supported"),
    (r"parachain\s+\d+\s+perform\b", "asyncback paras have no runtime upgrades"),
]

NODE_RE = re.compile(r"^(?P<node>[A-Za-z0-9_-]+)\s*:\s*(?P<rest>.*)$")
SLEEP_RE = re.compile(r"^sleep\s+(?P<s>\d+)\s*(?:seconds|secs|s)$")
HEAL_RE = re.compile(r"^heal$")
_MS = r"\s*(?:ms|milliseconds)"
HEADER_RE = re.compile(r"^(?P<key>Description|Network|Creds)\s*:\s*(?P<value>.*)$")
PATH_RE = re.compile(r"^\.{0,2}/[A-Za-z0-9/_.-]+$")
FORMS: list[tuple[re.Pattern[str], str]] = [(re.compile(rf"^{p}$"), kind) for p, kind in [
    (rf"is\s+up{WITHIN}", "up"),
    (rf"parachain\s+(?P<para>\d+)\s+is\s+registered{WITHIN}", "registered"),
    (rf"parachain\s+(?P<para>\d+)\s+block\s+height\s+{CMP}{WITHIN}", "height"),
    (rf"reports\s+(?P<a>{METRIC})\s*(?P<sign>\+|-|plus|minus)\s*(?P<b>{METRIC})\s+{CMP}{WITHIN}",
     "calc"),
    (rf"reports\s+(?P<a>{METRIC})\s+{CMP}{WITHIN}", "reports"),
    (rf"log\s+line\s+(?:contains|matches)\s+{PATTERN}{WITHIN}", "log"),
    (rf"count\s+of\s+log\s+lines\s+(?:containing|matching)\s+{PATTERN}\s+is\s+"
     rf"(?:{CMP}|(?P<count>-?\d+)){WITHIN}", "count"),
    (rf"system\s+event\s+(?:contains|matches)\s+{PATTERN}{WITHIN}", "event"),
    (rf"(?P<verb>restart|pause|resume){AFTER}", "action"),
    (r"partition(?:\s+(?P<mode>reset|hold))?", "partition"),
    (rf"degrade(?:\s+latency\s+(?P<latency>\d+(?:\.\d+)?){_MS})?"
     rf"(?:\s+jitter\s+(?P<jitter>\d+(?:\.\d+)?){_MS})?"
     r"(?:\s+loss\s+(?P<loss>\d+(?:\.\d+)?)\s*%)?", "degrade"),
]]


def parse_file(path: str | Path) -> ZndslFile:
    path = Path(path)
    return parse(read_named_file(path, "test file", ZndslError), path)


def parse(text: str, path: Path) -> ZndslFile:
    headers: dict[str, tuple[int, str]] = {}
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue

        def fail(why: str, line: str = line, number: int = number) -> ZndslError:
            return ZndslError(f"{path}:{number}: {why}: {line}")

        header = HEADER_RE.match(line)
        if header is not None:
            key, value = header["key"], header["value"].strip()
            if key in headers:
                raise fail(f"a second {key} header (the first is on line {headers[key][0]})")
            if key == "Network" and not PATH_RE.match(value):
                raise fail("Network needs a file path such as ./network.toml")
            headers[key] = (number, value)
            continue
        steps.append(_step(line, number, fail))
    if "Network" not in headers:
        raise ZndslError(f"{path}: no Network header (Network: ./network.toml)")
    return ZndslFile(path, headers["Network"][1],
                    headers.get("Description", (0, None))[1],
                    headers.get("Creds", (0, None))[1], tuple(steps))


def _step(line: str, number: int, fail: Callable[[str], ZndslError]) -> Step:
    sleep = SLEEP_RE.match(line)
    if sleep is not None:
        return Sleep(number, line, float(sleep["s"]))
    if HEAL_RE.match(line):
        return Heal(number, line)
    m = NODE_RE.match(line)
    if m is None:
        raise fail("not a zombienet test line (NODE: assertion, or sleep N seconds)")
    node, rest = m["node"], m["rest"].strip()
    for pattern, why in UNSUPPORTED:
        if re.match(pattern, rest):
            raise fail(f"unsupported: {why}")
    for form, kind in FORMS:
        f = form.match(rest)
        if f is not None:
            return _build(kind, f, node, line, number, fail)
    raise fail("not an assertion asyncback knows (see `asyncback test --help`)")


def _cmp(m: re.Match[str]) -> Comparison:
    words = " ".join(m["op"].split())
    return Comparison(dict(_OP_WORDS)[words], int(m["target"]))


def _pattern(m: re.Match[str], fail: Callable[[str], ZndslError]) -> re.Pattern[str]:
    text = m["pattern"]
    if m["kind"] == "glob":
        return re.compile(fnmatch.translate(text), re.IGNORECASE)
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise fail(f"bad regular expression ({exc})") from None


def _build(kind: str, m: re.Match[str], node: str, line: str, number: int,
           fail: Callable[[str], ZndslError]) -> Step:
    within = float(m["within"]) if "within" in m.re.groupindex and m["within"] else None
    if kind == "up":
        return IsUp(number, line, node, within)
    if kind == "registered":
        return ParaRegistered(number, line, node, within, int(m["para"]))
    if kind == "height":
        return ParaHeight(number, line, node, within, int(m["para"]), _cmp(m))
    if kind in ("reports", "calc"):
        try:
            metric = Metric.parse(m["a"])
            other = Metric.parse(m["b"]) if kind == "calc" else None
        except ValueError as exc:
            raise fail(str(exc)) from None
        sign = -1 if kind == "calc" and m["sign"] in ("-", "minus") else 1
        return Reports(number, line, node, within, metric, _cmp(m), other, sign)
    if kind == "log":
        return LogMatch(number, line, node, within, _pattern(m, fail))
    if kind == "event":
        return SystemEvent(number, line, node, within, _pattern(m, fail))
    if kind == "count":
        cmp = _cmp(m) if m["op"] else Comparison("==", int(m["count"]))
        return LogCount(number, line, node, within, _pattern(m, fail), cmp)
    if kind == "partition":
        return Partition(number, line, node, m["mode"] or "hold")
    if kind == "degrade":
        latency, jitter, loss = (float(m[k] or 0) for k in ("latency", "jitter", "loss"))
        if not (latency or jitter or loss):
            raise fail("degrade needs a latency, a jitter or a loss")
        if loss >= 100:
            raise fail("loss must be below 100%")
        return Degrade(number, line, node, latency, jitter, loss / 100)
    after = float(m["after"]) if m["after"] else None
    return Action(number, line, node, m["verb"], after)
