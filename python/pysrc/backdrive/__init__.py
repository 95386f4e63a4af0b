"""backdrive: differentiable, GPU-batched rigid-body robot simulation.

The compiled core (``backdrive._backdrive``, Rust through PyO3) steps thousands of instances
of a robot at once on a GPU through wgpu, and returns exact gradients of rollouts through
hand-written adjoint kernels. This package adds numpy views of the body states, a PyTorch
autograd function (:mod:`backdrive.torch`, needs torch) and a Gymnasium vector environment
(:mod:`backdrive.gym`, needs gymnasium).

Example::

    import numpy as np, backdrive
    model = backdrive.load("quadruped")
    sim = backdrive.Simulator(model, 128)
    sim.set_commands(np.full((128, model.n_actuators), 0.1, np.float32))
    sim.step(100)
    s = sim.body_states()          # s.position: (128, bodies, 3), s.orientation: (..., 4)
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ._backdrive import (
    BODY_STATE_LEN,
    BackdriveError,
    FileError,
    GpuError,
    InvalidInputError,
    Model,
    ModelError,
    NonFiniteGradientError,
    Rollout,
    adapter_info,
    load,
    model_names,
    task_names,
)
from ._backdrive import Simulator as _Simulator

__all__ = [
    "BODY_STATE_LEN",
    "BackdriveError",
    "BodyStates",
    "FileError",
    "GpuError",
    "InvalidInputError",
    "Model",
    "ModelError",
    "NonFiniteGradientError",
    "Rollout",
    "Simulator",
    "adapter_info",
    "body_states_from_raw",
    "load",
    "model_names",
    "task_names",
]


class BodyStates(NamedTuple):
    """Every body of every instance, in model order (the static world left out).

    The arrays are views into one raw state array read from the GPU: reading them makes no
    copy beyond that read. Quaternions are ``[x, y, z, w]``; the angular velocity is in the
    world frame.
    """

    position: np.ndarray
    """Centres of mass, shape ``(n, bodies, 3)``."""
    orientation: np.ndarray
    """Orientation quaternions ``[x, y, z, w]``, shape ``(n, bodies, 4)``."""
    linear_velocity: np.ndarray
    """Linear velocities, shape ``(n, bodies, 3)``."""
    angular_velocity: np.ndarray
    """Angular velocities (world frame), shape ``(n, bodies, 3)``."""


def body_states_from_raw(raw: np.ndarray, n_bodies: int) -> BodyStates:
    """Named views of the bodies in raw states of shape ``(n, state_len)`` (no copy)."""
    n = raw.shape[0]
    bodies = raw[:, BODY_STATE_LEN : BODY_STATE_LEN * (n_bodies + 1)].reshape(
        n, n_bodies, BODY_STATE_LEN
    )
    return BodyStates(
        position=bodies[:, :, 0:3],
        orientation=bodies[:, :, 3:7],
        linear_velocity=bodies[:, :, 7:10],
        angular_velocity=bodies[:, :, 10:13],
    )


class Simulator(_Simulator):
    """``n`` instances of one model on the GPU.

    ``Simulator(model, n)`` starts every instance at the model's initial state, with the
    model's physical parameters and zero commands. Methods that wait for the GPU release the
    GIL.
    """

    def body_states(self) -> BodyStates:
        """Every instance's body states as named numpy views (one read, no further copy)."""
        return body_states_from_raw(self.state_raw(), self.model.n_bodies)

    def set_state(
        self,
        position: Optional[np.ndarray] = None,
        orientation: Optional[np.ndarray] = None,
        linear_velocity: Optional[np.ndarray] = None,
        angular_velocity: Optional[np.ndarray] = None,
    ) -> None:
        """Overwrites the given parts of every instance's body states.

        Each argument has the shape of the matching :class:`BodyStates` field; parts left out
        keep their current values. The solver's warm-start impulses and the actuators'
        activations (the raw state after the bodies) are cleared, as after any state written
        from outside.
        """
        n, b = self.n, self.model.n_bodies
        raw = np.array(self.state_raw(), copy=True)
        views = body_states_from_raw(raw, b)
        given = {
            "position": (position, (n, b, 3)),
            "orientation": (orientation, (n, b, 4)),
            "linear_velocity": (linear_velocity, (n, b, 3)),
            "angular_velocity": (angular_velocity, (n, b, 3)),
        }
        for name, (value, shape) in given.items():
            if value is None:
                continue
            array = _float_array(value, name, shape)
            getattr(views, name)[...] = array
        raw[:, BODY_STATE_LEN * (b + 1) :] = 0.0
        self.set_state_raw(raw)


def _float_array(value, name: str, shape: tuple) -> np.ndarray:
    """``value`` as a float array of ``shape``; TypeError/ValueError naming both shapes."""
    array = np.asarray(value)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name}: expected dtype float32 (or float64), got dtype {array.dtype} "
            f"with shape {array.shape}"
        )
    if array.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: not every entry is finite")
    return array
