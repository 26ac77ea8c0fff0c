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
    lane_height = LANE_ROWS + 1
    fig_h = 1.2 + 1.0 * max(1, len(paras)) * lane_height / 2
    fig, ax = plt.subplots(figsize=(14, fig_h))
    colors = plt.get_cmap("tab10")
    for lane, para in enumerate(paras):
        base = lane * lane_height
        ax.axhspan(base - 0.5, base + LANE_ROWS - 0.5, color=colors(lane % 10), alpha=0.06)
        for k, (num, inc) in enumerate(sorted((n, i) for n, i in included if i.para_id == para)):
            y = base + (inc.para_number % LANE_ROWS)
            start = max(inc.relay_parent_number, first - 1)
            ax.plot([start, num], [y, y], color=colors(lane % 10), lw=2, alpha=0.7)
            ax.plot([inc.relay_parent_number], [y], "x", color="black", ms=6)
            ax.plot([inc.backed_in], [y], "o", color=colors(lane % 10), ms=6)
            ax.plot([num], [y], "s", color=colors(lane % 10), ms=6)
            if k % 2 == 0 or len(included) < 40:
                ax.annotate(f"#{inc.para_number}", (num, y), xytext=(3, 2),
                            textcoords="offset points", fontsize=7)
    ax.set_yticks([lane * lane_height + (LANE_ROWS - 1) / 2 for lane in range(len(paras))])
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
