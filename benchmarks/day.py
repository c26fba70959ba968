"""Wall time per stage, rows per table, peak memory and JVMs started, for one simulated day.

    .venv/bin/python benchmarks/day.py --profile demo --home /tmp/reco-bench

Runs `python -m reco_assets demo` as a child process and samples its process tree (/proc, Linux) every
0.2 s: the peak resident memory of the tree (Python + JVM + Python workers) and every distinct JVM seen.
"""

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path


def tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def is_jvm(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/exe").resolve().name == "java"
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    command = [sys.executable, "-m", "reco_assets", "demo", "--profile", args.profile, "--home", args.home]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, jvms = 0, set()

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            pids = tree(child.pid)
            peak = max(peak, sum(rss_kib(p) for p in pids))
            jvms.update(p for p in pids if is_jvm(p))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = child.stdout.read()
    child.wait()
    sampler.join()
    wall = time.perf_counter() - started
    keep = [
        line
        for line in output.splitlines()
        if line.startswith(("  ", "simulat", "ingesting", "materializing", "20", "Tables", "All", "FAILED"))
        and "warn" not in line.lower()
    ]
    print("\n".join(keep))
    print(
        f"\nexit code {child.returncode}; whole command {wall:.1f} s; peak memory of the process tree "
        f"{peak / 1024 / 1024:.2f} GiB; JVMs started: {len(jvms)}"
    )


if __name__ == "__main__":
    main()
