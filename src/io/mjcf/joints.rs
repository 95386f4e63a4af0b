//! Joints: names, free joints, hinge/slide/ball joints with their ranges, and the joint
//! attributes backdrive cannot honour.

use super::*;

impl<'a, 'input> Ctx<'a, 'input> {
    /// Records a joint's name, refusing one already taken: actuators refer to joints by name.
    pub(super) fn unique_joint_name(
        &self,
        node: Node,
        name: &str,
        world: &mut World,
    ) -> Result<()> {
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

    pub(super) fn free_joint(
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

    pub(super) fn joint(
        &mut self,
        el: &El<'a, 'input>,
        index: usize,
        world: &mut World,
    ) -> Result<()> {
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
                    self.free_joint_physics(el, &name)?;
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
        let passive = self.joint_physics(el, &name, kind, reference)?;
        world.bodies[index].joints.push(MjJoint {
            name,
            kind,
            anchor,
            axis,
            limits,
            passive,
            reference: match kind {
                JKind::Hinge => self.angle(reference),
                _ => reference,
            },
        });
        Ok(())
    }

    /// A free joint's passive attributes: backdrive's free bodies have no joint to carry
    /// damping or armature, so non-zero values are unsupported (every suite model sets them
    /// to zero on its free joints, or uses `<freejoint/>`, which has none).
    pub(super) fn free_joint_physics(&mut self, el: &El, name: &str) -> Result<()> {
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
        Ok(())
    }

    /// A hinge, slide or ball joint's passive dynamics (`damping`, `stiffness`, `springref`,
    /// `frictionloss`, `armature`; springref measured from the model pose, which is `ref`), and
    /// warnings for the joint attributes backdrive models differently.
    pub(super) fn joint_physics(
        &mut self,
        el: &El,
        name: &str,
        kind: JKind,
        reference: f64,
    ) -> Result<JointPassive> {
        let mut passive = JointPassive::default();
        for (attr, value) in [
            ("damping", &mut passive.damping),
            ("stiffness", &mut passive.stiffness),
            ("frictionloss", &mut passive.frictionloss),
            ("armature", &mut passive.armature),
        ] {
            if let Some(v) = self.get(el, attr)? {
                let x = self.fixed::<1>(el, &v)?[0];
                if x < 0.0 {
                    return Err(self.error(
                        v.line,
                        "joint",
                        format!(
                            "joint '{name}': {attr}=\"{}\"{}: expected a non-negative number",
                            v.text.trim(),
                            v.origin()
                        ),
                    ));
                }
                *value = x;
            }
        }
        // Damping and armature are one implicit velocity row on the joint's axis
        // (models/README.md), which the solver solves exactly together with the axis's limit
        // row: a rotor heavy against a light body (the gymnasium ant: armature 1 on legs of
        // 0.04 kg) leaves projected Gauss-Seidel between the two rows converging by about
        // 0.999 per sweep.
        let springref = self.num(el, "springref")?.unwrap_or(0.0);
        passive.springref = match kind {
            JKind::Hinge => self.angle(springref) - self.angle(reference),
            JKind::Slide => springref - reference,
            JKind::Ball => {
                if springref != 0.0 {
                    self.unsupported(
                        self.attr_line(el.node, "springref"),
                        "joint",
                        format!("joint '{name}': springref on a ball joint is not supported"),
                    );
                }
                0.0
            }
        };
        if kind == JKind::Ball && passive.stiffness != 0.0 {
            self.warn(
                self.attr_line(el.node, "stiffness"),
                "joint",
                format!(
                    "joint '{name}': a ball joint's stiffness acts on each component of the \
                     rotation vector (MuJoCo's on the rotation angle)"
                ),
            );
        }
        self.springdamper(el, name, kind, &mut passive)?;
        self.limit_solver_parameters(el, name, &mut passive)?;
        self.joint_attribute_warnings(el, name)?;
        Ok(passive)
    }

    /// Warnings for the joint attributes that backdrive models differently.
    fn joint_attribute_warnings(&mut self, el: &El, name: &str) -> Result<()> {
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
        Ok(())
    }

    /// The joint limit's `solreflimit` and `solimplimit`, read as a geom's `solref` and
    /// `solimp` are; the model's limit softness is mapped from them (`limit_softness`).
    fn limit_solver_parameters(
        &mut self,
        el: &El,
        name: &str,
        passive: &mut JointPassive,
    ) -> Result<()> {
        passive.limit_solref = DEFAULT_SOLREF;
        passive.limit_solimp = DEFAULT_SOLIMP;
        passive.limit_line = self.line(el.node);
        for attr in ["solreflimit", "solimplimit"] {
            if let Some(v) = self.get(el, attr)?
                && v.class.is_none()
                && !self.options.mujoco_limit_softness
                && !self.options.mujoco_limit_impedance
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
        if let Some(v) = self.get(el, "solreflimit")? {
            let x = self.fixed::<2>(el, &v)?;
            passive.limit_line = v.line;
            // MuJoCo: both positive or both non-positive; a mixed pair is replaced by its
            // default.
            if (x[0] > 0.0) != (x[1] > 0.0) || x[0] == 0.0 {
                self.warn(
                    v.line,
                    "joint",
                    format!(
                        "joint '{name}': solreflimit {x:?} mixes signs or is zero: MuJoCo's \
                         default {DEFAULT_SOLREF:?} was used"
                    ),
                );
            } else {
                passive.limit_solref = x;
            }
        }
        if let Some(v) = self.get(el, "solimplimit")? {
            let x = self.nums(el, &v)?;
            if !(3..=5).contains(&x.len()) {
                return Err(self.error(
                    v.line,
                    "joint.solimplimit",
                    format!(
                        "joint '{name}': expected 3 to 5 numbers, found {}{}",
                        x.len(),
                        v.origin()
                    ),
                ));
            }
            passive.limit_solimp[..x.len()].copy_from_slice(&x);
            passive.limit_line = v.line;
        }
        Ok(())
    }
}
