//! Import of MuJoCo MJCF models (the subset the standard locomotion models use) into
//! backdrive's maximal-coordinate [`Model`].
//!
//! ```no_run
//! use backdrive::io::mjcf::{self, MjcfOptions};
//! let (model, warnings) = mjcf::load_mjcf("robot.xml").unwrap();
//! for w in &warnings {
//!     eprintln!("warning: {w}");
//! }
//! // Models whose physics backdrive cannot reproduce (joint damping, armature...) are
//! // errors unless the caller accepts the difference:
//! let opts = MjcfOptions { ignore_unsupported: true, ..MjcfOptions::default() };
//! let import = mjcf::load_mjcf_with("ant.xml", &opts).unwrap();
//! println!("{} bodies", import.model.bodies.len());
//! ```
//!
//! # Mapping
//!
//! * Every MJCF `<body>` with at least one joint becomes a backdrive body whose position is its
//!   centre of mass and whose orientation is its principal inertia frame, both computed from
//!   the nested `pos` / `quat` / `euler` / `axisangle` / `xyaxes` / `zaxis` chain at the model
//!   pose (`qpos0`). [`MjcfImport::frames`] gives, for each MJCF body, where its own frame
//!   sits in the backdrive body (so `xpos`, as MuJoCo reports it, can be recovered).
//! * A body **without** a joint is rigidly attached to its parent. By default
//!   ([`MjcfOptions::merge_fixed_bodies`]) its geoms and mass are merged into the parent's
//!   backdrive body, which is exactly rigid, as in MuJoCo; otherwise it becomes its own body
//!   welded to the parent by a `fixed` joint (soft, like every backdrive joint). Jointless
//!   bodies whose ancestors are all jointless are static: they belong to the world.
//! * A top-level body with a `<freejoint/>` (or `<joint type="free"/>`) is a free body.
//! * Each `hinge`, `slide` and `ball` joint becomes a backdrive `hinge`, `slider` and `ball`
//!   joint between the parent's backdrive body (or the world) and this body, with anchor and
//!   axis in world coordinates at the model pose. The model pose is the zero of every joint
//!   coordinate in both engines; joint `ref` is honoured by shifting the limits and
//!   `springref` (so the model's joints have `reference` 0).
//! * Joint `stiffness` with `springref`, and `frictionloss` (on hinge, slide and ball joints,
//!   from the joint or its default class) become the joint's passive rows (see
//!   `models/README.md`): the spring implicit, dry friction exact. A ball joint's stiffness
//!   acts on each rotation-vector component (a warning); its `springref` is unsupported.
//!   Joint `damping` and `armature` are read but still unsupported: the model has them
//!   (`Joint::damping`, `Joint::armature`), but backdrive's soft limits take their stiffness
//!   from the bodies' own inertia, where MuJoCo's include the armature, so on the gymnasium
//!   ant (damping 1, armature 1 on 0.04 kg legs) the limits give way while it lands and it
//!   rests at 0.30 m (damping) or 0.41 m (both) instead of MuJoCo's 0.566 m. Free joints
//!   carry no passive dynamics in backdrive (their bodies have no joint): non-zero values
//!   there are unsupported; every suite model leaves them at zero.
//! * A body whose joints are slides followed by at most one hinge (MuJoCo composes a body's
//!   joints in order: the slides move along axes fixed in the parent, the hinge turns the body
//!   about its anchor) gets one compound joint ([`crate::model::SharedFrame`]) to its parent:
//!   one backdrive hinge or slider per MJCF joint, each with its own coordinate, limits,
//!   passive rows, actuators and tendon terms, all at the hinge's anchor and sharing one
//!   frame, when the slides are along the hinge (in its direction) or perpendicular to it and
//!   to each other; no intermediate body. This is the planar root of the hoppers, walkers,
//!   cheetahs and swimmers and the point masses' two slides.
//! * Any other body with several joints (a slide after a hinge, two hinges, a ball, oblique
//!   slides) gets light intermediate
//!   bodies, named `<body>__<joint>`, chained by one joint each; the last joint attaches the
//!   body itself. The intermediates sit at the body's centre of mass and take a fraction
//!   ([`MjcfOptions::intermediate_mass_fraction`], 20% by default, split evenly) of its mass
//!   and inertia, so the total mass and, with the joints locked, the inertia are unchanged. A
//!   backdrive joint's locked axes are only as stiff as the lighter of the bodies it joins is
//!   heavy (see `models/README.md`), so a much smaller fraction would make the "locked" axes
//!   between intermediates visibly soft; a larger one moves more of the inertia onto the
//!   earlier joints while the later ones turn.
//! * `<include file="..."/>` (anywhere, nested) splices the children of the included file's
//!   `<mujoco>` in place of the element; the path is relative to the including file (to the
//!   current directory for text given to [`from_str`] without a file). A file
//!   that includes itself, directly or through others, is refused naming both files; errors
//!   and warnings inside an included file name that file and its line.
//! * Geoms: `sphere`, `capsule` (`size` radius and half-length, or `fromto`), `box` (half
//!   sizes, or `fromto`) map to backdrive shapes. A moving `cylinder` or `ellipsoid` keeps the
//!   mass and inertia of its true shape and touches the ground through a stated primitive
//!   (one warning per model gives how far a contact point can move, at most): a cylinder of
//!   radius r and half-height h >= r is a capsule of radius r whose ends reach its faces
//!   (segment half-length h - r: exact standing on a face or lying on its side, the rim
//!   sticks out by at most r (sqrt 2 - 1) = 0.41 r), a flatter one is a box (r, r, h) (exact
//!   on its faces, its corners stick out by at most 0.41 r); an ellipsoid is a capsule along
//!   its longest semi-axis c with the larger of the other two, rho, as radius (segment
//!   half-length c - rho; exact for a sphere). Mass comes
//!   from `mass` or `density` (default 1000) with MuJoCo's volume and inertia formulas, or from
//!   `<inertial>` (`mass`, `diaginertia` or `fullinertia`) following `<compiler
//!   inertiafromgeom>`.
//! * Static geometry: a colliding `plane` geom of the world body at z = 0 facing up is
//!   backdrive's ground. Every other colliding geom of the world body or of a static body
//!   (planes at any height and orientation, unbounded as in MuJoCo; spheres, capsules, boxes,
//!   cylinders) becomes a [`crate::model::WorldShape`]; when there is no ground plane,
//!   `settings.ground` is off. Visual-only geoms (`contype` = `conaffinity` = 0) make
//!   nothing; a static ellipsoid is unsupported. When the model has no colliding static geom
//!   nothing collides in MuJoCo, so no shape is created. A geom gets a backdrive contact
//!   shape only if its `contype`/`conaffinity` let it collide with the ground plane or, without
//!   one, with the first colliding static geom (the other static geoms are assumed to
//!   collide with the same geoms). MuJoCo's contact margin (`margin` minus `gap`, summed over the geom and the plane,
//!   as MuJoCo 3 and 4 combine them) makes bodies rest that far above the ground; backdrive has
//!   no margin, so contact shapes are inflated by it (spheres and capsules exactly, boxes by
//!   their half sizes). The body's friction is the largest sliding friction of its geoms
//!   combined with the plane's (MuJoCo takes the maximum); `condim="1"` means frictionless.
//! * Collision filters: a geom touches the ground plane when MuJoCo's rule lets it,
//!   `(contype_geom & conaffinity_plane) || (contype_plane & conaffinity_geom)`; a geom that
//!   collides with nothing contributes no contact point. `<contact><exclude body1="world"
//!   body2="B"/>` takes B's geoms off the ground, and `<contact><pair geom1 geom2/>` with the
//!   ground plane's geom puts a geom on it whatever its filter says. Contacts between robot
//!   bodies do not exist in backdrive (self-collision off), so other excludes are always
//!   satisfied (a warning lists geom pairs that MuJoCo would let collide) and a `<pair>`
//!   between two bodies' geoms is unsupported.
//! * Contact softness: backdrive has one soft-contact setting per model
//!   (`Settings::contact_frequency`, `contact_damping_ratio`). Each ground contact's MuJoCo
//!   parameters are the mean of the geom's and the plane's `solref`/`solimp` (MuJoCo's default
//!   `solmix`), with MuJoCo's defaults `solref = (0.02, 1)` (time constant 0.02 s, damping
//!   ratio 1) and `solimp = (0.9, 0.95, 0.001, 0.5, 2)`. MuJoCo's contact then pulls with
//!   reference acceleration `-b v - k d(r) r`, `k = 1 / (dmax^2 tc^2 zeta^2)`, `b = 2 / (dmax
//!   tc)` (or `k = -solref[0] / dmax^2`, `b = -solref[1] / dmax` for negative `solref`),
//!   blended with the free motion by the impedance `d(r)` of `solimp`, so a body resting under
//!   gravity `g` sinks to the depth `r` where `r d(r)^2 = (1 - d(r)) g / k`. The frequency is
//!   chosen so that backdrive's contact (which sinks by `g / (2 pi f)^2`) rests at that same
//!   depth: `f = sqrt(g / r) / (2 pi)`; the damping ratio is `zeta` (or `b / (2 sqrt k)`).
//!   MuJoCo's defaults give 0.37 mm and about 26 Hz, ratio 1 (backdrive's own default is
//!   30 Hz). When the contact geoms ask for different settings, the one most of them share is
//!   used, with one warning.
//! * Mesh geoms weigh what MuJoCo's compiler makes them weigh. When the body's mass comes from
//!   its geoms, the `<mesh>` asset is read (STL, binary or ASCII, with the `stl_io` crate, or
//!   inline `vertex`/`face`; the file relative to `<compiler meshdir>` or `assetdir`, then the
//!   main model file's directory; `scale`, `refpos`, `refquat`, a negative scale mirroring it)
//!   and its volume, centre of mass and inertia computed as MuJoCo does for the mesh's
//!   `inertia`: `legacy` (the default: pyramids from the area-weighted face centroid, their
//!   volumes unsigned, which overcounts concave meshes exactly as MuJoCo does), `exact` (signed
//!   volumes; inconsistently oriented faces or a negative volume are errors, as in MuJoCo) or
//!   `shell` (mass on the surface, `density` per area); `convex` (the hull's) is unsupported
//!   and computed as `legacy`, equal for convex meshes. As in MuJoCo the geom's frame moves to
//!   the mesh's centre of mass and principal axes, mass is `mass` or `density` times the
//!   volume, and non-colliding (visual) meshes count too. OBJ and MSH files and vertex clouds
//!   without faces (MuJoCo takes their convex hull) are unsupported (the mesh and its line);
//!   a file that cannot be read is an error naming the mesh's line and the file. Meshes have
//!   no contact shape: a colliding mesh is an unsupported feature naming the geom and its line
//!   (its mass still counts when ignored), unless [`MjcfOptions::colliding_meshes_as_boxes`]
//!   asks for its equivalent-inertia box (MuJoCo's fit of a box to a mesh), with a warning
//!   giving the box and how far a contact point can move. dm_control's dog (157 bone meshes) matches MuJoCo
//!   4.0's `body_mass`, `body_inertia` and centres of mass to 2e-8 (`tests/mjcf_meshes.rs`).
//! * Visual-only content is skipped silently: `<asset>`, `<visual>`, materials, textures,
//!   skyboxes, lights, cameras, sites; a `mesh`/`hfield`/`sdf` geom that does not collide
//!   (`contype` = `conaffinity` = 0) and whose mass is not needed (zero, or its body has an
//!   `<inertial>`) is counted in one summary warning. A colliding height field or SDF, or one
//!   whose mass the body needs, is an unsupported feature naming the geom and its line.
//! * A colliding `hfield` geom on the world body whose `<hfield>` asset has no `file` and no
//!   non-zero `elevation` (MuJoCo's elevation is then all zeros, as in dm_control's quadruped,
//!   whose tasks may fill it at run time) is the solid it encloses: a static box from the
//!   base `-size[3]` to the surface at the geom's z, over `2 size[0] x 2 size[1]`, with a
//!   warning. A height field with a file or relief, or on a moving body, is unsupported.
//! * A file without moving bodies (dm_control's `lqr.xml`, whose task adds them at run time)
//!   imports as a model of no bodies: it steps, and nothing moves.
//! * `<option timestep gravity>` set `settings.dt` and `settings.gravity`; `<flag
//!   gravity="disable" contact="disable" limit="disable"/>` are honoured. Backdrive always
//!   integrates with semi-implicit Euler (MuJoCo's `Euler`); another `integrator` is a warning.
//! * `<option density viscosity>` set `settings.fluid_density` and `settings.fluid_viscosity`:
//!   MuJoCo's default (inertia-box) fluid model, the same formulas on the same box per MuJoCo
//!   body (`shaders/fluid.wgsl`). The intermediate bodies of a multi-joint body are left out
//!   of the fluid (`Body::fluid_drag` false) and the body itself, whose mass and inertia are
//!   the whole body's scaled together, keeps the whole body's box: the full drag acts on it and
//!   reaches the intermediates through the joints. Bodies MuJoCo welds into one group get one
//!   box, of the group's inertia, where MuJoCo gives each its own. `wind` and a geom's
//!   `fluidshape` (the ellipsoid model) are unsupported.
//! * `<motor joint gear ctrlrange ctrllimited forcerange forcelimited>` becomes a backdrive
//!   `force` actuator with `max_force = |gear| * max|ctrlrange|` (further bounded by
//!   `forcerange`). **Command scaling:** a backdrive force command is the joint torque (N m)
//!   or force (N) itself, whereas MuJoCo multiplies `ctrl` by `gear`: send `gear * ctrl`
//!   ([`MjcfImport::gears`] lists the gears in actuator order).
//! * `<general>` (`gaintype="fixed"`, `biastype` `none` or `affine`) and `<position kp>`
//!   become [`ActuatorKind::Affine`] actuators with MuJoCo's force law
//!   `clamp(gainprm[0] * clamp(ctrl, ctrlrange) + biasprm[0] + biasprm[1] * length,
//!   forcerange)` (`position`: gain `kp`, bias `-kp * length`), the length being `gear` times
//!   the joint's coordinate or times a fixed tendon's `sum coef * q` over any number of hinges
//!   and slides; the command is `ctrl` itself (gear 1 in [`MjcfImport::gears`]). Activation
//!   dynamics `dyntype` `filter`, `filterexact` and `integrator` (`dynprm[0]` the time
//!   constant, default 1; `<position timeconst>` is `filterexact`) become the law's
//!   [`crate::model::Activation`], with `actrange` where `actlimited`: the gain then multiplies
//!   the activation, one float of per-instance state, and `ctrl` drives it as in MuJoCo.
//!   Other activation dynamics (`muscle`, `user`), `actearly="true"`, `actdim` other than 1,
//!   other gain and bias types, and a velocity-dependent bias (`biasprm[2]`, `kv`,
//!   `dampratio`, `<velocity>`) are unsupported (the element and line): backdrive applies
//!   actuator forces explicitly.
//! * Joint `springdamper="timeconst dampratio"` (both positive) sets the joint's stiffness to
//!   `M0 / (timeconst dampratio)^2` and its damping to `2 M0 / timeconst`, `M0` being the
//!   joint's inertia at the model pose (the subtree's moment of inertia about a hinge, its mass
//!   along a slide, plus the armature as written): MuJoCo's compiler rule.
//! * `<default>` classes (nested, with `class` and `childclass`), `<compiler angle
//!   eulerseq inertiafromgeom autolimits boundmass boundinertia settotalmass>`, joint `range`
//!   / `limited`, and `<frame>` are supported.
//!
//! # Unsupported input
//!
//! Visual and bookkeeping content (`<asset>`, `<visual>`, `<statistic>`, `<size>`,
//! `<custom>`, `<extension>`, sites, cameras, lights, `rgba`, `material`, `group`...) and
//! the settings of MuJoCo's own constraint solver (`iterations`, `tolerance`, `solver`,
//! `cone`...) are ignored silently. Sensors, keyframes, unknown elements and attributes, and
//! settings whose effect backdrive models differently (`integrator`, geom `solmix` /
//! `priority`, joint limit `margin`, `condim` 4 and 6, ball-joint
//! cones, self-collision between bodies) are ignored or approximated with a [`Warning`]
//! naming the element and its line. Backdrive's joints and contacts are soft constraints
//! (`settings.joint_frequency`, `contact_frequency`): the importer maps `solref`/`solimp`
//! onto the contact ones (above) and keeps backdrive's joint defaults for limits and tendons,
//! but sets the locked axes of every joint stiffer ([`LOCK_FREQUENCY`] in
//! `settings.lock_frequency`): MuJoCo's joints, in generalised coordinates, do not give at
//! all, and at 30 Hz gravity bent backdrive's locked axes enough to turn the planar swimmers,
//! the fish's fins and the gymnasium reacher's arm, which MuJoCo holds still.
//! The limits keep the joint default unless asked otherwise (`solreflimit`/`solimplimit` are then a warning). With
//! [`MjcfOptions::mujoco_limit_softness`], joint limits get their own softness (`settings.limit_frequency`, `limit_damping_ratio`) from `solreflimit` /
//! `solimplimit`: MuJoCo's violated limit moves as the spring `r'' = -d (b r' + k r)`
//! (`k`, `b` from `solreflimit` as for contacts, the time constant at least two steps, `d =
//! solimplimit[1]`), so the frequency is `sqrt(d k) / 2 pi` and the damping ratio
//! `d b / (2 sqrt(d k))`: 8.2 Hz and 0.97 with MuJoCo's defaults. One setting per model: the
//! one most limited joints share, with a warning when they differ. This matches MuJoCo's
//! limit dynamics (a limit kicking a joint back into its range, a landing on a limit), not
//! its static sag: MuJoCo's impedance leaks only `1 - d` of a steady load into the violation,
//! so under a sustained load (a knee on its limit under the body's weight) backdrive's limit
//! gives 10 to 20 times more than MuJoCo's (knees 0.09 rad past their limit in gymnasium's
//! walker2d and 0.15 rad in dm_control's walker after the suite's drop, MuJoCo's 0.01 rad).
//! [`MjcfOptions::mujoco_limit_impedance`] instead gives the limits MuJoCo's soft-constraint
//! model itself (`settings.limit_impedance`, see [`crate::model::Impedance`]): a violated limit
//! row blends the unconstrained motion with MuJoCo's reference acceleration by the impedance
//! `d(r)` (the row's CFM is `(1 - d) / d` times its own `K`, its bias `h d k r - (1 - h b) u`
//! from the step's start speed `u`), and a limit not violated exerts nothing. It holds a
//! steady load as MuJoCo does; it is opt-in because, with the row's own `K` standing in for
//! MuJoCo's joint-space inverse inertia (`dof_invweight0`), it moves dm_control's walker within
//! 2 mm of MuJoCo but gymnasium's walker2d out of its 1 cm (see README's suites table). Features whose absence
//! would silently change the physics — joint `damping` and `armature` (see above), a free
//! joint's `stiffness` and `frictionloss`, `springdamper` on a ball joint; spatial tendons
//! other than a straight path between two sites, tendon
//! damping, friction and a spring's dead band, couplings that backdrive's two-body rows cannot hold (see
//! below), `distance` and flex equalities, actuators other than `motor`, `general` and
//! `position` and the laws above cannot express, wind and the ellipsoid fluid model, mocap
//! bodies, static ellipsoids, colliding meshes and height fields, contact pairs between bodies
//! — are errors naming the element and line, unless [`MjcfOptions::ignore_unsupported`] is
//! set, in which case they are dropped with a warning.
//!
//! Tendons and equalities (`constraints.rs`): a limited `<fixed>` tendon becomes a
//! [`crate::model::Tendon`] with limits (MuJoCo's length counts from the joints' `ref`, so the
//! bounds are shifted by `sum(coef * ref)`); `<equality><tendon>` and `<equality><joint>` with
//! a linear `polycoef` (`c0 c1 0 0 0`) become a tendon held at `c0` over the first object's
//! terms minus `c1` times the second's. A tendon must be one joint's coordinate or a chain of
//! hinges with equal `axis * coef` (the quadruped's coupled leg joints are); a coupling of two
//! hinges on one parent (a gripper's fingers) touches three bodies and is refused. `<connect>`
//! and `<weld>` between bodies (or a body and the world) become loop-closing `ball` and `fixed`
//! joints; a weld with `relpose` or `torquescale` is refused. Equality `solref`/`solimp` are not
//! mapped (a warning): a connect or weld is as soft as the joints' locks
//! (`settings.lock_frequency`), a tendon or joint coupling as their limits. A fixed tendon's
//! `stiffness` becomes a tendon spring ([`crate::model::TendonSpring`]: an explicit force on
//! every term's joint, no row, so over any joints, e.g. dm_control fish's two fins), its rest
//! length `springlength` less the length at the joints' `ref`, or by default the length at
//! their `springref`. A fixed tendon without limits or stiffness has no force of its own and
//! makes no row; a limited `<spatial>` tendon between two `<site>`s becomes a spatial
//! [`crate::model::Tendon`] (a distance limit between the two sites, placed in their bodies'
//! frames; `range` is MuJoCo's length, absolute), its `solreflimit`/`solimplimit` ignored with a
//! warning as a joint's (its rows are as soft as backdrive's joints); a path through more
//! sites, around geoms or over pulleys is refused; a `<motor>` on a tendon over one joint
//! (the others' coefficients zero) drives that joint with its gear times the coefficient.
//! Malformed XML, a geom without a size, an unknown joint or geom type, a bad number and an
//! unknown class are errors with the file and line.
//!
//! # How close to MuJoCo
//!
//! Measured with the fixtures in `tests/fixtures/mjcf/` against MuJoCo 4.0 (numbers recorded
//! by `benches/mjcf_reference.py`, checked by `tests/mjcf.rs`):
//!
//! * Masses, principal inertias and centres of mass match MuJoCo's to float precision.
//! * A contact-free double pendulum (1e-3 s steps) stays within 5.7 mm and 0.018 rad of
//!   MuJoCo's trajectory (Euler at 1e-4 s) over 1 s.
//! * Resting heights differ where backdrive's soft joints carry loads through light links: a
//!   joint's locked axes are only as stiff as the bodies it joins are heavy
//!   (`models/README.md`). The project's quadruped rests 14.5 mm lower than in MuJoCo.
//!   gymnasium's ant (0.04 kg hip links carrying the torso on 0.77 m levers) settles 3.2 cm
//!   below MuJoCo's resting pose when started there.
//! * Dropped from its model pose, the ant rests on splayed legs at 0.574 m, held by Coulomb
//!   friction: 8 mm above MuJoCo with hard friction (elliptic cones, impratio 1000: 0.566 m)
//!   and 9 mm above MuJoCo's own landing with the file's options (0.566 m at 1 s), after which
//!   MuJoCo's soft pyramidal friction lets the feet creep outward over 14 s until the ankles
//!   reach their limits at 0.382 m.
//!
//! # Stages
//!
//! One context (`Ctx`) carries the document, the compiler settings and the diagnostics
//! through the stages, each in its own file:
//!
//! 1. `xml`: attribute values with their default class and line, numbers, orientations.
//! 2. `defaults`: `<compiler>`, `<default>` classes, `<option>`, `<contact>`.
//! 3. `tree`: the intermediate tree of MJCF bodies in world coordinates, built by walking
//!    `<worldbody>` with `joints` (joints), `geometry` (geoms) and `inertia` (`<inertial>`,
//!    shape volumes and inertias, principal frames).
//! 4. `build`: MJCF bodies merged into backdrive bodies, their joints and shapes; then
//!    `actuators` maps `<actuator>` onto the built joints.
//! 5. `diagnostics`: validation errors placed at the MJCF element they came from, and the
//!    self-collision warning; the warnings themselves are collected in `Diagnostics`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use glam::{DMat3, DQuat, DVec3};
use roxmltree::{Document, Node};

