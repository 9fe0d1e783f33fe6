"""Reads the committed result folders under `notebooks/results/` for the notebooks.

Each study folder has a README.md (question, command, commit, machine, date, reading) and one run
folder per run (`eval.csv`, `ledger.json`, often `config.json`, `eval.json` for a final 100-episode
evaluation, `about.json` with the command, commit, machine, date and wall time). The notebooks show
only numbers read here, at run time, and label each with its command, commit and date: from the
run's `about.json` where it has one, otherwise from its study's README.
"""

import csv
import json
import os
import re

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def path(*parts: str) -> str:
    return os.path.join(RESULTS, *parts)


def read_json(*parts: str):
    with open(path(*parts)) as f:
        return json.load(f)


def read_run(folder: str) -> dict:
    """One run folder (relative to results/): {"folder", "curve": eval.csv's rows, "ledger",
    "final": (mean return, episodes) from eval.json if present, else eval.csv's last row,
    "about": about.json or None, "config": config.json or the ledger's config}."""
    with open(path(folder, "eval.csv")) as f:
        curve = [{"env_steps": int(r["env_steps"]), "updates": int(r["updates"]),
                  "simulated": int(r["simulated"]), "mean_return": float(r["mean_return"]),
                  "std_return": float(r["std_return"]), "episodes": int(r["episodes"]),
                  "dream_updates": int(r.get("dream_updates") or 0)} for r in csv.DictReader(f)]
    ledger = read_json(folder, "ledger.json")
    if os.path.exists(path(folder, "eval.json")):
        final = read_json(folder, "eval.json")
        final = (final["mean_return"], final["episodes"])
    else:
        final = (curve[-1]["mean_return"], curve[-1]["episodes"])
    about = read_json(folder, "about.json") if os.path.exists(path(folder, "about.json")) else None
    config = (read_json(folder, "config.json") if os.path.exists(path(folder, "config.json"))
              else ledger.get("config"))
    return {"folder": folder, "curve": curve, "ledger": ledger, "final": final, "about": about,
            "config": config}


def readme(study: str, heading: str | None = None) -> str:
    """A study's README.md, or its section whose heading line contains `heading` (up to the next
    heading of the same or a higher level)."""
    with open(path(study, "README.md")) as f:
        text = f.read()
    if heading is None:
        return text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")
                and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
    return "\n".join(lines[start:end])


def provenance(study: str, run: str | None = None, heading: str | None = None) -> dict:
    """{"command", "commit", "date", "source"} of a result: the run's about.json if it has one,
    otherwise the inline commands, the first commit clause and the dates written in the study's
    README (or its section)."""
    if run is not None and os.path.exists(path(study, run, "about.json")):
        about = read_json(study, run, "about.json")
        return {"command": about["command"], "commit": about["commit"], "date": about["date"],
                "source": f"results/{study}/{run}/about.json"}
    section = readme(study, heading)
    if heading is None and run is not None:  # the one section of a README that names this run
        config = re.sub(r"[-_]s\d+(?=$|[-_])", "", run)
        parts = re.split(r"\n(?=## )", section)
        hits = [p for p in parts if run in p or f"`{config}`" in p]
        if len(parts) > 1 and len(hits) == 1:
            section = hits[0]
            if hits[0] is not parts[0]:
                heading = hits[0].splitlines()[0].lstrip("# ").split(":")[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    fenced = [" ".join(c.split()) for b in blocks for c in b.replace("\\\n", " ").splitlines()]
    text = " ".join(re.sub(r"```.*?```", " ", section, flags=re.S).split())  # lines wrap in sentences
    spans = [s for s in re.findall(r"`([^`]+)`", text) if len(s.split()) >= 3]
    commands = [s for s in spans if re.search(r"dreamer(\.cli)? (train|dream|bench|baseline) |bash run\.sh", s)]
    commands = list(dict.fromkeys(commands or [s for s in spans if "dreamer eval" in s]))
    if run is not None:  # the README's command that writes this run folder, if it names one
        commands = [c for c in fenced + spans if f"--out {run} " in c + " "] or commands
    commit = re.search(r"commits? `([0-9a-f]{7,40})`", text)
    dates = sorted(set(re.findall(r"20\d\d-\d\d-\d\d", text)))
    source = f"results/{study}/README.md" + (f" (section '{heading}')" if heading else "")
    assert commands and commit and dates, f"{source}: no command, commit or date found"
    return {"command": "\n         ".join(commands), "commit": _clause(text[commit.start(1) - 1 :]).replace("`", ""),
            "date": " to ".join(dates) if len(dates) > 1 else dates[0], "source": source}


def _clause(text: str) -> str:
    """`text` up to the first '. ', '; ' or ', ' outside parentheses."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and char in ".;," and text[i + 1 : i + 2] in (" ", ""):
            return text[:i]
    return text


def label(prov: dict) -> str:
    return (f"command: {prov['command']}\ncommit:  {prov['commit']}\ndate:    {prov['date']}"
            f"    (from {prov['source']})")


def paragraph(study: str, marker: str) -> str:
    """The README's text from `marker` (e.g. '**Reading') to the next blank line."""
    text = readme(study)
    start = text.index(marker)
    end = text.find("\n\n", start)
    return text[start:] if end < 0 else text[start:end]
