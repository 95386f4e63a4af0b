#!/usr/bin/env python3
"""Records MuJoCo's motion of tests/fixtures/mjcf/fluid.xml (a chain of three hinged links
swinging down from the horizontal and a tilted box falling, both in a fluid of density 1000
and viscosity 0.2: MuJoCo's inertia-box fluid model) for tests/fluid.rs.

MuJoCo runs the file with its Euler integrator at the file's 2 ms step from the model pose at
rest. The start lists every body's frame pose (`xpos`, `xquat` reordered to [x, y, z, w]);
every 0.1 s over 1 s it records each body's frame position (`xpos`, recomputed from the
new positions: after `mj_step` it still holds the step's start).

Writes tests/fixtures/mjcf/fluid_reference.json.
Usage: pip install mujoco && python3 benches/mjcf_fluid_reference.py [--check]
With --check nothing is written: the numbers are recomputed and compared with the recorded
ones (exit status 1 on a difference beyond 1e-9).
"""

import json
import os
import sys

import mujoco

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "mjcf")
MODEL = os.path.join(FIXTURES, "fluid.xml")
OUT = os.path.join(FIXTURES, "fluid_reference.json")
SECONDS = 1.0
EVERY = 0.1


def xyzw(q):
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def record():
    m = mujoco.MjModel.from_xml_path(MODEL)
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    names = [m.body(b).name for b in range(1, m.nbody)]
    start = [
        {"body": names[b - 1], "pos": [float(x) for x in d.xpos[b]], "quat": xyzw(d.xquat[b])}
        for b in range(1, m.nbody)
    ]
    steps_per_sample = round(EVERY / m.opt.timestep)
    samples = []
    for k in range(round(SECONDS / EVERY) + 1):
        if k > 0:
            for _ in range(steps_per_sample):
                mujoco.mj_step(m, d)
            # mj_step leaves xpos at the step's start: bring it to the new positions.
            mujoco.mj_kinematics(m, d)
        samples.append(
            {
                "time": round(float(d.time), 9),
                "pos": {names[b - 1]: [float(x) for x in d.xpos[b]] for b in range(1, m.nbody)},
            }
        )
    return {
        "mujoco": mujoco.__version__,
        "integrator": "Euler",
        "timestep": float(m.opt.timestep),
        "steps_per_sample": steps_per_sample,
        "start": start,
        "samples": samples,
    }


def differences(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys differ"]
        return [e for k in a for e in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths differ"]
        return [e for i, (x, y) in enumerate(zip(a, b)) for e in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)):
        return [] if abs(a - b) <= 1e-9 * max(1.0, abs(b)) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main():
    data = record()
    if "--check" in sys.argv[1:]:
        with open(OUT) as f:
            recorded = json.load(f)
        diffs = differences(data, recorded)
        for line in diffs:
            print(line)
        sys.exit(1 if diffs else 0)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
