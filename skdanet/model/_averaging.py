"""Exponential moving average of a module's weights over training steps.

Label-free training learns from pseudo-labels, some of them wrong; the weights
of the last few steps each follow the batches they saw. Their running average
(Polyak averaging, as in the "mean teacher" of noisy-label training) keeps the
direction the steps agree on.

Bias-corrected like Adam's moments: the average starts from zero and is
divided by ``1 - decay ** steps``, so it is the weighted mean of the weights
seen, ``sum_t decay**(T - t) w_t / sum_t decay**(T - t)``, from the first
step on. Integer buffers (counters) are copied, not averaged.
"""

from contextlib import contextmanager

import torch


class ExponentialWeightAverage:
    """Running average of ``module``'s state with the given half-life in steps.

    Parameters
    ----------
    module : torch.nn.Module
    half_life : float
        Steps after which a weight's share of the average has halved.
    """

    def __init__(self, module, half_life):
        self.module = module
        self.decay = 0.5 ** (1.0 / float(half_life))
        self.steps = 0
        self._sum = {name: torch.zeros_like(value)
                     for name, value in module.state_dict().items()}

    @torch.no_grad()
    def update(self):
        """Fold the module's current state into the average (after each step)."""
        self.steps += 1
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                self._sum[name].mul_(self.decay).add_(value, alpha=1 - self.decay)
            else:
                self._sum[name].copy_(value)

    def state_dict(self):
        """The averaged state, ready for ``module.load_state_dict``."""
        if self.steps == 0:
            return {name: value.clone() for name, value in self.module.state_dict().items()}
        correction = 1 - self.decay**self.steps
        return {name: (value / correction if value.dtype.is_floating_point else value.clone())
                for name, value in self._sum.items()}

    @contextmanager
    def applied(self):
        """Use the averaged weights inside the block, the module's own after it."""
        own = {name: value.clone() for name, value in self.module.state_dict().items()}
        self.module.load_state_dict(self.state_dict())
        try:
            yield self.module
        finally:
            self.module.load_state_dict(own)
