"""The grouped bar chart of `bench.peers` (matplotlib, Agg backend, log scales)."""

from __future__ import annotations

from typing import Any

PANELS = (
    (
        "sequential call latency (us, lower is better)",
        ("call p50 small (us)", "call p99 small (us)", "call p50 64KiB (us)",
         "call p99 64KiB (us)"),
    ),
    ("pipelined calls/s (higher is better)",
     ("pipelined small (calls/s)", "pipelined 64KiB (calls/s)")),
    ("casts delivered/s (higher is better)",
     ("casts small (delivered/s)", "casts 64KiB (delivered/s)")),
)  # fmt: skip


def _short(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def plot(results: dict[str, Any], path: str) -> None:
    """Draw one panel per kind of measure, a bar per measured system in each group."""
    import matplotlib as mpl  # noqa: PLC0415 - only with --plot

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    systems = [e for e in results["systems"].values() if "median" in e]
    fig, axes = plt.subplots(
        1, len(PANELS), figsize=(18, 6), gridspec_kw={"width_ratios": [2, 1, 1]}
    )
    colors = [plt.get_cmap("tab10")(i) for i in range(10)]
    width = 0.8 / max(1, len(systems))
    for ax, (title, measures) in zip(axes, PANELS, strict=True):
        for i, entry in enumerate(systems):
            xs = [g + (i - (len(systems) - 1) / 2) * width for g in range(len(measures))]
            values = [entry["median"][m] for m in measures]
            bars = ax.bar(xs, values, width, label=entry["label"], color=colors[i % 10])
            for bar, value in zip(bars, values, strict=True):
                ax.annotate(
                    _short(value), (bar.get_x() + bar.get_width() / 2, value),
                    ha="center", va="bottom", fontsize=7, rotation=90,
                    xytext=(0, 2), textcoords="offset points",
                )  # fmt: skip
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(measures)))
        ax.set_xticklabels([m.split(" (")[0].removeprefix("call ") for m in measures])
        ax.margins(y=0.25)
        ax.grid(axis="y", which="both", alpha=0.3)
    missing = [f"{e['label']}: {e['error']}" for e in results["systems"].values() if "error" in e]
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        "bench.peers: server in its own process, tcp loopback, medians"
        + ("\nnot measured: " + "; ".join(missing) if missing else ""),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
