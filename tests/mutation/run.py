"""Mutation testing for the training steps and losses: `make mutation` (or `python -m tests.mutation.run`).

Each mutant in `tests.mutation.mutants.MUTANTS` is one deliberate bug of the kind
that breaks an algorithm while leaving shapes and finiteness intact: a flipped sign
of a player objective, a swapped target, a removed `stop_gradient` or frozen-player
guard, swapped real/fake inputs, a changed weight. For each mutant the runner copies
the package and its tests into a temporary folder, applies the one text edit, runs
only the tests the mutant names (default suite, `-x`), and records whether they
went red ("killed") or stayed green ("survived"). The working tree is never edited.

A mutant whose original snippet is not found exactly once is "stale": the code it
targets has changed and the list must be updated (`tests/test_mutation_list.py`
checks this in the default suite, so the list cannot rot silently).

Usage:
    python -m tests.mutation.run                 # every mutant, table on stdout
    python -m tests.mutation.run --only gamo-g-sign,m2m-lambda-sign
    python -m tests.mutation.run --report docs/testing.md   # also rewrite the report block there
    python -m tests.mutation.run --list

Exit status: 0 when every mutant is killed (or marked equivalent with a reason),
1 when one survives or is stale, 2 for a usage error.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import time

from tests.mutation.mutants import MUTANTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT_BEGIN = "<!-- mutation-report:begin -->"
REPORT_END = "<!-- mutation-report:end -->"
COPIED = ("keras_imbalance", "tests", "setup.cfg", "pyproject.toml")


def occurrences(mutant, root=ROOT):
    """How many times the mutant's original snippet occurs in its file under `root`."""
    path = os.path.join(root, mutant.file)
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return f.read().count(mutant.original)


