"""Loading, stepping (bit for bit against the Rust CLI), state and parameter access, the GIL."""

import csv
import subprocess
import threading

import numpy as np
import pytest

import backdrive


def test_load_shipped_names_toml_and_mjcf_files(root):
    for name in backdrive.model_names():
        assert backdrive.load(name).name
    toml = backdrive.load(str(root / "models" / "cartpole.toml"))
    assert toml.body_names == ["cart", "pole"]
    mjcf = backdrive.load(root / "tests" / "fixtures" / "mjcf" / "pendulum.xml")
    assert mjcf.n_bodies >= 1
    assert len(toml.param_names) == toml.param_len


def test_stepping_is_bit_identical_to_the_rust_cli(tmp_path, backdrive_bin):
    steps, n = 30, 3
    out = tmp_path / "q.csv"
    subprocess.run(
        [str(backdrive_bin), "rollout", "quadruped", "--steps", str(steps), "--instances",
         str(n), "--commands", "zero", "--every", str(steps), "--csv", str(out)],
        check=True, capture_output=True,
    )
    model = backdrive.load("quadruped")
    sim = backdrive.Simulator(model, n)
    sim.set_commands(np.zeros((n, model.n_actuators), np.float32))
    sim.step(steps)
    s = sim.body_states()
    rows = [r for r in csv.DictReader(out.open()) if int(r["step"]) == steps]
    assert len(rows) == n * model.n_bodies
    for r in rows:
        i, b = int(r["instance"]), model.body_names.index(r["body"])
        expected = np.array([r[k] for k in ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy",
                                            "vz", "wx", "wy", "wz")], np.float32)
        got = np.concatenate([s.position[i, b], s.orientation[i, b], s.linear_velocity[i, b],
                              s.angular_velocity[i, b]])
        # Rust prints the shortest decimal that reads back as the same f32: compare bits.
        assert np.array_equal(got.view(np.uint32), expected.view(np.uint32)), (i, r["body"])
    # The contacts must have acted for the comparison to mean anything.
    assert np.all(np.abs(s.linear_velocity) < 5.0) and s.position[:, 0, 2].max() < 0.231


def test_body_states_are_views_of_one_read():
    model = backdrive.load("arm")
    sim = backdrive.Simulator(model, 5)
    s = sim.body_states()
    assert s.position.shape == (5, model.n_bodies, 3)
    assert s.orientation.shape == (5, model.n_bodies, 4)
    assert s.linear_velocity.shape == s.angular_velocity.shape == (5, model.n_bodies, 3)
    # Views into one array read from the GPU: the fields interleave in the same buffer.
    for field in s[1:]:
        assert np.may_share_memory(field, s.position)
        assert not field.flags.owndata


def test_set_state_and_per_instance_params_change_each_instance():
    model = backdrive.load("ball")
    sim = backdrive.Simulator(model, 2)
    s = sim.body_states()
    velocity = np.array(s.linear_velocity)
    velocity[1, 0] = [1.0, 0.0, 0.0]
    sim.set_state(linear_velocity=velocity)
    assert np.array_equal(sim.body_states().linear_velocity, velocity)
    params = sim.params()
    assert params.shape == (2, model.param_len)
    assert np.array_equal(params[0], model.default_params())
    params[1] *= 1.0  # same values, written back per instance
    sim.set_params(params)
    assert np.array_equal(sim.params(), params)
    sim.step(5)
    p = sim.body_states().position
    assert p[1, 0, 0] > p[0, 0, 0] + 0.03


def test_servo_gain_per_instance_changes_the_motion():
    model = backdrive.load("arm")
    n = 2
    sim = backdrive.Simulator(model, n)
    params = sim.params()
    gains = [k for k, name in enumerate(model.param_names) if name.startswith(("servo_gain", "max_velocity"))]
    assert gains
    params[1, gains] *= 0.25
    sim.set_params(params)
    sim.set_commands(np.full((n, model.n_actuators), 0.5, np.float32))
    sim.step(20)
    p = sim.body_states().position
    assert not np.array_equal(p[0], p[1])


def test_the_gil_is_released_while_stepping():
    model = backdrive.load("quadruped")
    sim = backdrive.Simulator(model, 256)
    sim.step(1)
    done = threading.Event()

    def work():
        sim.step(100)
        done.set()

    thread = threading.Thread(target=work)
    ticks = 0
    thread.start()
    while not done.is_set():
        ticks += 1
    thread.join()
    # With the GIL held for the whole step, this loop could not run until it returned.
    assert ticks > 10_000, ticks


def test_reset_restores_the_initial_state():
    model = backdrive.load("cartpole")
    sim = backdrive.Simulator(model, 2)
    sim.step(10)
    sim.reset()
    raw = sim.state_raw()
    assert np.array_equal(raw[0], model.initial_state())
