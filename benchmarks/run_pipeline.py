"""``sem3r run`` end to end on real data: the 7-Scenes sample (RGB-D) and a colour-only copy of it.

For each input the script runs ``sem3r run INPUT --out OUT`` in a fresh process (nothing but the
input, ``--out`` and the questions) and prints one table: wall time, peak memory, the stages chosen
and what each produced, then the answers. The colour-only copy holds only the ``*.color.jpg`` frames,
so the pipeline must fall back to structure from motion (the ``[sfm]`` extra) on its own.

    python benchmarks/run_pipeline.py                       # both inputs, outputs under /tmp/sem3r-run-bench
    python benchmarks/run_pipeline.py --data PATH --out DIR
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = (
    "how big is the room?",
    "how many objects are there?",
    "how far did the camera move between frame 0 and frame 19?",
    "how tall is #3?",
    "how far is #3 from #5?",
)


def _run(source: Path, out: Path) -> tuple[float, str, int, str]:
    """Run ``sem3r run`` in a child process; returns (seconds, peak GiB from report.md, exit code, stderr tail)."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "sem3r.cli", "run", str(source), "--out", str(out)]
    for q in QUESTIONS:
        command += ["--question", q]
    start = time.perf_counter()
    proc = subprocess.run(command, check=False, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
    peak = re.search(r"Peak memory: ([0-9.]+) GiB", report)
    return seconds, peak.group(1) if peak else "?", proc.returncode, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "7scenes-sample")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sem3r-run-bench"))
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}")
    colour = args.out / "input-colour-only"
    shutil.rmtree(colour, ignore_errors=True)
    colour.mkdir(parents=True)
    for frame in sorted(args.data.glob("*.color.*")):
        shutil.copy(frame, colour / frame.name)

    print("| input | wall s | peak GiB | exit | stage: method (s) -> result |")
    print("|---|---|---|---|---|")
    answers = {}
    for name, source in (("7-Scenes RGB-D", args.data), ("colour only", colour)):
        out = args.out / name.split()[0].lower().replace("-", "")
        seconds, peak, code, err = _run(source, out)
        stages = json.loads((out / "run.json").read_text())["stages"] if (out / "run.json").is_file() else {}
        chosen = "; ".join(f"{k}: {v['method'] or v['status']} ({v['seconds']:.1f}) -> {v['summary'] or v['error']}"
                           for k, v in stages.items() if k != "report")
        print(f"| {name} | {seconds:.1f} | {peak} | {code} | {chosen or err} |")
        if (out / "answers.jsonl").is_file():
            answers[name] = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    for name, rows in answers.items():
        print(f"\n{name}:")
        for a in rows:
            print(f"  Q: {a['question']}\n  A: {a['answer']} ({a['explanation']})")


if __name__ == "__main__":
    main()
