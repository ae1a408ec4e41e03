"""Run every ``benchmarks/bench_*.py`` and the issue-10 ``suite.py``, each in its own process.

``python benchmarks/run.py [NAME...]`` runs the scripts whose name contains one of the NAMEs (all
by default; ``suite`` alone runs the side-by-side suite with restic and rclone), then collects every
JSON result into ``results/summary.json``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(selected: list[str]) -> int:
    """Run the named benchmarks (default: all) and write ``results/summary.json``."""
    scripts = [*sorted(HERE.glob("bench_*.py")), HERE / "suite.py"]
    if selected:
        scripts = [s for s in scripts if any(name in s.stem for name in selected)]
    failed = 0
    for script in scripts:
        print(f"\n## {script.stem}\n", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    summary = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "results": {
            path.stem: json.loads(path.read_text())
            for path in sorted((HERE / "results").glob("*.json"))
            if path.stem != "summary"
        },
    }
    (HERE / "results" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
