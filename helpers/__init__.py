"""Support package of the transfer-learning course: data, models, training, experiments, plots.

Notebooks import the modules they need in one line, e.g. ``from helpers import config, data,
models, plots, results, runtime``. Importing it has no side effects: nothing is generated or
downloaded until a function is called.

Map of the package (module: what it holds)::

    config        profiles (every size and budget of the course) and the data/artifacts/build folders
    runtime       the device (chosen at call time), threads, freed memory kept for reuse, seeds, a one-line description
    data/         the data sets, each load-or-build through data.cache
      sources     the resolver: TL_DATA (synthetic or real) and the data specs with their cache keys
      images      generated images: task A (procedural objects), task B (simulated X-rays)
      speech      generated speech (eSpeak NG): recognizer words, wake-word sets, negative streams
      espeak      the eSpeak NG binding (ctypes) and its pool of synthesis processes
      flite       another synthesiser (CMU Flite, optional) for testing detectors on voices never trained on
      audio       the audio front end: signal steps, log-mel features, WAV files
      augment     speech augmentation: noise at a set SNR, babble, room reverb
      subsets     balanced subsets of a labelled data set
      download    verified, atomic downloads of the real data sets
      real        converters of the real data sets (CIFAR-10, PneumoniaMNIST, Speech Commands)
      photos      real images read offline from package wheels: check tasks (scikit-image photos, digits), photo crops
      folders     your own images: DIR/<class>/*.png read into cached tensors, split, every bad file named
      cache       the on-disk cache: atomic, verified, keyed by config, file-locked while building
    models/       the networks and the lecture's surgery on them
      image       the image CNN; its last layer is ``head`` (W[L], b[L])
      speech      the keyword network for log-mel input (TC-ResNet8), ``head`` last too
      surgery     head replacement, freezing (BatchNorm statistics included), parameter groups
    train         the training engine: fit, predict/accuracy, cached features, augmentation
    recipes       how networks are trained (frozen dataclasses) and the cache keys of experiments
    experiments   the image experiments: pre-training, fine-tuning strategies, sweeps, the gain map
    backbones     ResNet-18 with ImageNet weights (fetched on request, hash-checked) or the course's CNN
    transfer      the practitioner's recipe on a folder; python -m helpers.transfer images DIR
    wakeword      the speech experiments: a word recognizer turned into a wake-word detector
    custom_wake   your own wake word: synthetic clips of any phrase, confusables, export (notebook 07)
    listen        python -m helpers.listen detector.pt2 recording.wav: when an exported detector fires
    detection     detection metrics: DET curve, equal error rate, false accepts per hour
    runs          per-seed summaries of experiment rows, gains over scratch
    plots         the course's figures
    widgets       interactive explorers over cached results (never retrain)
    results       build/results.json: figures that parallel notebooks merge (file-locked)
    claims        every claim of the course with its bar: asserted, recorded, reported
    advisor       the lecture's three conditions for transfer, as code
    checks        auto-checks of the exercises, with hints
    authoring/    tools for authors; notebooks never import them
      course      python -m helpers.authoring.course: run, check-clean, strip, check-nbval, student, with-prepare
      after_prepare  pytest plugin: make test's notebooks (nbval) wait for their data after their setup cell
      site        the executed course as static pages (build/html/index.html)
      bench       python -m helpers.authoring.bench: the training engine against naive loops
      notebooks   what course and site share: notebook discovery, cells, the last run's timings
      install     run by make setup: the course installed with uv (pip's settings) or pip, imports compiled
"""
__version__ = "0.1.0"
