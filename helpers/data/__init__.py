"""Data for the course: generated images (tasks A and B), speech, and the on-disk cache."""