use crate::engine::sim::BodyState;
use crate::error::{Error, FieldPath, ModelError, PathSegment, Result};
use crate::model::{
    Actuator, ActuatorKind, AffineForce, Body, Joint, JointKind, Model, Settings, Shape, ShapeKind,
    SharedFrame,
};

mod actuators;
mod build;
mod constraints;
mod defaults;
mod diagnostics;
mod geometry;
mod include;
mod inertia;
mod joints;
mod mesh;
mod springdamper;
mod tree;
mod xml;

use geometry::*;
use inertia::*;
use tree::*;

/// How to import an MJCF file.
#[derive(Clone, Debug, PartialEq)]
pub struct MjcfOptions {
    /// Drop features backdrive cannot simulate (joint damping, armature, tendons...) with a
    /// warning instead of failing. The imported model then behaves differently from MuJoCo's.
    pub ignore_unsupported: bool,
    /// Merge bodies without joints into their parent's backdrive body (exactly rigid). When
    /// false each becomes its own body, welded to its parent by a (soft) `fixed` joint.
    pub merge_fixed_bodies: bool,
    /// Share of a multi-joint body's mass and inertia given to its intermediate bodies (split
    /// evenly among them); in (0, 1).
    pub intermediate_mass_fraction: f64,
    /// Give the joint limits MuJoCo's limit dynamics (`settings.limit_frequency` and
    /// `limit_damping_ratio` from `solreflimit`/`solimplimit`, see the module documentation)
    /// instead of the joints' softness. Off by default: it matches a drop onto limits
    /// (dm_control's hopper rests within 0.2 mm of MuJoCo instead of 8 cm off) but makes a
    /// limit carrying a sustained load far softer than MuJoCo's (gymnasium's inverted pendulum
    /// lying on its limit: 0.34 rad from MuJoCo after 1 s instead of 0.024).
    pub mujoco_limit_softness: bool,
    /// Give colliding mesh geoms a contact shape: the mesh's equivalent-inertia box (the box
    /// with the mesh's volume and principal moments, at its centre of mass along its principal
    /// axes: the box MuJoCo fits to a mesh for `type="box" mesh="..."`), with a warning per
    /// geom giving its size and how far a contact point can move (the largest difference of
    /// the mesh's and the box's extents over directions). The geom keeps the mesh's own mass
    /// and inertia. Off by default: a colliding mesh is then an unsupported feature.
    pub colliding_meshes_as_boxes: bool,
    /// Give the joint limits MuJoCo's soft-constraint model itself
    /// (`settings.limit_impedance` from `solreflimit`/`solimplimit`: the impedance blend of the
    /// unconstrained motion and MuJoCo's reference acceleration, see
    /// [`crate::model::Impedance`]). It takes precedence over `mujoco_limit_softness`.
    pub mujoco_limit_impedance: bool,
}

