//! Geoms: pose, size, mass and contact properties, and geoms of the world body.

use super::*;

/// A geom's contact properties.
pub(super) struct GeomContact {
    pub(super) friction: f64,
    pub(super) condim: i64,
    pub(super) contype: i64,
    pub(super) conaffinity: i64,
    pub(super) margin: f64,
    pub(super) gap: f64,
    pub(super) solref: [f64; 2],
    pub(super) solimp: [f64; 5],
}

/// MuJoCo's default `solref` (time constant 0.02 s, damping ratio 1).
pub(super) const DEFAULT_SOLREF: [f64; 2] = [0.02, 1.0];
/// MuJoCo's default `solimp` (dmin, dmax, width, midpoint, power).
pub(super) const DEFAULT_SOLIMP: [f64; 5] = [0.9, 0.95, 0.001, 0.5, 2.0];

impl<'a, 'input> Ctx<'a, 'input> {
    /// A geom's pose, size, mass and contact properties (world frame).
    ///
    /// `mass_given`: the body's mass does not come from its geoms (an `<inertial>` that
    /// `inertiafromgeom` lets stand), so a geom without a computable mass may be skipped.
    ///
    /// `on_world`: the geom belongs to the world body (a flat height field is only imported
    /// there).
    pub(super) fn geom(
        &mut self,
        el: &El,
        bpos: DVec3,
        brot: DQuat,
        mass_given: bool,
        on_world: bool,
    ) -> Result<Option<Geom>> {
        let node = el.node;
        self.check_attrs(node, GEOM_KNOWN, GEOM_SILENT);
        let line = self.line(node);
        let name = node.attribute("name").unwrap_or("").to_string();
        let label = if name.is_empty() {
            format!("geom at {}", self.place(line))
        } else {
            format!("geom '{name}'")
        };
        let colliding = self.int(el, "contype")?.unwrap_or(1) != 0
            || self.int(el, "conaffinity")?.unwrap_or(1) != 0;
        if colliding
            && self
                .get(el, "type")?
                .is_some_and(|v| v.text.trim() == "hfield")
        {
            return self.flat_height_field(el, &label, line, bpos, brot, on_world, name);
        }
        if self
            .get(el, "type")?
            .is_some_and(|v| v.text.trim() == "mesh")
        {
            return self.mesh_geom(el, &label, line, bpos, brot, mass_given, on_world, name);
        }
        let Some(kind) = self.geom_type(el, &label, mass_given)? else {
            return Ok(None);
        };
        let (size, lpos, lrot) = self.geom_size_and_pose(el, kind, &label, line)?;

        // Mass and inertia about the geom's centre, in the geom frame.
        let (volume, unit_inertia) = volume_and_inertia(kind, &size);
        let mass = self.geom_mass(el, &label, volume)?;
        if self.tristate(el, "shellinertia")? == Some(true) {
            self.unsupported(
                line,
                "geom",
                format!("{label}: shellinertia is not supported"),
            );
        }
        let contact = self.geom_contact(el, &label)?;
        Ok(Some(Geom {
            line,
            kind,
            pos: bpos + brot * lpos,
            rot: (brot * lrot).normalize(),
            size,
            mass,
            inertia: unit_inertia * mass,
            friction: contact.friction,
            condim: contact.condim,
            contype: contact.contype,
            conaffinity: contact.conaffinity,
            margin: contact.margin,
            gap: contact.gap,
            solref: contact.solref,
            solimp: contact.solimp,
            name,
        }))
    }

    /// The geom's type; None for the types that are dropped (mesh, height field, SDF).
    fn geom_type(&self, el: &El, label: &str, mass_given: bool) -> Result<Option<GeomType>> {
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
                    self.shapeless_geom(el, label, v.text.trim(), v.line, mass_given)?;
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
        Ok(Some(kind))
    }

