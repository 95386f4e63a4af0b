//! The robot model: bodies, shapes, joints and actuators, as a user describes them.
//!
//! A [`Model`] is plain data. It can be built in Rust with [`ModelBuilder`] or read from a
//! TOML file with [`Model::from_toml_file`] (the format is documented in `models/README.md`),
//! and written back with [`Model::to_toml`]; the two round-trip.
//!
//! Conventions: SI units, z up, quaternions stored as `[x, y, z, w]`. Joint anchors and axes
//! are given in world coordinates at the model's initial pose, as in ODE; the compiler in
//! [`crate::engine::layout`] turns them into body-local frames.

mod builder;
mod compound;
mod file;
mod tendon;
mod validate;

pub use builder::ModelBuilder;
pub use compound::SharedFrame;
pub(crate) use compound::{kernel_joints, validate_compounds};
pub(crate) use file::{file_kind, line_of, locate, path_at, read_model_text};
pub use tendon::{Tendon, TendonChain, TendonSite, TendonSpring, TendonTerm};

use serde::{Deserialize, Serialize};

/// A complete robot model: global settings plus bodies, joints and actuators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Human-readable name.
    pub name: String,
    /// Integrator and solver settings.
    #[serde(default)]
    pub settings: Settings,
    /// Rigid bodies; their order is the order of the state arrays.
    #[serde(default, rename = "body")]
    pub bodies: Vec<Body>,
    /// Joints between two bodies, or between a body and the world.
    #[serde(default, rename = "joint", skip_serializing_if = "Vec::is_empty")]
    pub joints: Vec<Joint>,
    /// Actuators driving joint axes; their order is the order of the command arrays.
    #[serde(default, rename = "actuator", skip_serializing_if = "Vec::is_empty")]
    pub actuators: Vec<Actuator>,
    /// Shapes fixed to the world (planes, spheres, capsules, boxes, cylinders) that the
    /// bodies' contact points touch, besides the ground plane z = 0.
    #[serde(default, rename = "world_shape", skip_serializing_if = "Vec::is_empty")]
    pub world_shapes: Vec<WorldShape>,
    /// Linear combinations of joint coordinates held at a length or within limits.
    #[serde(default, rename = "tendon", skip_serializing_if = "Vec::is_empty")]
    pub tendons: Vec<Tendon>,
}

