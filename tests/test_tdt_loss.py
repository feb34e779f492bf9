"""The vectorised TDT loss (scripts/tinyen/tdt_loss.py) against NeMo's reference TDT loss.

NeMo's ``TDTLossPytorch`` is a scalar loop over (batch, t, u) written for CUDA (it calls
``.cuda()``); on these tiny inputs it runs on the CPU with ``.cuda()`` made a no-op, and
gives the value and, through autograd, the gradients that ours must match.
"""
from __future__ import annotations

import pytest
import torch

from tests.conftest import load_tinyen

load_tinyen()
from tinyen.tdt_loss import TDTLoss  # noqa: E402


@pytest.fixture
def reference(monkeypatch):
    from nemo.collections.asr.losses.rnnt_pytorch import TDTLossPytorch

    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    return TDTLossPytorch


@pytest.mark.parametrize("durations,sigma,seed,lens", [
    ([0, 1, 2, 3, 4], 0.0, 0, [9, 6, 7]),
    ([0, 1, 2, 3, 4], 0.05, 1, [9, 6, 7]),
    ([0, 1, 2], 0.02, 2, [9, 6, 7]),
    ([0, 2, 4], 0.0, 3, [8, 6, 4]),  # only even frames are reachable: even lengths
    ([1, 2], 0.0, 4, [9, 6, 7]),  # no same-frame label arcs
])
def test_value_and_gradients_match_nemo(reference, durations, sigma, seed, lens):
    g = torch.Generator().manual_seed(seed)
    B, T, U, V = 3, 9, 4, 6
    acts = torch.randn(B, T, U + 1, V + 1 + len(durations), generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, V, (B, U), generator=g)
    act_lens = torch.tensor(lens)
    label_lens = torch.tensor([4, 2, 3])
    a_ref = acts.clone().requires_grad_()
    a_ours = acts.clone().requires_grad_()
    ref = reference(blank=V, durations=durations, reduction="none", sigma=sigma)
    ours = TDTLoss(blank=V, durations=durations, sigma=sigma, reduction="none")
    l_ref = ref(acts=a_ref, labels=labels, act_lens=act_lens, label_lens=label_lens)
    l_ours = ours(a_ours, labels, act_lens, label_lens)
    # the reference keeps alpha in float32 whatever the input: compare at that precision
    torch.testing.assert_close(l_ours, l_ref.to(l_ours.dtype), rtol=1e-5, atol=1e-4)
    weights = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)  # gradients per utterance differ
    (l_ref * weights).sum().backward()
    (l_ours * weights).sum().backward()
    torch.testing.assert_close(a_ours.grad, a_ref.grad.to(a_ours.dtype), rtol=1e-4, atol=1e-5)
    assert a_ours.grad.abs().sum() > 0


def test_a_single_path_has_the_probability_of_its_arcs():
    # T=1, one label: the only path is label (duration 0) then blank (duration 1)
    durations = [0, 1]
    acts = torch.zeros(1, 1, 2, 2 + 1 + 2)
    loss = TDTLoss(blank=2, durations=durations, reduction="none")
    got = loss(acts, torch.tensor([[1]]), torch.tensor([1]), torch.tensor([1]))
    expected = -(2 * torch.log(torch.tensor(1 / 3)) + 2 * torch.log(torch.tensor(0.5)))
    torch.testing.assert_close(got, expected.reshape(1))


def test_reductions_and_padding():
    g = torch.Generator().manual_seed(7)
    acts = torch.randn(2, 8, 5, 5 + 1 + 3, generator=g)
    labels = torch.randint(0, 5, (2, 4), generator=g)
    lens, llens = torch.tensor([8, 5]), torch.tensor([4, 2])
    none = TDTLoss(blank=5, durations=[0, 1, 2], reduction="none")(acts, labels, lens, llens)
    assert torch.isfinite(none).all() and (none > 0).all()
    batch = TDTLoss(blank=5, durations=[0, 1, 2])(acts, labels, lens, llens)
    torch.testing.assert_close(batch, none.mean())
    # frames and labels past an utterance's lengths do not change its loss
    acts2 = acts.clone()
    acts2[1, 5:] = 100.0
    acts2[1, :, 3:] = -100.0
    labels2 = labels.clone()
    labels2[1, 2:] = 0
    again = TDTLoss(blank=5, durations=[0, 1, 2], reduction="none")(acts2, labels2, lens, llens)
    torch.testing.assert_close(again[1], none[1])


def test_bad_durations_are_refused():
    for bad in ([0], [1, 1], [-1, 1]):
        with pytest.raises(ValueError):
            TDTLoss(blank=3, durations=bad)
