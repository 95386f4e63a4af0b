//! Geoms: pose, size, mass and contact properties, and geoms of the world body.

use super::*;

/// A geom's contact properties.
struct GeomContact {
    friction: f64,
    condim: i64,
    contype: i64,
    conaffinity: i64,
    margin: f64,
    gap: f64,
}

impl<'a, 'input> Ctx<'a, 'input> {
    /// A geom's pose, size, mass and contact properties (world frame).
    pub(super) fn geom(&mut self, el: &El, bpos: DVec3, brot: DQuat) -> Result<Option<Geom>> {
        let node = el.node;
        self.check_attrs(node, GEOM_KNOWN, GEOM_SILENT);
        let line = self.line(node);
        let name = node.attribute("name").unwrap_or("").to_string();
        let label = if name.is_empty() {
            format!("geom at line {line}")
        } else {
            format!("geom '{name}'")
        };
        let Some(kind) = self.geom_type(el, &label)? else {
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
            name,
        }))
    }

    /// The geom's type; None for the types that are dropped (mesh, height field, SDF).
    fn geom_type(&self, el: &El, label: &str) -> Result<Option<GeomType>> {
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
        Ok(Some(kind))
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
        Ok((size, lpos, lrot))
    }

    /// The geom's mass: `mass`, or `density` (default 1000) times its volume.
    fn geom_mass(&self, el: &El, label: &str, volume: f64) -> Result<f64> {
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
    fn geom_contact(&self, el: &El, label: &str) -> Result<GeomContact> {
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
        Ok(GeomContact {
            friction,
            condim,
            contype,
            conaffinity,
            margin,
            gap,
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
        friction: if g.condim == 1 { 0.0 } else { g.friction },
        contype: g.contype,
        conaffinity: g.conaffinity,
        margin: g.margin,
        gap: g.gap,
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
    }
}
