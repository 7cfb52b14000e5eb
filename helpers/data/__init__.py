"""Data for the course: generated images (tasks A and B), speech, and the on-disk cache.

``helpers.data.speech`` is imported on demand (it loads torchaudio and eSpeak NG).
"""
from helpers.data import cache, images

__all__ = ["cache", "images"]
