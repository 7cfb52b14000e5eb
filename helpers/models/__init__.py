"""Models of the course and the surgery the lecture performs on them."""
from helpers.models.image import ImageCNN, conv_block, count_parameters, filter_structure
from helpers.models.speech import KeywordNet
from helpers.models.surgery import (
    freeze,
    freeze_backbone,
    parameter_groups,
    replace_head,
    trainable_parameters,
    unfreeze,
)

__all__ = [
    "ImageCNN", "KeywordNet", "conv_block", "count_parameters", "filter_structure", "freeze", "freeze_backbone",
    "parameter_groups", "replace_head", "trainable_parameters", "unfreeze",
]
