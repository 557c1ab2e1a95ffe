"""The exponential weight average of label-free training, against its closed form."""

import numpy as np
import pytest
import torch

from skdanet._averaging import ExponentialWeightAverage


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))


def _set_weights(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.as_tensor(rng.normal(size=tuple(p.shape))))
        module.count += 1
    return {k: v.clone().double().numpy() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("half_life", [1.0, 2.5, 40.0])
def test_average_is_the_decay_weighted_mean_of_the_states_seen(half_life):
    rng = np.random.default_rng(0)
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=half_life)
    seen = []
    for _ in range(7):
        seen.append(_set_weights(module, rng))
        average.update()
    decay = 0.5 ** (1 / half_life)
    w = decay ** np.arange(len(seen))[::-1]  # the newest state weighs 1
    got = average.state_dict()
    for name in ("linear.weight", "linear.bias"):
        expected = sum(wt * s[name] for wt, s in zip(w, seen)) / w.sum()
        np.testing.assert_allclose(got[name].numpy(), expected, rtol=1e-12, atol=1e-14)
    assert got["count"].item() == 7  # counters are copied, not averaged


def test_half_life_halves_a_states_share():
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=3)
    with torch.no_grad():
        module.linear.weight.fill_(1.0)
    average.update()
    with torch.no_grad():
        module.linear.weight.fill_(0.0)
    for _ in range(3):
        average.update()
    # After 3 more steps the first state's weight is half the newest's:
    # share = 0.5 / (0.5 + 2^(-2/3) + 2^(-1/3) + 1).
    share = 0.5 / (0.5 + 2 ** (-2 / 3) + 2 ** (-1 / 3) + 1)
    np.testing.assert_allclose(average.state_dict()["linear.weight"].numpy(), share)


def test_applied_swaps_in_the_average_and_restores_the_module():
    rng = np.random.default_rng(1)
    module = _Tiny().double()
    average = ExponentialWeightAverage(module, half_life=2)
    for _ in range(3):
        _set_weights(module, rng)
        average.update()
    own = {k: v.clone() for k, v in module.state_dict().items()}
    averaged = average.state_dict()
    with average.applied():
        torch.testing.assert_close(module.linear.weight, averaged["linear.weight"])
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, own[k], rtol=0, atol=0)


def test_no_update_yet_gives_the_modules_own_state():
    module = _Tiny().double()
    state = ExponentialWeightAverage(module, half_life=2).state_dict()
    for k, v in module.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0)
