"""`timeline.png`: the pipeline of a real run, drawn as the seed's diagrams draw it.

Relay blocks on the x axis; one lane per para. Every included candidate is a bar from its relay
parent (×) through the block that backed it (●) to the block that included it (■), so the async
pipeline (backing of N+1 and inclusion of N in the same relay block) and the sync cadence (a
candidate every other block) can be seen at a glance. Needs the optional `report` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from node.report import BlockRecord

LANE_ROWS = 3  # candidates alternate over a few rows inside a lane so overlapping bars stay legible


def render_timeline(
    blocks: Sequence[BlockRecord],
    config: Mapping[str, Any],
    path: Path,
    max_blocks: int = 60,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = list(blocks)[-max_blocks:]
    first = shown[0].number if shown else 0
    included = [(b.number, i) for b in shown for i in b.included]
    paras = sorted({i.para_id for _, i in included} | {x.para_id for b in shown for x in b.backed})
    # A para with several cores (elastic scaling) has that many candidates in flight per relay
    # block, so its lane gets that many times the rows.
    rows = {p: LANE_ROWS * max([1, *(sum(1 for i in b.included if i.para_id == p)
                                     for b in shown)]) for p in paras}
    bases: dict[int, int] = {}
    top = 0
    for p in paras:
        bases[p] = top
        top += rows[p] + 1
    fig_h = 1.2 + 0.5 * max(LANE_ROWS + 1, top)
    fig, ax = plt.subplots(figsize=(14, fig_h))
    colors = plt.get_cmap("tab10")
    for lane, para in enumerate(paras):
        base, n_rows = bases[para], rows[para]
        ax.axhspan(base - 0.5, base + n_rows - 0.5, color=colors(lane % 10), alpha=0.06)
        # By inclusion block, then para number: with elastic scaling one relay block includes
        # several candidates of the same para (the records themselves do not order).
        ordered = sorted(((n, i) for n, i in included if i.para_id == para),
                         key=lambda item: (item[0], item[1].para_number))
        for k, (num, inc) in enumerate(ordered):
            y = base + (inc.para_number % n_rows)
            start = max(inc.relay_parent_number, first - 1)
            ax.plot([start, num], [y, y], color=colors(lane % 10), lw=2, alpha=0.7)
            ax.plot([inc.relay_parent_number], [y], "x", color="black", ms=6)
            ax.plot([inc.backed_in], [y], "o", color=colors(lane % 10), ms=6)
            ax.plot([num], [y], "s", color=colors(lane % 10), ms=6)
            if k % 2 == 0 or len(ordered) < 40:
                ax.annotate(f"#{inc.para_number}", (num, y), xytext=(3, 2),
                            textcoords="offset points", fontsize=7)
    ax.set_yticks([bases[p] + (rows[p] - 1) / 2 for p in paras])
    ax.set_yticklabels([f"para {p}" for p in paras])
    ax.set_xlabel("relay block")
    if shown:
        ax.set_xlim(first - 1.5, shown[-1].number + 1.5)
    ax.grid(axis="x", alpha=0.3)
    keys = ("max_candidate_depth", "allowed_ancestry_len", "lookahead", "cores_per_para", "slot_ms")
    desc = ", ".join(f"{k}={config[k]}" for k in keys if k in config)
    ax.set_title(f"asyncback pipeline — × relay parent, ● backed in, ■ included in\n{desc}",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
