#!/usr/bin/env python3
"""Why tests/fluid.rs's chain drifts from MuJoCo: reruns tests/fixtures/mjcf/fluid.xml in
MuJoCo (Euler, 2 ms, 0.8 s) with its fluid forces computed by hand (the inertia-box formulas,
applied through xfrc_applied) in the principal frames that backdrive's MJCF importer gives
the three links (their orientations and moments at the model pose, copied from the imported
model), instead of MuJoCo's own. The quadratic drag is per principal axis, and link3's capsule
has two equal moments, so the two choices of its axes differ by 14 degrees about its long axis.

Measured (MuJoCo 4.0.0): with backdrive's frames link2 and link3 end at
[0.2441, 0.0, 2.5637] and [0.5331, -0.0751, 2.1626]; backdrive's GPU run ends at
[0.2473, -0.0021, 2.5633] and [0.5352, -0.0698, 2.1595]; MuJoCo's own frames give
[0.2244, 0.0, 2.5532] and [0.5248, -0.1322, 2.1760].
Usage: python3 benches/mjcf_fluid_frames.py
"""

import os

import mujoco
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
m = mujoco.MjModel.from_xml_path(os.path.join(ROOT, 'tests', 'fixtures', 'mjcf', 'fluid.xml'))
m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
rho, mu = m.opt.density, m.opt.viscosity
m.opt.density = 0; m.opt.viscosity = 0
d = mujoco.MjData(m); mujoco.mj_forward(m, d)
# backdrive's principal frames at the model pose (from the imported model's orientations)
def qmat(x,y,z,w):
    return np.array([[1-2*(y*y+z*z), 2*(x*y-z*w), 2*(x*z+y*w)],[2*(x*y+z*w), 1-2*(x*x+z*z), 2*(y*z-x*w)],[2*(x*z-y*w), 2*(y*z+x*w), 1-2*(x*x+y*y)]])
bd = {1: (np.eye(3), [0.0054323375, 0.12242394, 0.12242394]), 2: (np.eye(3), [0.01168, 0.10144, 0.11024]),
      3: (qmat(0,0,0.12218326,0.9925076), [0.003659144, 0.08682497, 0.08682497])}
offset = {b: d.ximat[b].reshape(3,3).T @ bd[b][0] for b in bd}
for _ in range(400):
    mujoco.mj_forward(m, d)
    d.xfrc_applied[:] = 0
    for b in range(1, m.nbody):
        mass = m.body_mass[b]; I = np.array(bd[b][1]) if b in bd else m.body_inertia[b]
        box = np.sqrt(np.maximum(1e-15, [I[1]+I[2]-I[0], I[0]+I[2]-I[1], I[0]+I[1]-I[2]]) / mass * 6)
        R = d.ximat[b].reshape(3,3)
        if b in bd: R = R @ offset[b]
        vel = np.zeros(6); mujoco.mj_objectVelocity(m, d, mujoco.mjtObj.mjOBJ_BODY, b, vel, 0)
        u = R.T @ vel[3:]; om = R.T @ vel[:3]; diam = box.mean(); b4 = box**4
        f = -3*np.pi*diam*mu*u - 0.5*rho*np.array([box[1]*box[2], box[0]*box[2], box[0]*box[1]])*np.abs(u)*u
        t = -np.pi*diam**3*mu*om - rho/64*np.array([box[0]*(b4[1]+b4[2]), box[1]*(b4[0]+b4[2]), box[2]*(b4[0]+b4[1])])*np.abs(om)*om
        d.xfrc_applied[b, :3] = R @ f; d.xfrc_applied[b, 3:] = R @ t
    mujoco.mj_step(m, d)
mujoco.mj_kinematics(m, d)
print("MuJoCo with backdrive's principal frames:", d.xpos[2:4].round(4).tolist())
print("backdrive: [0.2473, -0.0021, 2.5633], [0.5352, -0.0698, 2.1595]; MuJoCo: [0.2244, 0.0, 2.5532], [0.5248, -0.1322, 2.176]")
