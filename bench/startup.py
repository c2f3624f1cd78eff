"""Benchmark: how long each command takes to start work — interpreter, CLI, thread choice and its imports.

Each row runs a fresh ``python`` that does what ``microsr COMMAND`` does before it reads its first input:
start, import the CLI, choose the threads (:func:`microsr.threads.use_threads`), import the pipeline the
command calls, then leaves as :func:`microsr.cli.run` does. Medians of ``--repeats`` runs: the time to the
first input (target ≤ 2 s on 2 cores), the time to leave again (the interpreter's exit, which a command
pays after its work), the whole process, and the three slowest imports of that pipeline as
``python -X importtime`` counts them (cumulative, so a package includes what it imports).

Usage: python bench/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "microsr --help": None,
    "sim reconstruct": "microsr.pipelines.sim",
    "rdl predict": "microsr.pipelines.rdl_sim",
    "sfsrm predict": "microsr.pipelines.sfsrm",
    "selfsup predict": "microsr.pipelines.selfsup",
    "evaluate": "microsr.pipelines.evaluate",
    "simulate sim": "microsr.pipelines.simulate",
}


def script(module: str | None) -> str:
    work = f"import {module}" if module else ""
    return f"import microsr.cli\nfrom microsr.threads import use_threads\nuse_threads(None)\n{work}\n"


def started_s(module: str | None) -> tuple[float, float]:
    """Seconds from launch to the first input and from launch to the process's end; the child leaves as
    :func:`microsr.cli.run` does (its objects frozen)."""
    # wall-clock time.time() in both processes: perf_counter's origin is per process
    start = time.time()
    ready = subprocess.run([sys.executable, "-c", script(module) + "import gc, time\nprint(time.time())\ngc.freeze()\n"],
                           check=True, capture_output=True, text=True).stdout
    return float(ready) - start, time.time() - start


def slowest_imports(module: str, count: int = 3) -> str:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", script(module)], capture_output=True,
                            text=True, check=True)
    rows = []
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if "." not in name or name.startswith("microsr.pipelines"):  # top-level packages and the pipeline
                rows.append((int(parts[1]), name))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1e6:.2f} s" for us, name in rows[:count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("\nStart-up: a fresh process to the command's first input, and to its end (medians of "
          f"{args.repeats}; target ≤ 2 s to the first input)\n")
    print("| command | to first input | exit | whole process | slowest imports (cumulative) |")
    print("|---|---|---|---|---|")
    for command, module in COMMANDS.items():
        runs = [started_s(module) for _ in range(args.repeats)]
        ready, whole = statistics.median(r for r, _ in runs), statistics.median(w for _, w in runs)
        exit_s = statistics.median(w - r for r, w in runs)
        print(f"| {command} | {ready:.2f} s | {exit_s:.2f} s | {whole:.2f} s | "
              f"{slowest_imports(module) if module else ''} |", flush=True)


if __name__ == "__main__":
    main()
