#!/usr/bin/env python3
"""Records MuJoCo's motion of tests/fixtures/mjcf/passive_joints.xml (joint damping, armature,
stiffness with springref and ref, frictionloss) for tests/joint_passive.rs.

MuJoCo runs the file as written: its Euler integrator (joint damping implicit, as MuJoCo's
default `eulerdamp` makes it) at the file's 2 ms step, from qpos0 (every joint at its `ref`),
with the spinner's joint given an initial speed of SPIN rad/s. Every 0.05 s over 1 s it records
each joint's coordinate minus its `ref`, in radians or metres (backdrive measures joint
coordinates from the model pose, which is `ref`).

Writes tests/fixtures/mjcf/passive_reference.json.
Usage: pip install mujoco && python3 benches/mjcf_passive_reference.py [--check]
With --check nothing is written: the numbers are recomputed and compared with the recorded
ones (exit status 1 on a difference beyond 1e-9).
"""

import json
import os
import sys

import mujoco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "mjcf")
MODEL = os.path.join(FIXTURES, "passive_joints.xml")
OUT = os.path.join(FIXTURES, "passive_reference.json")
JOINTS = ["swing", "slide", "twist", "spin"]
SPIN = 10.0
SECONDS = 1.0
EVERY = 0.05


def record():
    m = mujoco.MjModel.from_xml_path(MODEL)
    d = mujoco.MjData(m)
    d.qvel[m.joint("spin").dofadr[0]] = SPIN
    steps_per_sample = round(EVERY / m.opt.timestep)
    samples = []
    for k in range(round(SECONDS / EVERY) + 1):
        if k > 0:
            mujoco.mj_step(m, d, nstep=steps_per_sample)
        sample = {"t": round(k * EVERY, 6)}
        for name in JOINTS:
            j = m.joint(name)
            sample[name] = float(d.qpos[j.qposadr[0]] - m.qpos0[j.qposadr[0]])
        samples.append(sample)
    return {
        "mujoco": mujoco.__version__,
        "timestep": float(m.opt.timestep),
        "spin_initial_speed": SPIN,
        "samples": samples,
    }


def main():
    data = record()
    if "--check" in sys.argv:
        with open(OUT) as f:
            old = json.load(f)
        worst = max(
            abs(a[n] - b[n]) for a, b in zip(old["samples"], data["samples"]) for n in JOINTS
        )
        print(f"largest difference from the recorded numbers: {worst:.3e}")
        sys.exit(0 if worst <= 1e-9 else 1)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
