"""Build the course's data sets once, before the notebooks run.

    python data_scripts/prepare.py --profile quick            # every step
    python data_scripts/prepare.py --profile quick --only images

Each step is a function of a ``helpers.config.Profile`` (its return value is ignored), named as
"module:function" in STEPS below. Steps are load-or-build (helpers.data.cache), so a second run
is quick and an interrupted one leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable

from helpers import config, runtime

# (step name, "module:function") in the order they run; each function takes a
# helpers.config.Profile. A new data set or cached experiment gets one entry here.
STEPS: list[tuple[str, str]] = [
    ("images", "helpers.experiments:prepare"),  # tasks A and B, and the pre-trained image recognizer
    ("image-sweep", "helpers.experiments:prepare_retraining"),  # notebook 03: sweeps, curves, learning rates
    ("speech", "helpers.data.sources:prepare_speech"),  # recognizer data, wake-word sets, streams (TL_DATA)
    ("speech-models", "helpers.wakeword:prepare_models"),  # the speech recognizer (task A), trained once
    ("counter-examples", "helpers.experiments:prepare_counterexamples"),  # notebook 05, images
    ("speech-reversed", "helpers.wakeword:prepare_reversed"),  # notebook 05, speech
]


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


def run_steps(steps: list[tuple[str, str]], profile: config.Profile) -> None:
    """Run each step with ``profile``, printing how long it took."""
    if not steps:
        print("prepare: no data steps to run")
    for name, target in steps:
        start = time.perf_counter()
        load_step(target)(profile)
        print(f"prepare: {name} ({target}) {time.perf_counter() - start:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the selected steps; 2 on a bad option."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this step (repeatable)")
    args = parser.parse_args(argv)
    try:
        profile = config.get_profile(args.profile)
        steps = select_steps(args.only)
        runtime.configure_threads()
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"prepare: profile {profile.name}, data in {config.data_dir()}")
    run_steps(steps, profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