    /// A colliding height field geom. MuJoCo's height field is the solid between its base
    /// (`-size[3]` in the geom frame) and the elevation surface (`elevation * size[2]`) over
    /// `[-size[0], size[0]] x [-size[1], size[1]]`. One whose elevation is all zeros (no `file`,
    /// no non-zero `elevation`: dm_control's quadruped leaves it to tasks that fill it at run
    /// time) is exactly the box between its base and z = 0, so it becomes a static box. Any other
    /// elevation, or one on a moving body, is unsupported, naming the element and line.
    #[allow(clippy::too_many_arguments)]
    fn flat_height_field(
        &mut self,
        el: &El,
        label: &str,
        line: usize,
        bpos: DVec3,
        brot: DQuat,
        on_world: bool,
        name: String,
    ) -> Result<Option<Geom>> {
        if !on_world {
            self.unsupported(
                line,
                "geom",
                format!(
                    "{label}: a colliding hfield geom on a moving body has no backdrive contact \
                     shape (flat height fields are imported on the world body only); it was \
                     dropped"
                ),
            );
            return Ok(None);
        }
        let Some(asset) = self.get(el, "hfield")? else {
            return Err(self.error(
                line,
                "geom.hfield",
                format!("{label}: an hfield geom needs the name of an <hfield> asset"),
            ));
        };
        let asset_name = asset.text.trim().to_string();
        let Some(hf) = self.doc.root_element().descendants().find(|n| {
            n.has_tag_name("hfield")
                && n.parent_element().is_some_and(|p| p.has_tag_name("asset"))
                && n.attribute("name") == Some(asset_name.as_str())
        }) else {
            return Err(self.error(
                asset.line,
                "geom.hfield",
                format!("{label}: no <hfield> asset named '{asset_name}'"),
            ));
        };
        let hel = self.el(hf, None, None);
        if let Some(file) = hf.attribute("file") {
            self.unsupported(
                self.attr_line(hf, "file"),
                "hfield",
                format!(
                    "height field '{asset_name}' (used by {label}) reads its elevation from \
                     '{file}': backdrive does not read height field files and only imports a \
                     flat one (no file, elevation all zeros); {label} was dropped"
                ),
            );
            return Ok(None);
        }
        if let Some(v) = self.get(&hel, "elevation")?
            && self.nums(&hel, &v)?.iter().any(|&z| z != 0.0)
        {
            self.unsupported(
                v.line,
                "hfield",
                format!(
                    "height field '{asset_name}' (used by {label}) has a non-zero elevation: \
                     backdrive only imports a flat height field (elevation all zeros); {label} \
                     was dropped"
                ),
            );
            return Ok(None);
        }
        let Some(size_val) = self.get(&hel, "size")? else {
            return Err(self.error(
                self.line(hf),
                "hfield.size",
                format!("height field '{asset_name}' needs a size (4 values)"),
            ));
        };
        let size = self.fixed::<4>(&hel, &size_val)?;
        if !(size[0] > 0.0 && size[1] > 0.0 && size[2] >= 0.0 && size[3] > 0.0) {
            return Err(self.error(
                size_val.line,
                "hfield.size",
                format!(
                    "height field '{asset_name}': size must be radius_x > 0, radius_y > 0, \
                     elevation_z >= 0 and base_z > 0, found {size:?}"
                ),
            ));
        }
        let lpos = self.vec3(el, "pos")?.unwrap_or(DVec3::ZERO);
        let lrot = self.orientation(el)?;
        let half_height = size[3] / 2.0;
        let centre = lpos + lrot * DVec3::new(0.0, 0.0, -half_height);
        let contact = self.geom_contact(el, label)?;
        self.warn(
            line,
            "geom",
            format!(
                "{label}: the flat height field '{asset_name}' (elevation all zeros) is the \
                 static box it encloses, {} x {} m, top at its z; a task that fills the \
                 elevation at run time sees flat ground here",
                2.0 * size[0],
                2.0 * size[1]
            ),
        );
        Ok(Some(Geom {
            line,
            kind: GeomType::Box,
            pos: bpos + brot * centre,
            rot: (brot * lrot).normalize(),
            size: vec![size[0], size[1], half_height],
            mass: 0.0,
            inertia: DVec3::ZERO,
            friction: contact.friction,
            condim: contact.condim,
            contype: contact.contype,
            conaffinity: contact.conaffinity,
            margin: contact.margin,
            gap: contact.gap,
            solref: contact.solref,
            solimp: contact.solimp,
            name,
        }))
    }

    /// A height field or SDF geom (mesh geoms go to `mesh_geom` first): it has neither a
    /// shape nor a mass in backdrive. One that does not collide (`contype` = `conaffinity` =
    /// 0) and whose mass is not needed (zero, or the body's `<inertial>` stands) is visual: skipped, and
    /// counted for a single summary line. Anything else is unsupported, by name and line.
    fn shapeless_geom(
        &self,
        el: &El,
        label: &str,
        kind: &str,
        line: usize,
        mass_given: bool,
    ) -> Result<()> {
        let contype = self.int(el, "contype")?.unwrap_or(1);
        let conaffinity = self.int(el, "conaffinity")?.unwrap_or(1);
        let massless = self.num(el, "mass")? == Some(0.0)
            || (self.num(el, "mass")?.is_none() && self.num(el, "density")? == Some(0.0));
        if contype != 0 || conaffinity != 0 {
            self.unsupported(
                line,
                "geom",
                format!(
                    "{label}: a colliding {kind} geom has no backdrive contact shape (give it \
                     contype=\"0\" conaffinity=\"0\" if it is only visual); it was dropped"
                ),
            );
        } else if !(massless || mass_given) {
            // One line for all of them (a skinned animal has hundreds): the first is named.
            let mut diag = self.diag.borrow_mut();
            diag.massive_meshes += 1;
            if diag.first_massive_mesh.is_none() {
                diag.first_massive_mesh = Some((line, format!("{label} ({kind})")));
            }
        } else {
            self.diag.borrow_mut().visual_skipped += 1;
        }
        Ok(())
    }

    /// The geom's sizes and its pose in its body's frame, from `size`, `pos`, the orientation
    /// attributes or `fromto`.
    fn geom_size_and_pose(
        &self,
        el: &El,
        kind: GeomType,
        label: &str,
        line: usize,
    ) -> Result<(Vec<f64>, DVec3, DQuat)> {
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
            GeomType::Plane | GeomType::Mesh => 0,
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
        Ok((size, lpos, lrot))
    }

    /// The geom's mass: `mass`, or `density` (default 1000) times its volume.
    pub(super) fn geom_mass(&self, el: &El, label: &str, volume: f64) -> Result<f64> {
        let node = el.node;
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
        Ok(mass)
    }

