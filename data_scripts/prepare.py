"""Build the course's data sets once, before the notebooks run.

    python data_scripts/prepare.py --profile quick            # every step
    python data_scripts/prepare.py --profile quick --only images
    python data_scripts/prepare.py --profile quick --workers 1 --timings
    python data_scripts/prepare.py --profile quick --status DIR   # DIR/<step>.done when a step is complete

Each step is a function of a ``helpers.config.Profile`` (its return value is ignored), named as
"module:function" in STEPS below. Steps are load-or-build (helpers.data.cache), so a second run
is quick and an interrupted one leaves nothing half-written.

On a CPU with two or more cores, two worker processes with one thread each share the work
(small networks train ~1.15x faster that way than one process with two threads; measured in the
README). Both walk every step, in different orders, and a run that one is building is left to
it by the other (``cache.deferring``): nothing is built twice, and each step is complete when
both are done. ``--timings`` adds what every cached item cost: built, waited for, or loaded.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout that is not pip-installed
    sys.path.insert(0, str(REPO_ROOT))

from helpers import config, runtime  # noqa: E402
from helpers.data import cache  # noqa: E402

# (step name, "module:function") in the order they run; each function takes a
# helpers.config.Profile. A new data set or cached experiment gets one entry here.
STEPS: list[tuple[str, str]] = [
    ("images", "helpers.experiments:prepare"),  # tasks A and B, and the pre-trained image recognizer
    ("your-own-images", "helpers.transfer:prepare"),  # notebook 06: the sample folder, read for the networks
    ("image-sweep", "helpers.experiments:prepare_retraining"),  # notebook 03: sweeps, curves, learning rates
    ("speech", "helpers.data.sources:prepare_speech"),  # recognizer data, wake-word sets, streams (TL_DATA)
    ("speech-models", "helpers.wakeword:prepare_models"),  # the speech recognizer (task A) and notebook 04's detectors
    ("counter-examples", "helpers.experiments:prepare_counterexamples"),  # notebook 05, images
    ("speech-reversed", "helpers.wakeword:prepare_reversed"),  # notebook 05, speech
    ("custom-wake-word", "helpers.custom_wake:prepare"),  # notebook 07: synthetic data, three starts, the curve
]


# The second worker builds notebook 04's speech steps while the first pre-trains the image
# recognizer, then helps with the image steps in the notebooks' order (each step from its other
# end), so that `make run` finds notebooks 03 and 04 ready early: with the speech steps of
# notebooks 05 and 07 before the image sweep, notebook 03 waited for one worker to build the whole
# sweep (its page came 1,242 s after the start of a cold quick make run; 734 s with this order;
# issue 17). Last, the second worker takes notebook 07's runs while the first builds notebook 05's
# speech counter-example (one ~160-s item that the other would otherwise wait for).
SECOND_WORKER_ORDER = ("speech", "speech-models", "image-sweep", "counter-examples", "custom-wake-word",
                       "speech-reversed", "images", "your-own-images")


def load_step(target: str) -> Callable[[config.Profile], object]:
    """The function named by ``"module:function"``."""
    module_name, _, func_name = target.partition(":")
    return getattr(importlib.import_module(module_name), func_name)


def select_steps(only: list[str] | None) -> list[tuple[str, str]]:
    """The steps to run (all, or those named by --only); unknown names are an error."""
    valid = [name for name, _ in STEPS]
    unknown = [name for name in only or [] if name not in valid]
    if unknown:
        raise config.ConfigError(f"unknown step(s) {', '.join(unknown)}: "
                                 f"valid steps are {', '.join(valid) or '(none defined yet)'}")
    return [step for step in STEPS if not only or step[0] in only]


def run_steps(steps: list[tuple[str, str]], profile: config.Profile, prefix: str = "",
              status: Path | None = None) -> dict[str, float]:
    """Run each step with ``profile``, printing how long it took; returns {step: seconds}.

    status: a folder that gets ``<step>.done`` when a step is complete — every item of it built
    or loaded, including those another worker built (``make run`` starts a notebook on it).
    """
    if not steps:
        print("prepare: no data steps to run")
    seconds = {}
    for name, target in steps:
        start = time.perf_counter()
        load_step(target)(profile)
        seconds[name] = time.perf_counter() - start
        print(f"prepare{prefix}: {name} ({target}) {seconds[name]:.1f} s", flush=True)
        if status is not None:
            marker = status / f"{name}.done"
            partial = marker.with_name(f".{name}.{os.getpid()}.tmp")
            partial.write_text(f"{seconds[name]:.1f}\n")
            os.replace(partial, marker)  # atomic: a reader never sees half a marker
    return seconds


def default_workers() -> int:
    """2 worker processes on a CPU with 2+ cores (``TL_PREPARE_WORKERS`` overrides), else 1."""
    return runtime.prepare_workers()


def worker_order(steps: list[tuple[str, str]], index: int) -> list[tuple[str, str]]:
    """The steps in the order worker ``index`` walks them (worker 0: as listed)."""
    if index == 0:
        return steps
    rank = {name: i for i, name in enumerate(SECOND_WORKER_ORDER)}
    return sorted(steps, key=lambda step: rank.get(step[0], len(rank)))


def _pump(stream, prefix: str) -> None:  # noqa: ANN001 - a text pipe
    for line in stream:
        print(f"{prefix}{line}", end="", flush=True)


def run_workers(args: argparse.Namespace, workers: int) -> list[dict]:
    """Run ``workers`` copies of this script, one thread each; their reports, or SystemExit on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TL_THREADS": "1", "TL_PREPARE_WORKERS": "1"}
    with tempfile.TemporaryDirectory(prefix="prepare-") as scratch:
        reports = [Path(scratch) / f"worker{i}.json" for i in range(workers)]
        procs, pumps = [], []
        for i in range(workers):
            command = [sys.executable, str(Path(__file__).resolve()), "--profile", args.profile_name,
                       "--worker", f"{i}/{workers}", "--report", str(reports[i])]
            command += [part for name in args.only or [] for part in ("--only", name)]
            command += ["--status", str(args.status)] if args.status else []
            proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    bufsize=1)
            procs.append(proc)
            pumps.append(threading.Thread(target=_pump, args=(proc.stdout, f"[worker {i}] "), daemon=True))
            pumps[-1].start()
        failed = None
        try:
            while any(proc.poll() is None for proc in procs) and failed is None:
                failed = next((i for i, proc in enumerate(procs) if proc.poll() not in (None, 0)), None)
                time.sleep(0.2)
            failed = failed if failed is not None else next((i for i, p in enumerate(procs) if p.returncode), None)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc, pump in zip(procs, pumps, strict=True):
                proc.wait()
                pump.join(timeout=5)
        if failed is not None:
            print(f"error: prepare worker {failed} failed (exit {procs[failed].returncode}); see its output above. "
                  "Nothing half-written was kept: run the command again to resume.", file=sys.stderr)
            raise SystemExit(1)
        return [json.loads(report.read_text()) for report in reports]


