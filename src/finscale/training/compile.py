"""``training.compile``: the training forward through ``torch.compile``, eager as the fallback.

What is compiled: the model's training forward (AOTAutograd compiles its backward with it).
Not compiled, and why:

- evaluation (``Trainer.predict``) runs the eager module: eval mode under ``no_grad`` is a
  second graph with its own compile (minutes on CPU) for one forward per validation sample
  per epoch, a small share of the work;
- the loss: BCE/focal on a (batch, n_tasks) tensor is a few hundred elements, nothing to fuse;
- the optimiser: the trainer's AdamW is torch's foreach implementation, already a handful of
  multi-tensor kernels.

The last short batch of an epoch (and any other batch whose size differs from the one the
graph was compiled for) runs through the EAGER module. The alternatives, and why not:

- pad it to the full batch: the padded rows would need a masked loss to keep the mean and the
  gradient scale, and cost a full batch of compute for a few samples;
- drop it: changes which samples train, so compiled and eager runs would differ by more than
  float tolerance (``training.compile`` is outside the run identity because they must not);
- mark the batch dimension dynamic: a second, symbolic-shape compile of the whole graph (a
  full CPU compile of the 100k model took 50-115 s on the 2-vCPU dev VM) and kernels with
  symbolic sizes on every step.

Eager and compiled modules share the same parameters, so the short batch is the same
function within float tolerance and costs one eager step per epoch. The graph is compiled
with ``dynamic=False`` so it is never silently recompiled for another size.

The compiler is exercised once before training (``CompiledForward.prepare``) on a zero batch
of the real shape, under ``fork_rng`` and with buffers and gradients restored, so it changes
no state a run depends on. Any failure there (no C++ compiler, an MPS or CUDA backend that
cannot lower an op, an unknown backend) warns once and the run trains eagerly.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal

import torch
from torch import nn

log = logging.getLogger(__name__)

CompileSetting = Literal[False, "auto", "default", "max-autotune"]
INDUCTOR = "inductor"
Backend = str | Callable[..., object]  # a torch.compile backend: a registered name or a callable


def compile_mode_for(setting: CompileSetting, device_type: str) -> str | None:
    """The ``torch.compile`` mode a run uses, or None for eager.

    ``auto``: CUDA compiles (``default``): Triton kernels fuse the memory-bound elementwise
    work, dropout's RNG included, and compile in a minute or two against runs of hours. CPU
    stays eager, measured on the dev VM (``benchmarks/README.md``): with dropout 0.1 the
    compiled step was SLOWER (0.86x eager at the 200k budget; inductor's C++ random numbers
    cost more than eager's ``bernoulli_``), about 1.06x without dropout, and the C++ build
    takes 1-2 minutes per graph on two loaded cores: it never paid for itself at the default
    shapes, so no step count makes it pay. MPS stays eager: inductor's Metal backend is a
    prototype and unmeasured here. ``default`` / ``max-autotune`` compile on any device.
    """
    if setting is False:
        return None
    if setting != "auto":
        return setting
    return "default" if device_type == "cuda" else None


class CompiledForward:
    """Calls the compiled model on full micro-batches and the eager model otherwise.

    ``model`` stays the plain module: checkpoints, evaluation and MLflow logging use it, so
    state-dict keys never carry the ``_orig_mod.`` prefix of a compiled wrapper.
    """

    def __init__(
        self, model: nn.Module, mode: str | None, *, batch_size: int, backend: Backend = INDUCTOR
    ) -> None:
        self.model = model
        self.mode = mode
        self.batch_size = batch_size
        self.backend = backend
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._prepared = mode is None

    @property
    def active(self) -> bool:
        """Whether full batches go through a compiled graph (False before ``prepare``)."""
        return self._compiled is not None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._compiled is not None and x.shape[0] == self.batch_size:
            return self._compiled(x)
        return self.model(x)  # eager: no compile, or a short batch (see the module docstring)

    def prepare(
        self,
        sample_shape: tuple[int, ...],
        device: torch.device,
        autocast: Callable[[], AbstractContextManager[object]],
    ) -> None:
        """Compile and run one forward + backward on zeros; on any failure warn once, go eager.

        Runs once; later calls return at once. Leaves RNG states, buffers and gradients as
        they were, so a compiled run and an eager one start from the same state.
        """
        if self._prepared:
            return
        self._prepared = True
        started = time.perf_counter()
        try:
            compiled = torch.compile(self.model, mode=self.mode, backend=self.backend,
                                     dynamic=False)
            self._exercise(compiled, (self.batch_size, *sample_shape), device, autocast)
        except Exception as exc:  # any compiler failure: the run must still train
            message = (f"training.compile: torch.compile (mode {self.mode}, backend "
                       f"{self.backend}) failed on {device.type}: {type(exc).__name__}: {exc}; "
                       "training eagerly")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            log.warning(message)
            return
        self._compiled = compiled
        log.info("training.compile: mode %s compiled in %.1f s", self.mode,
                 time.perf_counter() - started)

    def _exercise(
        self,
        compiled: Callable[[torch.Tensor], torch.Tensor],
        shape: tuple[int, ...],
        device: torch.device,
        autocast: Callable[[], AbstractContextManager[object]],
    ) -> None:
        """Forward + backward through ``compiled``; RNG, buffers and grads restored after."""
        buffers = {name: b.detach().clone() for name, b in self.model.named_buffers()}
        grads = [(p, p.grad) for p in self.model.parameters()]
        was_training = self.model.training
        self.model.train()  # the graph the training steps will call
        devices = [device.index or 0] if device.type in ("cuda", "mps") else []
        rng_device = device.type if devices else "cuda"
        try:
            with torch.random.fork_rng(devices=devices, device_type=rng_device):
                with autocast():
                    out = compiled(torch.zeros(shape, device=device))
                out.float().sum().backward()
        finally:
            self.model.train(was_training)
            for parameter, grad in grads:
                parameter.grad = grad
            with torch.no_grad():
                for name, buffer in self.model.named_buffers():
                    buffer.copy_(buffers[name])
