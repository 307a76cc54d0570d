"""``results.json`` and the markdown table ``results.md`` of a fine-tuning search."""

import json
import os

__all__ = ["markdown_table", "write_results"]

_SHORT = {"learning_rate": "lr", "epochs": "epochs", "batch_size": "batch", "weight_decay": "wd",
          "warmup_proportion": "warm-up", "layer_decay": "layer decay"}


def _fmt(value, key=""):
    """A metric x100; a threshold (QA's ``best_f1_thresh``: null odds, not a fraction) as it is."""
    if value is None:
        return "—"
    return f"{value:.4g}" if key.endswith("_thresh") else f"{100 * value:.2f}"


def markdown_table(results):
    """A markdown summary: one row per setting (median and per-seed dev metric), the best marked."""
    main = results["main_metric"]
    settings = results["settings"]
    varied = [k for k in _SHORT if len({json.dumps(s["config"].get(k)) for s in settings}) > 1] or ["learning_rate"]
    metric_keys = []
    for s in settings:
        metric_keys += [k for k in s["median"] if k not in metric_keys]
    seeds = results["seeds"]
    header = [_SHORT[k] for k in varied] + [f"{k} (median)" for k in metric_keys] + [f"{main} seed {s}" for s in seeds]
    lines = [f"# {results['task']}: fine-tuning results (dev, x100)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in settings:
        by_seed = {r["config"]["seed"]: (r.get("metrics") or {}).get(main) for r in s["runs"]}
        mark = " **(best)**" if s["config"] == results["best_config"] else ""
        cells = [f"{s['config'][k]:g}" for k in varied]
        cells += [_fmt(s["median"].get(k), k) for k in metric_keys]
        cells += [_fmt(by_seed.get(seed)) for seed in seeds]
        cells[0] += mark
        lines.append("| " + " | ".join(cells) + " |")
    best = results["best_config"]
    fixed = ", ".join(f"{_SHORT[k]} {best[k]:g}" for k in _SHORT if k not in varied)
    lines += ["", f"Selected by the median over seeds of dev {main}. Fixed: {fixed}, dropout {best['dropout']:g}, "
              f"clip {best['clip_norm']:g}, max_seq_length {results['max_seq_length']}.",
              "", "Best setting (median over seeds): " + ", ".join(
                  f"{k} {_fmt(results.get(k), k)}" for k in metric_keys)]
    if results.get("best_run"):
        run = results["best_run"]
        lines.append(f"Best single run: {run['run']} at step {run['best_step']}, checkpoint "
                     f"`{run['checkpoint']}`.")
    return "\n".join(lines) + "\n"


def write_results(results, output_dir):
    """Writes ``results.json`` and ``results.md`` into ``output_dir``; returns their paths."""
    json_path = os.path.join(output_dir, "results.json")
    md_path = os.path.join(output_dir, "results.md")
    tmp = json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, json_path)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(markdown_table(results))
    return json_path, md_path
