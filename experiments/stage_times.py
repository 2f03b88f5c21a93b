"""The wall time of every stage of an experiment run, read from its log's `stage:` stamps.

    python experiments/stage_times.py runs/libero_cpu_spatial.log
        # | stage | start (UTC) | wall time |  -- one row per stamp, up to the next one; the last stamp
        # ("done") closes the table, and a run still going shows its open stage as "(running)"

experiments/libero_cpu.sh writes the stamps (`date -u +"%F %T stage: NAME"`); a resumed run appends a second
series to the same log, and each stamp is timed to the one after it, so a stage that was skipped as done
shows its few seconds.
"""
from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) stage: (.+)$")


def stamps(text: str) -> list[tuple[datetime, str]]:
    """(time, stage name) of every stamp line, in log order."""
    return [(datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S"), m[2].strip())
            for m in map(STAMP.match, text.splitlines()) if m]


def table(text: str) -> str:
    """A markdown table of the stages and their wall times (minutes) -> str."""
    s = stamps(text)
    if not s:
        raise ValueError("no 'YYYY-MM-DD HH:MM:SS stage: NAME' lines")
    rows = ["| stage | start (UTC) | wall time |", "|---|---|---|"]
    for (t, name), nxt in zip(s, s[1:] + [None]):
        if name == "done":
            continue
        wall = f"{(nxt[0] - t).total_seconds() / 60:.1f} min" if nxt else "(running)"
        rows.append(f"| {name} | {t:%H:%M:%S} | {wall} |")
    if s[-1][1] == "done":
        rows.append(f"| **the whole run** | {s[0][0]:%H:%M:%S} → {s[-1][0]:%H:%M:%S} | "
                    f"**{(s[-1][0] - s[0][0]).total_seconds() / 60:.1f} min** |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("log", help="an experiment's log holding `stage:` stamp lines (e.g. runs/libero_cpu_goal.log)")
    args = p.parse_args(argv)
    path = Path(args.log)
    if not path.is_file():
        sys.exit(f"error: {path}: no such log file")
    try:
        print(table(path.read_text(errors="replace")))
    except ValueError as e:
        sys.exit(f"error: {path}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