def copy_tree(destination):
    """Copy the package, its tests and the pytest configuration (no caches) into `destination`."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".keras_home_unused")
    for name in COPIED:
        source = os.path.join(ROOT, name)
        target = os.path.join(destination, name)
        if os.path.isdir(source):
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)


def run_tests(workdir, tests, timeout):
    """Run pytest on `tests` inside `workdir`; returns (status, seconds, last output lines)."""
    env = dict(os.environ, PYTHONPATH=workdir, TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    seconds = time.perf_counter() - start
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    if done.returncode == 0:
        return "passed", seconds, tail
    if done.returncode == 1:
        return "failed", seconds, tail
    # 2-5: interrupted, internal error, usage error, no tests collected: not a kill.
    return f"error (pytest exit {done.returncode})", seconds, tail


def first_failure(tail):
    for line in tail.splitlines():
        if line.startswith("FAILED") or line.startswith("ERROR"):
            return line.split(" - ")[0].replace("FAILED ", "").replace("ERROR ", "")
    return ""


def mutate(workdir, mutant):
    path = os.path.join(workdir, mutant.file)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    original_text = text
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(mutant.original, mutant.mutated, 1))
    return path, original_text


def _one_mutant(workdir, mutant, timeout):
    """Apply `mutant` in `workdir`, run its tests, restore the file; returns the result dict."""
    count = occurrences(mutant, workdir)
    if count != 1:
        return dict(id=mutant.id, status=f"stale ({count} matches)", seconds=0.0, killer="")
    path, original_text = mutate(workdir, mutant)
    try:
        status, seconds, tail = run_tests(workdir, list(mutant.tests), timeout)
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(original_text)
    if status in ("failed", "timeout"):
        verdict = "killed"
    elif status == "passed":
        verdict = "equivalent" if mutant.equivalent else "SURVIVED"
    else:
        verdict = status
    return dict(id=mutant.id, status=verdict, seconds=seconds, killer=first_failure(tail))


def run(mutants, timeout=900, jobs=2, log=print):
    """Run every mutant, `jobs` at a time (each in its own copy); returns result dicts in `mutants` order."""
    jobs = max(1, min(int(jobs), len(mutants)))
    workdirs = [tempfile.mkdtemp(prefix="ki-mutation-") for _ in range(jobs)]
    try:
        for workdir in workdirs:
            copy_tree(workdir)
        all_tests = sorted({t for m in mutants for t in m.tests})
        log(f"baseline: {len(all_tests)} test target(s) on the unmutated copy ...")
        status, seconds, tail = run_tests(workdirs[0], all_tests, timeout)
        if status != "passed":
            raise SystemExit(f"the unmutated tests do not pass ({status}); fix them first:\n{tail}")
        log(f"baseline passed in {seconds:.0f} s; {len(mutants)} mutants, {jobs} at a time")
        free = queue.Queue()
        for workdir in workdirs:
            free.put(workdir)
        done = []

        def work(mutant):
            workdir = free.get()
            try:
                result = _one_mutant(workdir, mutant, timeout)
            finally:
                free.put(workdir)
            done.append(result)
            log(f"[{len(done)}/{len(mutants)}] {mutant.id}: {result['status']} in {result['seconds']:.0f} s {result['killer']}")
            return result

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(work, mutants))
    finally:
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def format_report(mutants, results, seconds):
    by_id = {r["id"]: r for r in results}
    killed = sum(r["status"] == "killed" for r in results)
    equivalent = sum(r["status"] == "equivalent" for r in results)
    counted = len(results) - equivalent
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()} ({os.cpu_count()} CPUs), "
        f"{len(results)} mutants in {seconds / 60:.1f} min: **{killed} / {counted} killed**"
        + (f", {equivalent} equivalent (reason given)" if equivalent else "")
        + ". Command: `make mutation`.",
        "",
        "| mutant | file | what it breaks | result | first failing test |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in mutants:
        r = by_id.get(m.id)
        if r is None:
            continue
        what = m.what + (f" (equivalent: {m.equivalent})" if m.equivalent else "")
        lines.append(f"| `{m.id}` | `{m.file}` | {what} | {r['status']} | `{r['killer']}` |" if r["killer"] else
                     f"| `{m.id}` | `{m.file}` | {what} | {r['status']} | |")
    return "\n".join(lines)


def write_report(path, text):
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    if REPORT_BEGIN not in doc or REPORT_END not in doc:
        raise SystemExit(f"{path} has no {REPORT_BEGIN} ... {REPORT_END} block to fill")
    head, rest = doc.split(REPORT_BEGIN, 1)
    _, tail = rest.split(REPORT_END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{REPORT_BEGIN}\n{text}\n{REPORT_END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.mutation.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated mutant ids (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--report", default="", help="markdown file whose mutation-report block is rewritten")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per test run (default 900)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time, each in its own copy (default 2)")
    parser.add_argument("--results", default="",
                        help="JSON file of results kept across runs: this run's results replace those of the same "
                             "mutants, and the report covers every listed mutant with a result in the file")
    args = parser.parse_args(argv)
    mutants = list(MUTANTS)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {m.id for m in mutants})
        if unknown:
            parser.error(f"unknown mutant id(s) {unknown}; see --list")
        mutants = [m for m in mutants if m.id in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.id:32s} {m.file}: {m.what}")
        return 0
    start = time.perf_counter()
    results = run(mutants, timeout=args.timeout, jobs=args.jobs)
    seconds = time.perf_counter() - start
    if args.results:
        kept = {}
        if os.path.exists(args.results):
            with open(args.results) as f:
                kept = {r["id"]: r for r in json.load(f)}
        kept.update({r["id"]: r for r in results})
        with open(args.results, "w") as f:
            json.dump(list(kept.values()), f, indent=1)
        seconds += sum(r["seconds"] for r in kept.values() if r["id"] not in {m.id for m in mutants}) / max(1, args.jobs)
        mutants = [m for m in MUTANTS if m.id in kept]
        results = [kept[m.id] for m in mutants]
    report = format_report(mutants, results, seconds)
    print(report)
    if args.report:
        write_report(args.report, report)
    bad = [r for r in results if r["status"] not in ("killed", "equivalent")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
