"""The training engine: tensors on the device, batches by slicing, one short loop.

No per-sample ``Dataset`` on the hot path: the whole (small) data set lives on the device, an
epoch is a random permutation of indices, and a batch is one ``index_select``. The forward pass
runs under bf16 autocast on CUDA and on a CPU with bf16 instructions (1.4-1.7x faster there:
``runtime.cpu_bf16``); elsewhere in fp32 (a CPU without them emulates bf16, several times slower).
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from helpers.runtime import get_device, numerics, reuse_freed_memory


@dataclass
class History:
    """What happened during ``fit``: per-epoch loss/accuracy, the best epoch, wall time."""

    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    interrupted: bool = False


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where ``runtime.numerics`` says so (CUDA; a CPU with bf16), nothing elsewhere."""
    if numerics(device) == "bf16 autocast":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(X: Tensor, device: torch.device) -> Tensor:
    """Move a batch of inputs to ``device``; images go channels_last (faster convolutions)."""
    X = X.to(device, non_blocking=True)
    return X.contiguous(memory_format=torch.channels_last) if X.dim() == 4 else X


def batches(n: int, batch_size: int, generator: torch.Generator | None, device: torch.device) -> Iterable[Tensor]:
    """Index tensors of one epoch: shuffled when a generator is given, in order otherwise."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order.to(device)
    return order.split(batch_size)


Augment = Callable[[Tensor, torch.Generator], Tensor]


def random_shift_flip(X: Tensor, generator: torch.Generator, max_shift: int = 4, flip: bool = True) -> Tensor:
    """A batch of images [n, c, h, w] shifted and mirrored at random: data augmentation.

    The whole batch moves by one random offset of up to ``max_shift`` pixels in each direction
    (the uncovered border is filled by reflection), and with ``flip`` each image is mirrored
    left-right with probability 1/2. Random draws come from ``generator`` (a CPU generator), so
    a seed gives the same augmentation on any device. Only for labels that survive a shift and a
    mirror image.
    """
    if X.dim() != 4:
        raise ValueError(f"random_shift_flip expects images [n, c, h, w], got shape {tuple(X.shape)}")
    if not 0 <= max_shift < min(X.shape[-2:]):
        raise ValueError(f"max_shift must be between 0 and the image size - 1, got {max_shift}")
    h, w = X.shape[-2:]
    if max_shift:
        dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=generator).tolist()
        X = nn.functional.pad(X, (max_shift,) * 4, mode="reflect")[:, :, dy:dy + h, dx:dx + w]
    if flip:
        mirrored = (torch.rand(len(X), generator=generator) < 0.5).to(X.device).view(-1, 1, 1, 1)
        X = torch.where(mirrored, X.flip(3), X)
    return X.contiguous(memory_format=torch.channels_last)


def train_one_epoch(model: nn.Module, X: Tensor, y: Tensor, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, batch_size: int,
                    generator: torch.Generator, label_smoothing: float = 0.0,
                    augment: Augment | None = None) -> float:
    """One pass over (X, y) in shuffled batches; returns the mean training loss.

    augment: applied to each batch of inputs (with ``generator``) before the forward pass.
    """
    model.train()
    losses, device = [], X.device
    for index in batches(len(X), batch_size, generator, device):
        # index_select, not X[index]: the same rows, ~3x less overhead per batch (advanced indexing)
        inputs, targets = X.index_select(0, index), y.index_select(0, index)
        if augment is not None:
            inputs = augment(inputs, generator)
        with autocast(device):
            loss = nn.functional.cross_entropy(model(inputs), targets, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())  # no .item() here: it would wait for the GPU every step
    return torch.stack(losses).mean().item()  # batch means (the last batch may be smaller)


@torch.no_grad()
def predict(model: nn.Module, X: Tensor, batch_size: int = 1024, device: torch.device | None = None) -> Tensor:
    """Logits of ``model`` on ``X`` (eval mode, no gradients), on ``X``'s device."""
    device = device or X.device
    reuse_freed_memory()
    model.eval().to(device)
    outputs = []
    for index in batches(len(X), batch_size, None, X.device):
        with autocast(device):
            outputs.append(model(to_device(X[index], device)).float())
    return torch.cat(outputs).to(X.device)


def accuracy(model: nn.Module, X: Tensor, y: Tensor) -> float:
    """Fraction of ``X`` that ``model`` labels correctly."""
    return (predict(model, X).argmax(1) == y.to(X.device)).float().mean().item()


class LeanAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW(fused=True)`` with less Python around its kernel: bit-identical weights.

    ``step`` calls the same fused kernel (``torch._fused_adamw_``) with the same state (``step``,
    ``exp_avg``, ``exp_avg_sq``, created as torch creates them), so schedulers, ``state_dict`` and
    checkpoints work unchanged; it skips the per-step bookkeeping torch's general optimizer does
    (hooks, grouping tensors by device and dtype, checks for features we do not use), and
    ``zero_grad`` sets the gradients to None in a plain loop. For a linear head on cached features
    the optimiser step took ~60 µs instead of ~90 and zero_grad ~2 µs instead of ~27 (measured inside
    ``fit`` on this course's CPU); for a convolutional network it makes no difference. Anything
    beyond the plain case (AMSGrad, ``maximize``, tensor learning rates, capturable, sparse or complex
    parameters, a group whose parameters differ in device or dtype) goes to torch's step, before
    anything is updated.
    """

    def __init__(self, params: Iterable[nn.Parameter] | list[dict], lr: float, weight_decay: float) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay, fused=True)
        self._lean = hasattr(torch, "_fused_adamw_")

    def _plain(self, group: dict) -> bool:
        """Whether this group is the plain case LeanAdamW's own step handles (see the class)."""
        if (not self._lean or group["amsgrad"] or group["maximize"] or group["capturable"]
                or isinstance(group["lr"], Tensor) or group.get("differentiable", False)):
            return False
        params = [p for p in group["params"] if p.grad is not None]
        return (len({(p.device, p.dtype) for p in params}) <= 1  # one kernel call: one device and dtype
                and not any(p.grad.is_sparse or p.is_complex() for p in params))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One AdamW update of every parameter that has a gradient (see the class)."""
        if closure is not None or not all(self._plain(group) for group in self.param_groups):
            return super().step(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:  # as torch's fused AdamW initialises it
                    self.state[p].update(step=torch.zeros((), dtype=torch.float32, device=p.device),
                                         exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                                         exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format))
            states = [self.state[p] for p in params]
            steps = [state["step"] for state in states]
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                                [s["exp_avg_sq"] for s in states], [], steps, amsgrad=False, lr=group["lr"],
                                beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                maximize=False, grad_scale=None, found_inf=None)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient (set to None); ``set_to_none=False`` zeroes them, as torch does."""
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        return None


def make_optimizer(params: Iterable[nn.Parameter] | list[dict], lr: float, weight_decay: float,
                   total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with a one-cycle schedule (warm-up, then cosine decay) over ``total_steps``."""
    # fused: one kernel for all parameters instead of a Python loop over them (much less overhead
    # per step for small models); available for float parameters on CPU and CUDA. LeanAdamW: the
    # same kernel and results with less Python per step.
    optimizer = LeanAdamW(params, lr=lr, weight_decay=weight_decay)
    return optimizer, one_cycle(optimizer, total_steps)


def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The one-cycle schedule of ``make_optimizer``: each group's lr is its peak (20 % warm-up, cosine decay)."""
    peaks = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=max(total_steps, 1),
                                               pct_start=0.2, anneal_strategy="cos")


def fit(model: nn.Module, X: Tensor, y: Tensor, *, epochs: int, lr: float = 2e-3, batch_size: int = 64,
        weight_decay: float = 5e-4, params: Iterable[nn.Parameter] | list[dict] | None = None,
        X_val: Tensor | None = None, y_val: Tensor | None = None, seed: int = 0,
        device: torch.device | None = None, label_smoothing: float = 0.0, progress: bool = True,
        augment: Augment | None = None, after_epoch: Callable[[int], None] | None = None) -> History:
    """Train ``model`` on (X, y) for ``epochs`` epochs and return its History.

    params: the parameters (or parameter groups with their own ``lr``) to optimise; default all
    that require gradients. With (X_val, y_val) the weights of the best validation epoch are
    restored at the end. Ctrl-C stops training and keeps the best model so far. augment: a
    function (batch, generator) -> batch applied while training, e.g. ``random_shift_flip``.
    after_epoch: called with the epoch's index after each epoch (e.g. to measure the model);
    it must not draw random numbers from the global generator if results are to stay the same.
    """
    device = device or get_device()
    reuse_freed_memory()  # fewer page faults per step (runtime.reuse_freed_memory)
    model.to(device).to(memory_format=torch.channels_last)
    X, y = to_device(X, device), y.to(device)
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    steps = epochs * -(-len(X) // batch_size)
    optimizer, scheduler = make_optimizer(params, lr, weight_decay, steps)
    history, best = History(), None
    generator, start = torch.Generator().manual_seed(seed), time.perf_counter()
    try:
        for epoch in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
            history.train_loss.append(train_one_epoch(model, X, y, optimizer, scheduler, batch_size,
                                                      generator, label_smoothing, augment))
            if after_epoch is not None:
                after_epoch(epoch)
            if X_val is not None and y_val is not None:
                best = _track_best(model, history, accuracy(model, to_device(X_val, device), y_val), epoch, best)
    except KeyboardInterrupt:
        history.interrupted = True  # keep what was learned so far; the caller gets the best model
    if best is not None:
        model.load_state_dict(best)
    history.seconds = time.perf_counter() - start
    return history


def _track_best(model: nn.Module, history: History, val_accuracy: float, epoch: int,
                best: dict | None) -> dict | None:
    """Record the validation accuracy; return a copy of the weights when it is the best so far."""
    history.val_accuracy.append(val_accuracy)
    if val_accuracy >= max(history.val_accuracy):
        history.best_epoch = epoch
        return copy.deepcopy(model.state_dict())
    return best


@torch.no_grad()
def cached_features(module: nn.Module, X: Tensor, batch_size: int | None = None,
                    device: torch.device | None = None) -> Tensor:
    """Run a frozen ``module`` over ``X`` once and return its outputs (on ``device``).

    Training a head on these instead of recomputing the frozen backbone every epoch gives the
    same result for a fraction of the cost (see ``python -m helpers.authoring.bench``). ``batch_size``
    defaults to 1,024 on a GPU and 256 on a CPU, where 1,024 images of activations at a time
    cost fresh memory pages (measured without tcmalloc: 0.24-0.34 s instead of 0.49-0.56 s for
    3,000 task-A images, with bit-identical features).
    """
    device = device or get_device()
    batch_size = batch_size or (1024 if device.type == "cuda" else 256)
    module.to(device).to(memory_format=torch.channels_last)
    return predict(module, to_device(X, device), batch_size=batch_size, device=device)