/// Integrator and solver settings shared by every instance of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Time step in seconds.
    pub dt: f32,
    /// Gravity in m/s^2.
    #[serde(deserialize_with = "exact_array")]
    pub gravity: [f32; 3],
    /// Number of projected Gauss-Seidel sweeps per step.
    pub solver_iterations: u32,
    /// Fraction of last step's accumulated impulses used to warm-start the solver.
    pub warm_start: f32,
    /// Over-relaxation factor of the lock and servo rows' Gauss-Seidel updates, in (0, 2):
    /// each update moves the impulse this many times the plain projected Gauss-Seidel step
    /// before the clamp (1: plain Gauss-Seidel). Limits, contacts, tendons and passive rows
    /// always take the plain step: relaxing them left a larger residual on the measured
    /// models (benches/README.md, "Sweeps and the constraint residual").
    pub solver_relaxation: f32,
    /// Natural frequency (Hz) of the soft joint and limit constraints.
    pub joint_frequency: f32,
    /// Damping ratio of the soft joint and limit constraints.
    pub joint_damping_ratio: f32,
    /// Natural frequency (Hz) of the joints' locked axes alone, in place of
    /// `joint_frequency` (which then still sets the limits and tendons); with
    /// `joint_damping_ratio`. `None`: `joint_frequency`. The MJCF importer sets it, since
    /// MuJoCo's joints have no softness at all while its limits do (see `io::mjcf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_frequency: Option<f32>,
    /// Natural frequency (Hz) of the soft joint limits alone, where it differs from
    /// `joint_frequency` (the MJCF importer sets it from `solreflimit`/`solimplimit`, as
    /// MuJoCo's limits are softer than its joints, which are exact); `None`: `joint_frequency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_frequency: Option<f32>,
    /// Damping ratio of the soft joint limits alone; `None`: `joint_damping_ratio`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_damping_ratio: Option<f32>,
    /// MuJoCo's soft-constraint model for the joint limits, in place of the soft row that
    /// `limit_frequency` and `limit_damping_ratio` set: a violated limit row blends the
    /// unconstrained motion with MuJoCo's reference acceleration by the impedance `d(r)` of
    /// its violation `r` (see [`Impedance`]); a limit not violated exerts nothing. The MJCF
    /// importer sets it from `solreflimit`/`solimplimit`. `None`: the soft row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_impedance: Option<Impedance>,
    /// Natural frequency (Hz) of the soft contact constraints.
    pub contact_frequency: f32,
    /// Damping ratio of the soft contact constraints.
    pub contact_damping_ratio: f32,
    /// Approach speed (m/s) below which contacts do not bounce.
    pub restitution_threshold: f32,
    /// Whether spheres on different bodies that share no joint collide with each other.
    pub sphere_collisions: bool,
    /// Whether the ground plane z = 0 exists. Without it, only the world shapes are static
    /// geometry (an MJCF model whose floor is not at z = 0 imports its floor as a world shape).
    pub ground: bool,
    /// Density of the fluid the bodies move in (kg/m^3; 0: none): quadratic drag on each
    /// body's equivalent-inertia box (see `shaders/fluid.wgsl`, MuJoCo's inertia model).
    pub fluid_density: f32,
    /// Dynamic viscosity of that fluid (Pa s; 0: none): Stokes drag on the box's mean size.
    pub fluid_viscosity: f32,
}

/// MuJoCo's soft-constraint parameters of a row kind (its `solref` and `solimp`).
///
/// A row with violation `r < 0`, start-of-step speed `u` and unconstrained acceleration `a0`
/// ends the step at the acceleration `(1 - d) a0 + d (-b u - k d r)`: `d = d(|r|)` is the
/// impedance, rising from `solimp[0]` at `r = 0` to `solimp[1]` at `|r| = solimp[2]` along
/// MuJoCo's two-piece power curve (midpoint `solimp[3]`, power `solimp[4]`); `k = 1 / (dmax^2
/// tc^2 zeta^2)` and `b = 2 / (dmax tc)` for `solref = [tc, zeta]` (`tc` not below two time
/// steps, as MuJoCo's default `refsafe`), or `k = -solref[0] / dmax^2`, `b = -solref[1] / dmax`
/// for a non-positive `solref` (MuJoCo's direct form).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impedance {
    /// `[time constant (s), damping ratio]`, or `[-stiffness, -damping]`.
    #[serde(deserialize_with = "exact_array")]
    pub solref: [f32; 2],
    /// `[d0, dmax, width (m or rad), midpoint, power]`.
    #[serde(deserialize_with = "exact_array")]
    pub solimp: [f32; 5],
}

impl Impedance {
    /// MuJoCo's defaults: `solref = [0.02, 1]`, `solimp = [0.9, 0.95, 0.001, 0.5, 2]`.
    pub const MUJOCO_DEFAULT: Impedance = Impedance {
        solref: [0.02, 1.0],
        solimp: [0.9, 0.95, 0.001, 0.5, 2.0],
    };
}