impl Default for MjcfOptions {
    fn default() -> Self {
        MjcfOptions {
            ignore_unsupported: false,
            merge_fixed_bodies: true,
            intermediate_mass_fraction: 0.2,
            mujoco_limit_softness: false,
            colliding_meshes_as_boxes: false,
            mujoco_limit_impedance: false,
        }
    }
}

/// Something in the file that was ignored or approximated.
#[derive(Clone, Debug, PartialEq)]
pub struct Warning {
    /// The file, if the model came from one.
    pub file: Option<PathBuf>,
    /// 1-based line of the element.
    pub line: usize,
    /// The element's tag.
    pub element: String,
    /// What was ignored or approximated, and why.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        write!(f, "{}: <{}>: {}", self.line, self.element, self.message)
    }
}

/// Where an MJCF body's own frame sits in the backdrive body that carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyFrame {
    /// The MJCF body's name (`body<N>` for an unnamed one, N counting bodies in file order
    /// from 1, as MuJoCo numbers them).
    pub name: String,
    /// Index of the backdrive body in [`Model::bodies`]; `None` for static bodies (the world).
    pub body: Option<usize>,
    /// Position of the MJCF frame's origin in the backdrive body's frame (or in the world).
    pub offset: [f32; 3],
    /// Orientation `[x, y, z, w]` of the MJCF frame relative to the backdrive body's frame.
    pub rotation: [f32; 4],
}

