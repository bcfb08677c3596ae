"""Evaluation reports: a bar chart of Task/Agent/Consistency/Avg per model and a markdown summary."""
from __future__ import annotations

from pathlib import Path

AXES = ("task", "agent", "consistency", "avg")


def bar_chart(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(names), 3.6), dpi=100)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        s = results[name]
        vals = [s[a] for a in AXES]
        err = [[v - s[f"{a}_ci95"][0] for a, v in zip(AXES, vals)], [s[f"{a}_ci95"][1] - v for a, v in zip(AXES, vals)]]
        ax.bar([j + i * width for j in range(len(AXES))], vals, width, yerr=err, capsize=2, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(AXES))], [a.capitalize() for a in AXES])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate (95% CI)")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(names), 3), frameon=False)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def markdown(title: str, results: dict[str, dict], chart: str, gif: str, notes: list[str]) -> str:
    lines = [f"# {title}", "", "| model | n | Task | Agent | Consistency | Avg |", "|---|---|---|---|---|---|"]
    for name, s in results.items():
        cells = [f"{s[a]:.3f} [{s[f'{a}_ci95'][0]:.2f}, {s[f'{a}_ci95'][1]:.2f}]" for a in AXES]
        lines.append(f"| {name} | {s['n']} | " + " | ".join(cells) + " |")
    lines += ["", "Brackets: 95% intervals (Wilson for rates, normal for Avg).", "", f"![scores]({chart})", "",
              f"Samples, one column per model, same tasks in each row: ![samples]({gif})", ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
