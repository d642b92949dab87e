"""The HTML leaderboard of a benchmark run: an overview, then per task a table and heatmaps.

Built from ``results.json`` alone; every value that comes from the run (names, numbers, reasons) is
escaped. Heatmaps are HTML tables with coloured cells (no images, no scripts): rows are hooks, columns
cells in time (or decoder positions), the colour the effect (recovery for denoising, loss for noising).
"""

from __future__ import annotations

from pathlib import Path

from otoscope.bench.results import SCORE_KEYS
from otoscope.report.html import esc, fmt, page, section, table

CSS = """
.heat { border-collapse: collapse; margin: 4px 12px 12px 0; display: inline-table; vertical-align: top; }
.heat td { width: 14px; height: 14px; padding: 0; border: 1px solid #fff; }
.heat td.in { outline: 2px solid #1d2330; outline-offset: -2px; }
.heat th { font-size: 11px; font-weight: normal; background: none; padding: 0 6px 0 0; text-align: right; }
.heat caption { font-size: 12px; text-align: left; }
td.score { color: #1d2330; }
"""
LABELS = {"spearman": "Spearman", "pearson": "Pearson", "top_recall": "top-5 recall", "region_share": "share in region",
          "time_fraction": "time / exact"}


def _colour(value) -> str:
    """Effect → background: white at 0, red toward +1, blue toward −1 (clipped)."""
    if value is None:
        return "#eeeeee"
    v = max(-1.0, min(1.0, float(value)))
    fade = int(255 * (1 - abs(v)))
    return f"rgb(255,{fade},{fade})" if v >= 0 else f"rgb({fade},{fade},255)"


def _score_colour(value) -> str:
    """A correlation or recall in [−1, 1] → a green (high) to white (0) background."""
    if value is None:
        return "#ffffff"
    v = max(0.0, min(1.0, float(value)))
    return f"rgb({int(255 - 120 * v)},{int(255 - 40 * v)},{int(255 - 120 * v)})"


def heatmap(example: dict, method: str) -> str:
    """One method's effect map of an example unit: rows = hooks, columns = cells in order."""
    rows: dict[str, list[tuple]] = {}
    for cell, value, inside in zip(example["cells"], example["effects"][method], example["inside"]):
        rows.setdefault(cell["hook"], []).append((cell, value, inside))
    body = []
    for hook, cells in rows.items():
        tds = []
        for cell, value, inside in cells:
            where = (f"{cell['seconds'][0]:.2f}–{cell['seconds'][1]:.2f} s" if cell.get("seconds")
                     else f"tokens {cell['tokens'][0]}–{cell['tokens'][1]}" if cell.get("tokens") else "")
            tip = f"{hook} {where}: {fmt(value, 3)}"
            tds.append(f'<td class="{"in" if inside else ""}" style="background:{_colour(value)}" title="{esc(tip)}"></td>')
        label = hook.replace(".hook_resid_post", "").replace("encoder.blocks.", "enc ").replace("decoder.blocks.", "dec ")
        body.append(f"<tr><th>{esc(label)}</th>{''.join(tds)}</tr>")
    return f'<table class="heat"><caption>{esc(method)}</caption>{"".join(body)}</table>'


def _overview(results: dict) -> str:
    tasks = list(results["tasks"])
    head = "".join(f"<th>{esc(results['tasks'][t]['title'])}</th>" for t in tasks)
    body = []
    for model in results["models"]:
        for method in results["methods"]:
            cells = []
            for t in tasks:
                entry = results["tasks"][t]["models"].get(model)
                value = entry["methods"][method]["spearman"] if entry else None
                cells.append(f'<td class="score" style="background:{_score_colour(value)}">{fmt(value, 2)}</td>')
            mean = results["overall"][model][method]
            body.append(f'<tr><td class="text">{esc(model)}</td><td class="text">{esc(method)}</td>{"".join(cells)}'
                        f"<td>{fmt(mean['spearman'], 2)}</td><td>{fmt(mean['top_recall'], 2)}</td>"
                        f"<td>{fmt(mean['time_fraction'], 3)}</td></tr>")
    legend = "".join(f"<li><b>{esc(m)}</b>: {esc(d)}</li>" for m, d in results["method_descriptions"].items())
    return (f"<p class='note'>Spearman correlation of each method's cell effects with exact patching, mean over "
            f"pairs (and directions). Exact against itself is 1 by construction.</p>"
            f"<table><thead><tr><th class='text'>model</th><th class='text'>method</th>{head}<th>mean Spearman</th>"
            f"<th>mean top-5 recall</th><th>mean time / exact</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<ul class='note'>{legend}</ul>")


