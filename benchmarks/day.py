"""Wall time per stage, rows per table, peak memory and JVMs started, for one simulated day.

    .venv/bin/python benchmarks/day.py --profile demo --home /tmp/reco-bench

Runs `python -m reco_assets demo` as a child process and samples its process tree (/proc, Linux) every
0.2 s: the peak resident memory of the tree (Python + JVM + Python workers) and every distinct JVM seen.
"""

import argparse
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
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


def jvm_class(pid: int) -> str | None:
    """The main class of a Java process (None for any other process)."""
    try:
        if Path(f"/proc/{pid}/exe").resolve().name != "java":
            return None
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if b"-version" in args:
        return "java -version"  # the Spark resource's probe of the Java version
    classes = [a.decode() for a in args if a.startswith(b"org.apache.")]
    return classes[0] if classes else "java"


LAUNCHER = "org.apache.spark.launcher.Main"  # spark-submit's short-lived helper that builds the command line


SHOWN = ("  ", "simulat", "ingesting", "materializing", "evaluating", "20", "Tables", "All", "FAILED")


@dataclass
class Measured:
    exit_code: int
    wall: float  # seconds of the whole command, simulation included
    peak_gib: float  # peak resident memory of the process tree
    jvms: dict[int, str]  # pid -> main class of every Java process seen
    output: list[str]

    @property
    def spark_jvms(self) -> int:
        return sum(1 for name in self.jvms.values() if name.startswith("org.apache.spark") and name != LAUNCHER)

    @property
    def stages(self) -> dict[str, float]:
        """The runner's stage timings (`  <stage>   12.3 s`)."""
        found = (re.fullmatch(r"  (\S.*?)\s+([\d.]+) s(  FAILED)?", line) for line in self.output)
        return {m.group(1): float(m.group(2)) for m in found if m}

    @property
    def rows(self) -> dict[str, int]:
        """Rows per table of the day, from the closing summary."""
        found = (re.fullmatch(r"  (\w+)\s+([\d,]+) rows", line) for line in self.output)
        return {m.group(1): int(m.group(2).replace(",", "")) for m in found if m}


def measure(profile: str, home: str, overrides: list[str] | None = None, echo: bool = False) -> Measured:
    """Run `python -m reco_assets demo` on a profile (settings overridden by `NAME=VALUE`s), sampling its
    process tree every 0.2 s."""
    command = [sys.executable, "-m", "reco_assets", "demo", "--profile", profile, "--home", home]
    command += [f"--set={pair}" for pair in overrides or []]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, jvms = 0, {}

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            pids = tree(child.pid)
            peak = max(peak, sum(rss_kib(p) for p in pids))
            jvms.update({p: name for p in pids if p not in jvms and (name := jvm_class(p))})
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = []
    for line in child.stdout:  # echoed as it comes: a long day shows its stages while it runs
        output.append(line.rstrip("\n"))
        if echo and line.startswith(SHOWN) and "warn" not in line.lower():
            print(line, end="", flush=True)
    child.wait()
    sampler.join()
    wall = time.perf_counter() - started
    return Measured(child.returncode, wall, peak / 1024 / 1024, jvms, output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    run = measure(args.profile, args.home)
    keep = [line for line in run.output if line.startswith(SHOWN) and "warn" not in line.lower()]
    print("\n".join(keep))
    print(
        f"\nexit code {run.exit_code}; whole command {run.wall:.1f} s; peak memory of the process tree "
        f"{run.peak_gib:.2f} GiB; JVMs started: {run.spark_jvms} ({sorted(run.jvms.values())})"
    )


if __name__ == "__main__":
    main()
