"""Bars of a benchmark's rows (``--plot FILE.png``): a group per measure, ours beside the floor.

matplotlib is optional (``pip install -e '.[bench]'``): without it, ``--plot``
stops the run before it starts, with one line saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench._harness._report import Row

MISSING = "--plot needs matplotlib: pip install -e '.[bench]'"


def require_matplotlib() -> None:
    """Exit with one line unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        raise SystemExit(MISSING) from None


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    require_matplotlib()
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


def plot_rows(path: str, title: str, rows: Sequence[Row]) -> None:
    """One panel per unit; in each, a group of bars per measure, one bar per series.

    The floor's bars are grey and hatched; a panel whose values span more than
    a factor of 30 gets a log scale.
    """
    plt = pyplot()
    panels: dict[str, list[Row]] = {}
    for row in rows:
        panels.setdefault(row.unit, []).append(row)
    series = list(dict.fromkeys(name for row in rows for name in row.values))
    floors = {row.floor for row in rows if row.floor is not None}
    colors = {
        name: "0.6" if name in floors else plt.get_cmap("tab10")(i % 10)
        for i, name in enumerate(n for n in series if n not in floors)
    }
    colors.update(dict.fromkeys(floors, "0.6"))
    widths = [max(1, len(panel)) for panel in panels.values()]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(8.0, 1.3 * sum(widths) + 2), 5.5),
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )  # fmt: skip
    width = 0.8 / max(1, len(series))
    for ax, (unit, panel) in zip(axes[0], panels.items(), strict=True):
        for i, name in enumerate(series):
            xs, values = [], []
            for g, row in enumerate(panel):
                if name in row.values:
                    xs.append(g + (i - (len(series) - 1) / 2) * width)
                    values.append(row.values[name])
            if not xs:
                continue
            bars = ax.bar(
                xs, values, width, label=name, color=colors[name],
                hatch="//" if name in floors else None, edgecolor="0.3", linewidth=0.5,
            )  # fmt: skip
            for bar, value in zip(bars, values, strict=True):
                ax.annotate(
                    _short(value), (bar.get_x() + bar.get_width() / 2, value),
                    ha="center", va="bottom", fontsize=7, rotation=90,
                    xytext=(0, 2), textcoords="offset points",
                )  # fmt: skip
        positive = [v for row in panel for v in row.values.values() if v > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_yscale("log")
        ax.set_xticks(range(len(panel)))
        ax.set_xticklabels(
            [row.measure + ("\n" + ("met" if row.met else "NOT met") if row.met is not None
                            else "") for row in panel],
            fontsize=8, rotation=20, ha="right",
        )  # fmt: skip
        ax.set_ylabel(unit or "value")
        ax.margins(y=0.2)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
