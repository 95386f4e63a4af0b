"""backdrive.torch: the autograd function against the Rust gradient and torch's gradcheck."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import backdrive  # noqa: E402
import backdrive.torch as bt  # noqa: E402

LOSS = [{"body": "pole", "quantity": "position_error", "target": [0.3, 0.0, 2.0], "when": "final"}]


def test_backward_equals_the_rust_gradient():
    model = backdrive.load("cartpole")
    n, horizon = 3, 20
    r = backdrive.Rollout(model, n, horizon, loss=LOSS)
    x0 = torch.tensor(np.repeat(model.initial_state()[None], n, axis=0), requires_grad=True)
    u = torch.full((n, horizon, 1), 0.2, requires_grad=True)
    p = torch.tensor(np.repeat(model.default_params()[None], n, axis=0), requires_grad=True)
    loss, final = bt.rollout(r, x0, u, p)
    weights = torch.tensor([1.0, 2.0, -0.5])
    (loss * weights).sum().backward()
    g = r.gradients(x0.detach().numpy(), u.detach().numpy(), p.detach().numpy())
    w = weights.numpy()
    assert np.allclose(u.grad.numpy(), g["commands"] * w[:, None, None], rtol=1e-6, atol=0)
    assert np.allclose(x0.grad.numpy(), g["initial_state"] * w[:, None], rtol=1e-6, atol=0)
    assert np.allclose(p.grad.numpy(), g["params"] * w[:, None], rtol=1e-6, atol=0)
    assert np.abs(u.grad.numpy()).max() > 0


def test_final_state_gradient_through_a_lossless_rollout_matches_the_seeded_adjoint():
    model = backdrive.load("cartpole")
    n, horizon = 2, 5
    r = backdrive.Rollout(model, n, horizon)
    x0 = torch.tensor(np.repeat(model.initial_state()[None], n, axis=0), requires_grad=True)
    u = torch.zeros((n, horizon, 1), requires_grad=True)
    _, final = bt.rollout(r, x0, u)
    seed = torch.randn(final.shape, generator=torch.Generator().manual_seed(0))
    (final * seed).sum().backward()
    g = r.gradients(x0.detach().numpy(), u.detach().numpy(), final_state_seed=seed.numpy())
    assert np.array_equal(u.grad.numpy(), g["commands"])
    assert np.array_equal(x0.grad.numpy(), g["initial_state"])


def test_gradcheck_on_a_smooth_case():
    # The simulation runs in float32, so torch's float64 gradcheck gets a finite-difference
    # step and tolerances sized for float32 on a smooth, contact-free cart-pole.
    model = backdrive.load("cartpole")
    n, horizon = 1, 10
    r = backdrive.Rollout(model, n, horizon, loss=LOSS)
    u = torch.full((n, horizon, 1), 0.1, dtype=torch.float64, requires_grad=True)
    x0 = torch.tensor(model.initial_state()[None], dtype=torch.float64)

    def f(commands):
        return bt.rollout(r, x0, commands)[0]

    assert torch.autograd.gradcheck(f, (u,), eps=1e-2, atol=1e-4, rtol=2e-2)
