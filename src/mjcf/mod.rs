//! Import of MuJoCo MJCF models (the subset the standard locomotion models use) into
//! backdrive's maximal-coordinate [`Model`].
//!
//! ```no_run
//! use backdrive::mjcf::{self, MjcfOptions};
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
//!   coordinate in both engines; joint `ref` is honoured by shifting the limits.
//! * A body with several joints (MuJoCo composes them in order) gets light intermediate
//!   bodies, named `<body>__<joint>`, chained by one joint each; the last joint attaches the
//!   body itself. The intermediates sit at the body's centre of mass and take a fraction
//!   ([`MjcfOptions::intermediate_mass_fraction`], 20% by default, split evenly) of its mass
//!   and inertia, so the total mass and, with the joints locked, the inertia are unchanged. A
//!   backdrive joint's locked axes are only as stiff as the lighter of the bodies it joins is
//!   heavy (see `models/README.md`), so a much smaller fraction would make the "locked" axes
//!   between intermediates visibly soft; a larger one moves more of the inertia onto the
//!   earlier joints while the later ones turn.
//! * Geoms: `sphere`, `capsule` (`size` radius and half-length, or `fromto`), `box` (half
//!   sizes, or `fromto`) map to backdrive shapes; `cylinder` and `ellipsoid` contribute mass
//!   but have no backdrive shape (an error unless unsupported features are ignored). Mass comes
//!   from `mass` or `density` (default 1000) with MuJoCo's volume and inertia formulas, or from
//!   `<inertial>` (`mass`, `diaginertia` or `fullinertia`) following `<compiler
//!   inertiafromgeom>`.
//! * The ground: backdrive's ground is always the plane z = 0. A `plane` geom on the world
//!   body at z = 0 facing up is that ground; any other plane is unsupported. When the model
//!   has no such plane nothing collides in MuJoCo, so no shape is created. A geom gets a
//!   backdrive contact shape only if its `contype`/`conaffinity` let it collide with the
//!   plane. MuJoCo's contact margin (`margin` minus `gap`, summed over the geom and the plane,
//!   as MuJoCo 3 and 4 combine them) makes bodies rest that far above the ground; backdrive has
//!   no margin, so contact shapes are inflated by it (spheres and capsules exactly, boxes by
//!   their half sizes). The body's friction is the largest sliding friction of its geoms
//!   combined with the plane's (MuJoCo takes the maximum); `condim="1"` means frictionless.
//! * Contacts between robot bodies do not exist in backdrive (self-collision off), so
//!   `<contact><exclude>` is always satisfied; a warning lists geom pairs that MuJoCo would
//!   let collide.
//! * `<option timestep gravity>` set `settings.dt` and `settings.gravity`; `<flag
//!   gravity="disable" contact="disable" limit="disable"/>` are honoured. Backdrive always
//!   integrates with semi-implicit Euler (MuJoCo's `Euler`); another `integrator` is a warning.
//! * `<motor joint gear ctrlrange ctrllimited forcerange forcelimited>` becomes a backdrive
//!   `force` actuator with `max_force = |gear| * max|ctrlrange|` (further bounded by
//!   `forcerange`). **Command scaling:** a backdrive force command is the joint torque (N m)
//!   or force (N) itself, whereas MuJoCo multiplies `ctrl` by `gear`: send `gear * ctrl`
//!   ([`MjcfImport::gears`] lists the gears in actuator order).
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
//! settings whose effect backdrive models differently (`integrator`, geom `solref` / `solimp`
//! / `priority`, joint `solreflimit` / `solimplimit` / `margin`, `condim` 4 and 6, ball-joint
//! cones, self-collision between bodies) are ignored or approximated with a [`Warning`]
//! naming the element and its line. Backdrive's joints and contacts are soft constraints
//! (`settings.joint_frequency`, `contact_frequency`); the importer keeps backdrive's defaults. Features whose absence
//! would silently change the physics — joint `damping`, `armature`, `stiffness`,
//! `frictionloss`; tendons, equality constraints, actuators other than `motor`, fluid forces,
//! mocap bodies, static obstacles other than the ground plane, cylinder and ellipsoid contact
//! shapes, meshes — are errors naming the element and line, unless
//! [`MjcfOptions::ignore_unsupported`] is set, in which case they are dropped with a warning.
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

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use glam::{DMat3, DQuat, DVec3};
use roxmltree::{Document, Node};

use crate::error::{Error, FieldPath, ModelError, PathSegment, Result};
use crate::model::{
    Actuator, ActuatorKind, Body, Joint, JointKind, Model, Settings, Shape, ShapeKind,
};
use crate::sim::BodyState;

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
}

impl Default for MjcfOptions {
    fn default() -> Self {
        MjcfOptions {
            ignore_unsupported: false,
            merge_fixed_bodies: true,
            intermediate_mass_fraction: 0.2,
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
    let file = file.map(Path::to_path_buf);
    let doc = Document::parse(text).map_err(|e| {
        // roxmltree gives the end of the stream no position (it says 1:1): the file ends
        // before the document does, so the last line is where it was cut.
        let (line, message) = match e {
            roxmltree::Error::UnexpectedEndOfStream => (
                text.lines().count().max(1),
                "malformed XML: the file ends before the document does (truncated?)".to_string(),
            ),
            _ => (e.pos().row as usize, format!("malformed XML: {e}")),
        };
        Error::from(ModelError {
            file: file.clone(),
            line: Some(line),
            field: FieldPath::default(),
            message,
        })
    })?;
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
        newlines: text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect(),
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
    if let Some(first) = diag.unsupported.first()
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
    warnings.sort_by_key(|w| w.line);
    Ok(MjcfImport { warnings, ..import })
}

// ---------------------------------------------------------------------------------------------
// Diagnostics and attribute access

#[derive(Default)]
struct Diagnostics {
    warnings: Vec<Warning>,
    unsupported: Vec<Warning>,
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
    /// Byte offset of every newline in the text: a line number is a binary search, where
    /// roxmltree's `text_pos_at` rescans the text from its start (quadratic over a file).
    newlines: Vec<usize>,
}

/// An attribute value with where it came from.
#[derive(Clone)]
struct Val {
    text: String,
    line: usize,
    /// Name of the attribute and, when it came from a default class, that class.
    name: String,
    class: Option<String>,
}

impl Val {
    fn origin(&self) -> String {
        match &self.class {
            Some(c) => format!(" (from default class '{c}', line {})", self.line),
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

impl<'a, 'input> Ctx<'a, 'input> {
    /// 1-based line of a byte offset.
    fn row(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset) + 1
    }

    fn line(&self, node: Node) -> usize {
        self.row(node.range().start)
    }

    fn attr_line(&self, node: Node, name: &str) -> usize {
        node.attribute_node(name)
            .map(|a| self.row(a.range().start))
            .unwrap_or_else(|| self.line(node))
    }

    fn error(&self, line: usize, field: &str, message: impl Into<String>) -> Error {
        Error::from(ModelError {
            file: self.file.clone(),
            line: Some(line),
            field: FieldPath::key(field),
            message: message.into(),
        })
    }

    fn diagnostic(&self, line: usize, element: &str, message: impl Into<String>) -> Warning {
        Warning {
            file: self.file.clone(),
            line,
            element: element.to_string(),
            message: message.into(),
        }
    }

    fn warn(&self, line: usize, element: &str, message: impl Into<String>) {
        let w = self.diagnostic(line, element, message);
        self.diag.borrow_mut().warnings.push(w);
    }

    /// A feature whose absence changes the physics: an error unless ignored.
    fn unsupported(&self, line: usize, element: &str, message: impl Into<String>) {
        let w = self.diagnostic(line, element, message);
        self.diag.borrow_mut().unsupported.push(w);
    }

    fn el(
        &self,
        node: Node<'a, 'input>,
        tag: Option<&'static str>,
        class: Option<&'a str>,
    ) -> El<'a, 'input> {
        El { node, tag, class }
    }

    /// The value of an attribute: the element's own, else its default class's.
    fn get(&self, el: &El, name: &str) -> Result<Option<Val>> {
        if let Some(a) = el.node.attribute_node(name) {
            return Ok(Some(Val {
                text: a.value().to_string(),
                line: self.row(a.range().start),
                name: name.to_string(),
                class: None,
            }));
        }
        let Some(tag) = el.tag else { return Ok(None) };
        let class = match el.node.attribute("class") {
            Some(c) => c,
            None => el.class.unwrap_or("main"),
        };
        let Some(attrs) = self.defaults.get(class) else {
            if class == "main" {
                return Ok(None);
            }
            return Err(self.error(
                self.attr_line(el.node, "class"),
                &format!("{}.class", el.node.tag_name().name()),
                format!("unknown default class '{class}'"),
            ));
        };
        Ok(attrs
            .get(tag)
            .and_then(|m| m.get(name))
            .map(|(v, line)| Val {
                text: v.clone(),
                line: *line,
                name: name.to_string(),
                class: Some(class.to_string()),
            }))
    }

    fn field(&self, el: &El, v: &Val) -> String {
        format!("{}.{}", el.node.tag_name().name(), v.name)
    }

    fn nums(&self, el: &El, v: &Val) -> Result<Vec<f64>> {
        v.text
            .split_ascii_whitespace()
            .map(|s| match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(self.error(
                    v.line,
                    &self.field(el, v),
                    format!("expected a finite number, found '{s}'{}", v.origin()),
                )),
            })
            .collect()
    }

    /// Exactly `n` numbers.
    fn fixed<const N: usize>(&self, el: &El, v: &Val) -> Result<[f64; N]> {
        let xs = self.nums(el, v)?;
        xs.as_slice().try_into().map_err(|_| {
            self.error(
                v.line,
                &self.field(el, v),
                format!("expected {N} numbers, found {}{}", xs.len(), v.origin()),
            )
        })
    }

    fn num(&self, el: &El, name: &str) -> Result<Option<f64>> {
        match self.get(el, name)? {
            Some(v) => Ok(Some(self.fixed::<1>(el, &v)?[0])),
            None => Ok(None),
        }
    }

    fn vec3(&self, el: &El, name: &str) -> Result<Option<DVec3>> {
        match self.get(el, name)? {
            Some(v) => Ok(Some(DVec3::from_array(self.fixed::<3>(el, &v)?))),
            None => Ok(None),
        }
    }

    fn int(&self, el: &El, name: &str) -> Result<Option<i64>> {
        match self.get(el, name)? {
            Some(v) => v.text.trim().parse::<i64>().map(Some).map_err(|_| {
                self.error(
                    v.line,
                    &self.field(el, &v),
                    format!("expected an integer, found '{}'{}", v.text, v.origin()),
                )
            }),
            None => Ok(None),
        }
    }

    /// `true` / `false` / `auto` (as `None`).
    fn tristate(&self, el: &El, name: &str) -> Result<Option<bool>> {
        match self.get(el, name)? {
            None => Ok(None),
            Some(v) => match v.text.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "auto" => Ok(None),
                other => Err(self.error(
                    v.line,
                    &self.field(el, &v),
                    format!(
                        "expected true, false or auto, found '{other}'{}",
                        v.origin()
                    ),
                )),
            },
        }
    }

    fn angle(&self, x: f64) -> f64 {
        if self.degrees { x.to_radians() } else { x }
    }

    /// Checks the element's own attributes: `known` are handled by the caller, `silent` are
    /// ignored without a word, anything else is a warning.
    fn check_attrs(&self, node: Node, known: &[&str], silent: &[&str]) {
        for a in node.attributes() {
            let n = a.name();
            if !known.contains(&n) && !silent.contains(&n) {
                self.warn(
                    self.row(a.range().start),
                    node.tag_name().name(),
                    format!("attribute '{n}' is not supported and was ignored"),
                );
            }
        }
    }

    /// Orientation from `quat`, `axisangle`, `euler`, `xyaxes` or `zaxis` (at most one).
    fn orientation(&self, el: &El) -> Result<DQuat> {
        let mut found: Option<(Val, DQuat)> = None;
        for name in ["quat", "axisangle", "euler", "xyaxes", "zaxis"] {
            let Some(v) = self.get(el, name)? else {
                continue;
            };
            let q = match name {
                "quat" => {
                    let [w, x, y, z] = self.fixed::<4>(el, &v)?;
                    let q = DQuat::from_xyzw(x, y, z, w);
                    if q.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero quaternion"));
                    }
                    q.normalize()
                }
                "axisangle" => {
                    let [x, y, z, a] = self.fixed::<4>(el, &v)?;
                    let axis = DVec3::new(x, y, z);
                    if axis.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero axis"));
                    }
                    DQuat::from_axis_angle(axis.normalize(), self.angle(a))
                }
                "euler" => {
                    let e = self.fixed::<3>(el, &v)?;
                    let mut q = DQuat::IDENTITY;
                    for (k, c) in self.eulerseq.iter().enumerate() {
                        let axis = match c.to_ascii_lowercase() {
                            b'x' => DVec3::X,
                            b'y' => DVec3::Y,
                            _ => DVec3::Z,
                        };
                        let r = DQuat::from_axis_angle(axis, self.angle(e[k]));
                        q = if c.is_ascii_lowercase() { q * r } else { r * q };
                    }
                    q
                }
                "xyaxes" => {
                    let a = self.fixed::<6>(el, &v)?;
                    let x = DVec3::new(a[0], a[1], a[2]);
                    let y = DVec3::new(a[3], a[4], a[5]);
                    let bad = || self.error(v.line, &self.field(el, &v), "degenerate axes");
                    if x.length() < 1e-10 {
                        return Err(bad());
                    }
                    let x = x.normalize();
                    let y = y - x * x.dot(y);
                    if y.length() < 1e-10 {
                        return Err(bad());
                    }
                    let y = y.normalize();
                    DQuat::from_mat3(&DMat3::from_cols(x, y, x.cross(y))).normalize()
                }
                _ => {
                    let z = DVec3::from_array(self.fixed::<3>(el, &v)?);
                    if z.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero axis"));
                    }
                    DQuat::from_rotation_arc(DVec3::Z, z.normalize())
                }
            };
            if let Some((prev, _)) = &found {
                if prev.class.is_none() || v.class.is_some() {
                    return Err(self.error(
                        v.line,
                        &self.field(el, &v),
                        format!("orientation given twice ('{}' and '{}')", prev.name, v.name),
                    ));
                }
                // The element's own orientation overrides one from its default class.
                continue;
            }
            found = Some((v, q));
        }
        Ok(found.map(|(_, q)| q).unwrap_or(DQuat::IDENTITY))
    }
}

