"""Classification metrics on tensors: accuracy, per-class accuracy, confusion matrix.

Detection metrics for the wake-word lesson (EER, DET, false rejects at N false accepts per
hour) live in ``helpers.detection`` and are re-exported here when available.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from helpers.train import accuracy, predict

__all__ = ["accuracy", "confusion_matrix", "per_class_accuracy", "predict", "summary"]


def confusion_matrix(y_true: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """Counts [true class, predicted class] as a long tensor of shape [C, C]."""
    y_true, y_pred = y_true.cpu().long(), y_pred.cpu().long()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)} differ in shape")
    flat = y_true * num_classes + y_pred
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_accuracy(matrix: Tensor) -> Tensor:
    """Recall of each class from a confusion matrix (NaN for a class with no examples)."""
    return matrix.diag().float() / matrix.sum(1).float()


@torch.no_grad()
def summary(model: nn.Module, X: Tensor, y: Tensor, class_names: tuple[str, ...]) -> dict:
    """Accuracy, per-class accuracy (by name) and the confusion matrix of ``model`` on (X, y)."""
    predicted = predict(model, X).argmax(1).cpu()
    matrix = confusion_matrix(y, predicted, len(class_names))
    per_class = per_class_accuracy(matrix)
    return {"accuracy": (predicted == y.cpu()).float().mean().item(),
            "per_class": dict(zip(class_names, per_class.tolist())),
            "confusion": matrix}
