//! The intermediate tree: MJCF bodies, joints and geoms in world coordinates, read from the
//! document with their default classes applied.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum JKind {
    Hinge,
    Slide,
    Ball,
}

#[derive(Clone, Debug)]
pub(super) struct MjJoint {
    pub(super) name: String,
    pub(super) kind: JKind,
    pub(super) anchor: DVec3,
    pub(super) axis: DVec3,
    pub(super) limits: Option<[f64; 2]>,
    /// MuJoCo's `ref`: the joint value at the model's pose (tendon lengths count from it).
    pub(super) reference: f64,
    pub(super) passive: JointPassive,
}

/// A joint's passive dynamics as MuJoCo's attributes give them; `springref` already measured
/// from the model pose (MuJoCo's `springref - ref`), like the limits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct JointPassive {
    pub(super) damping: f64,
    pub(super) stiffness: f64,
    pub(super) springref: f64,
    pub(super) frictionloss: f64,
    pub(super) armature: f64,
    /// `springdamper`'s time constant and damping ratio, with the armature as written (MuJoCo
    /// counts it in the inertia): stiffness and damping are derived from them after the masses.
    pub(super) springdamper: Option<[f64; 3]>,
    /// The limit's `solreflimit` and `solimplimit` (MuJoCo's defaults where absent) and the
    /// line that set them (the joint's where neither is written).
    pub(super) limit_solref: [f64; 2],
    pub(super) limit_solimp: [f64; 5],
    pub(super) limit_line: usize,
}

#[derive(Clone, Debug)]
pub(super) struct MjShape {
    pub(super) kind: ShapeKind,
    /// World pose of the shape's centre.
    pub(super) pos: DVec3,
    pub(super) rot: DQuat,
}

#[derive(Clone, Debug)]
pub(super) struct GeomInfo {
    pub(super) name: String,
    pub(super) contype: i64,
    pub(super) conaffinity: i64,
}

#[derive(Clone, Debug)]
pub(super) struct MjBody {
    pub(super) name: String,
    pub(super) line: usize,
    /// Index of the parent MJCF body; `None` for the world body.
    pub(super) parent: Option<usize>,
    pub(super) pos: DVec3,
    pub(super) rot: DQuat,
    pub(super) joints: Vec<MjJoint>,
    pub(super) free: bool,
    pub(super) geom_mass: Vec<MassPart>,
    pub(super) inertial: Option<MassPart>,
    pub(super) shapes: Vec<MjShape>,
    /// Largest sliding friction of the geoms that touch the ground (None: frictionless).
    pub(super) friction: Option<f64>,
    pub(super) geoms: Vec<GeomInfo>,
}