// ---------------------------------------------------------------------------------------------
// Intermediate representation

/// Mass, centre of mass and inertia tensor about the centre of mass, in world coordinates.
#[derive(Clone, Copy, Debug)]
struct MassPart {
    mass: f64,
    com: DVec3,
    inertia: DMat3,
}

fn combine(parts: &[MassPart]) -> Option<MassPart> {
    let mass: f64 = parts.iter().map(|p| p.mass).sum();
    if mass <= 0.0 || !mass.is_finite() {
        return None;
    }
    let com = parts.iter().map(|p| p.com * p.mass).sum::<DVec3>() / mass;
    let mut inertia = DMat3::ZERO;
    for p in parts {
        let d = p.com - com;
        let shift = DMat3::from_diagonal(DVec3::splat(d.length_squared()))
            - DMat3::from_cols(d * d.x, d * d.y, d * d.z);
        inertia += p.inertia + shift * p.mass;
    }
    Some(MassPart { mass, com, inertia })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum JKind {
    Hinge,
    Slide,
    Ball,
}

#[derive(Clone, Debug)]
struct MjJoint {
    name: String,
    kind: JKind,
    anchor: DVec3,
    axis: DVec3,
    limits: Option<[f64; 2]>,
}

#[derive(Clone, Debug)]
struct MjShape {
    kind: ShapeKind,
    /// World pose of the shape's centre.
    pos: DVec3,
    rot: DQuat,
}

#[derive(Clone, Debug)]
struct GeomInfo {
    name: String,
    contype: i64,
    conaffinity: i64,
}

#[derive(Clone, Debug)]
struct MjBody {
    name: String,
    line: usize,
    /// Index of the parent MJCF body; `None` for the world body.
    parent: Option<usize>,
    pos: DVec3,
    rot: DQuat,
    joints: Vec<MjJoint>,
    free: bool,
    geom_mass: Vec<MassPart>,
    inertial: Option<MassPart>,
    shapes: Vec<MjShape>,
    /// Largest sliding friction of the geoms that touch the ground (None: frictionless).
    friction: Option<f64>,
    geoms: Vec<GeomInfo>,
}

/// A geom as parsed, before deciding whether it touches the ground.
struct Geom {
    line: usize,
    kind: GeomType,
    pos: DVec3,
    rot: DQuat,
    size: Vec<f64>,
    mass: f64,
    inertia: DVec3,
    friction: f64,
    condim: i64,
    contype: i64,
    conaffinity: i64,
    margin: f64,
    gap: f64,
    name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum GeomType {
    Plane,
    Sphere,
    Capsule,
    Box,
    Cylinder,
    Ellipsoid,
}

struct Floor {
    friction: f64,
    contype: i64,
    conaffinity: i64,
    margin: f64,
    gap: f64,
}

struct World {
    bodies: Vec<MjBody>,
    floor: Option<Floor>,
    /// Geoms parsed, to be turned into shapes once the floor is known: (body, geom).
    geoms: Vec<(usize, Geom)>,
    excludes: HashSet<(String, String)>,
    free_joints: HashSet<String>,
    /// Names of the bodies so far (duplicates are refused).
    body_names: HashSet<String>,
    /// Names given to joints so far, free joints included (duplicates are refused).
    joint_names: HashSet<String>,
    gravity_off: bool,
    contact_off: bool,
    limit_off: bool,
}

const BODY_KNOWN: &[&str] = &[
    "name",
    "childclass",
    "pos",
    "quat",
    "euler",
    "axisangle",
    "xyaxes",
    "zaxis",
    "mocap",
    "gravcomp",
];
const BODY_SILENT: &[&str] = &["user"];
const GEOM_KNOWN: &[&str] = &[
    "name",
    "class",
    "type",
    "size",
    "fromto",
    "pos",
    "quat",
    "euler",
    "axisangle",
    "xyaxes",
    "zaxis",
    "density",
    "mass",
    "friction",
    "condim",
    "contype",
    "conaffinity",
    "margin",
    "gap",
    "solref",
    "solimp",
    "solmix",
    "priority",
    "shellinertia",
    "mesh",
    "hfield",
    "fluidshape",
    "fluidcoef",
];
const GEOM_SILENT: &[&str] = &["rgba", "material", "group", "user", "fitscale"];
const JOINT_KNOWN: &[&str] = &[
    "name",
    "class",
    "type",
    "pos",
    "axis",
    "range",
    "limited",
    "ref",
    "springref",
    "stiffness",
    "damping",
    "armature",
    "frictionloss",
    "margin",
    "solreflimit",
    "solimplimit",
    "solreffriction",
    "solimpfriction",
    "actuatorfrclimited",
    "actuatorfrcrange",
    "actuatorgravcomp",
    "springdamper",
];
const JOINT_SILENT: &[&str] = &["group", "user"];

impl<'a, 'input> Ctx<'a, 'input> {
    fn run(&mut self) -> Result<MjcfImport> {
        let root = self.doc.root_element();
        if root.tag_name().name() != "mujoco" {
            return Err(self.error(
                self.line(root),
                root.tag_name().name(),
                format!(
                    "expected the root element <mujoco>, found <{}>",
                    root.tag_name().name()
                ),
            ));
        }
        self.check_attrs(root, &["model"], &[]);
        let name = match (root.attribute("model"), &self.file) {
            (Some(m), _) if !m.is_empty() => m.to_string(),
            (_, Some(f)) => f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mjcf".to_string()),
            _ => "mjcf".to_string(),
        };

        // Compiler settings and default classes first: they affect everything else.
        for c in root.children().filter(|n| n.is_element()) {
            match c.tag_name().name() {
                "compiler" => self.compiler(c)?,
                "default" => self.default_class(c, None, &ClassAttrs::new(), 0)?,
                _ => {}
            }
        }

        let mut settings = Settings {
            dt: 0.002,
            ..Settings::default()
        };
        let mut world = World {
            bodies: Vec::new(),
            floor: None,
            geoms: Vec::new(),
            excludes: HashSet::new(),
            free_joints: HashSet::new(),
            body_names: HashSet::new(),
            joint_names: HashSet::new(),
            gravity_off: false,
            contact_off: false,
            limit_off: false,
        };
        let mut worldbody_seen = false;
        for c in root.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            match tag {
                "compiler" | "default" => {}
                "option" => self.option(c, &mut settings, &mut world)?,
                "worldbody" => {
                    if worldbody_seen {
                        self.warn(
                            self.line(c),
                            tag,
                            "a second <worldbody>: its content is merged",
                        );
                    }
                    worldbody_seen = true;
                    self.children(c, None, DVec3::ZERO, DQuat::IDENTITY, None, &mut world, 0)?;
                }
                "contact" => self.contact(c, &mut world),
                "asset" | "visual" | "statistic" | "size" | "custom" | "extension" => {}
                "sensor" | "keyframe" => self.warn(
                    self.line(c),
                    tag,
                    format!("<{tag}> is not supported and was ignored"),
                ),
                "actuator" | "tendon" | "equality" | "deformable" => {}
                "include" => self.unsupported(
                    self.line(c),
                    tag,
                    "<include> is not supported: merge the included file into this one",
                ),
                other => self.warn(
                    self.line(c),
                    other,
                    format!("unknown element <{other}> was ignored"),
                ),
            }
        }
        if !worldbody_seen {
            return Err(self.error(self.line(root), "mujoco", "the model has no <worldbody>"));
        }

        // Second pass over the other top-level sections, now that joints exist.
        let mut actuator_nodes = Vec::new();
        for c in root.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            match tag {
                "actuator" => actuator_nodes.push(c),
                "tendon" | "equality" | "deformable" if c.children().any(|n| n.is_element()) => {
                    self.unsupported(
                        self.line(c),
                        tag,
                        format!("<{tag}> is not supported (its constraints were dropped)"),
                    );
                }
                _ => {}
            }
        }

        if world.gravity_off {
            settings.gravity = [0.0; 3];
        }
        let built = self.build(&world, &name, settings)?;
        let (mut model, frames, joint_map) = built;
        let mut gears = Vec::new();
        // Names taken so far, across every <actuator> section (a scan per motor is quadratic).
        let mut actuator_names = HashSet::new();
        for a in actuator_nodes {
            self.actuators(
                a,
                &world,
                &joint_map,
                &mut model,
                &mut gears,
                &mut actuator_names,
            )?;
        }
        model.validate().map_err(|e| match e {
            Error::Model(m) => Error::from(self.locate_invalid(&model, &frames, &m)),
            other => other,
        })?;
        Ok(MjcfImport {
            model,
            warnings: Vec::new(),
            frames,
            gears,
        })
    }

    fn compiler(&mut self, node: Node) -> Result<()> {
        self.check_attrs(
            node,
            &[
                "angle",
                "inertiafromgeom",
                "coordinate",
                "eulerseq",
                "autolimits",
                "boundmass",
                "boundinertia",
                "settotalmass",
                "balanceinertia",
                "inertiagrouprange",
            ],
            &[
                "meshdir",
                "texturedir",
                "assetdir",
                "strippath",
                "discardvisual",
                "fusestatic",
                "convexhull",
                "usethread",
                "exactmeshinertia",
                "alignfree",
                "fitaabb",
                "saveinertial",
            ],
        );
        let el = self.el(node, None, None);
        if let Some(v) = self.get(&el, "angle")? {
            self.degrees = match v.text.trim() {
                "degree" => true,
                "radian" => false,
                other => {
                    return Err(self.error(
                        v.line,
                        "compiler.angle",
                        format!("expected degree or radian, found '{other}'"),
                    ));
                }
            };
        }
        if let Some(v) = self.get(&el, "inertiafromgeom")? {
            self.inertia_from_geom = match v.text.trim() {
                "true" => InertiaFromGeom::True,
                "false" => InertiaFromGeom::False,
                "auto" => InertiaFromGeom::Auto,
                other => {
                    return Err(self.error(
                        v.line,
                        "compiler.inertiafromgeom",
                        format!("expected true, false or auto, found '{other}'"),
                    ));
                }
            };
        }
        if let Some(v) = self.get(&el, "coordinate")?
            && v.text.trim() != "local"
        {
            return Err(self.error(
                v.line,
                "compiler.coordinate",
                format!(
                    "only coordinate=\"local\" is supported (MuJoCo removed \"global\"), found '{}'",
                    v.text
                ),
            ));
        }
        if let Some(v) = self.get(&el, "eulerseq")? {
            let s = v.text.trim().as_bytes();
            if s.len() != 3 || !s.iter().all(|c| b"xyzXYZ".contains(c)) {
                return Err(self.error(
                    v.line,
                    "compiler.eulerseq",
                    format!("expected three of x, y, z, X, Y, Z, found '{}'", v.text),
                ));
            }
            self.eulerseq = [s[0], s[1], s[2]];
        }
        if let Some(v) = self.tristate(&el, "autolimits")? {
            self.autolimits = v;
        }
        if let Some(m) = self.num(&el, "boundmass")? {
            self.bound_mass = m.max(0.0);
        }
        if let Some(i) = self.num(&el, "boundinertia")? {
            self.bound_inertia = i.max(0.0);
        }
        if let Some(m) = self.num(&el, "settotalmass")?
            && m > 0.0
        {
            self.set_total_mass = Some(m);
        }
        if let Some(v) = self.get(&el, "balanceinertia")?
            && v.text.trim() == "true"
        {
            self.warn(
                v.line,
                "compiler",
                "balanceinertia is not supported and was ignored",
            );
        }
        if let Some(v) = self.get(&el, "inertiagrouprange")? {
            self.warn(
                v.line,
                "compiler",
                "inertiagrouprange is not supported: every geom contributes mass",
            );
        }
        Ok(())
    }

    fn default_class(
        &mut self,
        node: Node,
        parent: Option<&str>,
        inherited: &ClassAttrs,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                self.line(node),
                "default",
                "default classes nested too deeply",
            ));
        }
        self.check_attrs(node, &["class"], &[]);
        let name = match (node.attribute("class"), parent) {
            (Some(c), _) => c.to_string(),
            (None, None) => "main".to_string(),
            (None, Some(_)) => {
                return Err(self.error(
                    self.line(node),
                    "default.class",
                    "a nested <default> needs a class name",
                ));
            }
        };
        if self.defaults.contains_key(&name) {
            return Err(self.error(
                self.attr_line(node, "class"),
                "default.class",
                format!("default class '{name}' is defined twice"),
            ));
        }
        let mut attrs = inherited.clone();
        for c in node.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            let key = match tag {
                "default" => continue,
                "motor" | "general" | "position" | "velocity" | "intvelocity" | "damper"
                | "cylinder" | "muscle" | "adhesion" => "actuator",
                other => other,
            };
            let entry = attrs.entry(key.to_string()).or_default();
            for a in c.attributes() {
                let line = self.row(a.range().start);
                entry.insert(a.name().to_string(), (a.value().to_string(), line));
            }
        }
        self.defaults.insert(name.clone(), attrs.clone());
        for c in node
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "default")
        {
            self.default_class(c, Some(&name), &attrs, depth + 1)?;
        }
        Ok(())
    }

    fn option(&mut self, node: Node, settings: &mut Settings, world: &mut World) -> Result<()> {
        self.check_attrs(
            node,
            &[
                "timestep",
                "gravity",
                "integrator",
                "density",
                "viscosity",
                "wind",
                "o_margin",
                "o_solref",
                "o_solimp",
                "o_friction",
            ],
            &[
                "impratio",
                "tolerance",
                "ls_tolerance",
                "noslip_tolerance",
                "ccd_tolerance",
                "magnetic",
                "cone",
                "jacobian",
                "solver",
                "iterations",
                "ls_iterations",
                "noslip_iterations",
                "ccd_iterations",
                "sdf_iterations",
                "sdf_initpoints",
                "actuatorgroupdisable",
                "apirate",
                "collision",
                "mpr_tolerance",
                "mpr_iterations",
                "sleep_tolerance",
            ],
        );
        let el = self.el(node, None, None);
        if let Some(dt) = self.num(&el, "timestep")? {
            if dt <= 0.0 {
                return Err(self.error(
                    self.attr_line(node, "timestep"),
                    "option.timestep",
                    format!("expected a positive time step, found {dt}"),
                ));
            }
            settings.dt = dt as f32;
        }
        if let Some(g) = self.vec3(&el, "gravity")? {
            settings.gravity = g.as_vec3().to_array();
        }
        if let Some(v) = self.get(&el, "integrator")?
            && v.text.trim() != "Euler"
        {
            self.warn(
                v.line,
                "option",
                format!(
                    "integrator '{}' is not available: backdrive integrates with \
                     semi-implicit Euler (MuJoCo's Euler)",
                    v.text
                ),
            );
        }
        for name in ["density", "viscosity"] {
            if let Some(x) = self.num(&el, name)?
                && x != 0.0
            {
                self.unsupported(
                    self.attr_line(node, name),
                    "option",
                    format!("fluid forces ({name} = {x}) are not supported"),
                );
            }
        }
        if let Some(w) = self.vec3(&el, "wind")?
            && w != DVec3::ZERO
        {
            self.unsupported(
                self.attr_line(node, "wind"),
                "option",
                "wind is not supported",
            );
        }
        for name in ["o_margin", "o_solref", "o_solimp", "o_friction"] {
            if node.attribute(name).is_some() {
                self.warn(
                    self.attr_line(node, name),
                    "option",
                    format!("{name} is not supported and was ignored"),
                );
            }
        }
        for c in node.children().filter(|n| n.is_element()) {
            if c.tag_name().name() != "flag" {
                self.warn(
                    self.line(c),
                    c.tag_name().name(),
                    "unknown element inside <option> was ignored",
                );
                continue;
            }
            for a in c.attributes() {
                let line = self.row(a.range().start);
                let on = match a.value().trim() {
                    "enable" => true,
                    "disable" => false,
                    other => {
                        return Err(self.error(
                            line,
                            &format!("flag.{}", a.name()),
                            format!("expected enable or disable, found '{other}'"),
                        ));
                    }
                };
                match (a.name(), on) {
                    ("gravity", false) => world.gravity_off = true,
                    ("contact", false) => world.contact_off = true,
                    ("limit", false) => world.limit_off = true,
                    ("constraint", false) => {
                        world.contact_off = true;
                        world.limit_off = true;
                        self.warn(
                            line,
                            "flag",
                            "constraint=\"disable\": contacts and limits are off, but \
                             backdrive's joints remain (they are constraints in maximal \
                             coordinates)",
                        );
                    }
                    (
                        "warmstart" | "filterparent" | "actuation" | "refsafe" | "sensor"
                        | "midphase" | "eulerdamp" | "autoreset" | "nativeccd" | "island"
                        | "override" | "energy" | "fwdinv" | "invdiscrete" | "multiccd"
                        | "equality" | "frictionloss" | "passive" | "clampctrl" | "spring"
                        | "damper" | "sleep",
                        _,
                    ) => {}
                    (other, _) => self.warn(
                        line,
                        "flag",
                        format!("flag '{other}' is not supported and was ignored"),
                    ),
                }
            }
        }
        Ok(())
    }

    fn contact(&mut self, node: Node, world: &mut World) {
        for c in node.children().filter(|n| n.is_element()) {
            match c.tag_name().name() {
                "exclude" => {
                    self.check_attrs(c, &["body1", "body2"], &["name"]);
                    let (Some(a), Some(b)) = (c.attribute("body1"), c.attribute("body2")) else {
                        self.warn(self.line(c), "exclude", "needs body1 and body2; ignored");
                        continue;
                    };
                    world.excludes.insert((a.to_string(), b.to_string()));
                    world.excludes.insert((b.to_string(), a.to_string()));
                }
                "pair" => self.unsupported(
                    self.line(c),
                    "pair",
                    "explicit contact pairs are not supported: backdrive bodies only touch \
                     the ground",
                ),
                other => self.warn(
                    self.line(c),
                    other,
                    format!("unknown element <{other}> inside <contact> was ignored"),
                ),
            }
        }
    }

    /// Children of the world body (`body == None`), a body, or a frame.
    #[allow(clippy::too_many_arguments)]
    fn children(
        &mut self,
        node: Node<'a, 'input>,
        body: Option<usize>,
        pos: DVec3,
        rot: DQuat,
        childclass: Option<&'a str>,
        world: &mut World,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error(self.line(node), "body", "bodies nested too deeply"));
        }
        for c in node.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            match tag {
                "body" => self.body(c, body, pos, rot, childclass, world, depth + 1)?,
                "frame" => {
                    self.check_attrs(
                        c,
                        &[
                            "childclass",
                            "pos",
                            "quat",
                            "euler",
                            "axisangle",
                            "xyaxes",
                            "zaxis",
                        ],
                        &["name"],
                    );
                    let el = self.el(c, None, None);
                    let p = self.vec3(&el, "pos")?.unwrap_or(DVec3::ZERO);
                    let q = self.orientation(&el)?;
                    let cc = c.attribute("childclass").or(childclass);
                    self.check_class(c, cc)?;
                    self.children(c, body, pos + rot * p, rot * q, cc, world, depth + 1)?;
                }
                "geom" => {
                    let el = self.el(c, Some("geom"), childclass);
                    let g = self.geom(&el, pos, rot)?;
                    if let Some(g) = g {
                        match body {
                            Some(b) => world.geoms.push((b, g)),
                            None => self.world_geom(g, world),
                        }
                    }
                }
                "joint" | "freejoint" | "inertial" => {
                    if body.is_none() {
                        return Err(self.error(
                            self.line(c),
                            tag,
                            format!("<{tag}> is not allowed in <worldbody>"),
                        ));
                    }
                    // Handled by `body`.
                }
                "site" | "camera" | "light" | "plugin" | "attach" => {}
                "composite" | "flexcomp" | "replicate" | "skin" => self.unsupported(
                    self.line(c),
                    tag,
                    format!("<{tag}> is not supported (it was dropped)"),
                ),
                other => self.warn(
                    self.line(c),
                    other,
                    format!("unknown element <{other}> was ignored"),
                ),
            }
        }
        Ok(())
    }

    fn check_class(&self, node: Node, class: Option<&str>) -> Result<()> {
        if let Some(c) = class
            && c != "main"
            && !self.defaults.contains_key(c)
        {
            return Err(self.error(
                self.line(node),
                &format!("{}.childclass", node.tag_name().name()),
                format!("unknown default class '{c}'"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn body(
        &mut self,
        node: Node<'a, 'input>,
        parent: Option<usize>,
        ppos: DVec3,
        prot: DQuat,
        childclass: Option<&'a str>,
        world: &mut World,
        depth: usize,
    ) -> Result<()> {
        self.check_attrs(node, BODY_KNOWN, BODY_SILENT);
        let line = self.line(node);
        let index = world.bodies.len();
        let name = match node.attribute("name") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("body{}", index + 1),
        };
        if !world.body_names.insert(name.clone()) {
            return Err(self.error(
                self.attr_line(node, "name"),
                "body.name",
                format!("duplicate body name '{name}'"),
            ));
        }
        let childclass = node.attribute("childclass").or(childclass);
        self.check_class(node, childclass)?;
        let el = self.el(node, None, None);
        let pos = ppos + prot * self.vec3(&el, "pos")?.unwrap_or(DVec3::ZERO);
        let rot = (prot * self.orientation(&el)?).normalize();
        if self.tristate(&el, "mocap")? == Some(true) {
            self.unsupported(
                line,
                "body",
                format!("mocap body '{name}' is not supported"),
            );
        }
        if let Some(g) = self.num(&el, "gravcomp")?
            && g != 0.0
        {
            self.unsupported(
                self.attr_line(node, "gravcomp"),
                "body",
                format!("gravity compensation on body '{name}' is not supported"),
            );
        }
        world.bodies.push(MjBody {
            name: name.clone(),
            line,
            parent,
            pos,
            rot,
            joints: Vec::new(),
            free: false,
            geom_mass: Vec::new(),
            inertial: None,
            shapes: Vec::new(),
            friction: None,
            geoms: Vec::new(),
        });

        // Joints and inertial first (they do not depend on order), then geoms and children.
        for c in node.children().filter(|n| n.is_element()) {
            match c.tag_name().name() {
                "freejoint" => {
                    self.check_attrs(c, &["name"], &["group", "align"]);
                    self.free_joint(c, parent, index, world)?;
                }
                "joint" => {
                    let el = self.el(c, Some("joint"), childclass);
                    self.joint(&el, index, world)?;
                }
                "inertial" => {
                    if world.bodies[index].inertial.is_some() {
                        return Err(self.error(
                            self.line(c),
                            "inertial",
                            format!("body '{name}' has two <inertial> elements"),
                        ));
                    }
                    let part = self.inertial(c, pos, rot)?;
                    world.bodies[index].inertial = Some(part);
                }
                _ => {}
            }
        }
        self.children(node, Some(index), pos, rot, childclass, world, depth)
    }

    /// Places an error found by validating the imported model at the MJCF element and
    /// attribute the offending value came from. The validator speaks of the backdrive model
    /// (`body[0].position`); the user wrote `<body name="upper" pos="...">`.
    fn locate_invalid(&self, model: &Model, frames: &[BodyFrame], m: &ModelError) -> ModelError {
        let seg = |k: usize| m.field.0.get(k);
        let (table, index, key) = match (seg(0), seg(1), seg(2)) {
            (Some(PathSegment::Key(t)), Some(PathSegment::Index(i)), Some(PathSegment::Key(k))) => {
                (t.as_str(), Some(*i), k.as_str())
            }
            (Some(PathSegment::Key(t)), Some(PathSegment::Key(k)), _) => {
                (t.as_str(), None, k.as_str())
            }
            (Some(PathSegment::Key(t)), _, _) => (t.as_str(), None, ""),
            _ => ("", None, ""),
        };
        let root = self.doc.root_element();
        let named = |tags: &[&str], name: &str| {
            root.descendants()
                .find(|n| tags.contains(&n.tag_name().name()) && n.attribute("name") == Some(name))
        };
        let (node, name, attrs): (Option<Node>, String, &[&str]) = match (table, index) {
            ("settings", _) => (
                root.children().find(|n| n.has_tag_name("option")),
                String::new(),
                match key {
                    "dt" => &["timestep"],
                    "gravity" => &["gravity"],
                    _ => &[],
                },
            ),
            ("body", Some(i)) => {
                let name = model
                    .bodies
                    .get(i)
                    .map(|b| b.name.clone())
                    .unwrap_or_default();
                // A backdrive body is the first MJCF body it carries (merged fixed children
                // follow it); unnamed bodies are `body<N>`, the N-th in file order.
                let mj = frames.iter().position(|f| f.body == Some(i));
                let node = mj.and_then(|k| {
                    named(&["body"], &frames[k].name)
                        .or_else(|| root.descendants().filter(|n| n.has_tag_name("body")).nth(k))
                });
                let attrs: &[&str] = match key {
                    "position" => &["pos"],
                    "orientation" => &["quat", "euler", "axisangle", "xyaxes", "zaxis"],
                    "mass" | "inertia" => &["mass"],
                    "shape" => &["size", "fromto"],
                    _ => &[],
                };
                (node, name, attrs)
            }
            ("joint", Some(i)) => {
                let name = model
                    .joints
                    .get(i)
                    .map(|j| j.name.clone())
                    .unwrap_or_default();
                let attrs: &[&str] = match key {
                    "anchor" => &["pos"],
                    "axis" => &["axis"],
                    "limits" => &["range"],
                    _ => &[],
                };
                (named(&["joint", "freejoint"], &name), name, attrs)
            }
            ("actuator", Some(i)) => {
                let name = model
                    .actuators
                    .get(i)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                let attrs: &[&str] = match key {
                    "max_force" => &["forcerange", "gear", "ctrlrange"],
                    "gain" => &["kp"],
                    "joint" => &["joint"],
                    _ => &[],
                };
                let node = root
                    .children()
                    .filter(|n| n.has_tag_name("actuator"))
                    .flat_map(|a| a.children())
                    .find(|n| n.is_element() && n.attribute("name") == Some(name.as_str()));
                (node, name, attrs)
            }
            _ => (None, String::new(), &[]),
        };
        let node = node.unwrap_or(root);
        let tag = node.tag_name().name();
        let attr = attrs.iter().copied().find(|a| node.attribute(*a).is_some());
        let (line, field) = match attr {
            Some(a) => (self.attr_line(node, a), format!("{tag}.{a}")),
            None => (self.line(node), tag.to_string()),
        };
        let what = if name.is_empty() {
            String::new()
        } else {
            format!("{tag} '{name}': ")
        };
        ModelError {
            file: self.file.clone(),
            line: Some(line),
            field: FieldPath::key(&field),
            message: format!("{what}{} {}", m.field, m.message),
        }
    }

    /// Records a joint's name, refusing one already taken: actuators refer to joints by name.
    fn unique_joint_name(&self, node: Node, name: &str, world: &mut World) -> Result<()> {
        if world.joint_names.insert(name.to_string()) {
            Ok(())
        } else {
            Err(self.error(
                self.attr_line(node, "name"),
                "joint.name",
                format!("duplicate joint name '{name}'"),
            ))
        }
    }

    fn free_joint(
        &mut self,
        node: Node,
        parent: Option<usize>,
        index: usize,
        world: &mut World,
    ) -> Result<()> {
        let b = &world.bodies[index];
        if parent.is_some() {
            return Err(self.error(
                self.line(node),
                "joint.type",
                format!(
                    "a free joint is only allowed on a top-level body, and '{}' is nested",
                    b.name
                ),
            ));
        }
        if b.free || !b.joints.is_empty() {
            return Err(self.error(
                self.line(node),
                "joint.type",
                format!("body '{}' combines a free joint with other joints", b.name),
            ));
        }
        world.bodies[index].free = true;
        if let Some(n) = node.attribute("name") {
            self.unique_joint_name(node, n, world)?;
            world.free_joints.insert(n.to_string());
        }
        Ok(())
    }

    fn joint(&mut self, el: &El<'a, 'input>, index: usize, world: &mut World) -> Result<()> {
        let node = el.node;
        self.check_attrs(node, JOINT_KNOWN, JOINT_SILENT);
        let line = self.line(node);
        let body_name = world.bodies[index].name.clone();
        let name = match node.attribute("name") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{body_name}_joint{}", world.bodies[index].joints.len()),
        };
        // A free joint records its own name (a `<freejoint>` has no type attribute).
        let is_free = matches!(self.get(el, "type")?, Some(v) if v.text.trim() == "free");
        if !is_free {
            self.unique_joint_name(node, &name, world)?;
        }
        let kind = match self.get(el, "type")? {
            None => JKind::Hinge,
            Some(v) => match v.text.trim() {
                "hinge" => JKind::Hinge,
                "slide" => JKind::Slide,
                "ball" => JKind::Ball,
                "free" => {
                    let parent = world.bodies[index].parent;
                    self.free_joint(node, parent, index, world)?;
                    self.joint_physics(el, &name, true)?;
                    return Ok(());
                }
                other => {
                    return Err(self.error(
                        v.line,
                        "joint.type",
                        format!(
                            "unknown joint type '{other}' (expected hinge, slide, ball or free){}",
                            v.origin()
                        ),
                    ));
                }
            },
        };
        if world.bodies[index].free {
            return Err(self.error(
                line,
                "joint.type",
                format!("body '{body_name}' combines a free joint with other joints"),
            ));
        }
        let b = &world.bodies[index];
        let anchor = b.pos + b.rot * self.vec3(el, "pos")?.unwrap_or(DVec3::ZERO);
        let axis_local = self.vec3(el, "axis")?.unwrap_or(DVec3::Z);
        if axis_local.length() < 1e-10 && kind != JKind::Ball {
            return Err(self.error(
                self.attr_line(node, "axis"),
                "joint.axis",
                "expected a non-zero axis",
            ));
        }
        let axis = if kind == JKind::Ball {
            // Backdrive's ball-joint frame: any axis; keep the body's x.
            b.rot * DVec3::X
        } else {
            (b.rot * axis_local).normalize()
        };
        let range = match self.get(el, "range")? {
            Some(v) => {
                let [lo, hi] = self.fixed::<2>(el, &v)?;
                Some((lo, hi, v))
            }
            None => None,
        };
        let limited = match self.tristate(el, "limited")? {
            Some(l) => l,
            None => range.is_some() && self.autolimits,
        };
        let reference = self.num(el, "ref")?.unwrap_or(0.0);
        let limits = match (limited, range) {
            (false, _) => None,
            (true, None) => {
                return Err(self.error(
                    line,
                    "joint.range",
                    format!("joint '{name}' is limited but has no range"),
                ));
            }
            (true, Some((lo, hi, v))) => {
                if lo > hi {
                    return Err(self.error(
                        v.line,
                        "joint.range",
                        format!("expected lower <= upper, found [{lo}, {hi}]{}", v.origin()),
                    ));
                }
                match kind {
                    JKind::Hinge => {
                        let r = self.angle(reference);
                        Some([self.angle(lo) - r, self.angle(hi) - r])
                    }
                    JKind::Slide => Some([lo - reference, hi - reference]),
                    JKind::Ball => {
                        let m = self.angle(lo.abs().max(hi.abs()));
                        self.warn(
                            v.line,
                            "joint",
                            format!(
                                "ball joint '{name}': MuJoCo limits the rotation angle (a \
                                 cone); backdrive limits each rotation-vector component to \
                                 [-{m:.4}, {m:.4}] rad (a box)"
                            ),
                        );
                        Some([-m, m])
                    }
                }
            }
        };
        if reference != 0.0 && kind == JKind::Ball {
            self.warn(
                self.attr_line(node, "ref"),
                "joint",
                "ref on a ball joint is ignored",
            );
        }
        self.joint_physics(el, &name, false)?;
        world.bodies[index].joints.push(MjJoint {
            name,
            kind,
            anchor,
            axis,
            limits,
        });
        Ok(())
    }

    /// Joint attributes that add forces backdrive does not have.
    fn joint_physics(&mut self, el: &El, name: &str, free: bool) -> Result<()> {
        for (attr, what) in [
            ("damping", "viscous joint damping"),
            ("armature", "armature (rotor inertia)"),
            ("stiffness", "joint stiffness (a spring)"),
            ("frictionloss", "dry joint friction (frictionloss)"),
        ] {
            if let Some(v) = self.get(el, attr)? {
                let x = self.fixed::<1>(el, &v)?[0];
                if x != 0.0 {
                    self.unsupported(
                        self.line(el.node),
                        "joint",
                        format!(
                            "joint '{name}': {what} {attr}=\"{}\"{} is not supported",
                            v.text.trim(),
                            v.origin()
                        ),
                    );
                }
            }
        }
        if let Some(v) = self.get(el, "springdamper")? {
            let [a, b] = self.fixed::<2>(el, &v)?;
            if a != 0.0 || b != 0.0 {
                self.unsupported(
                    v.line,
                    "joint",
                    format!("joint '{name}': springdamper is not supported"),
                );
            }
        }
        if free {
            return Ok(());
        }
        if self.tristate(el, "actuatorfrclimited")? == Some(true) {
            self.warn(
                self.attr_line(el.node, "actuatorfrclimited"),
                "joint",
                format!("joint '{name}': actuatorfrcrange is not supported and was ignored"),
            );
        }
        if let Some(v) = self.get(el, "margin")?
            && self.fixed::<1>(el, &v)?[0] != 0.0
        {
            self.warn(
                v.line,
                "joint",
                format!("joint '{name}': limit margin is not supported and was ignored"),
            );
        }
        for attr in ["solreflimit", "solimplimit"] {
            if let Some(v) = self.get(el, attr)?
                && v.class.is_none()
            {
                self.warn(
                    v.line,
                    "joint",
                    format!(
                        "joint '{name}': {attr} is ignored: backdrive limits are soft \
                         with settings.joint_frequency and joint_damping_ratio"
                    ),
                );
            }
        }
        Ok(())
    }

    fn inertial(&mut self, node: Node, bpos: DVec3, brot: DQuat) -> Result<MassPart> {
        self.check_attrs(
            node,
            &[
                "pos",
                "quat",
                "euler",
                "axisangle",
                "xyaxes",
                "zaxis",
                "mass",
                "diaginertia",
                "fullinertia",
            ],
            &[],
        );
        let el = self.el(node, None, None);
        let line = self.line(node);
        let pos = self
            .vec3(&el, "pos")?
            .ok_or_else(|| self.error(line, "inertial.pos", "<inertial> needs a pos"))?;
        let mass = self
            .num(&el, "mass")?
            .ok_or_else(|| self.error(line, "inertial.mass", "<inertial> needs a mass"))?;
        if mass < 0.0 {
            return Err(self.error(
                self.attr_line(node, "mass"),
                "inertial.mass",
                format!("expected a mass >= 0, found {mass}"),
            ));
        }
        let q = self.orientation(&el)?;
        let diag = self.vec3(&el, "diaginertia")?;
        let full = match self.get(&el, "fullinertia")? {
            Some(v) => Some(self.fixed::<6>(&el, &v)?),
            None => None,
        };
        let local = match (diag, full) {
            (Some(d), None) => {
                let r = DMat3::from_quat(q);
                r * DMat3::from_diagonal(d) * r.transpose()
            }
            (None, Some(f)) => {
                if node
                    .attributes()
                    .any(|a| ["quat", "euler", "axisangle", "xyaxes", "zaxis"].contains(&a.name()))
                {
                    return Err(self.error(
                        line,
                        "inertial.fullinertia",
                        "fullinertia cannot be combined with an orientation",
                    ));
                }
                DMat3::from_cols_array(&[f[0], f[3], f[4], f[3], f[1], f[5], f[4], f[5], f[2]])
            }
            (Some(_), Some(_)) => {
                return Err(self.error(
                    line,
                    "inertial",
                    "give diaginertia or fullinertia, not both",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    line,
                    "inertial.diaginertia",
                    "<inertial> needs diaginertia or fullinertia",
                ));
            }
        };
        let (eig, _) = symmetric_eigen(&local);
        if eig
            .iter()
            .any(|&e| e < -1e-12 * eig.iter().map(|e| e.abs()).sum::<f64>())
        {
            return Err(self.error(
                line,
                "inertial",
                format!("the inertia matrix is not positive semi-definite (eigenvalues {eig:?})"),
            ));
        }
        let r = DMat3::from_quat(brot);
        Ok(MassPart {
            mass,
            com: bpos + brot * pos,
            inertia: r * local * r.transpose(),
        })
    }

    /// A geom's pose, size, mass and contact properties (world frame).
    fn geom(&mut self, el: &El, bpos: DVec3, brot: DQuat) -> Result<Option<Geom>> {
        let node = el.node;
        self.check_attrs(node, GEOM_KNOWN, GEOM_SILENT);
        let line = self.line(node);
        let name = node.attribute("name").unwrap_or("").to_string();
        let label = if name.is_empty() {
            format!("geom at line {line}")
        } else {
            format!("geom '{name}'")
        };
        let kind = match self.get(el, "type")? {
            None => GeomType::Sphere,
            Some(v) => match v.text.trim() {
                "plane" => GeomType::Plane,
                "sphere" => GeomType::Sphere,
                "capsule" => GeomType::Capsule,
                "box" => GeomType::Box,
                "cylinder" => GeomType::Cylinder,
                "ellipsoid" => GeomType::Ellipsoid,
                "mesh" | "hfield" | "sdf" => {
                    self.unsupported(
                        v.line,
                        "geom",
                        format!(
                            "{label}: {} geoms are not supported (dropped)",
                            v.text.trim()
                        ),
                    );
                    return Ok(None);
                }
                other => {
                    return Err(self.error(
                        v.line,
                        "geom.type",
                        format!(
                            "unknown geom type '{other}' (expected plane, sphere, capsule, box, \
                             cylinder, ellipsoid, mesh, hfield or sdf){}",
                            v.origin()
                        ),
                    ));
                }
            },
        };
        let size_val = self.get(el, "size")?;
        let mut size = match &size_val {
            Some(v) => self.nums(el, v)?,
            None => Vec::new(),
        };
        let fromto = match self.get(el, "fromto")? {
            Some(v) => Some((self.fixed::<6>(el, &v)?, v)),
            None => None,
        };
        let mut lpos = self.vec3(el, "pos")?.unwrap_or(DVec3::ZERO);
        let mut lrot = self.orientation(el)?;
        if let Some((f, v)) = &fromto {
            if !matches!(
                kind,
                GeomType::Capsule | GeomType::Box | GeomType::Cylinder | GeomType::Ellipsoid
            ) {
                return Err(self.error(
                    v.line,
                    "geom.fromto",
                    format!("{label}: fromto is only allowed on capsule, box, cylinder and ellipsoid geoms"),
                ));
            }
            let a = DVec3::new(f[0], f[1], f[2]);
            let b = DVec3::new(f[3], f[4], f[5]);
            let d = b - a;
            if d.length() < 1e-10 {
                return Err(self.error(
                    v.line,
                    "geom.fromto",
                    format!("{label}: fromto has zero length"),
                ));
            }
            lpos = (a + b) * 0.5;
            lrot = DQuat::from_rotation_arc(DVec3::Z, d.normalize());
            let need = if matches!(kind, GeomType::Capsule | GeomType::Cylinder) {
                1
            } else {
                2
            };
            if size.len() < need {
                return Err(self.error(
                    size_val.as_ref().map(|v| v.line).unwrap_or(line),
                    "geom.size",
                    format!(
                        "{label}: a {} with fromto needs {need} size value(s), found {}",
                        geom_type_name(kind),
                        size.len()
                    ),
                ));
            }
            size.truncate(need);
            size.push(d.length() / 2.0);
        }
        let need = match kind {
            GeomType::Plane => 0,
            GeomType::Sphere => 1,
            GeomType::Capsule | GeomType::Cylinder => 2,
            GeomType::Box | GeomType::Ellipsoid => 3,
        };
        if size.len() < need {
            return Err(self.error(
                size_val.as_ref().map(|v| v.line).unwrap_or(line),
                "geom.size",
                if size_val.is_none() {
                    format!(
                        "{label}: a {} geom needs a size ({need} value(s))",
                        geom_type_name(kind)
                    )
                } else {
                    format!(
                        "{label}: a {} geom needs {need} size value(s), found {}",
                        geom_type_name(kind),
                        size.len()
                    )
                },
            ));
        }
        size.truncate(need.max(if kind == GeomType::Plane { 3 } else { 0 }));
        if kind != GeomType::Plane && size.iter().any(|&s| s <= 0.0) {
            return Err(self.error(
                size_val.as_ref().map(|v| v.line).unwrap_or(line),
                "geom.size",
                format!("{label}: sizes must be positive, found {size:?}"),
            ));
        }

        // Mass and inertia about the geom's centre, in the geom frame.
        let (volume, unit_inertia) = volume_and_inertia(kind, &size);
        let mass = match self.num(el, "mass")? {
            Some(m) => {
                if m < 0.0 {
                    return Err(self.error(
                        self.attr_line(node, "mass"),
                        "geom.mass",
                        format!("{label}: expected a mass >= 0, found {m}"),
                    ));
                }
                m
            }
            None => {
                let density = self.num(el, "density")?.unwrap_or(1000.0);
                if density < 0.0 {
                    return Err(self.error(
                        self.attr_line(node, "density"),
                        "geom.density",
                        format!("{label}: expected a density >= 0, found {density}"),
                    ));
                }
                density * volume
            }
        };
        if self.tristate(el, "shellinertia")? == Some(true) {
            self.unsupported(
                line,
                "geom",
                format!("{label}: shellinertia is not supported"),
            );
        }
        let friction = match self.get(el, "friction")? {
            Some(v) => {
                let f = self.nums(el, &v)?;
                match f.first() {
                    Some(&x) if x >= 0.0 => x,
                    _ => {
                        return Err(self.error(
                            v.line,
                            "geom.friction",
                            format!("{label}: expected 1 to 3 numbers >= 0{}", v.origin()),
                        ));
                    }
                }
            }
            None => 1.0,
        };
        let condim = self.int(el, "condim")?.unwrap_or(3);
        if !matches!(condim, 1 | 3 | 4 | 6) {
            return Err(self.error(
                self.attr_line(node, "condim"),
                "geom.condim",
                format!("{label}: condim must be 1, 3, 4 or 6, found {condim}"),
            ));
        }
        let contype = self.int(el, "contype")?.unwrap_or(1);
        let conaffinity = self.int(el, "conaffinity")?.unwrap_or(1);
        let margin = self.num(el, "margin")?.unwrap_or(0.0);
        let gap = self.num(el, "gap")?.unwrap_or(0.0);
        let collides = contype != 0 || conaffinity != 0;
        if collides {
            if condim > 3 {
                self.warn(
                    self.attr_line(node, "condim"),
                    "geom",
                    format!("{label}: torsional and rolling friction (condim {condim}) are not supported"),
                );
            }
            for attr in ["solref", "solimp", "solmix", "priority"] {
                if node.attribute(attr).is_some() {
                    self.warn(
                        self.attr_line(node, attr),
                        "geom",
                        format!(
                            "{label}: {attr} is ignored: backdrive contacts are soft with \
                             settings.contact_frequency and contact_damping_ratio"
                        ),
                    );
                }
            }
        }
        if let Some(v) = self.get(el, "fluidshape")?
            && v.text.trim() != "none"
        {
            self.warn(
                v.line,
                "geom",
                format!("{label}: fluid forces are not supported"),
            );
        }
        Ok(Some(Geom {
            line,
            kind,
            pos: bpos + brot * lpos,
            rot: (brot * lrot).normalize(),
            size,
            mass,
            inertia: unit_inertia * mass,
            friction,
            condim,
            contype,
            conaffinity,
            margin,
            gap,
            name,
        }))
    }

    fn world_geom(&mut self, g: Geom, world: &mut World) {
        let label = if g.name.is_empty() {
            "a geom".to_string()
        } else {
            format!("geom '{}'", g.name)
        };
        if g.kind == GeomType::Plane {
            let normal = g.rot * DVec3::Z;
            if g.pos.z.abs() > 1e-9 || normal.z < 1.0 - 1e-9 {
                self.unsupported(
                    g.line,
                    "geom",
                    format!(
                        "{label}: only a ground plane at z = 0 facing +z is supported (this \
                         one is at z = {} with normal {:?})",
                        g.pos.z,
                        normal.to_array()
                    ),
                );
                return;
            }
            if world.floor.is_some() {
                self.warn(
                    g.line,
                    "geom",
                    format!("{label}: a second ground plane was ignored"),
                );
                return;
            }
            world.floor = Some(Floor {
                friction: if g.condim == 1 { 0.0 } else { g.friction },
                contype: g.contype,
                conaffinity: g.conaffinity,
                margin: g.margin,
                gap: g.gap,
            });
        } else if g.contype != 0 || g.conaffinity != 0 {
            self.unsupported(
                g.line,
                "geom",
                format!(
                    "{label}: static obstacles are not supported (backdrive's only static \
                     geometry is the ground plane z = 0); it was dropped"
                ),
            );
        }
    }

    fn actuators(
        &mut self,
        node: Node<'a, 'input>,
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        model: &mut Model,
        gears: &mut Vec<f32>,
        actuator_names: &mut HashSet<String>,
    ) -> Result<()> {
        self.check_attrs(node, &[], &[]);
        for c in node.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            let line = self.line(c);
            if tag != "motor" {
                let known = [
                    "general",
                    "position",
                    "velocity",
                    "intvelocity",
                    "damper",
                    "cylinder",
                    "muscle",
                    "adhesion",
                    "plugin",
                ];
                if known.contains(&tag) {
                    self.unsupported(
                        line,
                        tag,
                        format!(
                            "<{tag}> actuators are not supported (only <motor>); it was dropped"
                        ),
                    );
                } else {
                    self.warn(line, tag, format!("unknown actuator <{tag}> was ignored"));
                }
                continue;
            }
            self.check_attrs(
                c,
                &[
                    "name",
                    "class",
                    "joint",
                    "jointinparent",
                    "tendon",
                    "site",
                    "body",
                    "gear",
                    "ctrlrange",
                    "ctrllimited",
                    "forcerange",
                    "forcelimited",
                ],
                &[
                    "group",
                    "user",
                    "actrange",
                    "actlimited",
                    "lengthrange",
                    "actdim",
                ],
            );
            let el = self.el(c, Some("actuator"), None);
            let name = c.attribute("name").map(str::to_string);
            let label = match &name {
                Some(n) => format!("motor '{n}'"),
                None => format!("motor at line {line}"),
            };
            let joint = match c.attribute("joint").or(c.attribute("jointinparent")) {
                Some(j) => j,
                None => {
                    if ["tendon", "site", "body"]
                        .iter()
                        .any(|a| c.attribute(*a).is_some())
                    {
                        self.unsupported(
                            line,
                            "motor",
                            format!("{label}: only joint transmissions are supported; dropped"),
                        );
                        continue;
                    }
                    return Err(self.error(line, "motor.joint", format!("{label} needs a joint")));
                }
            };
            let Some((bd_joint, kind)) = joint_map.get(joint) else {
                if world.free_joints.contains(joint) {
                    self.unsupported(
                        line,
                        "motor",
                        format!(
                            "{label}: a motor on the free joint '{joint}' is not supported; dropped"
                        ),
                    );
                    continue;
                }
                return Err(self.error(
                    self.attr_line(c, "joint"),
                    "motor.joint",
                    format!("{label}: unknown joint '{joint}'"),
                ));
            };
            if *kind == JKind::Ball {
                self.unsupported(
                    line,
                    "motor",
                    format!(
                        "{label}: a motor on the ball joint '{joint}' is not supported; dropped"
                    ),
                );
                continue;
            }
            let gear = match self.get(&el, "gear")? {
                Some(v) => {
                    let g = self.nums(&el, &v)?;
                    if g.is_empty() || g.len() > 6 {
                        return Err(self.error(
                            v.line,
                            "motor.gear",
                            format!("{label}: expected 1 to 6 numbers{}", v.origin()),
                        ));
                    }
                    g[0]
                }
                None => 1.0,
            };
            if gear == 0.0 {
                return Err(self.error(line, "motor.gear", format!("{label}: gear is zero")));
            }
            let range = |attr: &str, limited_attr: &str| -> Result<Option<f64>> {
                let r = match self.get(&el, attr)? {
                    Some(v) => {
                        let [lo, hi] = self.fixed::<2>(&el, &v)?;
                        if lo > hi {
                            return Err(self.error(
                                v.line,
                                &format!("motor.{attr}"),
                                format!("{label}: expected lower <= upper, found [{lo}, {hi}]"),
                            ));
                        }
                        Some(lo.abs().max(hi.abs()))
                    }
                    None => None,
                };
                let limited = match self.tristate(&el, limited_attr)? {
                    Some(l) => l,
                    None => r.is_some() && self.autolimits,
                };
                match (limited, r) {
                    (false, _) => Ok(None),
                    (true, Some(m)) => Ok(Some(m)),
                    (true, None) => Err(self.error(
                        line,
                        &format!("motor.{attr}"),
                        format!("{label}: {limited_attr} is true but {attr} is missing"),
                    )),
                }
            };
            let ctrl = range("ctrlrange", "ctrllimited")?;
            let force = range("forcerange", "forcelimited")?;
            let mut max_force = match ctrl {
                Some(c) => gear.abs() * c,
                None => 1.0e6,
            };
            if let Some(f) = force {
                max_force = max_force.min(f);
            }
            if max_force <= 0.0 {
                self.warn(
                    line,
                    "motor",
                    format!("{label}: zero control or force range; it can exert no force"),
                );
                max_force = 1e-9;
            }
            let base = name.unwrap_or_else(|| format!("{joint}_motor"));
            let mut unique = base.clone();
            let mut k = 1;
            while actuator_names.contains(&unique) {
                unique = format!("{base}_{k}");
                k += 1;
            }
            actuator_names.insert(unique.clone());
            model.actuators.push(Actuator {
                name: unique,
                joint: bd_joint.clone(),
                axis: 0,
                kind: ActuatorKind::Force,
                gain: 0.0,
                max_force: max_force as f32,
                max_velocity: 1.0e3,
            });
            gears.push(gear as f32);
        }
        Ok(())
    }
}

fn geom_type_name(kind: GeomType) -> &'static str {
    match kind {
        GeomType::Plane => "plane",
        GeomType::Sphere => "sphere",
        GeomType::Capsule => "capsule",
        GeomType::Box => "box",
        GeomType::Cylinder => "cylinder",
        GeomType::Ellipsoid => "ellipsoid",
    }
}

