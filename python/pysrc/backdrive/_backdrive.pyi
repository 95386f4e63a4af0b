"""Type stubs of the compiled core, ``backdrive._backdrive``."""

from os import PathLike
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

ArrayLike = Union[npt.NDArray[np.float32], npt.NDArray[np.float64], Sequence]

BODY_STATE_LEN: int
"""Floats per body in a raw state: position 3, quaternion [x, y, z, w] 4, velocity 3, angular velocity 3."""

class BackdriveError(Exception):
    """Base class of every error the Rust core reports (message unchanged from Rust)."""

class ModelError(BackdriveError):
    """A model file or model data is malformed (the message starts with file:line)."""

class InvalidInputError(BackdriveError):
    """An argument was out of range or had the wrong size."""

class GpuError(BackdriveError):
    """No GPU adapter, a rejected GPU request, a shader error, or a batch too large."""

class NonFiniteGradientError(BackdriveError):
    """A gradient became NaN or infinite."""

class FileError(BackdriveError):
    """Reading or writing a file failed (the message starts with the path)."""

class Model:
    """A robot model: bodies, joints, actuators and settings."""

    @property
    def name(self) -> str: ...
    @property
    def body_names(self) -> List[str]: ...
    @property
    def joint_names(self) -> List[str]: ...
    @property
    def actuator_names(self) -> List[str]: ...
    @property
    def n_bodies(self) -> int: ...
    @property
    def n_actuators(self) -> int: ...
    @property
    def dt(self) -> float: ...
    @property
    def state_len(self) -> int: ...
    @property
    def param_len(self) -> int: ...
    @property
    def param_names(self) -> List[str]: ...
    def default_params(self) -> npt.NDArray[np.float32]: ...
    def initial_state(self) -> npt.NDArray[np.float32]: ...
    def to_toml(self) -> str: ...

def load(name_or_path: Union[str, PathLike]) -> Model:
    """Loads a shipped model by name, a TOML model file or a MuJoCo MJCF (.xml) file."""

def model_names() -> List[str]: ...
def task_names() -> List[str]: ...
def adapter_info() -> str: ...
def bench_rust_step(model: Model, n: int, steps: int, repeats: int) -> List[float]: ...

class Simulator:
    """n instances of one model on the GPU (see backdrive.Simulator)."""

    def __init__(self, model: Model, n: int = 1) -> None: ...
    @property
    def model(self) -> Model: ...
    @property
    def n(self) -> int: ...
    def step(self, steps: int = 1) -> None: ...
    def set_commands(self, commands: ArrayLike) -> None:
        """Commands of shape (n, actuators)."""
    def state_raw(self) -> npt.NDArray[np.float32]:
        """Raw states, shape (n, state_len)."""
    def set_state_raw(self, state: ArrayLike) -> None: ...
    def params(self) -> npt.NDArray[np.float32]:
        """Physical parameters, shape (n, param_len)."""
    def set_params(self, params: ArrayLike) -> None: ...
    def reset(self) -> None: ...

LossTerm = Dict[str, Union[str, float, int, Sequence[float]]]

class Rollout:
    """A batch of differentiable rollouts over a fixed horizon, under a loss.

    ``loss`` is a list of dicts: ``{"body": NAME, "quantity": "position_error" |
    "velocity_error" | "angular_velocity_error" | "orientation_error" | "position" |
    "velocity", "target": [..], "mask": [..], "direction": [..], "weight": W, "when":
    "every_step" | "final"}``, ``{"body": NAME, "quantity": "healthy_height", "range": [MIN,
    MAX], ...}`` (1 while the body's height is within the range), ``{"quantity":
    "control_cost", ...}`` (the sum of the squared commands, no body), or ``{"joint": NAME,
    "quantity": "joint_error", "axis": K, "target": X, ...}``.
    """

    def __init__(
        self,
        model: Model,
        n: int,
        horizon: int,
        loss: Optional[List[LossTerm]] = None,
        gradient_decay: float = 1.0,
        checkpoint_every: Optional[int] = None,
        truncation: Optional[int] = None,
    ) -> None: ...
    @property
    def model(self) -> Model: ...
    @property
    def n(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def has_loss(self) -> bool: ...
    def forward(
        self,
        initial_state: Optional[ArrayLike] = None,
        commands: Optional[ArrayLike] = None,
        params: Optional[ArrayLike] = None,
    ) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(loss (n,), final raw state (n, state_len))."""
    def gradients(
        self,
        initial_state: Optional[ArrayLike] = None,
        commands: Optional[ArrayLike] = None,
        params: Optional[ArrayLike] = None,
        final_state_seed: Optional[ArrayLike] = None,
    ) -> Dict[str, npt.NDArray[np.float32]]:
        """Keys: loss, final_state, initial_state, commands, params."""

class TaskEnv:
    """The Rust side of backdrive.gym."""

    def __init__(self, task: str, n: int, seed: int = 0) -> None: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def n_actions(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def description(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def dt(self) -> float: ...
    def elapsed(self) -> npt.NDArray[np.float32]: ...
    def displacements(self) -> npt.NDArray[np.float32]: ...
    def reset(self, seed: Optional[int] = None) -> npt.NDArray[np.float32]: ...
    def step(
        self, actions: ArrayLike, reset_mask: List[bool]
    ) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
