"""Fetch the optional real data sets and convert them for the course (needs a network once).

    python data_scripts/fetch_real.py images --profile quick   # CIFAR-10 (163 MB) + PneumoniaMNIST (4 MB)
    python data_scripts/fetch_real.py speech --profile quick   # Speech Commands v2 (2.3 GB)
    python data_scripts/fetch_real.py weights                  # ResNet-18 ImageNet weights (45 MB, notebook 06)
    python data_scripts/fetch_real.py all

Then run the course with ``TL_DATA=real``. Downloads are checksummed and resumable from
scratch (an interrupted one leaves nothing behind); conversions are cached per profile, so a
second run only checks what is there. The default course uses generated data and needs none.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from a checkout that is not pip-installed
    sys.path.insert(0, str(REPO_ROOT))

from helpers import backbones, config, runtime  # noqa: E402
from helpers.data import real  # noqa: E402

# group -> (downloads, conversions); each conversion takes a helpers.config.Profile
GROUPS: dict[str, tuple[tuple[str, ...], tuple[Callable[[config.Profile], dict[str, Any]], ...]]] = {
    "images": (("cifar10", "pneumoniamnist"), (real.image_task_a, real.image_task_b)),
    "speech": (("speech_commands",), (real.speech_task_a, real.wake_word_task, real.negative_stream)),
}


def describe(payload: dict[str, Any]) -> str:
    """Shapes of the tensors of a converted data set, e.g. ``X [50000, 1, 32, 32]``."""
    return ", ".join(f"{key} {list(value.shape)}" for key, value in payload.items()
                     if hasattr(value, "shape") and key != "examples")


def fetch_group(group: str, profile: config.Profile) -> None:
    """Download, verify and extract the group's data sets, then convert them for ``profile``."""
    names, conversions = GROUPS[group]
    for name in names:
        start = time.perf_counter()
        path = real.fetch(name)
        download = real.raw_dir() / real.SOURCES[name].filename
        size = f"{download.stat().st_size / 1e6:,.1f} MB download" if download.exists() else "download deleted"
        print(f"fetch_real: {name} ready at {path} ({size}) in {time.perf_counter() - start:.1f} s", flush=True)
    for convert in conversions:
        start = time.perf_counter()
        payload = convert(profile)
        print(f"fetch_real: {convert.__name__} ({profile.name}): {describe(payload)} "
              f"in {time.perf_counter() - start:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and fetch; 2 on a bad option, 1 when a download fails."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=[*GROUPS, "weights", "all"],
                        help="which data sets to fetch and convert (weights: ResNet-18's, for notebook 06)")
    parser.add_argument("--profile", default=None, help="quick, standard or full (default: $TL_PROFILE)")
    args = parser.parse_args(argv)
    try:
        profile = config.get_profile(args.profile)
        runtime.configure_threads()
    except config.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"fetch_real: profile {profile.name}, data in {real.real_dir()}")
    try:
        if args.what in ("weights", "all"):
            path = backbones.fetch_weights()
            print(f"fetch_real: ResNet-18 ImageNet weights ready at {path} (hash checked)", flush=True)
        for group in GROUPS if args.what == "all" else [args.what] if args.what != "weights" else []:
            fetch_group(group, profile)
    except (real.RealDataError, backbones.WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
