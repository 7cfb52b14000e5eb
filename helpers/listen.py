"""Listen to a recording with an exported wake-word detector and print when it fires.

    python -m helpers.listen hey_nova.pt2 recording.wav             # the exported threshold
    python -m helpers.listen hey_nova.pt2 recording.wav --threshold 2.5

The detector file is what ``helpers.custom_wake.export`` writes (notebook 07): a torch.export program with
its phrase, threshold (chosen for a number of false accepts per hour), window and hop. The
recording is a WAV file (any rate: resampled to 16 kHz; stereo is mixed down).
"""
from __future__ import annotations

import argparse
import sys

from helpers import custom_wake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("detector", help="a detector exported by helpers.custom_wake.export (.pt2)")
    parser.add_argument("recording", help="a WAV file")
    parser.add_argument("--threshold", type=float, default=None, help="override the exported threshold")
    args = parser.parse_args(argv)
    try:
        model, meta = custom_wake.load_exported(args.detector)
        audio = custom_wake.read_recording(args.recording)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"listen: {error}", file=sys.stderr)
        return 2
    if args.threshold is not None:
        meta = {**meta, "threshold": args.threshold}
    fired, scores, _ = custom_wake.listen(model, meta, audio)
    seconds = len(audio) / meta["sample_rate"]
    print(f"'{meta['phrase']}' detector, threshold {meta['threshold']:.3f} "
          f"(set for {meta['fa_per_hour']:g} false accepts per hour), {seconds:.1f} s of audio")
    if len(scores) == 0:
        window_s = meta["window_frames"] / meta["frame_rate"]
        print(f"the recording is shorter than the detector's window ({window_s:.1f} s)")
    for t in fired:
        print(f"fired at {t:7.2f} s")
    print(f"{len(fired)} detection(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
