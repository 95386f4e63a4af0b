"""backdrive.gym: the vector env's API, auto-reset, determinism and Gymnasium's checks."""

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import backdrive.gym as bg  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.utils.passive_env_checker import check_action_space, check_observation_space  # noqa: E402


def test_single_env_passes_gymnasiums_check_env():
    env = bg.TaskEnv("cartpole-balance")
    check_env(env, skip_render_check=True)


def test_vector_env_spaces_reset_and_step():
    n = 3
    env = bg.TaskVectorEnv("cartpole-balance", n, seed=7)
    assert isinstance(env, gymnasium.vector.VectorEnv)
    check_observation_space(env.single_observation_space)
    check_action_space(env.single_action_space)
    obs, info = env.reset(seed=1)
    assert obs.shape == (n, env.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert obs in env.observation_space
    obs2, _ = env.reset(seed=1)
    assert np.array_equal(obs, obs2), "reset(seed) must be deterministic"
    actions = env.action_space.sample().astype(np.float32)
    o, r, term, trunc, info = env.step(actions)
    assert o.shape == obs.shape and r.shape == (n,) and term.dtype == bool and trunc.dtype == bool
    env.reset(seed=1)
    o2, r2, *_ = env.step(actions)
    assert np.array_equal(o, o2) and np.array_equal(r, r2), "step must be deterministic"
    assert not np.shares_memory(o, o2)
    # The observation is the task's sensors: cart and pole positions and velocities (3 each).
    assert not np.array_equal(o, obs)


def test_episode_return_and_next_step_autoreset():
    n = 2
    env = bg.TaskVectorEnv("cartpole-balance", n)
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    first, _ = env.reset(seed=0)
    total = np.zeros(n)
    zeros = np.zeros((n, 1), np.float32)
    for t in range(env.horizon):
        obs, reward, term, trunc, _ = env.step(zeros)
        total += reward
        assert not term.any()
        assert trunc.all() == (t == env.horizon - 1)
    assert np.all(total < 0)
    # The step after the end resets: the episode's first observation, reward 0, no flags.
    obs, reward, term, trunc, _ = env.step(zeros)
    assert np.all(reward == 0) and not term.any() and not trunc.any()
    assert obs.shape == first.shape
    # cartpole-balance randomises only masses, so every episode starts from the same state.
    assert np.array_equal(obs, first)


def test_step_before_reset_and_bad_actions_are_errors():
    env = bg.TaskVectorEnv("cartpole-balance", 2)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros((2, 1), np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions: expected shape \(2, 1\), got shape \(2, 2\)"):
        env.step(np.zeros((2, 2), np.float32))
