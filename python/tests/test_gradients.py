"""Rollout gradients against central finite differences (batched as instances)."""

import numpy as np

import backdrive

HORIZON = 30
LOSS = [
    {"body": "pole", "quantity": "position_error", "target": [0.3, 0.0, 2.0], "when": "final"},
    {"body": "cart", "quantity": "velocity_error", "target": [0.5, 0.0, 0.0], "weight": 0.1},
]


def _central_differences(model, x0, u, p, which, indices, h):
    """d loss / d input[index] for instance 0's inputs, two perturbed instances per index."""
    k = len(indices)
    n = 2 * k
    rollout = backdrive.Rollout(model, n, HORIZON, loss=LOSS)
    xs, us, ps = (np.repeat(a[:1], n, axis=0) for a in (x0, u, p))
    target = {"initial_state": xs, "commands": us, "params": ps}[which]
    for j, flat in enumerate(indices):
        target.reshape(n, -1)[2 * j, flat] += h
        target.reshape(n, -1)[2 * j + 1, flat] -= h
    loss, _ = rollout.forward(xs, us, ps)
    loss = loss.astype(np.float64)
    return (loss[0::2] - loss[1::2]) / (2 * h)


def test_gradients_match_central_differences():
    model = backdrive.load("cartpole")
    n = 2
    rng = np.random.default_rng(3)
    x0 = np.repeat(model.initial_state()[None], n, axis=0)
    u = rng.uniform(-0.5, 0.5, (n, HORIZON, model.n_actuators)).astype(np.float32)
    p = np.repeat(model.default_params()[None], n, axis=0)
    rollout = backdrive.Rollout(model, n, HORIZON, loss=LOSS)
    g = rollout.gradients(x0, u, p)
    assert g["initial_state"].shape == (n, model.state_len)
    assert g["commands"].shape == (n, HORIZON, model.n_actuators)
    assert g["params"].shape == (n, model.param_len)
    assert np.array_equal(g["loss"], rollout.forward(x0, u, p)[0])
    b = backdrive.BODY_STATE_LEN
    # Positions and velocities of the cart and the pole, a few commands, masses and gains.
    state_idx = [b + 0, b + 7, 2 * b + 0, 2 * b + 2, 2 * b + 9, 2 * b + 10]
    command_idx = [0, 7, 15, HORIZON - 1]
    names = model.param_names
    param_idx = [k for k, s in enumerate(names) if s.startswith(("inverse_mass", "servo_gain"))]
    for which, idx, h in (("initial_state", state_idx, 1e-2), ("commands", command_idx, 1e-2),
                          ("params", param_idx, 1e-2)):
        fd = _central_differences(model, x0, u, p, which, idx, h)
        analytic = g[which].reshape(n, -1)[0, idx].astype(np.float64)
        scale = np.abs(analytic).max()
        assert scale > 1e-3, which
        err = np.abs(fd - analytic).max() / scale
        assert err < 3e-2, (which, fd, analytic)


def test_final_state_seed_gives_the_jacobian_transpose_product():
    model = backdrive.load("cartpole")
    n = 1
    rollout = backdrive.Rollout(model, n, 10)
    seed = np.zeros((n, model.state_len), np.float32)
    b = backdrive.BODY_STATE_LEN
    seed[0, b + 0] = 1.0  # the cart's x
    g = rollout.gradients(final_state_seed=seed)
    assert np.all(g["loss"] == 0.0)
    x0 = np.repeat(model.initial_state()[None], 2, axis=0)
    k = b + 7  # the cart's velocity along its rail
    h = 1e-2
    x0[0, k] += h
    x0[1, k] -= h
    _, last = backdrive.Rollout(model, 2, 10).forward(initial_state=x0)
    fd = (float(last[0, b]) - float(last[1, b])) / (2 * h)
    assert abs(fd) > 1e-3, fd
    assert abs(fd - g["initial_state"][0, k]) < 3e-2 * max(abs(fd), 1e-3), (fd, g["initial_state"][0, k])