impl Settings {
    /// The joint limits' natural frequency (Hz) and damping ratio: `limit_frequency` and
    /// `limit_damping_ratio` where set, else the joints'.
    pub fn limit_softness(&self) -> (f32, f32) {
        (
            self.limit_frequency.unwrap_or(self.joint_frequency),
            self.limit_damping_ratio.unwrap_or(self.joint_damping_ratio),
        )
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dt: 0.01,
            gravity: [0.0, 0.0, -9.81],
            solver_iterations: 20,
            warm_start: 0.85,
            solver_relaxation: 1.0,
            joint_frequency: 30.0,
            joint_damping_ratio: 1.0,
            lock_frequency: None,
            limit_frequency: None,
            limit_damping_ratio: None,
            limit_impedance: None,
            contact_frequency: 30.0,
            contact_damping_ratio: 1.0,
            restitution_threshold: 0.2,
            sphere_collisions: false,
            ground: true,
            fluid_density: 0.0,
            fluid_viscosity: 0.0,
        }
    }
}

/// A rigid body with its collision shapes and its initial state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Unique name, used by joints to refer to the body.
    pub name: String,
    /// Mass in kg (positive).
    pub mass: f32,
    /// Principal moments of inertia in the body frame (kg m^2); computed from the shapes
    /// (as solids of uniform density) when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact_array_option"
    )]
    pub inertia: Option<[f32; 3]>,
    /// Initial position of the centre of mass (world frame).
    #[serde(default, deserialize_with = "exact_array")]
    pub position: [f32; 3],
    /// Initial orientation `[x, y, z, w]`.
    #[serde(default = "identity_quat", deserialize_with = "exact_array")]
    pub orientation: [f32; 4],
    /// Initial linear velocity.
    #[serde(default, deserialize_with = "exact_array")]
    pub linear_velocity: [f32; 3],
    /// Initial angular velocity (world frame).
    #[serde(default, deserialize_with = "exact_array")]
    pub angular_velocity: [f32; 3],
    /// Coulomb friction coefficient of this body's contacts.
    #[serde(default = "default_friction")]
    pub friction: f32,
    /// Restitution coefficient of this body's contacts.
    #[serde(default)]
    pub restitution: f32,
    /// Collision shapes, placed in the body frame.
    #[serde(default, rename = "shape", skip_serializing_if = "Vec::is_empty")]
    pub shapes: Vec<Shape>,
    /// Whether the settings' fluid acts on this body (when the fluid density or viscosity is
    /// not zero). The MJCF importer turns it off on the intermediate bodies that chain a
    /// multi-joint body, so that the fluid acts once, on the body itself.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub fluid_drag: bool,
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Reads a fixed-size array of numbers, refusing extra elements: serde's array impl stops after
/// `N` items and the TOML deserializer silently drops the rest.
fn exact_array<'de, D, const N: usize>(deserializer: D) -> Result<[f32; N], D::Error>
where
    D: serde::Deserializer<'de>,
{
    let items = Vec::<f32>::deserialize(deserializer)?;
    let found = items.len();
    items.try_into().map_err(|_| {
        serde::de::Error::custom(format!(
            "expected an array of {N} numbers, found {found} elements"
        ))
    })
}

/// [`exact_array`] for an optional field (absent keys take the field's default).
fn exact_array_option<'de, D, const N: usize>(deserializer: D) -> Result<Option<[f32; N]>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    exact_array(deserializer).map(Some)
}

fn identity_quat() -> [f32; 4] {
    [0.0, 0.0, 0.0, 1.0]
}

fn default_friction() -> f32 {
    1.0
}

/// A collision shape attached to a body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Geometry.
    #[serde(flatten)]
    pub kind: ShapeKind,
    /// Position of the shape's centre in the body frame.
    #[serde(default, deserialize_with = "exact_array")]
    pub offset: [f32; 3],
    /// Orientation of the shape in the body frame `[x, y, z, w]`.
    #[serde(default = "identity_quat", deserialize_with = "exact_array")]
    pub rotation: [f32; 4],
}