def _task_section(name: str, task: dict, methods: list[str]) -> str:
    dropped = ", ".join(f"{model} {n}" for model, n in task["dropped_at_build"].items())
    parts = [f"<p>{esc(task['question'])}</p>",
             f"<p class='note'>{esc(task['pairs'])} pairs kept of {esc(task['candidates'])} candidates; dropped at "
             f"build (clean run wrong): {esc(dropped or 'none')}. Directions: "
             f"{esc(', '.join(task['directions']))}. Hooks swept: {esc(task['hooks'])}.</p>"]
    for model, entry in task["models"].items():
        parts.append(f"<h3>{esc(model)}</h3><p class='note'>{esc(entry['units'])} units scored, {esc(entry['dropped'])} "
                     f"dropped at run time; mean metric clean {fmt(entry['clean'], 3)}, corrupt "
                     f"{fmt(entry['corrupt'], 3)}.</p>")
        rows = [{"method": m, **{k: entry["methods"][m][k] for k in SCORE_KEYS}, "n": entry["methods"][m]["n"],
                 "seconds": entry["methods"][m]["seconds"]} for m in methods if m in entry["methods"]]
        parts.append(table([("method", "method"), *[(k, LABELS[k]) for k in SCORE_KEYS], ("seconds", "mean s"),
                            ("n", "n")], rows, text_columns=("method",)))
        if entry.get("grounding"):
            parts.append("<p class='note'>Grounding coefficient per decoder layer (mean over pairs; 1 = listens, "
                         "0 = follows the prompt):</p>")
            parts.append(table([("layer", "layer"), ("gc", "gc"), ("delta_audio", "Δaudio"), ("delta_text", "Δtext"),
                                ("n", "gc defined"), ("pairs", "pairs")], entry["grounding"]))
        example = entry.get("example")
        if example:
            parts.append(f"<p class='note'>Effect maps of pair {esc(example['pair'])} ({esc(example['direction'])}); "
                         "red = the patch moves the metric toward the clean run's, framed cells lie in the expected "
                         "region.</p>")
            parts.append("".join(heatmap(example, m) for m in methods if m in example["effects"]))
    return section(f"task-{name}", task["title"], "".join(parts))


def render(results: dict) -> str:
    """The leaderboard page."""
    suite = results["suite"]
    subtitle = (f"{suite['name']} v{suite['version']}, seed {suite['seed']}, {suite['pairs_per_task']} pairs per task"
                f"{' (quick)' if suite['quick'] else ''}, {suite['frames_per_cell']} frames per cell, "
                f"{_window(suite)}models: "
                f"{', '.join(results['models'])}")
    run = results.get("run") or {}
    partial = ("" if run.get("complete", True) else
               f"<p class='na'>Partial run: {esc(run.get('units_run', 0) + run.get('units_resumed', 0))} units finished "
               "so far; rerun the same command to continue.</p>")
    sections = [section("overview", "Overview", partial + _overview(results))]
    sections += [_task_section(n, t, results["methods"]) for n, t in results["tasks"].items()]
    nav = [("overview", "Overview")] + [(f"task-{n}", t["title"]) for n, t in results["tasks"].items()]
    html = page("Audio causal benchmark", subtitle, nav, sections)
    return html.replace("</style>", CSS + "</style>", 1)


def _window(suite: dict) -> str:
    """What Whisper's encoder saw — its whole 30 s window or the first seconds of it — or nothing when no model
    of the run has a fixed window (results without ``windowed_models`` predate the key: every model had one)."""
    if suite.get("windowed_models") == []:
        return ""
    seconds = suite.get("encoder_seconds")
    return "the whole 30 s encoder window; " if seconds is None else f"a {seconds:g} s encoder window; "


def write_leaderboard(path: str | Path, results: dict) -> Path:
    """Write the leaderboard HTML atomically."""
    from otoscope._io import write_text_atomic

    write_text_atomic(path, render(results))
    return Path(path)