/// Volume and principal inertia per unit mass, with MuJoCo's formulas.
fn volume_and_inertia(kind: GeomType, size: &[f64]) -> (f64, DVec3) {
    use std::f64::consts::PI;
    match kind {
        GeomType::Sphere => {
            let r = size[0];
            (4.0 / 3.0 * PI * r.powi(3), DVec3::splat(0.4 * r * r))
        }
        GeomType::Capsule => {
            let (r, h) = (size[0], 2.0 * size[1]);
            let volume = PI * r * r * h + 4.0 / 3.0 * PI * r.powi(3);
            // MuJoCo: a cylinder plus two hemispheres displaced along z.
            let sphere = 4.0 * r / (4.0 * r + 3.0 * h);
            let cyl = 1.0 - sphere;
            let ixy = cyl * (3.0 * r * r + h * h) / 12.0
                + 0.4 * sphere * r * r
                + sphere * h * (3.0 * r + 2.0 * h) / 8.0;
            let iz = cyl * r * r / 2.0 + 0.4 * sphere * r * r;
            (volume, DVec3::new(ixy, ixy, iz))
        }
        GeomType::Cylinder => {
            let (r, h) = (size[0], 2.0 * size[1]);
            let ixy = (3.0 * r * r + h * h) / 12.0;
            (PI * r * r * h, DVec3::new(ixy, ixy, r * r / 2.0))
        }
        GeomType::Box => {
            let (a, b, c) = (size[0], size[1], size[2]);
            (
                8.0 * a * b * c,
                DVec3::new(
                    (b * b + c * c) / 3.0,
                    (a * a + c * c) / 3.0,
                    (a * a + b * b) / 3.0,
                ),
            )
        }
        GeomType::Ellipsoid => {
            let (a, b, c) = (size[0], size[1], size[2]);
            (
                4.0 / 3.0 * PI * a * b * c,
                DVec3::new(
                    (b * b + c * c) / 5.0,
                    (a * a + c * c) / 5.0,
                    (a * a + b * b) / 5.0,
                ),
            )
        }
        GeomType::Plane => (0.0, DVec3::ZERO),
    }
}