    /// Friction, contact dimension, collision classes, margin and gap, with warnings for the
    /// contact settings backdrive ignores.
    pub(super) fn geom_contact(&self, el: &El, label: &str) -> Result<GeomContact> {
        let node = el.node;
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
            for attr in ["solmix", "priority"] {
                if node.attribute(attr).is_some() {
                    self.warn(
                        self.attr_line(node, attr),
                        "geom",
                        format!(
                            "{label}: {attr} is ignored: a contact's solref/solimp are the \
                             mean of the geom's and the ground's"
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
        let solref = match self.get(el, "solref")? {
            Some(v) => {
                let x = self.fixed::<2>(el, &v)?;
                // MuJoCo: both positive (time constant, damping ratio) or both non-positive
                // (-stiffness, -damping); a mixed pair is replaced by its default.
                if (x[0] > 0.0) != (x[1] > 0.0) || x[0] == 0.0 {
                    self.warn(
                        v.line,
                        "geom",
                        format!(
                            "{label}: solref {x:?} mixes signs or is zero: MuJoCo's default \
                             {DEFAULT_SOLREF:?} was used"
                        ),
                    );
                    DEFAULT_SOLREF
                } else {
                    x
                }
            }
            None => DEFAULT_SOLREF,
        };
        let solimp = match self.get(el, "solimp")? {
            Some(v) => {
                let x = self.nums(el, &v)?;
                if !(3..=5).contains(&x.len()) {
                    return Err(self.error(
                        v.line,
                        "geom.solimp",
                        format!(
                            "{label}: expected 3 to 5 numbers, found {}{}",
                            x.len(),
                            v.origin()
                        ),
                    ));
                }
                let mut out = DEFAULT_SOLIMP;
                out[..x.len()].copy_from_slice(&x);
                out
            }
            None => DEFAULT_SOLIMP,
        };
        Ok(GeomContact {
            friction,
            condim,
            contype,
            conaffinity,
            margin,
            gap,
            solref,
            solimp,
        })
    }

    pub(super) fn world_geom(&mut self, g: Geom, world: &mut World) {
        let label = if g.name.is_empty() {
            "a geom".to_string()
        } else {
            format!("geom '{}'", g.name)
        };
        // A visual-only geom makes nothing.
        if g.contype == 0 && g.conaffinity == 0 {
            return;
        }
        let normal = g.rot * DVec3::Z;
        let is_ground =
            g.kind == GeomType::Plane && g.pos.z.abs() <= 1e-9 && normal.z >= 1.0 - 1e-9;
        if !is_ground {
            self.static_world_geom(g, world);
            return;
        }
        if world.ground_plane {
            self.warn(
                g.line,
                "geom",
                format!("{label}: a second ground plane was ignored"),
            );
            return;
        }
        // The ground is the contact partner that decides which geoms get contact shapes,
        // even if another static geom came first.
        world.ground_plane = true;
        world.floor = Some(floor_of(&g));
    }

    /// A colliding static geom other than the ground plane z = 0 becomes a world shape:
    /// planes (infinite for collision, as in MuJoCo) at any height and orientation, spheres,
    /// capsules, boxes and cylinders, with exact signed distances. The first one is the
    /// contact partner deciding which geoms get contact shapes when there is no ground plane.
    fn static_world_geom(&mut self, g: Geom, world: &mut World) {
        use crate::model::{WorldShape, WorldShapeKind};
        let s = |k: usize| g.size.get(k).copied().unwrap_or(0.0) as f32;
        let kind = match g.kind {
            GeomType::Plane => WorldShapeKind::Plane,
            GeomType::Sphere => WorldShapeKind::Sphere { radius: s(0) },
            GeomType::Capsule => WorldShapeKind::Capsule {
                radius: s(0),
                half_length: s(1),
            },
            GeomType::Box => WorldShapeKind::Box {
                half_extents: [s(0), s(1), s(2)],
            },
            GeomType::Cylinder => WorldShapeKind::Cylinder {
                radius: s(0),
                half_length: s(1),
            },
            GeomType::Ellipsoid => {
                self.unsupported(
                    g.line,
                    "geom",
                    format!(
                        "{}: static ellipsoids have no backdrive shape; it was dropped",
                        if g.name.is_empty() {
                            "a geom".to_string()
                        } else {
                            format!("geom '{}'", g.name)
                        }
                    ),
                );
                return;
            }
            // Mesh geoms carry mass only (`mesh_geom` clears their collision classes).
            GeomType::Mesh => return,
        };
        world.world_shapes.push(WorldShape {
            kind,
            position: g.pos.as_vec3().to_array(),
            rotation: g.rot.normalize().as_quat().to_array(),
        });
        if world.floor.is_none() {
            world.floor = Some(floor_of(&g));
        }
    }

    /// The geoms of static bodies (jointless bodies whose ancestors are all jointless) become
    /// world shapes like the world body's own geoms.
    pub(super) fn static_body_geoms(&mut self, world: &mut World) {
        let mut is_static = vec![false; world.bodies.len()];
        for (i, b) in world.bodies.iter().enumerate() {
            let parent_static = b.parent.is_none_or(|p| p < i && is_static[p]);
            is_static[i] = parent_static && !b.free && b.joints.is_empty();
        }
        let geoms: Vec<Geom> = world
            .geoms
            .iter()
            .filter(|(b, g)| is_static[*b] && (g.contype != 0 || g.conaffinity != 0))
            .map(|(_, g)| g.clone())
            .collect();
        for g in geoms {
            if g.kind == GeomType::Plane {
                // Planes on bodies stay refused as before (`attach_geoms`).
                continue;
            }
            self.static_world_geom(g, world);
        }
    }
}

/// The contact properties of a static geom, as the partner of the bodies' geoms.
fn floor_of(g: &Geom) -> Floor {
    Floor {
        name: g.name.clone(),
        solref: g.solref,
        solimp: g.solimp,
        friction: if g.condim == 1 { 0.0 } else { g.friction },
        contype: g.contype,
        conaffinity: g.conaffinity,
        margin: g.margin,
        gap: g.gap,
    }
}

/// A contact shape's request for the model-wide soft-contact setting.
pub(super) struct Softness {
    pub(super) frequency: f64,
    pub(super) damping_ratio: f64,
    pub(super) line: usize,
}

impl Ctx<'_, '_> {
    /// Whether MuJoCo lets a geom of a moving body touch the ground plane: an explicit
    /// `<pair>` with the plane, else MuJoCo's filter (`(contype1 & conaffinity2) ||
    /// (contype2 & conaffinity1)`) unless `<exclude body1="world">` names the body.
    pub(super) fn touches_floor(&self, g: &Geom, body: &str, floor: &Floor, world: &World) -> bool {
        let named = |n: &str| !n.is_empty() && (n == g.name || n == floor.name);
        let paired = world.pairs.iter().any(|(a, b, _)| {
            a != b && named(a) && named(b) && !g.name.is_empty() && !floor.name.is_empty()
        });
        if paired {
            return true;
        }
        let filtered = (g.contype & floor.conaffinity) != 0 || (floor.contype & g.conaffinity) != 0;
        filtered
            && !world
                .excludes
                .contains(&("world".to_string(), body.to_string()))
    }

    /// `<pair>`s other than a geom with the ground: backdrive has no contact between two
    /// geoms of bodies, so each is an unsupported feature (element, line, reason).
    pub(super) fn unused_pairs(&self, world: &World) {
        let floor = world.floor.as_ref().map(|f| f.name.as_str()).unwrap_or("");
        for (a, b, line) in &world.pairs {
            if floor.is_empty() || (a != floor && b != floor) {
                self.unsupported(
                    *line,
                    "pair",
                    format!(
                        "contact pair '{a}' / '{b}': backdrive bodies only touch the ground \
                         plane, so only a pair with the ground geom can be honoured"
                    ),
                );
            }
        }
    }

    /// The soft-contact setting a geom's contact with the ground asks for: MuJoCo mixes the
    /// two geoms' `solref` and `solimp` by `solmix` (equal by default: the mean).
    pub(super) fn softness(&self, g: &Geom, floor: &Floor, g_norm: f64) -> Softness {
        let mut solref: [f64; 2] = std::array::from_fn(|k| 0.5 * (g.solref[k] + floor.solref[k]));
        let solimp: [f64; 5] = std::array::from_fn(|k| 0.5 * (g.solimp[k] + floor.solimp[k]));
        // A direct (negative) solref mixed with a time constant has no meaning: keep the geom's.
        if (g.solref[0] > 0.0) != (floor.solref[0] > 0.0) {
            solref = g.solref;
        }
        let (frequency, damping_ratio) = contact_softness(solref, &solimp, g_norm);
        Softness {
            frequency,
            damping_ratio,
            line: g.line,
        }
    }

    /// Sets the model-wide `limit_frequency` and `limit_damping_ratio` from what the limited
    /// joints ask for (`limit_softness` of each one's `solreflimit`/`solimplimit`): the setting
    /// most of them share; one warning if they differ. Without limited joints the settings stay.
    pub(super) fn limit_settings(&self, softness: &[Softness], settings: &mut Settings) {
        let Some((chosen, other, kinds)) = most_shared(softness) else {
            return;
        };
        settings.limit_frequency = Some(chosen.frequency as f32);
        settings.limit_damping_ratio = Some(chosen.damping_ratio as f32);
        if kinds > 1 {
            self.warn(
                other.line,
                "joint",
                format!(
                    "joint limits ask for {kinds} different softnesses (solreflimit/solimplimit); \
                     backdrive has one per model: {:.1} Hz, damping ratio {:.2} (used by most \
                     limited joints) instead of e.g. {:.1} Hz, {:.2} here",
                    chosen.frequency, chosen.damping_ratio, other.frequency, other.damping_ratio
                ),
            );
        }
    }

    /// Sets the model-wide `contact_frequency` and `contact_damping_ratio` from what the
    /// contact shapes ask for: the setting most of them share; one warning if they differ.
    pub(super) fn contact_settings(&self, softness: &[Softness], settings: &mut Settings) {
        let Some((chosen, other, kinds)) = most_shared(softness) else {
            return;
        };
        settings.contact_frequency = chosen.frequency as f32;
        settings.contact_damping_ratio = chosen.damping_ratio as f32;
        if kinds > 1 {
            self.warn(
                other.line,
                "geom",
                format!(
                    "contacts ask for {kinds} different softnesses (solref/solimp); backdrive has one \
                     per model: {:.1} Hz, damping ratio {:.2} (used by most contact geoms) \
                     instead of e.g. {:.1} Hz, {:.2} here",
                    chosen.frequency, chosen.damping_ratio, other.frequency, other.damping_ratio
                ),
            );
        }
    }

    /// One unsupported-feature line for the visual height fields and SDFs whose mass the body
    /// needs (mesh geoms are weighed, `mesh_geom`).
    pub(super) fn massive_mesh_error(&self) {
        let (count, first) = {
            let diag = self.diag.borrow();
            (diag.massive_meshes, diag.first_massive_mesh.clone())
        };
        if let Some((line, what)) = first {
            self.unsupported(
                line,
                "geom",
                format!(
                    "{what} and {} more height field/SDF geom(s): their mass cannot be \
                     computed (backdrive does not weigh height fields or SDFs) and their bodies \
                     have no <inertial>: give the bodies an <inertial>, or the geoms mass=\"0\"; \
                     they were dropped",
                    count - 1
                ),
            );
        }
    }

    /// One line for every cylinder and ellipsoid given a stated primitive's contact shape.
    pub(super) fn approximation_warning(&self, approximated: &[(f64, String, GeomType)]) {
        let Some((worst, place, _)) = approximated.iter().max_by(|a, b| a.0.total_cmp(&b.0)) else {
            return;
        };
        let cylinders = approximated
            .iter()
            .filter(|a| a.2 == GeomType::Cylinder)
            .count();
        let ellipsoids = approximated.len() - cylinders;
        self.warn(
            1,
            "geom",
            format!(
                "{cylinders} cylinder(s) and {ellipsoids} ellipsoid(s) touch the ground through \
                 an approximate shape (cylinders: capsules, or boxes when flat; ellipsoids: \
                 capsules along their longest axis; mass from the true shape): a contact point \
                 moves by at most {:.1} mm (the geom at {place})",
                worst * 1e3
            ),
        );
    }
}

pub(super) fn geom_type_name(kind: GeomType) -> &'static str {
    match kind {
        GeomType::Plane => "plane",
        GeomType::Sphere => "sphere",
        GeomType::Capsule => "capsule",
        GeomType::Box => "box",
        GeomType::Cylinder => "cylinder",
        GeomType::Ellipsoid => "ellipsoid",
        GeomType::Mesh => "mesh",
    }
}

/// MuJoCo's impedance `d(r)` at penetration `r` (`solimp` = dmin, dmax, width, midpoint,
/// power), clamped as MuJoCo clamps it.
fn impedance(solimp: &[f64; 5], r: f64) -> f64 {
    let dmin = solimp[0].clamp(1e-4, 0.9999);
    let dmax = solimp[1].clamp(1e-4, 0.9999);
    let width = solimp[2].max(0.0);
    let mid = solimp[3].clamp(1e-4, 0.9999);
    let power = solimp[4].max(1.0);
    if width <= 0.0 || r >= width {
        return dmax;
    }
    let x = r / width;
    let y = if x <= mid {
        x.powf(power) / mid.powf(power - 1.0)
    } else {
        1.0 - (1.0 - x).powf(power) / (1.0 - mid).powf(power - 1.0)
    };
    dmin + y * (dmax - dmin)
}

/// Backdrive's soft-contact frequency (Hz) and damping ratio for MuJoCo's `solref` and
/// `solimp`, under gravity `g` (m/s^2).
///
/// MuJoCo's reference acceleration is `-b v - k d(r) r` with `k = 1 / (dmax^2 tc^2 zeta^2)`,
/// `b = 2 / (dmax tc)` for `solref = (tc, zeta)` (or `k = -solref[0] / dmax^2`, `b =
/// -solref[1] / dmax` for the direct form), and the impedance `d` mixes it with the
/// unconstrained acceleration. A body resting under gravity then sinks to the `r` where
/// `r d(r)^2 = (1 - d(r)) g / k`. Backdrive's soft contact sinks by `g / (2 pi f)^2`, so `f` is
/// chosen to give the same resting penetration; the damping ratio is MuJoCo's (`zeta`, or
/// `b / (2 sqrt(k))` in the direct form), which is what its contact oscillation follows.
/// The softness most requests share (ties: the first in file order), another request that
/// differs from it (itself when all agree) and how many different settings were asked for.
fn most_shared(softness: &[Softness]) -> Option<(&Softness, &Softness, usize)> {
    let key = |s: &Softness| {
        (
            (s.frequency * 1e3).round() as i64,
            (s.damping_ratio * 1e3).round() as i64,
        )
    };
    let mut counts: Vec<((i64, i64), usize, &Softness)> = Vec::new();
    for s in softness {
        match counts.iter_mut().find(|(k, _, _)| *k == key(s)) {
            Some(entry) => entry.1 += 1,
            None => counts.push((key(s), 1, s)),
        }
    }
    let &(_, _, chosen) = counts.iter().rev().max_by_key(|(_, n, _)| *n)?;
    let other = counts
        .iter()
        .find(|(k, _, _)| *k != key(chosen))
        .map(|(_, _, s)| *s)
        .unwrap_or(chosen);
    Some((chosen, other, counts.len()))
}

/// A MuJoCo joint limit's softness as backdrive's natural frequency (Hz) and damping ratio.
/// MuJoCo's limit pulls the violated coordinate with reference acceleration `-b v - k r`
/// (`k = 1 / (dmax^2 tc^2 zeta^2)`, `b = 2 / (dmax tc)`, or `k = -solref[0] / dmax^2`,
/// `b = -solref[1] / dmax`), blended with the free motion by the impedance `d`, so a violated
/// limit moves as `r'' = -d b r' - d k r`: a spring of natural frequency `sqrt(d k)` and
/// damping ratio `d b / (2 sqrt(d k))`, with `d = solimp[1]` (a violation deeper than the
/// impedance's width `solimp[2]`). MuJoCo's time constant is never below two time steps
/// (`dt`). The defaults (0.02 s, ratio 1, dmax 0.95) give 8.2 Hz, ratio 0.97: a limit much
/// softer than backdrive's joints (30 Hz), and than MuJoCo's joints, which are exact.
pub(super) fn limit_softness(solref: [f64; 2], solimp: &[f64; 5], dt: f64) -> (f64, f64) {
    let d = solimp[1].clamp(1e-4, 0.9999);
    let (k, b) = if solref[0] > 0.0 {
        let (tc, zeta) = (solref[0].max(2.0 * dt), solref[1]);
        (1.0 / (d * d * tc * tc * zeta * zeta), 2.0 / (d * tc))
    } else {
        (-solref[0] / (d * d), -solref[1] / d)
    };
    let omega = (d * k).sqrt();
    (omega / std::f64::consts::TAU, d * b / (2.0 * omega))
}

pub(super) fn contact_softness(solref: [f64; 2], solimp: &[f64; 5], g: f64) -> (f64, f64) {
    let g = if g > 0.0 { g } else { 9.81 };
    let dmax = solimp[1].clamp(1e-4, 0.9999);
    let (k, ratio) = if solref[0] > 0.0 {
        let (tc, zeta) = (solref[0], solref[1]);
        (1.0 / (dmax * dmax * tc * tc * zeta * zeta), zeta)
    } else {
        let k = -solref[0] / (dmax * dmax);
        let b = -solref[1] / dmax;
        (k, b / (2.0 * k.sqrt()))
    };
    // r d(r)^2 - (1 - d(r)) g / k grows with r: bisect on a log scale.
    let excess = |r: f64| {
        let d = impedance(solimp, r);
        r * d * d - (1.0 - d) * g / k
    };
    let (mut lo, mut hi) = (1e-12_f64, 10.0_f64);
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if excess(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let r = (lo * hi).sqrt();
    ((g / r).sqrt() / std::f64::consts::TAU, ratio)
}

/// Support function (farthest extent along the unit direction `n`, in the geom's frame) of
/// the true MuJoCo shapes and of backdrive's.
fn support(kind: GeomType, size: &[f64], n: DVec3) -> f64 {
    match kind {
        GeomType::Sphere => size[0],
        GeomType::Capsule => size[0] + size[1] * n.z.abs(),
        GeomType::Box => size[0] * n.x.abs() + size[1] * n.y.abs() + size[2] * n.z.abs(),
        GeomType::Cylinder => size[0] * n.truncate().length() + size[1] * n.z.abs(),
        GeomType::Ellipsoid => DVec3::new(size[0] * n.x, size[1] * n.y, size[2] * n.z).length(),
        GeomType::Plane | GeomType::Mesh => 0.0,
    }
}

/// A stated primitive for a geom type backdrive has no contact shape for: the kind, its sizes
/// (as a MuJoCo geom of that kind), the rotation from the geom's frame to the primitive's,
/// and the largest distance (m) by which a contact point can move, measured as the largest
/// difference of the two shapes' extents over directions.
///
/// * A cylinder (radius r, half-height h) becomes a capsule of radius r whose ends reach +-h
///   (segment half-length h - r) when h >= r: exact standing on an end face or lying on its
///   side, at most r (sqrt 2 - 1) = 0.41 r off at the rim; a flat one (h < r) becomes a box
///   (r, r, h), exact on its face, at most 0.41 r off at its corners.
/// * An ellipsoid becomes a capsule along its longest semi-axis c, with the larger of the
///   other two as radius rho, its ends reaching +-c (segment half-length c - rho): exact for a
///   sphere, off by at most the listed distance otherwise.
pub(super) fn approximate(
    kind: GeomType,
    size: &[f64],
) -> Option<(GeomType, Vec<f64>, DQuat, f64)> {
    let (approx, asize, rot) = match kind {
        GeomType::Cylinder => {
            let (r, h) = (size[0], size[1]);
            if h >= r {
                (GeomType::Capsule, vec![r, h - r], DQuat::IDENTITY)
            } else {
                (GeomType::Box, vec![r, r, h], DQuat::IDENTITY)
            }
        }
        GeomType::Ellipsoid => {
            let axis = (0..3)
                .max_by(|&a, &b| size[a].total_cmp(&size[b]))
                .unwrap_or(2);
            let c = size[axis];
            let rho = (0..3)
                .filter(|&k| k != axis)
                .map(|k| size[k])
                .fold(0.0, f64::max);
            let to_axis = match axis {
                0 => DQuat::from_rotation_arc(DVec3::Z, DVec3::X),
                1 => DQuat::from_rotation_arc(DVec3::Z, DVec3::Y),
                _ => DQuat::IDENTITY,
            };
            (GeomType::Capsule, vec![rho, (c - rho).max(0.0)], to_axis)
        }
        _ => return None,
    };
    // Directions on a latitude-longitude grid (both shapes are symmetric under reflection).
    let mut worst = 0.0_f64;
    let steps = 48;
    for i in 0..=steps {
        let theta = std::f64::consts::PI * i as f64 / steps as f64;
        for j in 0..(2 * steps) {
            let phi = std::f64::consts::PI * j as f64 / steps as f64;
            let n = DVec3::new(
                theta.sin() * phi.cos(),
                theta.sin() * phi.sin(),
                theta.cos(),
            );
            let d = support(kind, size, n) - support(approx, &asize, rot.inverse() * n);
            worst = worst.max(d.abs());
        }
    }
    Some((approx, asize, rot, worst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat_terrain(asset: &str, geom_extra: &str) -> String {
        format!(
            r#"<mujoco>
  <asset>
    {asset}
  </asset>
  <worldbody>
    <geom name="terrain" type="hfield" hfield="terrain" pos="1 2 -.01"{geom_extra}/>
    <body name="ball" pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size=".1"/>
    </body>
  </worldbody>
</mujoco>"#
        )
    }

    #[test]
    fn a_limits_softness_is_mujocos_spring_of_its_violation() {
        // Defaults: k = 1 / (0.95 * 0.02)^2, b = 2 / (0.95 * 0.02); r'' = -0.95 (b r' + k r).
        let (f, z) = limit_softness(DEFAULT_SOLREF, &DEFAULT_SOLIMP, 0.001);
        let omega = (1.0_f64 / (0.95 * 0.02 * 0.02)).sqrt();
        assert!((f - omega / std::f64::consts::TAU).abs() < 1e-9, "{f}");
        assert!((f - 8.17).abs() < 0.01, "{f}");
        assert!((z - 0.95_f64.sqrt()).abs() < 1e-9, "{z}");
        // MuJoCo's time constant is at least two steps: 0.02 s at a 0.02 s step acts as 0.04 s.
        let (slow, _) = limit_softness(DEFAULT_SOLREF, &DEFAULT_SOLIMP, 0.02);
        assert!((slow - f / 2.0).abs() < 1e-9, "{slow}");
        // Direct stiffness and damping: solref = (-k, -b).
        let (f, z) = limit_softness([-400.0, -10.0], &DEFAULT_SOLIMP, 0.001);
        let (k, b) = (400.0 / (0.95 * 0.95), 10.0 / 0.95);
        let omega = (0.95_f64 * k).sqrt();
        assert!((f - omega / std::f64::consts::TAU).abs() < 1e-9, "{f}");
        assert!((z - 0.95 * b / (2.0 * omega)).abs() < 1e-9, "{z}");
    }

    #[test]
    fn limited_joints_set_the_models_limit_softness() {
        let model = |joints: &str| {
            format!(
                r#"<mujoco>
  <option timestep="0.002"/>
  <default><joint solimplimit="0 .99 .01"/></default>
  <worldbody>
    <body name="a" pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size=".1"/>
      <body name="b" pos=".3 0 0">
        {joints}
        <geom type="sphere" size=".1"/>
      </body>
    </body>
  </worldbody>
</mujoco>"#
            )
        };
        let mujoco = MjcfOptions {
            mujoco_limit_softness: true,
            ..MjcfOptions::default()
        };
        // By default the limits keep the joints' softness.
        let text = model(r#"<joint name="j" axis="0 1 0" range="-1 1" solreflimit=".05 1"/>"#);
        let imp = from_str(&text, None, &MjcfOptions::default()).unwrap();
        assert_eq!(imp.model.settings.limit_frequency, None);
        assert!(
            imp.warnings
                .iter()
                .any(|w| w.message.contains("solreflimit is ignored")),
            "{:?}",
            imp.warnings
        );
        // The class's solimplimit with the default solreflimit: dmax 0.99.
        let text = model(r#"<joint name="j" axis="0 1 0" range="-1 1"/>"#);
        let imp = from_str(&text, None, &mujoco).unwrap();
        let s = &imp.model.settings;
        let (f, z) = limit_softness(DEFAULT_SOLREF, &[0.0, 0.99, 0.01, 0.5, 2.0], 0.002);
        assert_eq!(s.limit_frequency, Some(f as f32));
        assert_eq!(s.limit_damping_ratio, Some(z as f32));
        assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
        // Unlimited joints leave the joints' softness on the limits.
        let text = model(r#"<joint name="j" axis="0 1 0"/>"#);
        let imp = from_str(&text, None, &mujoco).unwrap();
        assert_eq!(imp.model.settings.limit_frequency, None);
        // Two limits asking for different softnesses: one warning at the other's line.
        let text = model(
            r#"<joint name="j" axis="0 1 0" range="-1 1" solreflimit=".05 1"/>
        <joint name="k" axis="1 0 0" range="-1 1"/>"#,
        );
        let imp = from_str(&text, None, &mujoco).unwrap();
        let warned: Vec<_> = imp
            .warnings
            .iter()
            .filter(|w| {
                w.message
                    .contains("joint limits ask for 2 different softnesses")
            })
            .collect();
        assert_eq!(warned.len(), 1, "{:?}", imp.warnings);
        // A bad solimplimit is an error naming its line.
        let text = model(r#"<joint name="j" axis="0 1 0" range="-1 1" solimplimit=".9 .95"/>"#);
        let err = from_str(&text, None, &MjcfOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("line 9: joint.solimplimit"),
            "{err}"
        );
    }

    #[test]
    fn a_flat_height_field_is_the_box_it_encloses() {
        let text = flat_terrain(
            r#"<hfield name="terrain" nrow="3" ncol="3" size="30 20 5 .1"/>"#,
            "",
        );
        let imp = from_str(&text, None, &MjcfOptions::default()).unwrap();
        let shapes = &imp.model.world_shapes;
        assert_eq!(shapes.len(), 1, "{shapes:?}");
        match shapes[0].kind {
            crate::model::WorldShapeKind::Box { half_extents } => {
                assert_eq!(half_extents, [30.0, 20.0, 0.05]);
            }
            ref other => panic!("expected a box, got {other:?}"),
        }
        // The box's top is the height field's surface, at the geom's z.
        let p = shapes[0].position;
        assert!(
            (p[0] - 1.0).abs() < 1e-6 && (p[1] - 2.0).abs() < 1e-6,
            "{p:?}"
        );
        assert!((p[2] + 0.01 + 0.05).abs() < 1e-6, "{p:?}");
        assert!(
            imp.warnings
                .iter()
                .any(|w| w.message.contains("flat height field")),
            "{:?}",
            imp.warnings
        );
        // An explicit all-zero elevation is flat too.
        let text = flat_terrain(
            r#"<hfield name="terrain" nrow="2" ncol="2" size="3 3 1 .2" elevation="0 0 0 0"/>"#,
            "",
        );
        assert!(from_str(&text, None, &MjcfOptions::default()).is_ok());
    }

    #[test]
    fn height_fields_with_relief_are_refused_with_their_line() {
        for asset in [
            r#"<hfield name="terrain" file="hills.png" size="30 30 5 .1"/>"#,
            r#"<hfield name="terrain" nrow="2" ncol="2" size="3 3 1 .2" elevation="0 1 0 0"/>"#,
        ] {
            let text = flat_terrain(asset, "");
            let err = from_str(&text, None, &MjcfOptions::default()).unwrap_err();
            let Error::Model(m) = &err else {
                panic!("{err}")
            };
            assert_eq!(m.line, Some(3), "{err}");
            assert!(m.message.contains("height field 'terrain'"), "{err}");
            assert!(m.message.contains("geom 'terrain' was dropped"), "{err}");
        }
        // A visual-only height field with relief is skipped as before.
        let text = flat_terrain(
            r#"<hfield name="terrain" file="hills.png" size="30 30 5 .1"/>"#,
            r#" contype="0" conaffinity="0""#,
        );
        let imp = from_str(&text, None, &MjcfOptions::default()).unwrap();
        assert!(imp.model.world_shapes.is_empty());
    }

    #[test]
    fn default_solref_maps_near_backdrive_default() {
        let (f, z) = contact_softness(DEFAULT_SOLREF, &DEFAULT_SOLIMP, 9.81);
        // Resting penetration under MuJoCo's defaults is about 0.37 mm (inside solimp's 1 mm
        // width, where the impedance is near dmin = 0.9).
        let r = 9.81 / (std::f64::consts::TAU * f).powi(2);
        assert!(r > 2e-4 && r < 5e-4, "{r}");
        assert_eq!(z, 1.0);
        // A stiffer time constant gives a higher frequency; the damping ratio follows solref.
        let (f2, z2) = contact_softness([0.01, 0.5], &DEFAULT_SOLIMP, 9.81);
        assert!(f2 > f, "{f2} {f}");
        assert_eq!(z2, 0.5);
    }

    #[test]
    fn direct_solref_uses_stiffness_and_damping() {
        // k = 10000 / dmax^2, with a wide solimp (d = dmax = 0.95 everywhere past r = 0).
        let solimp = [0.95, 0.95, 0.001, 0.5, 2.0];
        let (f, z) = contact_softness([-10000.0, -30.0], &solimp, 9.81);
        let k: f64 = 10000.0 / (0.95 * 0.95);
        let r = (1.0 - 0.95) * 9.81 / (k * 0.95 * 0.95);
        assert!((f - (9.81 / r).sqrt() / std::f64::consts::TAU).abs() < 1e-6 * f);
        assert!((z - (30.0 / 0.95) / (2.0 * k.sqrt())).abs() < 1e-9);
    }

    #[test]
    fn cylinder_and_ellipsoid_approximations_are_bounded() {
        let (kind, size, _, dev) = approximate(GeomType::Cylinder, &[0.1, 0.3]).unwrap();
        assert_eq!((kind, size.len()), (GeomType::Capsule, 2));
        assert!((size[1] - 0.2).abs() < 1e-12);
        // The rim sticks out of the capsule by r (sqrt 2 - 1) at most.
        assert!((dev - 0.1 * (2f64.sqrt() - 1.0)).abs() < 2e-3, "{dev}");
        let (kind, _, _, dev) = approximate(GeomType::Cylinder, &[0.1, 0.02]).unwrap();
        assert_eq!(kind, GeomType::Box);
        assert!(dev <= 0.1 * (2f64.sqrt() - 1.0) + 1e-9, "{dev}");
        let (kind, size, rot, dev) = approximate(GeomType::Ellipsoid, &[0.3, 0.1, 0.1]).unwrap();
        assert_eq!(kind, GeomType::Capsule);
        assert!((size[0] - 0.1).abs() < 1e-12 && (size[1] - 0.2).abs() < 1e-12);
        // The capsule's axis (z) lies along the ellipsoid's long x axis.
        assert!((rot * DVec3::Z - DVec3::X).length() < 1e-12);
        assert!(dev > 0.0 && dev < 0.1, "{dev}");
        let (_, _, _, dev) = approximate(GeomType::Ellipsoid, &[0.2, 0.2, 0.2]).unwrap();
        assert!(dev < 1e-12, "a sphere is exact: {dev}");
    }
}
