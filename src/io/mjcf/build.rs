//! Building the backdrive [`Model`] from the intermediate tree: merging MJCF bodies into
//! backdrive bodies, principal frames, shapes, joints and actuators.

use super::*;

/// A backdrive body being assembled: the MJCF bodies merged into it.
struct Group {
    /// The MJCF body that owns the joints (the group's root).
    root: usize,
    members: Vec<usize>,
}

type Built = (
    Model,
    Vec<BodyFrame>,
    HashMap<String, (String, JKind)>,
    Vec<BodyMass>,
);

/// Names handed out once each: a taken name gets the first free suffix `_1`, `_2`...
#[derive(Default)]
struct UniqueNames {
    used: HashSet<String>,
}

impl UniqueNames {
    fn take(&mut self, base: &str) -> String {
        let mut s = base.to_string();
        let mut k = 1;
        while self.used.contains(&s) {
            s = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(s.clone());
        s
    }
}

/// The model under construction with the names it has handed out.
struct ModelBuilder {
    model: Model,
    body_names: UniqueNames,
    joint_names: UniqueNames,
    /// MJCF joint name to backdrive joint name and kind, for the actuators.
    joint_map: HashMap<String, (String, JKind)>,
}

/// A group's mass in its principal frame: the inertia is clamped below (`boundinertia`).
struct GroupMass {
    mass: MassPart,
    inertia: [f64; 3],
    rot: DQuat,
}

impl Ctx<'_, '_> {
    pub(super) fn build(
        &mut self,
        world: &World,
        name: &str,
        mut settings: Settings,
    ) -> Result<Built> {
        let n = world.bodies.len();
        let (group_of, groups) = self.group_bodies(world);
        let g_norm = DVec3::from_array(settings.gravity.map(f64::from)).length();
        let (mut bodies, softness) = self.attach_geoms(world, &group_of, g_norm);
        self.contact_settings(&softness, &mut settings);
        if !world.limit_off && self.options.mujoco_limit_softness {
            let dt = f64::from(settings.dt);
            let limits: Vec<Softness> = world
                .bodies
                .iter()
                .flat_map(|b| &b.joints)
                .filter(|j| j.limits.is_some())
                .map(|j| {
                    let (frequency, damping_ratio) =
                        limit_softness(j.passive.limit_solref, &j.passive.limit_solimp, dt);
                    Softness {
                        frequency,
                        damping_ratio,
                        line: j.passive.limit_line,
                    }
                })
                .collect();
            self.limit_settings(&limits, &mut settings);
        }
        if !world.limit_off && self.options.mujoco_limit_impedance {
            let asked: Vec<(crate::model::Impedance, usize)> = world
                .bodies
                .iter()
                .flat_map(|b| &b.joints)
                .filter(|j| j.limits.is_some())
                .map(|j| {
                    let imp = mujoco_impedance(j.passive.limit_solref, &j.passive.limit_solimp);
                    (imp, j.passive.limit_line)
                })
                .collect();
            self.limit_impedance_setting(&asked, &mut settings);
        }
        self.unused_pairs(world);
        self.self_collision_warning(&bodies, world, &group_of);
        let body_mass = self.body_masses(&bodies);
        let masses = body_mass
            .iter()
            .zip(&bodies)
            .map(|(m, b)| own_mass(b, m.as_ref()))
            .collect();
        springdamper::apply_springdampers(&mut bodies, &body_mass);

        let mut out = ModelBuilder {
            model: Model {
                name: name.to_string(),
                settings,
                bodies: Vec::new(),
                joints: Vec::new(),
                actuators: Vec::new(),
                world_shapes: Vec::new(),
                tendons: Vec::new(),
            },
            body_names: UniqueNames::default(),
            joint_names: UniqueNames::default(),
            joint_map: HashMap::new(),
        };
        // Reserve the MJCF body names of group roots first so that intermediates never take them.
        let group_names: Vec<String> = groups
            .iter()
            .map(|g| out.body_names.take(&bodies[g.root].name))
            .collect();
        let mut frames = vec![None; n];
        let mut bd_index_of_group = vec![0usize; groups.len()];
        for (gi, g) in groups.iter().enumerate() {
            let root = &bodies[g.root];
            let gm = self.group_mass(root, g, &body_mass)?;
            let inv = gm.rot.inverse();
            let (shapes, friction) = group_shapes(g, &bodies, &gm.mass, inv);

            // Parent backdrive body of the group root.
            let parent_name = root
                .parent
                .and_then(|p| group_of[p])
                .map(|pg| out.model.bodies[bd_index_of_group[pg]].name.clone());
            let fraction = self.joint_chain(
                &mut out,
                root,
                world.limit_off,
                parent_name,
                &group_names[gi],
                &gm,
            );
            let keep = 1.0 - fraction;
            bd_index_of_group[gi] = out.model.bodies.len();
            out.model.bodies.push(Body {
                name: group_names[gi].clone(),
                mass: (gm.mass.mass * keep) as f32,
                inertia: Some(gm.inertia.map(|i| (i * keep) as f32)),
                position: gm.mass.com.as_vec3().to_array(),
                orientation: quat_f32(gm.rot),
                linear_velocity: [0.0; 3],
                angular_velocity: [0.0; 3],
                friction: friction.unwrap_or(1.0) as f32,
                restitution: 0.0,
                shapes,
                fluid_drag: true,
            });
            for &m in &g.members {
                let b = &bodies[m];
                frames[m] = Some(BodyFrame {
                    name: b.name.clone(),
                    body: Some(bd_index_of_group[gi]),
                    offset: (inv * (b.pos - gm.mass.com)).as_vec3().to_array(),
                    rotation: quat_f32(inv * b.rot),
                });
            }
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
        Ok((out.model, frames, out.joint_map, masses))
    }

    /// Which group (backdrive body) each MJCF body belongs to (None = static, part of the
    /// world), and the groups.
    fn group_bodies(&self, world: &World) -> (Vec<Option<usize>>, Vec<Group>) {
        let n = world.bodies.len();
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
        (group_of, groups)
    }

    /// The bodies with their geoms attached: mass always, shapes when they can touch the floor;
    /// and the soft-contact setting (frequency, damping ratio, line) each contact shape asks
    /// for.
    fn attach_geoms(
        &self,
        world: &World,
        group_of: &[Option<usize>],
        g_norm: f64,
    ) -> (Vec<MjBody>, Vec<Softness>) {
        let mut bodies: Vec<MjBody> = world.bodies.clone();
        let mut softness = Vec::new();
        let mut approximated: Vec<(f64, String, GeomType)> = Vec::new();
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
                        self.place(g.line)
                    } else {
                        g.name.clone()
                    },
                    contype: g.contype,
                    conaffinity: g.conaffinity,
                });
            }
            let Some(floor) = &world.floor else { continue };
            // A static body's geoms are world shapes (`static_body_geoms`).
            if world.contact_off || group_of[*b].is_none() {
                continue;
            }
            if !self.touches_floor(g, &body.name, floor, world) {
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
                    let Some((kind, size, to_approx, deviation)) = approximate(other, &g.size)
                    else {
                        continue;
                    };
                    approximated.push((deviation, self.place(g.line), other));
                    let kind = match kind {
                        GeomType::Capsule => ShapeKind::Capsule {
                            radius: (size[0] + inflate) as f32,
                            half_length: size[1] as f32,
                        },
                        _ => ShapeKind::Box {
                            half_extents: [
                                (size[0] + inflate) as f32,
                                (size[1] + inflate) as f32,
                                (size[2] + inflate) as f32,
                            ],
                        },
                    };
                    body.shapes.push(MjShape {
                        kind,
                        pos: g.pos,
                        rot: (g.rot * to_approx).normalize(),
                    });
                    softness.push(self.softness(g, floor, g_norm));
                    let f = if g.condim == 1 || floor.friction == 0.0 {
                        0.0
                    } else {
                        g.friction.max(floor.friction)
                    };
                    body.friction = Some(body.friction.map_or(f, |x: f64| x.max(f)));
                    continue;
                }
            };
            softness.push(self.softness(g, floor, g_norm));
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
        self.approximation_warning(&approximated);
        self.massive_mesh_error();
        let visual = self.diag.borrow().visual_skipped;
        if visual > 0 {
            self.warn(
                1,
                "geom",
                format!(
                    "{visual} visual-only mesh/height-field geom(s) skipped (they do not \
                     collide and their mass is not needed)"
                ),
            );
        }
        (bodies, softness)
    }

    /// Mass of each MJCF body, after `inertiafromgeom`, `boundmass` and `settotalmass`.
    fn body_masses(&self, bodies: &[MjBody]) -> Vec<Option<MassPart>> {
        let mut body_mass: Vec<Option<MassPart>> = Vec::with_capacity(bodies.len());
        for b in bodies {
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
        body_mass
    }

    /// The combined mass of a group in its principal frame.
    fn group_mass(
        &self,
        root: &MjBody,
        g: &Group,
        body_mass: &[Option<MassPart>],
    ) -> Result<GroupMass> {
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
        Ok(GroupMass { mass, inertia, rot })
    }

    /// The joints between a group and its parent: several joints need intermediate bodies,
    /// a jointless body kept separate is welded. Returns the fraction of the group's mass the
    /// intermediate bodies carry.
    fn joint_chain(
        &self,
        out: &mut ModelBuilder,
        root: &MjBody,
        limit_off: bool,
        parent_name: Option<String>,
        group_name: &str,
        gm: &GroupMass,
    ) -> f64 {
        let GroupMass { mass, inertia, rot } = gm;
        let (inertia, rot) = (*inertia, *rot);
        let joints = if limit_off {
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
        if let Some(frame_axes) = compound_frame_axes(&joints) {
            self.compound_joint(out, &joints, &frame_axes, parent_name, group_name);
            return 0.0;
        }
        let n_inter = joints.len().saturating_sub(1);
        let fraction = if n_inter > 0 {
            self.options.intermediate_mass_fraction
        } else {
            0.0
        };
        let mut prev = parent_name.clone();
        for (k, j) in joints.iter().enumerate() {
            let child_name = if k + 1 == joints.len() {
                group_name.to_string()
            } else {
                let nm = out.body_names.take(&format!("{}__{}", root.name, j.name));
                let share = fraction / n_inter as f64;
                out.model.bodies.push(Body {
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
                    // The fluid acts on the body itself, whose box is the whole body's.
                    fluid_drag: false,
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
            let jname = out.joint_names.take(&j.name);
            out.model.joints.push(Joint {
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
                damping: j.passive.damping as f32,
                stiffness: j.passive.stiffness as f32,
                springref: j.passive.springref as f32,
                frictionloss: j.passive.frictionloss as f32,
                armature: j.passive.armature as f32,
                // The limits and springref are already measured from the model pose.
                reference: 0.0,
                shared_frame: None,
            });
            out.joint_map.insert(j.name.clone(), (jname, j.kind));
            prev = Some(child_name);
        }
        if joints.is_empty() && !root.free {
            // A jointless body kept separate: weld it.
            let jname = out.joint_names.take(&format!("{}_weld", root.name));
            out.model.joints.push(Joint {
                name: jname,
                kind: JointKind::Fixed,
                parent: parent_name.clone(),
                child: group_name.to_string(),
                anchor: mass.com.as_vec3().to_array(),
                axis: [1.0, 0.0, 0.0],
                limits: None,
                damping: 0.0,
                stiffness: 0.0,
                springref: 0.0,
                frictionloss: 0.0,
                armature: 0.0,
                reference: 0.0,
                shared_frame: None,
            });
        }
        fraction
    }

    /// A body's slides and hinge as one compound joint between the parent and the body: one
    /// backdrive joint per MJCF joint, each with its own coordinate, limits and passive rows,
    /// all at the hinge's anchor (the slides' anchors do not move anything) sharing one frame.
    fn compound_joint(
        &self,
        out: &mut ModelBuilder,
        joints: &[MjJoint],
        frame_axes: &[u32],
        parent_name: Option<String>,
        group_name: &str,
    ) {
        let anchor = joints
            .iter()
            .find(|j| j.kind == JKind::Hinge)
            .unwrap_or(&joints[0])
            .anchor;
        // Backdrive body names are unique, and a body has one compound.
        let compound = group_name.to_string();
        for (j, &frame_axis) in joints.iter().zip(frame_axes) {
            let jname = out.joint_names.take(&j.name);
            out.model.joints.push(Joint {
                name: jname.clone(),
                kind: if j.kind == JKind::Hinge {
                    JointKind::Hinge
                } else {
                    JointKind::Slider
                },
                parent: parent_name.clone(),
                child: group_name.to_string(),
                anchor: anchor.as_vec3().to_array(),
                axis: j.axis.as_vec3().to_array(),
                limits: j.limits.map(|[lo, hi]| [lo as f32, hi as f32]),
                damping: j.passive.damping as f32,
                stiffness: j.passive.stiffness as f32,
                springref: j.passive.springref as f32,
                frictionloss: j.passive.frictionloss as f32,
                armature: j.passive.armature as f32,
                // The limits and springref are already measured from the model pose.
                reference: 0.0,
                shared_frame: Some(SharedFrame {
                    compound: compound.clone(),
                    frame_axis,
                }),
            });
            out.joint_map.insert(j.name.clone(), (jname, j.kind));
        }
    }
}

/// Largest `|cos|` between two joint axes taken as perpendicular (and `1 - cos` as parallel).
const COMPOUND_AXIS_TOLERANCE: f64 = 1e-6;

/// The frame axis of each joint when a body's joints form one compound joint (see
/// `crate::model::SharedFrame`): two or more joints, slides first and at most one hinge last,
/// the hinge's axis (else the first slide's) the frame's x, every slide along it (in the same
/// direction) or perpendicular to it and to the other slides. Frame y and z go to the two
/// perpendicular slides in the order that makes the frame right-handed. `None`: chain them.
fn compound_frame_axes(joints: &[MjJoint]) -> Option<Vec<u32>> {
    if joints.len() < 2 {
        return None;
    }
    let (last, slides) = joints.split_last()?;
    if slides.iter().any(|j| j.kind != JKind::Slide)
        || !matches!(last.kind, JKind::Slide | JKind::Hinge)
    {
        return None;
    }
    let x = if last.kind == JKind::Hinge {
        last.axis
    } else {
        joints[0].axis
    }
    .normalize();
    let mut axes = vec![0u32; joints.len()];
    let mut along_x = false;
    let mut perpendicular: Vec<usize> = Vec::new();
    for (k, j) in joints.iter().enumerate() {
        if j.kind == JKind::Hinge {
            axes[k] = 3;
            continue;
        }
        let a = j.axis.normalize();
        let cos = a.dot(x);
        if cos >= 1.0 - COMPOUND_AXIS_TOLERANCE && !along_x {
            along_x = true;
            axes[k] = 0;
        } else if cos.abs() <= COMPOUND_AXIS_TOLERANCE {
            perpendicular.push(k);
        } else {
            return None;
        }
    }
    match perpendicular.as_slice() {
        [] => {}
        [p] => axes[*p] = 1,
        [p, q] => {
            let (a, b) = (joints[*p].axis.normalize(), joints[*q].axis.normalize());
            if a.dot(b).abs() > COMPOUND_AXIS_TOLERANCE {
                return None;
            }
            let right_handed = x.cross(a).dot(b) > 0.0;
            axes[*p] = if right_handed { 1 } else { 2 };
            axes[*q] = if right_handed { 2 } else { 1 };
        }
        _ => return None,
    }
    Some(axes)
}

/// A group's contact shapes in its principal frame, and its friction (the largest of its
/// members').
fn group_shapes(
    g: &Group,
    bodies: &[MjBody],
    mass: &MassPart,
    inv: DQuat,
) -> (Vec<Shape>, Option<f64>) {
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
    (shapes, friction)
}

/// An MJCF body's own mass, centre of mass and principal moments (largest first).
fn own_mass(body: &MjBody, mass: Option<&MassPart>) -> BodyMass {
    let Some(m) = mass else {
        return BodyMass {
            name: body.name.clone(),
            mass: 0.0,
            com: body.pos.to_array(),
            inertia: [0.0; 3],
        };
    };
    let (mut moments, _) = symmetric_eigen(&m.inertia);
    moments.sort_by(|a, b| b.total_cmp(a));
    BodyMass {
        name: body.name.clone(),
        mass: m.mass,
        com: m.com.to_array(),
        inertia: moments,
    }
}

fn quat_f32(q: DQuat) -> [f32; 4] {
    let q = q.normalize();
    let q = if q.w < 0.0 { -q } else { q };
    [q.x as f32, q.y as f32, q.z as f32, q.w as f32]
}

/// MuJoCo's `solref`/`solimp` as a [`crate::model::Impedance`], clamped where MuJoCo clamps
/// them (impedances and midpoint to [1e-4, 0.9999], width >= 0, power >= 1).
pub(super) fn mujoco_impedance(solref: [f64; 2], solimp: &[f64; 5]) -> crate::model::Impedance {
    let unit = |x: f64| x.clamp(1e-4, 0.9999) as f32;
    crate::model::Impedance {
        solref: solref.map(|x| x as f32),
        solimp: [
            unit(solimp[0]),
            unit(solimp[1]),
            solimp[2].max(0.0) as f32,
            unit(solimp[3]),
            solimp[4].max(1.0) as f32,
        ],
    }
}

impl Ctx<'_, '_> {
    /// Sets `settings.limit_impedance` to what most limited joints ask for (ties: the first in
    /// file order); one warning naming another joint's line if they differ.
    fn limit_impedance_setting(
        &self,
        asked: &[(crate::model::Impedance, usize)],
        settings: &mut Settings,
    ) {
        let mut counts: Vec<(crate::model::Impedance, usize, usize)> = Vec::new();
        for &(imp, line) in asked {
            match counts.iter_mut().find(|(k, _, _)| *k == imp) {
                Some(entry) => entry.1 += 1,
                None => counts.push((imp, 1, line)),
            }
        }
        let Some(&(chosen, _, _)) = counts.iter().rev().max_by_key(|(_, n, _)| *n) else {
            return;
        };
        settings.limit_impedance = Some(chosen);
        if let Some(&(other, _, line)) = counts.iter().find(|(k, _, _)| *k != chosen) {
            self.warn(
                line,
                "joint",
                format!(
                    "joint limits ask for {} different solreflimit/solimplimit; backdrive has one \
                     per model: solref {:?}, solimp {:?} (used by most limited joints) instead of \
                     solref {:?}, solimp {:?} here",
                    counts.len(),
                    chosen.solref,
                    chosen.solimp,
                    other.solref,
                    other.solimp
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Impedance;

    #[test]
    fn limited_joints_set_the_models_limit_impedance() {
        let model = |joints: &str| {
            format!(
                r#"<mujoco>
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
            mujoco_limit_impedance: true,
            ..MjcfOptions::default()
        };
        // Off by default.
        let text = model(r#"<joint name="j" axis="0 1 0" range="-1 1"/>"#);
        let imp = from_str(&text, None, &MjcfOptions::default()).unwrap();
        assert_eq!(imp.model.settings.limit_impedance, None);
        // On: the class's solimplimit with its d0 of 0 clamped to MuJoCo's 1e-4, the default
        // solreflimit; no warning.
        let imp = from_str(&text, None, &mujoco).unwrap();
        assert_eq!(
            imp.model.settings.limit_impedance,
            Some(Impedance {
                solref: [0.02, 1.0],
                solimp: [1e-4, 0.99, 0.01, 0.5, 2.0],
            })
        );
        assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
        imp.model.validate().unwrap();
        // Unlimited joints leave the soft row.
        let text = model(r#"<joint name="j" axis="0 1 0"/>"#);
        let imp = from_str(&text, None, &mujoco).unwrap();
        assert_eq!(imp.model.settings.limit_impedance, None);
        // Two limits asking for different ones: one warning.
        let text = model(
            r#"<joint name="j" axis="0 1 0" range="-1 1" solreflimit=".05 1"/>
        <joint name="k" axis="1 0 0" range="-1 1"/>
        <joint name="l" axis="0 0 1" range="-1 1"/>"#,
        );
        let imp = from_str(&text, None, &mujoco).unwrap();
        let s = imp.model.settings.limit_impedance.unwrap();
        assert_eq!(s.solref, [0.02, 1.0]);
        let warnings: Vec<_> = imp
            .warnings
            .iter()
            .filter(|w| w.message.contains("solreflimit/solimplimit"))
            .collect();
        assert_eq!(warnings.len(), 1, "{:?}", imp.warnings);
    }
}