/// Shape geometry. Contacts with the ground are taken at a sphere's centre, a capsule's two
/// segment ends and a box's eight corners.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ShapeKind {
    /// A sphere.
    Sphere {
        /// Radius in m.
        radius: f32,
    },
    /// A capsule along the shape's local z axis.
    Capsule {
        /// Radius in m.
        radius: f32,
        /// Half the length of the central segment in m.
        half_length: f32,
    },
    /// A box.
    Box {
        /// Half extents along x, y, z in m.
        #[serde(deserialize_with = "exact_array")]
        half_extents: [f32; 3],
    },
}

impl ShapeKind {
    /// Contact points of the shape: 1 for a sphere, 2 for a capsule, 8 for a box.
    pub fn contact_point_count(&self) -> usize {
        match self {
            ShapeKind::Sphere { .. } => 1,
            ShapeKind::Capsule { .. } => 2,
            ShapeKind::Box { .. } => 8,
        }
    }
}

/// A shape fixed to the world. Every contact point of every body (sphere centres, capsule
/// segment ends, box corners, each with its radius) is a candidate contact with every world
/// shape, with the friction and restitution of the point's body, as on the ground.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldShape {
    /// Geometry.
    #[serde(flatten)]
    pub kind: WorldShapeKind,
    /// Position of the shape's centre in the world (for a plane: a point on it).
    #[serde(default, deserialize_with = "exact_array")]
    pub position: [f32; 3],
    /// Orientation `[x, y, z, w]`. A plane's normal, a capsule's and a cylinder's axis are
    /// the shape's local z axis.
    #[serde(default = "identity_quat", deserialize_with = "exact_array")]
    pub rotation: [f32; 4],
}

/// Geometry of a [`WorldShape`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum WorldShapeKind {
    /// An unbounded plane through `position`, solid below it (against its local z axis).
    Plane,
    /// A sphere.
    Sphere {
        /// Radius in m.
        radius: f32,
    },
    /// A capsule along the local z axis.
    Capsule {
        /// Radius in m.
        radius: f32,
        /// Half the length of the central segment in m.
        half_length: f32,
    },
    /// A box.
    Box {
        /// Half extents along x, y, z in m.
        #[serde(deserialize_with = "exact_array")]
        half_extents: [f32; 3],
    },
    /// A solid cylinder along the local z axis, with flat ends.
    Cylinder {
        /// Radius in m.
        radius: f32,
        /// Half the length in m.
        half_length: f32,
    },
}

/// Most candidate contacts (body contact points times world shapes) a model may have: each
/// owns three constraint rows in every instance.
pub const MAX_WORLD_CONTACTS: usize = 4096;

/// A joint between a parent (or the world) and a child body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Joint {
    /// Unique name, used by actuators.
    pub name: String,
    /// Kind of joint.
    #[serde(rename = "type")]
    pub kind: JointKind,
    /// Parent body; `None` attaches the child to the world.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Child body.
    pub child: String,
    /// Joint anchor in world coordinates at the initial pose.
    #[serde(default, deserialize_with = "exact_array")]
    pub anchor: [f32; 3],
    /// Joint axis in world coordinates at the initial pose (hinge and slider).
    #[serde(default = "default_axis", deserialize_with = "exact_array")]
    pub axis: [f32; 3],
    /// Optional `[lower, upper]` limits on the free coordinate(s): radians for hinges and ball
    /// joints (per axis of the joint frame), metres for sliders.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "exact_array_option"
    )]
    pub limits: Option<[f32; 2]>,
    /// Viscous damping on every free axis (N m s/rad for rotations, N s/m for translations):
    /// a generalized force `-damping * velocity`, integrated implicitly (stable at any step).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub damping: f32,
    /// Stiffness of a spring on every free axis toward `springref` (N m/rad or N/m), integrated
    /// implicitly together with the damping.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stiffness: f32,
    /// Rest position of the spring, in the joint coordinate (see `reference`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub springref: f32,
    /// Dry (Coulomb) friction on every free axis (N m or N): the joint's velocity row has its
    /// impulse clamped to `+-frictionloss * dt`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frictionloss: f32,
    /// Rotor inertia about the joint axis (kg m^2), or reflected mass along it (kg), added to
    /// the joint's generalized inertia as MuJoCo's `armature` is.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub armature: f32,
    /// Value of the joint coordinate at the model's initial pose (MJCF `ref`; hinges and
    /// sliders only). `limits` and `springref` are measured in this coordinate.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reference: f32,
    /// Membership of a compound joint (hinges and sliders only): the joints that name the
    /// same compound share one joint frame between the same two bodies, each freeing one of
    /// its axes, and the axes none of them frees are locked (see [`SharedFrame`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_frame: Option<SharedFrame>,
}

fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

impl Joint {
    /// Whether the joint has any of the passive axis dynamics (damping, spring, dry friction,
    /// armature) and so gets passive rows on its free axes.
    pub fn has_passive_dynamics(&self) -> bool {
        self.damping != 0.0
            || self.stiffness != 0.0
            || self.frictionloss != 0.0
            || self.armature != 0.0
    }
}

fn default_axis() -> [f32; 3] {
    [1.0, 0.0, 0.0]
}

/// Joint kinds, all expressed as a 6-axis joint frame whose axes are locked or free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JointKind {
    /// Point-to-point: 3 translations locked, 3 rotations free.
    Ball,
    /// Rotation about `axis` free, everything else locked.
    Hinge,
    /// Translation along `axis` free, everything else locked.
    Slider,
    /// Everything locked.
    Fixed,
}

impl JointKind {
    /// Which of the six joint-frame axes (x, y, z translation, then x, y, z rotation) are
    /// locked. The joint frame's x axis is the joint axis.
    pub fn locked_axes(self) -> [bool; 6] {
        match self {
            JointKind::Ball => [true, true, true, false, false, false],
            JointKind::Hinge => [true, true, true, false, true, true],
            JointKind::Slider => [false, true, true, true, true, true],
            JointKind::Fixed => [true; 6],
        }
    }

    /// The axes a limit or an actuator acts on.
    pub fn free_axes(self) -> &'static [u32] {
        match self {
            JointKind::Ball => &[3, 4, 5],
            JointKind::Hinge => &[3],
            JointKind::Slider => &[0],
            JointKind::Fixed => &[],
        }
    }
}

/// An actuator on one free axis of a joint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actuator {
    /// Unique name.
    pub name: String,
    /// The joint it drives.
    pub joint: String,
    /// Which free axis of the joint (0 for hinges and sliders; 0, 1, 2 for ball joints).
    #[serde(default)]
    pub axis: u32,
    /// Kind of actuator and the meaning of its command.
    #[serde(rename = "type")]
    pub kind: ActuatorKind,
    /// Servo gain in 1/s (position servo only).
    #[serde(default)]
    pub gain: f32,
    /// Maximal torque (Nm) or force (N).
    pub max_force: f32,
    /// Maximal joint speed (rad/s or m/s) for servos.
    #[serde(default = "default_max_velocity")]
    pub max_velocity: f32,
    /// The force law of an [`ActuatorKind::Affine`] actuator (required for it, refused for
    /// the other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affine: Option<AffineForce>,
}

/// MuJoCo's `<general>` force law without activation dynamics: with the command clamped to
/// `ctrl_range` and the actuator length `l = sum_t c_t q_t` over `terms` (joint coordinates
/// measured as MuJoCo's `qpos`, that is from the joint's `reference`), the force is
/// `clamp(gain * u + bias[0] + bias[1] * l, force_range)` and every term's joint receives
/// `c_t` times it. Velocity-dependent bias is not part of it: backdrive applies actuator
/// forces explicitly, where MuJoCo's Euler step would not treat it the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffineForce {
    /// Force per unit of command.
    pub gain: f32,
    /// Constant force and force per unit of actuator length.
    pub bias: [f32; 2],
    /// Command bounds `[lower, upper]` (use +-1e20 for none).
    pub ctrl_range: [f32; 2],
    /// Force bounds `[lower, upper]` (use +-1e20 for none).
    pub force_range: [f32; 2],
    /// The transmission: joints (axis 0 of hinges and sliders) and their coefficients
    /// (MuJoCo's gear times the fixed tendon's coefficient).
    pub terms: Vec<crate::model::TendonTerm>,
    /// MuJoCo's activation dynamics (`dyntype` other than `none`): when present the law's
    /// `gain` multiplies the actuator's activation instead of the command, and the command
    /// drives the activation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
}