/// An MJCF body's own mass properties at the model pose, as MuJoCo's compiler derives them
/// (its `body_mass`, `body_inertia`, and `xipos` at `qpos0`): from the body's geoms (mesh geoms
/// included) or its `<inertial>`, after `boundmass` and `settotalmass`, before bodies are merged
/// into backdrive bodies or split into intermediate ones.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyMass {
    /// The MJCF body's name (as in [`BodyFrame::name`]).
    pub name: String,
    /// Mass (kg); 0 for a body without mass.
    pub mass: f64,
    /// Centre of mass in world coordinates at the model pose (the body's origin when it has no
    /// mass).
    pub com: [f64; 3],
    /// Principal moments of inertia about the centre of mass, largest first (kg m^2).
    pub inertia: [f64; 3],
}

/// An imported model with everything the import learned on the way.
#[derive(Clone, Debug)]
pub struct MjcfImport {
    /// The backdrive model (validated).
    pub model: Model,
    /// What was ignored or approximated.
    pub warnings: Vec<Warning>,
    /// One entry per MJCF body, in file order.
    pub frames: Vec<BodyFrame>,
    /// MuJoCo `gear` of each actuator (in `model.actuators` order): a MuJoCo control `ctrl`
    /// is the backdrive force command `gear * ctrl`.
    pub gears: Vec<f32>,
    /// One entry per MJCF body, in file order (as [`MjcfImport::frames`]): its own mass
    /// properties, to compare with MuJoCo's compiled model.
    pub masses: Vec<BodyMass>,
}