/// Eigenvalues and eigenvectors (columns, right-handed) of a symmetric 3x3 matrix, by
/// nalgebra's symmetric eigen-decomposition. The columns are ordered and signed to stay as
/// close as possible to the input's own axes, so a matrix that is nearly diagonal keeps its
/// axis order (and the principal frame barely turns). Bounded work whatever the input: a
/// matrix that is not finite, or that does not converge, gives NaN eigenvalues.
fn symmetric_eigen(m: &DMat3) -> ([f64; 3], DMat3) {
    let nan = ([f64::NAN; 3], DMat3::IDENTITY);
    let cols = m.to_cols_array();
    if !cols.iter().all(|v| v.is_finite()) {
        return nan;
    }
    let matrix = nalgebra::Matrix3::from_column_slice(&cols);
    let Some(eigen) = nalgebra::SymmetricEigen::try_new(matrix, f64::EPSILON, 1000) else {
        return nan;
    };
    let vector = |k: usize| {
        let c = eigen.eigenvectors.column(k);
        DVec3::new(c[0], c[1], c[2])
    };
    // The assignment of eigenvectors to axes x, y, z with the largest diagonal.
    const PERMUTATIONS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let diagonal = |p: &[usize; 3]| -> f64 { (0..3).map(|axis| vector(p[axis])[axis].abs()).sum() };
    let best = PERMUTATIONS
        .iter()
        .copied()
        .max_by(|a, b| diagonal(a).total_cmp(&diagonal(b)))
        .expect("six permutations");
    let mut axes = [DVec3::ZERO; 3];
    let mut values = [0.0; 3];
    for axis in 0..3 {
        let v = vector(best[axis]);
        axes[axis] = if v[axis] < 0.0 { -v } else { v };
        values[axis] = eigen.eigenvalues[best[axis]];
    }
    let mut frame = DMat3::from_cols(axes[0], axes[1], axes[2]);
    if frame.determinant() < 0.0 {
        // Flip the axis least aligned with its own, where the sign is least meaningful.
        let weakest = (0..3)
            .min_by(|&a, &b| axes[a][a].abs().total_cmp(&axes[b][b].abs()))
            .expect("three axes");
        axes[weakest] = -axes[weakest];
        frame = DMat3::from_cols(axes[0], axes[1], axes[2]);
    }
    (values, frame)
}

