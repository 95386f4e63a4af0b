"""Bad input: Rust errors keep their messages; shapes and dtypes are named."""

import numpy as np
import pytest

import backdrive


def test_model_file_errors_carry_file_and_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n\n[[body]]\nname = "a"\nmass = -1.0\n')
    with pytest.raises(backdrive.ModelError) as e:
        backdrive.load(str(bad))
    message = str(e.value)
    assert message.startswith(f"invalid model: {bad}:"), message
    assert "mass" in message


def test_missing_file_and_unknown_names():
    with pytest.raises(backdrive.FileError, match="nowhere.toml: no such file"):
        backdrive.load("nowhere.toml")
    with pytest.raises(backdrive.InvalidInputError, match="unknown model 'nope': expected a model"):
        backdrive.load("nope")
    with pytest.raises(backdrive.InvalidInputError, match="unknown task"):
        import backdrive._backdrive as core
        core.TaskEnv("nope", 1)


def test_shapes_and_dtypes_are_checked():
    model = backdrive.load("arm")
    sim = backdrive.Simulator(model, 3)
    a = model.n_actuators
    with pytest.raises(ValueError, match=rf"commands: expected shape \(3, {a}\), got shape \(2, {a}\)"):
        sim.set_commands(np.zeros((2, a), np.float32))
    with pytest.raises(TypeError, match=r"commands: expected dtype float32 \(or float64\), got dtype int64"):
        sim.set_commands(np.zeros((3, a), np.int64))
    with pytest.raises(ValueError, match="not finite"):
        sim.set_commands(np.full((3, a), np.nan, np.float32))
    b = model.n_bodies
    with pytest.raises(ValueError, match=rf"position: expected shape \(3, {b}, 3\), got shape \(3, 3\)"):
        sim.set_state(position=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"params: expected shape"):
        sim.set_params(np.zeros((3, 1), np.float32))
    with pytest.raises(backdrive.InvalidInputError, match="at least 1"):
        backdrive.Simulator(model, 0)


def test_rollout_inputs_are_checked():
    model = backdrive.load("cartpole")
    with pytest.raises(backdrive.InvalidInputError, match="unknown body 'nobody'"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "nobody", "quantity": "position"}])
    with pytest.raises(ValueError, match="unknown quantity 'speed'"):
        backdrive.Rollout(model, 1, 5, loss=[{"body": "pole", "quantity": "speed"}])
    r = backdrive.Rollout(model, 2, 5)
    with pytest.raises(ValueError, match=r"commands: expected shape \(2, 5, 1\), got shape \(2, 4, 1\)"):
        r.forward(commands=np.zeros((2, 4, 1), np.float32))