/// An actuator's activation `act`, one float of per-instance state that starts at 0. Each step
/// the force uses `act` as it is at the step's start, and then, with `u` the command clamped to
/// the law's `ctrl_range` and `dt` the time step, `act` becomes `clamp(act + dt * (u - act) /
/// time_constant, range)` (`filter`, Euler as MuJoCo's `dyntype="filter"`),
/// `clamp(act + (u - act) * (1 - exp(-dt / time_constant)), range)` (`filter_exact`) or
/// `clamp(act + dt * u, range)` (`integrator`), as MuJoCo does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// How the command drives the activation.
    pub dynamics: ActivationDynamics,
    /// The filter's time constant in s (MuJoCo's `dynprm[0]`; > 0 for the filters, not used
    /// by the integrator).
    #[serde(default)]
    pub time_constant: f32,
    /// Bounds `[lower, upper]` of the activation (MuJoCo's `actrange` when `actlimited`);
    /// none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f32; 2]>,
}

/// The activation dynamics of an [`Activation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationDynamics {
    /// First-order filter integrated by Euler: `act += dt * (u - act) / time_constant`.
    Filter,
    /// First-order filter integrated exactly over the step.
    FilterExact,
    /// Integrator: `act += dt * u`.
    Integrator,
}

impl Activation {
    /// The rates `(command_rate, activation_rate)` of the step's update
    /// `act += dt * (command_rate * u - activation_rate * act)` at time step `dt`.
    pub fn rates(&self, dt: f32) -> (f32, f32) {
        let (dt, tau) = (f64::from(dt), f64::from(self.time_constant));
        let rate = match self.dynamics {
            ActivationDynamics::Integrator => return (1.0, 0.0),
            ActivationDynamics::Filter => 1.0 / tau,
            ActivationDynamics::FilterExact => -(-dt / tau).exp_m1() / dt,
        };
        (rate as f32, rate as f32)
    }
}

fn default_max_velocity() -> f32 {
    1.0e3
}

/// Actuator kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActuatorKind {
    /// The paper's servo: command is a target joint position; target speed
    /// `clamp(gain * error, +-max_velocity)`, impulse clamped to `max_force * dt`.
    PositionServo,
    /// Command is a target joint speed, clamped to `+-max_velocity`; impulse clamped to
    /// `max_force * dt`.
    VelocityServo,
    /// Command is a torque (or force), clamped to `+-max_force`.
    Force,
    /// Command is MuJoCo's `ctrl` of a `<general>`, `<position>` or `<motor>` actuator:
    /// the force law is [`Actuator::affine`].
    Affine,
}

impl Model {
    /// Index of a body by name.
    pub fn body_index(&self, name: &str) -> Option<usize> {
        self.bodies.iter().position(|b| b.name == name)
    }

    /// Index of a joint by name.
    pub fn joint_index(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| j.name == name)
    }

    /// Candidate contacts between the bodies' contact points and the world shapes (each is
    /// three constraint rows); at most [`MAX_WORLD_CONTACTS`].
    pub fn world_contact_count(&self) -> usize {
        let points: usize = self
            .bodies
            .iter()
            .flat_map(|b| &b.shapes)
            .map(|s| s.kind.contact_point_count())
            .sum();
        points.saturating_mul(self.world_shapes.len())
    }

    /// Total mass of all bodies.
    pub fn total_mass(&self) -> f32 {
        self.bodies.iter().map(|b| b.mass).sum()
    }
}

