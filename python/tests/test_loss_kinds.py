"""The loss kinds of the task files in the loss dictionaries: healthy_height and control_cost."""

import numpy as np
import pytest

import backdrive

HORIZON = 12


def _inputs(model, n, seed=5):
    rng = np.random.default_rng(seed)
    x0 = np.repeat(model.initial_state()[None], n, axis=0)
    u = rng.uniform(-0.5, 0.5, (n, HORIZON, model.n_actuators)).astype(np.float32)
    p = np.repeat(model.default_params()[None], n, axis=0)
    return x0, u, p


def test_control_cost_is_the_weighted_sum_of_squared_commands_with_its_gradient():
    model = backdrive.load("cartpole")
    x0, u, p = _inputs(model, 2)
    rollout = backdrive.Rollout(model, 2, HORIZON, loss=[{"quantity": "control_cost", "weight": 0.5}])
    g = rollout.gradients(x0, u, p)
    expected = 0.5 * (u.astype(np.float64) ** 2).sum(axis=(1, 2))
    np.testing.assert_allclose(g["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(g["commands"], 2 * 0.5 * u, rtol=1e-5, atol=1e-7)
    # It depends on the commands only: no gradient reaches the initial state.
    assert np.all(g["initial_state"] == 0.0)


def test_healthy_height_counts_the_steps_in_range():
    model = backdrive.load("cartpole")
    x0, u, p = _inputs(model, 2)

    def loss(lo, hi, weight=2.0):
        term = {"body": "pole", "quantity": "healthy_height", "range": [lo, hi], "weight": weight}
        return backdrive.Rollout(model, 2, HORIZON, loss=[term]).gradients(x0, u, p)

    always = loss(-100.0, 100.0)
    np.testing.assert_array_equal(always["loss"], np.full(2, 2.0 * HORIZON, np.float32))
    # A step function of the state: its gradient is zero.
    assert np.all(always["initial_state"] == 0.0)
    assert np.all(always["commands"] == 0.0)
    np.testing.assert_array_equal(loss(100.0, 200.0)["loss"], np.zeros(2, np.float32))


def test_bad_terms_of_the_new_kinds_are_refused():
    model = backdrive.load("cartpole")
    with pytest.raises(ValueError, match="healthy_height needs 'range'"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "pole", "quantity": "healthy_height"}])
    with pytest.raises(ValueError, match=r"'range' must be \[min, max\]"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "pole", "quantity": "healthy_height", "range": [2.0, 1.0]}])
    with pytest.raises(ValueError, match=r"range: expected shape \(2,\)"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "pole", "quantity": "healthy_height", "range": [1.0]}])
    with pytest.raises(ValueError, match="control_cost takes no 'body'"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "pole", "quantity": "control_cost"}])
    with pytest.raises(backdrive.InvalidInputError, match="unknown body 'nobody'"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "nobody", "quantity": "healthy_height", "range": [0, 1]}])
