"""The digest's chart: mentions per day, stacked by source, as a PNG.

Each bar is one day with its total written on top; the biggest sources
sit at the bottom and the legend lists them top to bottom as they are
stacked; a dashed mark on each bar shows the same day of the period
before, so "busier than usual" is read off the chart, not guessed.

matplotlib costs a few hundred milliseconds to import and only the digest
needs it, so it is imported inside `daily_volume_png`, never at module
level: a cron tick that sends no digest never loads it. The Agg backend is
forced there too, because earful runs from cron on servers without a
display, where any interactive backend would fail or hang.

The image has a fixed size (1000x500 px at 100 dpi): Slack previews and
email clients scale a known size predictably, and `bbox_inches="tight"` is
avoided because it changes the pixel size with the length of the labels.
"""

from __future__ import annotations

import io
import textwrap
from typing import Mapping, Sequence

WIDTH_PX = 1000
HEIGHT_PX = 500
DPI = 100

# Colour-blind-safe qualitative palettes: Okabe-Ito, then Paul Tol's "muted" for what Okabe-Ito lacks; grey is "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#332288", "#882255", "#44AA99", "#999933")
MAX_SERIES = len(PALETTE) + 1  # 11 sources by name, then one "other": more colours blur into each other
OTHER_COLOUR = "#999999"
PREVIOUS_COLOUR = "#333333"
NOTE_COLOUR = "#555555"
NOTE_CHARS = 150  # a line of 9 pt small print that fits the image's width


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed: the digest goes out without its chart."""


def _plain(text: str) -> str:
    """Label text shown literally: matplotlib reads `$...$` as mathtext."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def _top_series(series: Mapping[str, Sequence[int]], limit: int) -> list[tuple[str, list[int], str]]:
    """The `limit - 1` biggest series by total, then one "other" series for the rest."""
    ranked = sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    if len(ranked) <= min(limit, len(PALETTE)):
        return [(name, list(values), PALETTE[i]) for i, (name, values) in enumerate(ranked)]
    limit = min(limit, len(PALETTE) + 1)
    kept = ranked[: limit - 1]
    rest = ranked[limit - 1:]
    other = [sum(values) for values in zip(*(v for _, v in rest))]
    shown = [(name, list(values), PALETTE[i]) for i, (name, values) in enumerate(kept)]
    shown.append((f"other ({len(rest)} sources)", other, OTHER_COLOUR))
    return shown


def daily_volume_png(days: Sequence[str], series: Mapping[str, Sequence[int]], title: str, *,
                     previous: Sequence[int] | None = None, previous_label: str = "previous period", note: str = "") -> bytes:
    """A stacked bar chart: one bar per day label in `days`, one colour per source, its total on top.

    `series` maps a display name to one count per day (same length as
    `days`); `previous`, when given, is the total of each day of the period
    before, drawn as a dashed mark labelled `previous_label`; `note` is a
    line of small print under the chart. With nothing to show the chart
    says so instead of drawing empty axes that look broken.
    """
    for name, values in [*series.items(), *([("previous", previous)] if previous is not None else [])]:
        if len(values) != len(days):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(days)} days")
    try:
        import matplotlib
    except ImportError as exc:  # an optional dependency: the digest still goes out
        raise ChartUnavailable("matplotlib is not installed (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    # A Figure without pyplot: no global figure registry, nothing to leak between calls.
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    bottoms = [0] * len(days)
    drawn = _top_series(series, MAX_SERIES)
    for name, values, colour in drawn:
        if not any(values):
            continue
        axes.bar(positions, values, bottom=bottoms, color=colour, label=_plain(name), width=0.7)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    handles, labels = axes.get_legend_handles_labels()
    handles, labels = handles[::-1], labels[::-1]  # the legend reads top to bottom, like the stack
    if previous is not None:
        dashes = (0, (4, 2))
        axes.hlines(previous, [p - 0.42 for p in positions], [p + 0.42 for p in positions], colors=PREVIOUS_COLOUR,
                    linestyles=dashes, linewidth=1.6, zorder=3)
        handles.append(Line2D([], [], color=PREVIOUS_COLOUR, linestyle=dashes, linewidth=1.6))
        labels.append(_plain(previous_label))
    highest = max([*bottoms, *(previous or ())], default=0)
    axes.set_xticks(positions, [_plain(d) for d in days])
    axes.set_xlim(-0.5, max(len(days), 1) - 0.5)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("mentions per day")
    axes.set_title(_plain(title), loc="left", fontsize=13)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if note:
        figure.supxlabel(_plain(textwrap.fill(note, NOTE_CHARS)), x=0.01, ha="left", fontsize=9, color=NOTE_COLOUR)
    if highest:
        for position, total in zip(positions, bottoms):
            axes.text(position, total + highest * 0.015, str(total), ha="center", va="bottom", fontsize=10,
                      fontweight="bold", color="#222222", zorder=4,
                      bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85})
        axes.set_ylim(0, highest * 1.12 + 0.5)  # room for the totals above the tallest bar
        axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9)
    else:
        axes.set_ylim(0, 1)
        axes.text(0.5, 0.5, "No mentions in this period", transform=axes.transAxes, ha="center", va="center",
                  fontsize=14, color="#666666")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