/// Principal moments of inertia of a body from its shapes, as solids of uniform density that
/// share the body's mass in proportion to their volumes. Off-diagonal terms from offsets are
/// dropped (the body frame is assumed principal).
pub fn inertia_from_shapes(mass: f32, shapes: &[Shape]) -> [f32; 3] {
    use std::f32::consts::PI;
    let volumes: Vec<f32> = shapes
        .iter()
        .map(|s| match s.kind {
            ShapeKind::Sphere { radius } => 4.0 / 3.0 * PI * radius.powi(3),
            ShapeKind::Capsule {
                radius,
                half_length,
            } => PI * radius * radius * 2.0 * half_length + 4.0 / 3.0 * PI * radius.powi(3),
            ShapeKind::Box { half_extents: h } => 8.0 * h[0] * h[1] * h[2],
        })
        .collect();
    let total: f32 = volumes.iter().sum();
    if shapes.is_empty() || total <= 0.0 {
        // A point mass would make the rotation singular; use a small sphere of 5 cm.
        let i = 0.4 * mass * 0.05 * 0.05;
        return [i, i, i];
    }
    let mut inertia = [0.0f32; 3];
    for (shape, volume) in shapes.iter().zip(&volumes) {
        let m = mass * volume / total;
        let local = match shape.kind {
            ShapeKind::Sphere { radius } => {
                let i = 0.4 * m * radius * radius;
                [i, i, i]
            }
            ShapeKind::Capsule {
                radius,
                half_length,
            } => {
                // Approximated as a cylinder of the full length: close enough for a robot link.
                let len = 2.0 * (half_length + radius);
                let ixy = m * (3.0 * radius * radius + len * len) / 12.0;
                [ixy, ixy, 0.5 * m * radius * radius]
            }
            ShapeKind::Box { half_extents: h } => {
                let (x, y, z) = (2.0 * h[0], 2.0 * h[1], 2.0 * h[2]);
                [
                    m * (y * y + z * z) / 12.0,
                    m * (x * x + z * z) / 12.0,
                    m * (x * x + y * y) / 12.0,
                ]
            }
        };
        // Rotate the shape's principal moments into the body frame (diagonal part only).
        let r = glam::Mat3::from_quat(glam::Quat::from_array(shape.rotation).normalize());
        let d = glam::Mat3::from_diagonal(glam::Vec3::from_array(local));
        let body_tensor = r * d * r.transpose();
        let o = glam::Vec3::from_array(shape.offset);
        let parallel = [
            m * (o.y * o.y + o.z * o.z),
            m * (o.x * o.x + o.z * o.z),
            m * (o.x * o.x + o.y * o.y),
        ];
        for k in 0..3 {
            inertia[k] += body_tensor.col(k)[k] + parallel[k];
        }
    }
    inertia
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_inertia_is_two_fifths_m_r_squared() {
        let shapes = [Shape {
            kind: ShapeKind::Sphere { radius: 0.5 },
            offset: [0.0; 3],
            rotation: identity_quat(),
        }];
        let i = inertia_from_shapes(2.0, &shapes);
        assert!((i[0] - 0.4 * 2.0 * 0.25).abs() < 1e-6);
    }

    #[test]
    fn box_inertia_matches_closed_form() {
        let shapes = [Shape {
            kind: ShapeKind::Box {
                half_extents: [0.5, 1.0, 1.5],
            },
            offset: [0.0; 3],
            rotation: identity_quat(),
        }];
        let i = inertia_from_shapes(12.0, &shapes);
        assert!((i[0] - (4.0 + 9.0)).abs() < 1e-4);
        assert!((i[1] - (1.0 + 9.0)).abs() < 1e-4);
        assert!((i[2] - (1.0 + 4.0)).abs() < 1e-4);
    }
}
