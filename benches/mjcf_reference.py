#!/usr/bin/env python3
"""Records MuJoCo reference numbers for backdrive's MJCF import tests.

Writes tests/fixtures/mjcf/reference.json (read by tests/mjcf.rs):

* for every fixture: MuJoCo's mass, principal inertia (sorted) and centre of mass of each body
  at the model pose, to check the importer's mass properties;
* gymnasium_ant.xml and quadruped.xml: the resting height of the torso frame (MuJoCo's
  `xpos`) after falling from the model pose, simulated with the file's own options
  for 60 s (the last moment any joint speed exceeded 1e-5 is recorded), and every body's
  pose at rest;
* gymnasium_ant.xml once more with elliptic friction cones and impratio 1000 (no creep of the
  loaded feet, which is how backdrive's hard Coulomb friction behaves), and the torso height at
  1, 2, 5, 14 and 30 s of every run;
* pendulum.xml: the trajectory of both links' centres of mass and of both joint angles over
  1 s, sampled every 0.01 s, with MuJoCo's (semi-implicit) Euler integrator at a time step of
  1e-4 s (ten times finer than the file's 1e-3 s, so the reference is close to the exact
  motion), and also at the file's own time step for comparison.

Usage: pip install mujoco && python3 benches/mjcf_reference.py [--check]
With --check, nothing is written: the numbers are recomputed and compared with the recorded
ones (exit status 1 on a difference beyond 1e-6), which is what the optional Python-driven
test does.
"""

import json
import os
import sys

import mujoco
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "mjcf")
OUT = os.path.join(FIXTURES, "reference.json")


def load(name):
    return mujoco.MjModel.from_xml_path(os.path.join(FIXTURES, name))


def mass_properties(name):
    m = load(name)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    bodies = {}
    for b in range(1, m.nbody):
        bodies[m.body(b).name or f"body{b}"] = {
            "mass": float(m.body_mass[b]),
            "inertia": sorted(float(x) for x in m.body_inertia[b]),
            "com": [float(x) for x in d.xipos[b]],
        }
    return {"total_mass": float(m.body_mass.sum()), "bodies": bodies}


def resting_height(name, body, max_time=60.0, no_slip=False):
    m = load(name)
    if no_slip:
        # MuJoCo's default pyramidal friction cone with impratio 1 lets loaded feet creep
        # (the ant sinks 18 cm over 14 s); elliptic cones with a large impratio make the
        # frictional constraints hard, as MuJoCo's documentation recommends against slip.
        m.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        m.opt.impratio = 1000.0
    d = mujoco.MjData(m)
    b = m.body(body).id
    height_at = {}
    # Simulate a fixed span and keep the last moment anything moved faster than 1e-5 (a
    # bounce's apex or a metastable pose that slowly tips over is no rest).
    last_moving = 0.0
    while d.time < max_time:
        mujoco.mj_step(m, d)
        if np.abs(d.qvel).max() >= 1e-5:
            last_moving = d.time
        for t in (1, 2, 5, 14, 30):
            if abs(d.time - t) < 0.5 * m.opt.timestep:
                height_at[str(t)] = float(d.xpos[b][2])
    return {
        "body": body,
        "options": "elliptic cone, impratio 1000" if no_slip else "the file's own",
        "height": float(d.xpos[b][2]),
        "height_at_s": height_at,
        "simulated_s": max_time,
        "last_moving_s": last_moving,
        "timestep": float(m.opt.timestep),
        "integrator": int(m.opt.integrator),
        "contacts": int(d.ncon),
        "contact_distances": [float(c.dist) for c in d.contact[: d.ncon]],
        "contact_includemargin": [float(c.includemargin) for c in d.contact[: d.ncon]],
        "joint_angles_deg": [float(x) for x in np.degrees(d.qpos[7:])],
        # Every body's frame at rest, in file order: position and orientation [x, y, z, w].
        "body_poses": [
            {
                "name": m.body(i).name or f"body{i}",
                "pos": [float(x) for x in d.xpos[i]],
                "quat": [float(d.xquat[i][k]) for k in (1, 2, 3, 0)],
            }
            for i in range(1, m.nbody)
        ],
    }


def pendulum_trajectory(name, timestep, duration=1.0, every=0.01):
    m = load(name)
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    m.opt.timestep = timestep
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    upper, lower = m.body("upper").id, m.body("lower").id
    per_sample = int(round(every / timestep))
    samples = []
    for k in range(int(round(duration / every)) + 1):
        samples.append(
            {
                "t": round(d.time, 9),
                "upper_com": [float(x) for x in d.xipos[upper]],
                "lower_com": [float(x) for x in d.xipos[lower]],
                "q": [float(x) for x in d.qpos],
            }
        )
        if k < int(round(duration / every)):
            for _ in range(per_sample):
                mujoco.mj_step(m, d)
    return {"timestep": timestep, "integrator": "Euler", "samples": samples}


def compute():
    return {
        "generator": "benches/mjcf_reference.py",
        "mujoco_version": mujoco.__version__,
        "mass_properties": {
            f: mass_properties(f)
            for f in ["pendulum.xml", "hopper.xml", "quadruped.xml", "gymnasium_ant.xml"]
        },
        "resting": {
            "gymnasium_ant.xml": resting_height("gymnasium_ant.xml", "torso"),
            "gymnasium_ant.xml no_slip": resting_height("gymnasium_ant.xml", "torso", no_slip=True),
            "quadruped.xml": resting_height("quadruped.xml", "torso"),
        },
        "pendulum": {
            "reference": pendulum_trajectory("pendulum.xml", 1e-4),
            "file_timestep": pendulum_trajectory("pendulum.xml", 1e-3),
        },
    }


def close(a, b, tol=1e-6):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(a))
    return a == b


def main():
    data = compute()
    if "--check" in sys.argv:
        with open(OUT) as f:
            recorded = json.load(f)
        recorded.pop("mujoco_version", None)
        version = data.pop("mujoco_version")
        if not close(data, recorded):
            print(f"reference.json differs from MuJoCo {version}'s numbers")
            sys.exit(1)
        print(f"reference.json matches MuJoCo {version}")
        return
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    r = data["resting"]
    for k, v in r.items():
        print(f"{k}: torso rests at z = {v['height']:.5f} m (still after {v['last_moving_s']:.2f} s)")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
