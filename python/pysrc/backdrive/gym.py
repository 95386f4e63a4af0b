"""Gymnasium environments over backdrive's built-in tasks (needs ``gymnasium``).

:class:`TaskVectorEnv` is a :class:`gymnasium.vector.VectorEnv` of ``num_envs`` instances of
a task (:func:`backdrive.task_names`) stepped together on the GPU; :class:`TaskEnv` is one
instance as a :class:`gymnasium.Env`. What they return comes from the task definitions:

- **observation**: the task policy's sensors (joint angles and speeds, body states, clocks,
  targets...), computed from the state before each step as the training kernels do;
- **action**: the actuators' commands, unbounded (what the task's policy outputs);
- **reward**: minus the task loss's contribution of the step (its per-step terms on the state
  after the step, and its final terms at the last step), so an episode's return is minus the
  task loss that ``backdrive train`` minimises;
- **terminated**: never (the tasks have no terminal states); **truncated**: after the task's
  horizon.

Each episode draws the physical parameters (and the displacement of the robot, for tasks that
move it) from the task's randomisation, keyed by (seed, instance, episode) like training.
Auto-reset follows Gymnasium's default ``NEXT_STEP`` mode: the step after an instance's
episode ends resets that instance, returning its first observation with reward 0 and both
flags false, and ignores its action.
"""

from __future__ import annotations

from typing import Any, Optional

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from ._backdrive import TaskEnv as _TaskEnvCore

__all__ = ["TaskEnv", "TaskVectorEnv"]


def _spaces(core: _TaskEnvCore):
    obs = spaces.Box(-np.inf, np.inf, (core.n_obs,), np.float32)
    act = spaces.Box(-np.inf, np.inf, (core.n_actions,), np.float32)
    return obs, act


class TaskVectorEnv(VectorEnv):
    """``num_envs`` instances of the built-in task ``task`` as a Gymnasium vector env."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, task: str, num_envs: int = 1, seed: int = 0):
        self._core = _TaskEnvCore(task, num_envs, seed)
        self.num_envs = num_envs
        self.task = task
        self.horizon = self._core.horizon
        self.single_observation_space, self.single_action_space = _spaces(self._core)
        self.observation_space = spaces.Box(
            -np.inf, np.inf, (num_envs, self._core.n_obs), np.float32
        )
        self.action_space = spaces.Box(
            -np.inf, np.inf, (num_envs, self._core.n_actions), np.float32
        )
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._reset_once = False

    def reset(
        self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts a new episode in every instance; ``seed`` re-keys the randomisation."""
        super().reset(seed=seed)
        obs = self._core.reset(seed)
        self._autoreset[:] = False
        self._reset_once = True
        return obs, {}

    def step(self, actions):
        """One step of every instance (see the module docs for auto-reset)."""
        if not self._reset_once:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        reset_mask = self._autoreset.copy()
        obs, rewards, elapsed = self._core.step(actions, list(reset_mask))
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = (elapsed >= self.horizon) & ~reset_mask
        self._autoreset = terminations | truncations
        return obs, rewards, terminations, truncations, {}

    def close_extras(self, **kwargs: Any) -> None:
        self._core = None  # frees the GPU buffers


class TaskEnv(gymnasium.Env):
    """One instance of the built-in task ``task`` as a Gymnasium env (see the module docs)."""

    metadata = {"render_modes": []}

    def __init__(self, task: str, seed: int = 0):
        self._core = _TaskEnvCore(task, 1, seed)
        self.task = task
        self.horizon = self._core.horizon
        self.observation_space, self.action_space = _spaces(self._core)
        self._done = True

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict[str, Any]] = None):
        """Starts a new episode; ``seed`` re-keys the randomisation."""
        super().reset(seed=seed)
        obs = self._core.reset(seed)
        self._done = False
        return obs[0], {}

    def step(self, action):
        """One step; the episode is truncated after the task's horizon."""
        if self._done:
            raise gymnasium.error.ResetNeeded("the episode has ended: call reset()")
        action = np.asarray(action)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action: expected shape {self.action_space.shape}, got shape {action.shape}"
            )
        obs, rewards, elapsed = self._core.step(action[None, :], [False])
        truncated = bool(elapsed[0] >= self.horizon)
        self._done = truncated
        return obs[0], float(rewards[0]), False, truncated, {}