/// A geom as parsed, before deciding whether it touches the ground.
#[derive(Clone)]
pub(super) struct Geom {
    pub(super) line: usize,
    pub(super) kind: GeomType,
    pub(super) pos: DVec3,
    pub(super) rot: DQuat,
    pub(super) size: Vec<f64>,
    pub(super) mass: f64,
    pub(super) inertia: DVec3,
    pub(super) friction: f64,
    pub(super) condim: i64,
    pub(super) contype: i64,
    pub(super) conaffinity: i64,
    pub(super) margin: f64,
    pub(super) gap: f64,
    pub(super) solref: [f64; 2],
    pub(super) solimp: [f64; 5],
    pub(super) name: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum GeomType {
    Plane,
    Sphere,
    Capsule,
    Box,
    Cylinder,
    Ellipsoid,
    /// A mesh: mass only (no contact shape), sizes empty.
    Mesh,
}

pub(super) struct Floor {
    /// The plane geom's name (empty if unnamed), for `<contact><pair>`.
    pub(super) name: String,
    pub(super) solref: [f64; 2],
    pub(super) solimp: [f64; 5],
    pub(super) friction: f64,
    pub(super) contype: i64,
    pub(super) conaffinity: i64,
    pub(super) margin: f64,
    pub(super) gap: f64,
}

/// A `<site>`: a named point on an MJCF body (spatial tendons run between sites).
#[derive(Clone, Debug)]
pub(super) struct MjSite {
    pub(super) name: String,
    /// Index of the MJCF body; `None` for the world body.
    pub(super) body: Option<usize>,
    /// World position at the model's pose.
    pub(super) pos: DVec3,
}

pub(super) struct World {
    pub(super) bodies: Vec<MjBody>,
    /// Named sites, in file order.
    pub(super) sites: Vec<MjSite>,
    pub(super) floor: Option<Floor>,
    /// Geoms parsed, to be turned into shapes once the floor is known: (body, geom).
    pub(super) geoms: Vec<(usize, Geom)>,
    pub(super) excludes: HashSet<(String, String)>,
    /// `<contact><pair geom1 geom2>`: the two geom names and the element's line.
    pub(super) pairs: Vec<(String, String, usize)>,
    pub(super) free_joints: HashSet<String>,
    /// Names of the bodies so far (duplicates are refused).
    pub(super) body_names: HashSet<String>,
    /// Names given to joints so far, free joints included (duplicates are refused).
    pub(super) joint_names: HashSet<String>,
    pub(super) gravity_off: bool,
    pub(super) contact_off: bool,
    pub(super) limit_off: bool,
    /// Colliding static geoms other than the ground plane z = 0 (see `static_world_geom`).
    pub(super) world_shapes: Vec<crate::model::WorldShape>,
    /// Whether a colliding plane at z = 0 facing up (backdrive's ground) was found.
    pub(super) ground_plane: bool,
}

pub(super) const BODY_KNOWN: &[&str] = &[
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

pub(super) const BODY_SILENT: &[&str] = &["user"];

pub(super) const GEOM_KNOWN: &[&str] = &[
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

pub(super) const GEOM_SILENT: &[&str] = &["rgba", "material", "group", "user", "fitscale"];

pub(super) const JOINT_KNOWN: &[&str] = &[
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

pub(super) const JOINT_SILENT: &[&str] = &["group", "user"];

impl<'a, 'input> Ctx<'a, 'input> {
    pub(super) fn run(&mut self) -> Result<MjcfImport> {
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
            lock_frequency: Some(super::LOCK_FREQUENCY),
            ..Settings::default()
        };
        let mut world = World {
            bodies: Vec::new(),
            sites: Vec::new(),
            floor: None,
            geoms: Vec::new(),
            excludes: HashSet::new(),
            pairs: Vec::new(),
            free_joints: HashSet::new(),
            body_names: HashSet::new(),
            joint_names: HashSet::new(),
            gravity_off: false,
            contact_off: false,
            limit_off: false,
            world_shapes: Vec::new(),
            ground_plane: false,
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
        let mut tendons = Vec::new();
        let mut spatial_tendons = Vec::new();
        let mut equality_nodes = Vec::new();
        for c in root.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            match tag {
                "actuator" => actuator_nodes.push(c),
                "tendon" => self.tendon_section(c, &mut tendons, &mut spatial_tendons)?,
                "equality" => equality_nodes.push(c),
                "deformable" if c.children().any(|n| n.is_element()) => {
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
        self.static_body_geoms(&mut world);
        settings.ground = world.ground_plane || world.floor.is_none();
        let built = self.build(&world, &name, settings)?;
        let (mut model, frames, joint_map, masses) = built;
        if !world.contact_off {
            model.world_shapes = std::mem::take(&mut world.world_shapes);
        }
        self.constraints(
            &tendons,
            &equality_nodes,
            &world,
            &joint_map,
            &frames,
            &mut model,
        )?;
        self.spatial_tendons(&spatial_tendons, &world, &frames, &mut model)?;
        let mut gears = Vec::new();
        // Names taken so far, across every <actuator> section (a scan per motor is quadratic).
        let mut actuator_names = HashSet::new();
        for a in actuator_nodes {
            self.actuators(
                a,
                &world,
                &joint_map,
                &tendons,
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
            masses,
        })
    }

    /// Children of the world body (`body == None`), a body, or a frame.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn children(
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
                    let mass_given = self.inertia_from_geom != InertiaFromGeom::True
                        && body.is_none_or(|b| world.bodies[b].inertial.is_some());
                    let g = self.geom(&el, pos, rot, mass_given, body.is_none())?;
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
                "site" => {
                    // Only a named site can be referred to (by a spatial tendon).
                    if let Some(name) = c.attribute("name") {
                        let el = self.el(c, Some("site"), childclass);
                        let p = self.vec3(&el, "pos")?.unwrap_or(DVec3::ZERO);
                        world.sites.push(MjSite {
                            name: name.to_string(),
                            body,
                            pos: pos + rot * p,
                        });
                    }
                }
                "camera" | "light" | "plugin" | "attach" => {}
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

    pub(super) fn check_class(&self, node: Node, class: Option<&str>) -> Result<()> {
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
    pub(super) fn body(
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
}
