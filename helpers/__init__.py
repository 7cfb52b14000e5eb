"""Support package of the transfer-learning course: data, models, training, evaluation, plots.

Notebooks import it as ``from helpers import data, models, train, evaluate, plots``. Importing it
has no side effects: nothing is generated or downloaded until a function is called.
"""
__version__ = "0.1.0"
