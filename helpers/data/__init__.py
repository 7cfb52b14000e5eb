"""Data for the course. :mod:`helpers.data.sources` is the one place that knows where data come
from (``TL_DATA``: generated, or fetched real data sets); its loaders are re-exported here::

    from helpers import data
    task_b = data.task_b_images(profile)      # X, y, X_test, y_test, classes, key
    words = data.speech_task_a(profile)       # eSpeak words, or Speech Commands with TL_DATA=real

``helpers.data.speech`` (the eSpeak generator) and ``helpers.data.real`` (the converters) are
imported on demand: they load torchaudio and eSpeak NG.
"""
from helpers.data import cache, images, sources
from helpers.data.sources import (
    data_source,
    demo_stream,
    image_classes,
    negative_stream,
    speech_task_a,
    task_a_images,
    task_b_images,
    wake_word_task,
)

__all__ = ["cache", "images", "sources", "data_source", "demo_stream", "image_classes", "negative_stream",
           "speech_task_a", "task_a_images", "task_b_images", "wake_word_task"]