def timings_table(reports: list[dict], wall: float, per_item: bool) -> str:
    """Seconds per step and worker, and (per_item) what every kind of cached item cost."""
    names = list(dict.fromkeys(name for report in reports for name in report["steps"]))
    header = "step".ljust(18) + "".join(f"worker {i}".rjust(11) for i in range(len(reports)))
    lines = [header] + [name.ljust(18) + "".join(f"{report['steps'].get(name, 0.0):10.1f}s" for report in reports)
                        for name in names]
    lines.append(f"{'wall time':18s}{wall:10.1f}s ({len(reports)} worker(s), one thread each)"
                 if len(reports) > 1 else f"{'wall time':18s}{wall:10.1f}s")
    if per_item:
        totals: dict[tuple[str, str], list[float]] = {}
        for report in reports:
            for name, what, seconds in report["events"]:
                totals.setdefault((name, what), []).append(seconds)
        lines += ["", "cached item".ljust(22) + "built".rjust(7) + "build s".rjust(10) + "waited".rjust(8)
                  + "wait s".rjust(9) + "loaded".rjust(8)]
        for name in sorted({n for n, _ in totals}):
            built, waited, hits = (totals.get((name, w), []) for w in ("built", "waited", "hit"))
            lines.append(f"{name:22s}{len(built):7d}{sum(built):10.1f}{len(waited):8d}{sum(waited):9.1f}{len(hits):8d}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the selected steps; 2 on a bad option, 1 when a step fails."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this step (repeatable)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: 2 on a CPU with 2+ cores, else 1; $TL_PREPARE_WORKERS)")
    parser.add_argument("--timings", action="store_true", help="also print what every cached item cost")
    parser.add_argument("--status", type=Path, default=None, metavar="DIR",
                        help="write DIR/<step>.done when a step is complete (make run starts notebooks on it)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # "i/n": run as worker i of n
    parser.add_argument("--report", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        profile = config.get_profile(args.profile)
        steps = select_steps(args.only)
        runtime.configure_threads()
        arithmetic = runtime.numerics()  # checks TL_CPU_BF16 too
        workers = args.workers if args.workers is not None else default_workers()
        if workers < 1:
            raise config.ConfigError(f"--workers must be 1 or more, got {workers}")
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.profile_name = profile.name
    start = time.perf_counter()
    if args.worker is not None:  # one of several workers: record, run in this worker's order, report
        index = int(args.worker.split("/")[0])
        cache.REVERSED = index % 2 == 1
        events = cache.record_events()
        seconds = run_steps(worker_order(steps, index), profile, status=args.status)
        args.report.write_text(json.dumps({"steps": seconds, "events": events}))
        return 0
    print(f"prepare: profile {profile.name}, data in {config.data_dir()}, {workers} worker(s), "
          f"training in {arithmetic} ({runtime.get_device().type})", flush=True)
    # stopped (e.g. by `make run` when a notebook fails): unwind, so that the workers are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if workers == 1:
        events = cache.record_events()
        reports = [{"steps": run_steps(steps, profile, status=args.status), "events": events}]
    else:
        reports = run_workers(args, workers)
    print("prepare: done\n" + timings_table(reports, time.perf_counter() - start, args.timings), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