impl MjcfImport {
    /// The frame of an MJCF body by name.
    pub fn frame(&self, name: &str) -> Option<&BodyFrame> {
        self.frames.iter().find(|f| f.name == name)
    }

    /// World position and orientation `[x, y, z, w]` of an MJCF body's frame (MuJoCo's
    /// `xpos` and `xquat`, the latter reordered), given one instance's body states.
    pub fn frame_pose(&self, name: &str, bodies: &[BodyState]) -> Option<([f32; 3], [f32; 4])> {
        let f = self.frame(name)?;
        let offset = glam::Vec3::from_array(f.offset);
        let rotation = glam::Quat::from_array(f.rotation);
        match f.body {
            None => Some((f.offset, f.rotation)),
            Some(b) => {
                let s = bodies.get(b)?;
                let q = glam::Quat::from_array(s.orientation);
                let p = glam::Vec3::from_array(s.position) + q * offset;
                Some((p.to_array(), (q * rotation).to_array()))
            }
        }
    }

    /// Backdrive body states (at rest) that put every MJCF body frame at the given world pose:
    /// `poses[i]` is the position and orientation `[x, y, z, w]` of the MJCF body `frames[i]`
    /// (MuJoCo's `xpos` and `xquat` without the world body, the quaternion reordered).
    /// Intermediate bodies of multi-joint bodies take their body's pose.
    pub fn body_states_from_frame_poses(
        &self,
        poses: &[([f32; 3], [f32; 4])],
    ) -> Result<Vec<BodyState>> {
        if poses.len() != self.frames.len() {
            return Err(Error::InvalidInput(format!(
                "expected {} frame poses (one per MJCF body), got {}",
                self.frames.len(),
                poses.len()
            )));
        }
        let mut states: Vec<Option<BodyState>> = vec![None; self.model.bodies.len()];
        for (f, (p, q)) in self.frames.iter().zip(poses) {
            let Some(b) = f.body else { continue };
            if states[b].is_some() {
                continue;
            }
            let q = glam::Quat::from_array(*q).normalize();
            let body_q = q * glam::Quat::from_array(f.rotation).inverse();
            let body_p = glam::Vec3::from_array(*p) - body_q * glam::Vec3::from_array(f.offset);
            states[b] = Some(BodyState {
                position: body_p.to_array(),
                orientation: body_q.normalize().to_array(),
                ..BodyState::default()
            });
        }
        // Intermediates (no frame of their own) sit where the next body in order sits.
        let mut out = vec![BodyState::default(); states.len()];
        let mut next: Option<BodyState> = None;
        for i in (0..states.len()).rev() {
            if let Some(s) = states[i] {
                next = Some(s);
            }
            out[i] = next.ok_or_else(|| {
                Error::InvalidInput(format!("no pose for body '{}'", self.model.bodies[i].name))
            })?;
        }
        Ok(out)
    }
}