// ---------------------------------------------------------------------------------------------
// From MJCF bodies to backdrive bodies

/// A backdrive body being assembled: the MJCF bodies merged into it.
struct Group {
    /// The MJCF body that owns the joints (the group's root).
    root: usize,
    members: Vec<usize>,
}

type Built = (Model, Vec<BodyFrame>, HashMap<String, (String, JKind)>);

impl Ctx<'_, '_> {
    fn build(&mut self, world: &World, name: &str, settings: Settings) -> Result<Built> {
        let n = world.bodies.len();
        // Which group (backdrive body) each MJCF body belongs to; None = static (world).
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        let mut groups: Vec<Group> = Vec::new();
        for i in 0..n {
            let b = &world.bodies[i];
            let moving = b.free || !b.joints.is_empty();
            let parent_group = b.parent.and_then(|p| group_of[p]);
            if moving || (parent_group.is_some() && !self.options.merge_fixed_bodies) {
                group_of[i] = Some(groups.len());
                groups.push(Group {
                    root: i,
                    members: vec![i],
                });
            } else if let Some(g) = parent_group {
                group_of[i] = Some(g);
                groups[g].members.push(i);
            }
            // else: static, part of the world.
        }

        // Geoms: mass always, shapes when they can touch the floor.
        let mut bodies: Vec<MjBody> = world.bodies.clone();
        for (b, g) in &world.geoms {
            let body = &mut bodies[*b];
            let r = DMat3::from_quat(g.rot);
            if g.kind == GeomType::Plane {
                self.unsupported(
                    g.line,
                    "geom",
                    format!(
                        "plane geoms are only supported on the world body (as the ground); \
                         the one on body '{}' was dropped",
                        body.name
                    ),
                );
                continue;
            }
            body.geom_mass.push(MassPart {
                mass: g.mass,
                com: g.pos,
                inertia: r * DMat3::from_diagonal(g.inertia) * r.transpose(),
            });
            if g.contype != 0 || g.conaffinity != 0 {
                body.geoms.push(GeomInfo {
                    name: if g.name.is_empty() {
                        format!("line {}", g.line)
                    } else {
                        g.name.clone()
                    },
                    contype: g.contype,
                    conaffinity: g.conaffinity,
                });
            }
            let Some(floor) = &world.floor else { continue };
            if world.contact_off || group_of[*b].is_none() {
                if group_of[*b].is_none() && (g.contype != 0 || g.conaffinity != 0) {
                    self.unsupported(
                        g.line,
                        "geom",
                        format!(
                            "geom on the static body '{}': static obstacles are not supported \
                             (only the ground plane); it was dropped",
                            body.name
                        ),
                    );
                }
                continue;
            }
            let touches =
                (g.contype & floor.conaffinity) != 0 || (floor.contype & g.conaffinity) != 0;
            if !touches {
                continue;
            }
            let inflate = (g.margin + floor.margin) - (g.gap + floor.gap);
            let inflate = inflate.max(0.0);
            let kind = match g.kind {
                GeomType::Sphere => ShapeKind::Sphere {
                    radius: (g.size[0] + inflate) as f32,
                },
                GeomType::Capsule => ShapeKind::Capsule {
                    radius: (g.size[0] + inflate) as f32,
                    half_length: g.size[1] as f32,
                },
                GeomType::Box => ShapeKind::Box {
                    half_extents: [
                        (g.size[0] + inflate) as f32,
                        (g.size[1] + inflate) as f32,
                        (g.size[2] + inflate) as f32,
                    ],
                },
                other => {
                    self.unsupported(
                        g.line,
                        "geom",
                        format!(
                            "{} geoms have no backdrive contact shape: this one keeps its mass \
                             but does not touch the ground",
                            geom_type_name(other)
                        ),
                    );
                    continue;
                }
            };
            body.shapes.push(MjShape {
                kind,
                pos: g.pos,
                rot: g.rot,
            });
            let f = if g.condim == 1 || floor.friction == 0.0 {
                0.0
            } else {
                g.friction.max(floor.friction)
            };
            body.friction = Some(body.friction.map_or(f, |x: f64| x.max(f)));
        }
        self.self_collision_warning(&bodies, world, &group_of);

        // Mass of each MJCF body.
        let mut body_mass: Vec<Option<MassPart>> = Vec::with_capacity(n);
        for b in &bodies {
            let from_geoms = combine(&b.geom_mass);
            let m = match self.inertia_from_geom {
                InertiaFromGeom::True => from_geoms,
                InertiaFromGeom::False => b.inertial,
                InertiaFromGeom::Auto => b.inertial.or(from_geoms),
            };
            let m = m.map(|mut m| {
                if self.bound_mass > 0.0 && m.mass < self.bound_mass {
                    m.mass = self.bound_mass;
                }
                m
            });
            body_mass.push(m);
        }
        if let Some(total) = self.set_total_mass {
            let sum: f64 = body_mass.iter().flatten().map(|m| m.mass).sum();
            if sum > 0.0 {
                let k = total / sum;
                for m in body_mass.iter_mut().flatten() {
                    m.mass *= k;
                    m.inertia *= k;
                }
            }
        }

        let mut model = Model {
            name: name.to_string(),
            settings,
            bodies: Vec::new(),
            joints: Vec::new(),
            actuators: Vec::new(),
        };
        let mut used_names: HashSet<String> = HashSet::new();
        let mut unique = |base: &str| -> String {
            let mut s = base.to_string();
            let mut k = 1;
            while used_names.contains(&s) {
                s = format!("{base}_{k}");
                k += 1;
            }
            used_names.insert(s.clone());
            s
        };
        // Reserve the MJCF body names of group roots first so that intermediates never take them.
        let mut group_names = Vec::new();
        for g in &groups {
            group_names.push(unique(&bodies[g.root].name));
        }
        let mut frames = vec![None; n];
        let mut bd_index_of_group = vec![0usize; groups.len()];
        let mut joint_map: HashMap<String, (String, JKind)> = HashMap::new();
        let mut joint_names: HashSet<String> = HashSet::new();
        let mut unique_joint = |base: &str| -> String {
            let mut s = base.to_string();
            let mut k = 1;
            while joint_names.contains(&s) {
                s = format!("{base}_{k}");
                k += 1;
            }
            joint_names.insert(s.clone());
            s
        };
        for (gi, g) in groups.iter().enumerate() {
            let root = &bodies[g.root];
            let parts: Vec<MassPart> = g.members.iter().filter_map(|&m| body_mass[m]).collect();
            let Some(mass) = combine(&parts) else {
                return Err(self.error(
                    root.line,
                    "body",
                    format!(
                        "body '{}' is moving but has no mass (give it geoms with a size, or an \
                         <inertial>)",
                        root.name
                    ),
                ));
            };
            let (principal, rot) = principal_frame(&mass.inertia, root.rot);
            let mut inertia = principal;
            let floor_i = self.bound_inertia.max(1e-9 * mass.mass);
            for i in inertia.iter_mut() {
                if *i < floor_i {
                    *i = floor_i;
                }
            }
            let inv = rot.inverse();
            let mut shapes = Vec::new();
            let mut friction: Option<f64> = None;
            for &m in &g.members {
                let b = &bodies[m];
                for s in &b.shapes {
                    shapes.push(Shape {
                        kind: s.kind.clone(),
                        offset: (inv * (s.pos - mass.com)).as_vec3().to_array(),
                        rotation: quat_f32(inv * s.rot),
                    });
                }
                if let Some(f) = b.friction {
                    friction = Some(friction.map_or(f, |x| x.max(f)));
                }
            }

            // Parent backdrive body of the group root.
            let parent_name = root
                .parent
                .and_then(|p| group_of[p])
                .map(|pg| model.bodies[bd_index_of_group[pg]].name.clone());

            // Joints: several joints need intermediate bodies.
            let joints = if world.limit_off {
                root.joints
                    .iter()
                    .cloned()
                    .map(|mut j| {
                        j.limits = None;
                        j
                    })
                    .collect()
            } else {
                root.joints.clone()
            };
            let n_inter = joints.len().saturating_sub(1);
            let fraction = if n_inter > 0 {
                self.options.intermediate_mass_fraction
            } else {
                0.0
            };
            let mut prev = parent_name.clone();
            for (k, j) in joints.iter().enumerate() {
                let child_name = if k + 1 == joints.len() {
                    group_names[gi].clone()
                } else {
                    let nm = unique(&format!("{}__{}", root.name, j.name));
                    let share = fraction / n_inter as f64;
                    model.bodies.push(Body {
                        name: nm.clone(),
                        mass: (mass.mass * share) as f32,
                        inertia: Some(inertia.map(|i| (i * share) as f32)),
                        position: mass.com.as_vec3().to_array(),
                        orientation: quat_f32(rot),
                        linear_velocity: [0.0; 3],
                        angular_velocity: [0.0; 3],
                        friction: 1.0,
                        restitution: 0.0,
                        shapes: Vec::new(),
                    });
                    if k == 0 && root.joints.len() > 1 {
                        self.warn(
                            root.line,
                            "body",
                            format!(
                                "body '{}' has {} joints: chained through {} intermediate \
                                 bodies carrying {:.0}% of its mass",
                                root.name,
                                root.joints.len(),
                                n_inter,
                                fraction * 100.0
                            ),
                        );
                    }
                    nm
                };
                let jname = unique_joint(&j.name);
                model.joints.push(Joint {
                    name: jname.clone(),
                    kind: match j.kind {
                        JKind::Hinge => JointKind::Hinge,
                        JKind::Slide => JointKind::Slider,
                        JKind::Ball => JointKind::Ball,
                    },
                    parent: prev.clone(),
                    child: child_name.clone(),
                    anchor: j.anchor.as_vec3().to_array(),
                    axis: j.axis.as_vec3().to_array(),
                    limits: j.limits.map(|[lo, hi]| [lo as f32, hi as f32]),
                });
                joint_map.insert(j.name.clone(), (jname, j.kind));
                prev = Some(child_name);
            }
            if joints.is_empty() && !root.free {
                // A jointless body kept separate: weld it.
                let jname = unique_joint(&format!("{}_weld", root.name));
                model.joints.push(Joint {
                    name: jname,
                    kind: JointKind::Fixed,
                    parent: parent_name.clone(),
                    child: group_names[gi].clone(),
                    anchor: mass.com.as_vec3().to_array(),
                    axis: [1.0, 0.0, 0.0],
                    limits: None,
                });
            }
            let keep = 1.0 - fraction;
            bd_index_of_group[gi] = model.bodies.len();
            model.bodies.push(Body {
                name: group_names[gi].clone(),
                mass: (mass.mass * keep) as f32,
                inertia: Some(inertia.map(|i| (i * keep) as f32)),
                position: mass.com.as_vec3().to_array(),
                orientation: quat_f32(rot),
                linear_velocity: [0.0; 3],
                angular_velocity: [0.0; 3],
                friction: friction.unwrap_or(1.0) as f32,
                restitution: 0.0,
                shapes,
            });
            for &m in &g.members {
                let b = &bodies[m];
                frames[m] = Some(BodyFrame {
                    name: b.name.clone(),
                    body: Some(bd_index_of_group[gi]),
                    offset: (inv * (b.pos - mass.com)).as_vec3().to_array(),
                    rotation: quat_f32(inv * b.rot),
                });
            }
        }
        if model.bodies.is_empty() {
            return Err(self.error(
                1,
                "worldbody",
                "the model has no moving body (no body with a joint or a free joint)",
            ));
        }
        let frames = frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                f.unwrap_or_else(|| BodyFrame {
                    name: bodies[i].name.clone(),
                    body: None,
                    offset: bodies[i].pos.as_vec3().to_array(),
                    rotation: quat_f32(bodies[i].rot),
                })
            })
            .collect();
        Ok((model, frames, joint_map))
    }

    /// One warning if MuJoCo would let geoms of different bodies collide.
    ///
    /// Pairs are counted by collision class (`contype`, `conaffinity`) rather than body pair by
    /// body pair, which was quadratic in the number of bodies: all colliding pairs, less those
    /// within one backdrive body (or both static), between a parent and its child, or
    /// excluded by `<contact>`.
    fn self_collision_warning(&self, bodies: &[MjBody], world: &World, group_of: &[Option<usize>]) {
        if world.contact_off {
            return;
        }
        type Class = (i64, i64);
        let collide = |a: Class, b: Class| (a.0 & b.1) != 0 || (b.0 & a.1) != 0;
        let class_of = |g: &GeomInfo| (g.contype, g.conaffinity);
        // Colliding pairs among geoms counted per class.
        let pairs_in = |counts: &HashMap<Class, u64>| -> u64 {
            let list: Vec<(Class, u64)> = counts.iter().map(|(c, n)| (*c, *n)).collect();
            let mut total = 0u64;
            for (k, &(ca, na)) in list.iter().enumerate() {
                if collide(ca, ca) {
                    total += na * na.saturating_sub(1) / 2;
                }
                for &(cb, nb) in &list[k + 1..] {
                    if collide(ca, cb) {
                        total += na * nb;
                    }
                }
            }
            total
        };
        let between = |a: &MjBody, b: &MjBody| -> u64 {
            let mut n = 0;
            for ga in &a.geoms {
                for gb in &b.geoms {
                    n += u64::from(collide(class_of(ga), class_of(gb)));
                }
            }
            n
        };
        let mut all: HashMap<Class, u64> = HashMap::new();
        let mut per_group: HashMap<Option<usize>, HashMap<Class, u64>> = HashMap::new();
        for (i, b) in bodies.iter().enumerate() {
            for g in &b.geoms {
                *all.entry(class_of(g)).or_default() += 1;
                *per_group
                    .entry(group_of[i])
                    .or_default()
                    .entry(class_of(g))
                    .or_default() += 1;
            }
        }
        let mut count = pairs_in(&all);
        for counts in per_group.values() {
            count -= pairs_in(counts);
        }
        let parent_of =
            |i: usize, j: usize| bodies[i].parent == Some(j) || bodies[j].parent == Some(i);
        for (i, b) in bodies.iter().enumerate() {
            if let Some(p) = b.parent
                && group_of[p] != group_of[i]
            {
                count -= between(&bodies[p], b);
            }
        }
        let index: HashMap<&str, usize> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let excluded = |i: usize, j: usize| {
            world
                .excludes
                .contains(&(bodies[i].name.clone(), bodies[j].name.clone()))
        };
        for (a, b) in &world.excludes {
            let (Some(&i), Some(&j)) = (index.get(a.as_str()), index.get(b.as_str())) else {
                continue;
            };
            // Each exclude is stored in both orders: count it once.
            if i < j && group_of[i] != group_of[j] && !parent_of(i, j) {
                count -= between(&bodies[i], &bodies[j]);
            }
        }
        if count == 0 {
            return;
        }
        // The first pair in file order, as an example: some pair exists, so the search ends.
        let example = (0..bodies.len()).find_map(|i| {
            ((i + 1)..bodies.len()).find_map(|j| {
                let (a, b) = (&bodies[i], &bodies[j]);
                if group_of[i] == group_of[j] || parent_of(i, j) || excluded(i, j) {
                    return None;
                }
                a.geoms.iter().find_map(|ga| {
                    b.geoms
                        .iter()
                        .find(|gb| collide(class_of(ga), class_of(gb)))
                        .map(|gb| (&a.name, &ga.name, &b.name, &gb.name, b.line))
                })
            })
        });
        if let Some((ba, ga, bb, gb, line)) = example {
            self.warn(
                line,
                "geom",
                format!(
                    "{count} geom pair(s) on different bodies may collide in MuJoCo (e.g. \
                     '{ga}' of '{ba}' and '{gb}' of '{bb}'), but backdrive bodies only touch \
                     the ground"
                ),
            );
        }
    }
}

/// Principal moments and the orientation of the principal frame; `preferred` is used when its
/// axes are already principal.
fn principal_frame(inertia: &DMat3, preferred: DQuat) -> ([f64; 3], DQuat) {
    let r = DMat3::from_quat(preferred);
    let local = r.transpose() * *inertia * r;
    let scale = local.x_axis.x.abs() + local.y_axis.y.abs() + local.z_axis.z.abs();
    let off = local.y_axis.x.abs() + local.z_axis.x.abs() + local.z_axis.y.abs();
    if off <= 1e-9 * scale {
        return ([local.x_axis.x, local.y_axis.y, local.z_axis.z], preferred);
    }
    let (eig, vecs) = symmetric_eigen(&local);
    let q = (preferred * DQuat::from_mat3(&vecs)).normalize();
    (eig, q)
}

fn quat_f32(q: DQuat) -> [f32; 4] {
    let q = q.normalize();
    let q = if q.w < 0.0 { -q } else { q };
    [q.x as f32, q.y as f32, q.z as f32, q.w as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_eigen_diagonalises() {
        let m = DMat3::from_cols_array(&[4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0]);
        let (e, v) = symmetric_eigen(&m);
        // Nearly diagonal: the axes keep their order and direction.
        assert!(e[0] > e[1] && e[1] > e[2], "{e:?}");
        assert!(
            v.x_axis.x > 0.8 && v.y_axis.y > 0.8 && v.z_axis.z > 0.8,
            "{v}"
        );
        let d = v.transpose() * m * v;
        for (i, ei) in e.iter().enumerate() {
            assert!((d.col(i)[i] - ei).abs() < 1e-12);
            for j in 0..3 {
                if i != j {
                    assert!(d.col(i)[j].abs() < 1e-12);
                }
            }
        }
        assert!((v.determinant() - 1.0).abs() < 1e-12);
        let (e, _) = symmetric_eigen(&DMat3::from_cols_array(&[f64::NAN; 9]));
        assert!(e.iter().all(|x| x.is_nan()));
        // Repeated eigenvalues and a permuted diagonal.
        let m = DMat3::from_diagonal(DVec3::new(1.0, 3.0, 1.0));
        let (e, v) = symmetric_eigen(&m);
        assert_eq!(e, [1.0, 3.0, 1.0]);
        assert!((v.determinant() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn capsule_inertia_matches_mujoco() {
        // MuJoCo 4.0: capsule r = 0.1, half-length 0.3, density 1000.
        let (v, i) = volume_and_inertia(GeomType::Capsule, &[0.1, 0.3]);
        let m = 1000.0 * v;
        assert!((m - 23.03834612632515).abs() < 1e-9);
        assert!((i.x * m - 1.1006046263076241).abs() < 1e-9);
        assert!((i.z * m - 0.11100294042683936).abs() < 1e-9);
    }

    #[test]
    fn euler_is_intrinsic_xyz() {
        let text = r#"<mujoco><worldbody><body euler="90 0 0"><freejoint/>
            <geom size="0.1"/></body></worldbody></mujoco>"#;
        let imp = from_str(text, None, &MjcfOptions::default()).unwrap();
        let q = glam::Quat::from_array(imp.frames[0].rotation);
        assert!(q.length() > 0.99);
        // The frame's rotation relative to the principal frame: a sphere's principal frame is
        // the body frame, so the body orientation carries the 90 degrees about x.
        let o = glam::Quat::from_array(imp.model.bodies[0].orientation);
        let z = o * glam::Vec3::Z;
        assert!((z - glam::Vec3::new(0.0, -1.0, 0.0)).length() < 1e-6, "{z}");
    }
}