impl MjcfImport {
    /// Backdrive body states (at rest) from MuJoCo's world pose of every MJCF body, given as
    /// the JSON array `benches/mjcf_suites_reference.py` records as a model's `start`:
    /// `[{"body": NAME, "pos": [x, y, z], "quat": [x, y, z, w]}, ...]` (MuJoCo's `xpos` and
    /// `xquat`, the quaternion reordered). Every MJCF body needs a pose; placement as in
    /// [`MjcfImport::body_states_from_frame_poses`].
    pub fn body_states_from_mujoco_poses(
        &self,
        poses: &serde_json::Value,
    ) -> Result<Vec<BodyState>> {
        let bad = |what: String| Error::InvalidInput(format!("MuJoCo body poses: {what}"));
        let numbers = |v: &serde_json::Value, n: usize, what: &str| -> Result<Vec<f32>> {
            let xs: Option<Vec<f32>> = v
                .as_array()
                .filter(|a| a.len() == n)
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect());
            xs.ok_or_else(|| bad(format!("'{what}' must be {n} numbers, found {v}")))
        };
        let mut by_name: HashMap<&str, ([f32; 3], [f32; 4])> = HashMap::new();
        for p in poses
            .as_array()
            .ok_or_else(|| bad(format!("expected an array, found {poses}")))?
        {
            let body = p["body"]
                .as_str()
                .ok_or_else(|| bad(format!("an entry without a body name: {p}")))?;
            let pos = numbers(&p["pos"], 3, "pos")?;
            let quat = numbers(&p["quat"], 4, "quat")?;
            by_name.insert(
                body,
                (
                    [pos[0], pos[1], pos[2]],
                    [quat[0], quat[1], quat[2], quat[3]],
                ),
            );
        }
        let ordered = self
            .frames
            .iter()
            .map(|f| {
                by_name
                    .get(f.name.as_str())
                    .copied()
                    .ok_or_else(|| bad(format!("no pose for body '{}'", f.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        self.body_states_from_frame_poses(&ordered)
    }

    /// A joint's coordinate as MuJoCo defines it, read off backdrive body states: a hinge's
    /// angle or a slide's displacement from the model pose, for a joint described as
    /// `benches/mjcf_suites_reference.py` records it (`name`, `kind` "hinge" or "slide", `body`,
    /// `parent` (absent for the world), `axis` in the body frame, and the body's pose in its
    /// parent at the model pose, `body_pos` and `body_quat` as `[x, y, z, w]`). A slide that
    /// backdrive holds in a compound joint (a body's slides and hinge sharing one frame) is
    /// measured along its axis between the points of the two bodies that met at its anchor.
    pub fn mujoco_joint_coordinate(
        &self,
        bodies: &[BodyState],
        joint: &serde_json::Value,
    ) -> Result<f64> {
        use glam::{Quat, Vec3};
        let bad = |what: String| Error::InvalidInput(format!("MuJoCo joint {joint}: {what}"));
        let vector = |key: &str, n: usize| -> Result<Vec<f32>> {
            let xs: Option<Vec<f32>> = joint[key]
                .as_array()
                .filter(|a| a.len() == n)
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect());
            xs.ok_or_else(|| bad(format!("'{key}' must be {n} numbers")))
        };
        let name = joint["name"]
            .as_str()
            .ok_or_else(|| bad("no 'name'".into()))?;
        let model = &self.model;
        if let Some(k) = model.joint_index(name) {
            let held = &model.joints[k];
            if joint["kind"] == "slide" && held.shared_frame.is_some() {
                // Where a body's point that sat at the anchor at the model pose is now.
                let moved = |body: Option<&String>| -> (Vec3, Quat) {
                    let anchor = Vec3::from_array(held.anchor);
                    let Some(b) = body.and_then(|name| model.body_index(name)) else {
                        return (anchor, Quat::IDENTITY);
                    };
                    let (x0, q0) = (
                        Vec3::from_array(model.bodies[b].position),
                        Quat::from_array(model.bodies[b].orientation).normalize(),
                    );
                    let (x, q) = (
                        Vec3::from_array(bodies[b].position),
                        Quat::from_array(bodies[b].orientation).normalize(),
                    );
                    let turn = q * q0.conjugate();
                    (x + turn * (anchor - x0), turn)
                };
                let (child_point, _) = moved(Some(&held.child));
                let (parent_point, parent_turn) = moved(held.parent.as_ref());
                let axis = parent_turn * Vec3::from_array(held.axis).normalize();
                return Ok(f64::from(axis.dot(child_point - parent_point)));
            }
        }
        let body = joint["body"]
            .as_str()
            .ok_or_else(|| bad("no 'body'".into()))?;
        let pose = |name: &str| {
            self.frame_pose(name, bodies)
                .ok_or_else(|| bad(format!("no MJCF body '{name}'")))
        };
        let (xb, qb) = pose(body)?;
        let (xp, qp) = match joint["parent"].as_str() {
            Some(p) => pose(p)?,
            None => ([0.0; 3], [0.0, 0.0, 0.0, 1.0]),
        };
        let (xb, qb, xp, qp) = (
            Vec3::from_array(xb),
            Quat::from_array(qb),
            Vec3::from_array(xp),
            Quat::from_array(qp),
        );
        let a = vector("axis", 3)?;
        let axis = Vec3::new(a[0], a[1], a[2]).normalize();
        let q = vector("body_quat", 4)?;
        let body_quat = Quat::from_xyzw(q[0], q[1], q[2], q[3]);
        match joint["kind"].as_str() {
            Some("hinge") => {
                let r = body_quat.conjugate() * qp.conjugate() * qb;
                let r = if r.w < 0.0 { -r } else { r };
                Ok(f64::from(
                    2.0 * Vec3::new(r.x, r.y, r.z).dot(axis).atan2(r.w),
                ))
            }
            Some("slide") => {
                let p = vector("body_pos", 3)?;
                let d = qp.conjugate() * (xb - xp) - Vec3::new(p[0], p[1], p[2]);
                Ok(f64::from((body_quat * axis).dot(d)))
            }
            _ => Err(bad("'kind' must be \"hinge\" or \"slide\"".into())),
        }
    }
}

/// Reads an MJCF file with the default options: the model and the warnings.
pub fn load_mjcf(path: impl AsRef<Path>) -> Result<(Model, Vec<Warning>)> {
    let import = load_mjcf_with(path, &MjcfOptions::default())?;
    Ok((import.model, import.warnings))
}

/// Reads an MJCF file.
pub fn load_mjcf_with(path: impl AsRef<Path>, options: &MjcfOptions) -> Result<MjcfImport> {
    let path = path.as_ref();
    let text = crate::model::read_model_text(path)?;
    from_str(&text, Some(path), options)
}

/// Imports MJCF text; `file` is only used in messages.
pub fn from_str(text: &str, file: Option<&Path>, options: &MjcfOptions) -> Result<MjcfImport> {
    let (text, sources) = include::expand(text, file)?;
    let text: &str = &text;
    let file = file.map(Path::to_path_buf);
    // Each piece parsed on its own above: the merged text is well formed.
    let doc = Document::parse(text).map_err(|e| include::parse_error(e, text, file.as_deref()))?;
    let mut ctx = Ctx {
        doc: &doc,
        file,
        options: options.clone(),
        diag: RefCell::new(Diagnostics::default()),
        degrees: true,
        eulerseq: *b"xyz",
        inertia_from_geom: InertiaFromGeom::Auto,
        autolimits: true,
        bound_mass: 0.0,
        bound_inertia: 0.0,
        set_total_mass: None,
        defaults: HashMap::new(),
        sources,
        newlines: text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect(),
        meshes: RefCell::new(HashMap::new()),
    };
    if !(options.intermediate_mass_fraction > 0.0 && options.intermediate_mass_fraction < 1.0) {
        return Err(ctx.error(
            1,
            "",
            format!(
                "MjcfOptions::intermediate_mass_fraction must be in (0, 1), found {}",
                options.intermediate_mass_fraction
            ),
        ));
    }
    let import = ctx.run()?;
    let diag = ctx.diag.into_inner();
    if let Some((_, first)) = diag.unsupported.first()
        && !options.ignore_unsupported
    {
        let more = diag.unsupported.len() - 1;
        return Err(Error::from(ModelError {
            file: first.file.clone(),
            line: Some(first.line),
            field: FieldPath::key(&first.element),
            message: format!(
                "{}{} (set MjcfOptions::ignore_unsupported, or \
                 BACKDRIVE_MJCF_IGNORE_UNSUPPORTED=1 on the command line, to import it \
                 anyway without this feature)",
                first.message,
                if more > 0 {
                    format!("; and {more} more unsupported feature(s)")
                } else {
                    String::new()
                }
            ),
        }));
    }
    let mut warnings = diag.warnings;
    warnings.extend(diag.unsupported);
    warnings.sort_by_key(|(line, _)| *line);
    let warnings = warnings.into_iter().map(|(_, w)| w).collect();
    Ok(MjcfImport { warnings, ..import })
}

// ---------------------------------------------------------------------------------------------
// Diagnostics and attribute access

#[derive(Default)]
struct Diagnostics {
    /// With the line of the merged text they were raised at, for ordering across files.
    warnings: Vec<(usize, Warning)>,
    unsupported: Vec<(usize, Warning)>,
    /// Visual-only geoms skipped (meshes that neither collide nor carry needed mass).
    visual_skipped: usize,
    /// Non-colliding meshes whose mass the body needs, and the first one's line and label.
    massive_meshes: usize,
    first_massive_mesh: Option<(usize, String)>,
}

#[derive(Clone, Copy, PartialEq)]
enum InertiaFromGeom {
    Auto,
    True,
    False,
}

/// Attributes set by one default class, per element tag: value and line.
type ClassAttrs = HashMap<String, HashMap<String, (String, usize)>>;

struct Ctx<'a, 'input> {
    doc: &'a Document<'input>,
    file: Option<PathBuf>,
    options: MjcfOptions,
    diag: RefCell<Diagnostics>,
    degrees: bool,
    eulerseq: [u8; 3],
    inertia_from_geom: InertiaFromGeom,
    autolimits: bool,
    bound_mass: f64,
    bound_inertia: f64,
    set_total_mass: Option<f64>,
    defaults: HashMap<String, ClassAttrs>,
    /// Which file and line each line of the (include-expanded) text came from.
    sources: include::Sources,
    /// Byte offset of every newline in the text: a line number is a binary search, where
    /// roxmltree's `text_pos_at` rescans the text from its start (quadratic over a file).
    newlines: Vec<usize>,
    /// Mass properties of the `<mesh>` assets read so far, by name (each file is read once).
    meshes: RefCell<HashMap<String, mesh::MeshMass>>,
}

/// An attribute value with where it came from.
#[derive(Clone)]
struct Val {
    text: String,
    line: usize,
    /// Where `line` is, as the user reads it (`line N`, or `FILE line N` in an included file).
    place: String,
    /// Name of the attribute and, when it came from a default class, that class.
    name: String,
    class: Option<String>,
}

impl Val {
    fn origin(&self) -> String {
        match &self.class {
            Some(c) => format!(" (from default class '{c}', {})", self.place),
            None => String::new(),
        }
    }
}

/// An element with the default class that applies to it.
#[derive(Clone, Copy)]
struct El<'a, 'input> {
    node: Node<'a, 'input>,
    /// Which defaults apply (`joint`, `geom`, `actuator`), if any.
    tag: Option<&'static str>,
    class: Option<&'a str>,
}

const MAX_DEPTH: usize = 200;

/// Natural frequency (Hz) of an imported model's locked joint axes
/// (`settings.lock_frequency`). Measured with `examples/suite_probe.rs` on the suites'
/// compared models (deviation from MuJoCo after 1 s): 100 Hz brings the gymnasium reacher from
/// 0.075 to 0.0022 rad, dm_control's swimmer from 0.013 to 0.0003 and fish from 0.023 to
/// 0.0011, and keeps every legged model on its side of the tolerance; 1,000 Hz made dm_control's
/// walker and fish diverge at their time steps with 20 sweeps.
pub const LOCK_FREQUENCY: f32 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    /// A hinge turned by a known angle reads that angle; a joint description without a kind
    /// MuJoCo has, or naming no body of the model, is an error, not a panic.
    #[test]
    fn mujoco_joint_coordinates_read_a_turned_hinge_and_bad_ones_are_errors() {
        let text = r#"<mujoco><worldbody>
  <body name="a" pos="0 0 1"><joint name="h" axis="0 1 0"/><geom size=".1"/></body>
</worldbody></mujoco>"#;
        let imp = from_str(text, None, &MjcfOptions::default()).unwrap();
        let (s, c) = (0.15f32.sin(), 0.15f32.cos());
        let poses = serde_json::json!([
            {"body": "a", "pos": [0.0, 0.0, 1.0], "quat": [0.0, s, 0.0, c]},
        ]);
        let bodies = imp.body_states_from_mujoco_poses(&poses).unwrap();
        let hinge = serde_json::json!({
            "name": "h", "kind": "hinge", "body": "a", "axis": [0.0, 1.0, 0.0],
            "body_pos": [0.0, 0.0, 1.0], "body_quat": [0.0, 0.0, 0.0, 1.0],
        });
        let angle = imp.mujoco_joint_coordinate(&bodies, &hinge).unwrap();
        assert!((angle - 0.3).abs() < 1e-6, "{angle}");
        let mut ball = hinge.clone();
        ball["kind"] = serde_json::json!("ball");
        let e = imp.mujoco_joint_coordinate(&bodies, &ball).unwrap_err();
        assert!(e.to_string().contains("'kind'"), "{e}");
        let mut elsewhere = hinge.clone();
        elsewhere["body"] = serde_json::json!("nowhere");
        let e = imp
            .mujoco_joint_coordinate(&bodies, &elsewhere)
            .unwrap_err();
        assert!(e.to_string().contains("no MJCF body 'nowhere'"), "{e}");
    }

    #[test]
    fn mujoco_poses_place_every_body_and_bad_ones_are_errors() {
        let text = r#"<mujoco><worldbody>
  <body name="a" pos="0 0 1"><freejoint/><geom size=".1"/>
    <body name="b" pos=".5 0 0"><joint axis="0 1 0"/><geom size=".1"/></body>
  </body>
</worldbody></mujoco>"#;
        let imp = from_str(text, None, &MjcfOptions::default()).unwrap();
        let poses = serde_json::json!([
            {"body": "b", "pos": [1.0, 2.0, 3.5], "quat": [0.0, 0.0, 0.0, 1.0]},
            {"body": "a", "pos": [1.0, 2.0, 3.0], "quat": [0.0, 0.0, 0.0, 1.0]},
        ]);
        let states = imp.body_states_from_mujoco_poses(&poses).unwrap();
        // Spheres centred on their frames: each body's centre of mass is its frame's origin.
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].position, [1.0, 2.0, 3.0]);
        assert_eq!(states[1].position, [1.0, 2.0, 3.5]);
        let missing = serde_json::json!([
            {"body": "a", "pos": [0.0, 0.0, 1.0], "quat": [0.0, 0.0, 0.0, 1.0]},
        ]);
        let err = imp.body_states_from_mujoco_poses(&missing).unwrap_err();
        assert!(err.to_string().contains("no pose for body 'b'"), "{err}");
        let short = serde_json::json!([{"body": "a", "pos": [0.0, 1.0], "quat": [0, 0, 0, 1]}]);
        let err = imp.body_states_from_mujoco_poses(&short).unwrap_err();
        assert!(err.to_string().contains("'pos' must be 3 numbers"), "{err}");
        assert!(
            imp.body_states_from_mujoco_poses(&serde_json::json!({}))
                .is_err()
        );
    }
}
