//! Actuators: `<motor>` and the other actuator kinds, mapped onto backdrive servos and motors.

use super::*;
use crate::model::{Activation, ActivationDynamics};

impl<'a, 'input> Ctx<'a, 'input> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn actuators(
        &mut self,
        node: Node<'a, 'input>,
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        tendons: &[constraints::FixedTendon],
        model: &mut Model,
        gears: &mut Vec<f32>,
        actuator_names: &mut HashSet<String>,
    ) -> Result<()> {
        self.check_attrs(node, &[], &[]);
        for c in node.children().filter(|n| n.is_element()) {
            match c.tag_name().name() {
                "motor" => {
                    self.motor(c, world, joint_map, tendons, model, gears, actuator_names)?
                }
                "general" | "position" | "velocity" => {
                    let Some(law) = self.affine_law(c, world, joint_map, tendons)? else {
                        continue;
                    };
                    let tag = c.tag_name().name();
                    let first = law.terms[0].joint.clone();
                    let base = c
                        .attribute("name")
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{first}_{tag}"));
                    let mut unique = base.clone();
                    let mut k = 1;
                    while actuator_names.contains(&unique) {
                        unique = format!("{base}_{k}");
                        k += 1;
                    }
                    actuator_names.insert(unique.clone());
                    let max_force = law.force_range[0].abs().max(law.force_range[1].abs());
                    model.actuators.push(Actuator {
                        name: unique,
                        joint: first,
                        axis: 0,
                        kind: ActuatorKind::Affine,
                        gain: 0.0,
                        max_force: if max_force < 1e20 {
                            max_force.max(1e-9)
                        } else {
                            1e6
                        },
                        max_velocity: 1.0e3,
                        affine: Some(law),
                    });
                    // The command is MuJoCo's ctrl itself: the gear is inside the law.
                    gears.push(1.0);
                }
                _ => self.non_motor_actuator(c),
            }
        }
        Ok(())
    }

    /// Actuators other than `<motor>` are dropped: unsupported when MuJoCo knows them.
    fn non_motor_actuator(&self, c: Node) {
        let tag = c.tag_name().name();
        let line = self.line(c);
        let known = [
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
                    "<{tag}> actuators are not supported (only <motor>, <general>, \
                     <position>); it was dropped"
                ),
            );
        } else {
            self.warn(line, tag, format!("unknown actuator <{tag}> was ignored"));
        }
    }

    /// One `<motor>`: appended to the model's actuators with its gear, unless it is dropped.
    /// A motor on a fixed tendon over one joint is a motor on that joint, its gear times the
    /// joint's coefficient.
    #[allow(clippy::too_many_arguments)]
    fn motor(
        &self,
        c: Node<'a, 'input>,
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        tendons: &[constraints::FixedTendon],
        model: &mut Model,
        gears: &mut Vec<f32>,
        actuator_names: &mut HashSet<String>,
    ) -> Result<()> {
        let line = self.line(c);
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
            None => format!("motor at {}", self.place(line)),
        };
        let mut tendon_coefficient = 1.0;
        let on_tendon = c
            .attribute("tendon")
            .and_then(|t| tendons.iter().find(|x| x.name == t))
            .and_then(|t| t.single_joint());
        let joint = match c.attribute("joint").or(c.attribute("jointinparent")) {
            Some(j) => j,
            None if on_tendon.is_some() => {
                let (j, coefficient) = on_tendon.unwrap_or_default();
                tendon_coefficient = coefficient;
                j
            }
            None => {
                if ["tendon", "site", "body"]
                    .iter()
                    .any(|a| c.attribute(*a).is_some())
                {
                    self.unsupported(
                        line,
                        "motor",
                        format!(
                            "{label}: only joint transmissions and fixed tendons over one \
                             joint are supported; dropped"
                        ),
                    );
                    return Ok(());
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
                return Ok(());
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
                format!("{label}: a motor on the ball joint '{joint}' is not supported; dropped"),
            );
            return Ok(());
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
        } * tendon_coefficient;
        if gear == 0.0 {
            return Err(self.error(line, "motor.gear", format!("{label}: gear is zero")));
        }
        let ctrl = self.motor_limit(&el, &label, line, "ctrlrange", "ctrllimited")?;
        let force = self.motor_limit(&el, &label, line, "forcerange", "forcelimited")?;
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
            affine: None,
        });
        gears.push(gear as f32);
        Ok(())
    }

    /// The bound of a symmetric range attribute (`ctrlrange`, `forcerange`): None when it is
    /// not limited.
    fn motor_limit(
        &self,
        el: &El,
        label: &str,
        line: usize,
        attr: &str,
        limited_attr: &str,
    ) -> Result<Option<f64>> {
        let r = match self.get(el, attr)? {
            Some(v) => {
                let [lo, hi] = self.fixed::<2>(el, &v)?;
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
        let limited = match self.tristate(el, limited_attr)? {
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
    }
}

/// MuJoCo's bound meaning "unlimited" in an affine law.
const UNLIMITED: f32 = 1e20;

impl<'a, 'input> Ctx<'a, 'input> {
    /// The force law of a `<general>`, `<position>` or `<velocity>` actuator, with its
    /// activation dynamics (`filter`, `filterexact`, `integrator`; `<position timeconst>`), or
    /// None when it is dropped as unsupported (other activation dynamics, gain or bias types
    /// other than fixed/affine, velocity-dependent bias, transmissions other than hinges,
    /// sliders and fixed tendons).
    fn affine_law(
        &self,
        c: Node<'a, 'input>,
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        tendons: &[constraints::FixedTendon],
    ) -> Result<Option<AffineForce>> {
        let tag = c.tag_name().name();
        let line = self.line(c);
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
                "dyntype",
                "gaintype",
                "biastype",
                "dynprm",
                "gainprm",
                "biasprm",
                "kp",
                "kv",
                "dampratio",
                "timeconst",
                "inheritrange",
                "actearly",
                "actrange",
                "actlimited",
                "actdim",
            ],
            &["group", "user", "lengthrange"],
        );
        let el = self.el(c, Some("actuator"), None);
        let label = match c.attribute("name") {
            Some(n) => format!("{tag} '{n}'"),
            None => format!("{tag} at {}", self.place(line)),
        };
        let drop = |why: String| -> Result<Option<AffineForce>> {
            self.unsupported(line, tag, format!("{label}: {why}; it was dropped"));
            Ok(None)
        };
        // The force law: gain and bias per MuJoCo's shortcut elements, and the activation
        // dynamics (MuJoCo's dyntype and dynprm[0]).
        let mut dynamics = None;
        let (gain, bias) = match tag {
            "general" => {
                for (attr, allowed) in [
                    (
                        "dyntype",
                        &["none", "filter", "filterexact", "integrator"][..],
                    ),
                    ("gaintype", &["fixed"][..]),
                    ("biastype", &["none", "affine"][..]),
                ] {
                    if let Some(v) = self.get(&el, attr)?
                        && !allowed.contains(&v.text.trim())
                    {
                        let what = if attr == "dyntype" {
                            "only the activation dynamics none, filter, filterexact and \
                             integrator are supported"
                        } else {
                            "only fixed gains and affine biases are supported"
                        };
                        return drop(format!("{attr}=\"{}\": {what}", v.text.trim()));
                    }
                }
                let gainprm = match self.get(&el, "gainprm")? {
                    Some(v) => self.nums(&el, &v)?,
                    None => vec![1.0],
                };
                let affine = self
                    .get(&el, "biastype")?
                    .is_some_and(|v| v.text.trim() == "affine");
                let biasprm = match self.get(&el, "biasprm")? {
                    Some(v) if affine => self.nums(&el, &v)?,
                    _ => vec![],
                };
                let b = |k: usize| biasprm.get(k).copied().unwrap_or(0.0);
                dynamics = match self.get(&el, "dyntype")? {
                    Some(v) => match v.text.trim() {
                        "filter" => Some((ActivationDynamics::Filter, v.line)),
                        "filterexact" => Some((ActivationDynamics::FilterExact, v.line)),
                        "integrator" => Some((ActivationDynamics::Integrator, v.line)),
                        _ => None,
                    },
                    None => None,
                };
                (gainprm.first().copied().unwrap_or(0.0), [b(0), b(1), b(2)])
            }
            "position" => {
                // MuJoCo: a positive timeconst makes the position actuator a filterexact one
                // with dynprm[0] = timeconst.
                if let Some(v) = self.get(&el, "timeconst")?
                    && self.num(&el, "timeconst")?.unwrap_or(0.0) > 0.0
                {
                    dynamics = Some((ActivationDynamics::FilterExact, v.line));
                }
                if self.num(&el, "dampratio")?.unwrap_or(0.0) != 0.0 {
                    return drop("dampratio (a velocity-dependent bias) is not supported".into());
                }
                if self.num(&el, "inheritrange")?.unwrap_or(0.0) != 0.0 {
                    return drop("inheritrange is not supported".into());
                }
                let kp = self.num(&el, "kp")?.unwrap_or(1.0);
                let kv = self.num(&el, "kv")?.unwrap_or(0.0);
                (kp, [0.0, -kp, -kv])
            }
            _ => {
                let kv = self.num(&el, "kv")?.unwrap_or(1.0);
                (kv, [0.0, 0.0, -kv])
            }
        };
        if bias[2] != 0.0 {
            return drop(format!(
                "a velocity-dependent bias ({}) is not supported: backdrive applies actuator \
                 forces explicitly",
                bias[2]
            ));
        }
        // The transmission: gear times a joint, or times a fixed tendon's terms.
        let gear = match self.get(&el, "gear")? {
            Some(v) => {
                let g = self.nums(&el, &v)?;
                if g.is_empty() || g.len() > 6 {
                    return Err(self.error(
                        v.line,
                        &format!("{tag}.gear"),
                        format!("{label}: expected 1 to 6 numbers{}", v.origin()),
                    ));
                }
                g[0]
            }
            None => 1.0,
        };
        let mjcf_terms: Vec<(String, f64)> =
            if let Some(j) = c.attribute("joint").or(c.attribute("jointinparent")) {
                vec![(j.to_string(), gear)]
            } else if let Some(t) = c.attribute("tendon") {
                match tendons.iter().find(|x| x.name == t) {
                    Some(t) => t.terms.iter().map(|(j, k)| (j.clone(), gear * k)).collect(),
                    None => {
                        return Err(self.error(
                            self.attr_line(c, "tendon"),
                            &format!("{tag}.tendon"),
                            format!("{label}: unknown fixed tendon '{t}'"),
                        ));
                    }
                }
            } else if ["site", "body"].iter().any(|a| c.attribute(*a).is_some()) {
                return drop("only joint and fixed-tendon transmissions are supported".into());
            } else {
                return Err(self.error(
                    line,
                    &format!("{tag}.joint"),
                    format!("{label} needs a joint or a tendon"),
                ));
            };
        let mut terms = Vec::with_capacity(mjcf_terms.len());
        for (joint, coefficient) in mjcf_terms {
            let Some((bd_joint, kind)) = joint_map.get(&joint) else {
                if world.free_joints.contains(&joint) {
                    return drop(format!("the free joint '{joint}' cannot be driven"));
                }
                return Err(self.error(
                    line,
                    &format!("{tag}.joint"),
                    format!("{label}: unknown joint '{joint}'"),
                ));
            };
            if *kind == JKind::Ball {
                return drop(format!("the ball joint '{joint}' cannot be driven"));
            }
            terms.push(crate::model::TendonTerm {
                joint: bd_joint.clone(),
                axis: 0,
                coefficient: coefficient as f32,
            });
        }
        if terms.is_empty() {
            return Err(self.error(
                line,
                &format!("{tag}.tendon"),
                format!("{label}: the tendon has no joint"),
            ));
        }
        let ctrl_range = self.affine_range(&el, &label, tag, "ctrlrange", "ctrllimited")?;
        let force_range = self.affine_range(&el, &label, tag, "forcerange", "forcelimited")?;
        let activation = match dynamics {
            Some((dynamics, dyn_line)) => {
                match self.activation(&el, &label, tag, dynamics, dyn_line)? {
                    Ok(a) => Some(a),
                    Err(why) => return drop(why),
                }
            }
            None => None,
        };
        Ok(Some(AffineForce {
            gain: gain as f32,
            bias: [bias[0] as f32, bias[1] as f32],
            ctrl_range,
            force_range,
            terms,
            activation,
        }))
    }

    /// The activation of an actuator with activation dynamics: the time constant (`dynprm[0]`,
    /// MuJoCo's default 1; `timeconst` for `<position>`), `actrange` when limited. `Ok(Err)`
    /// gives the reason to drop what backdrive cannot honour: `actearly` (the force from the
    /// updated activation) and an activation of other than one dimension.
    fn activation(
        &self,
        el: &El,
        label: &str,
        tag: &str,
        dynamics: ActivationDynamics,
        dyn_line: usize,
    ) -> Result<std::result::Result<Activation, String>> {
        if self.tristate(el, "actearly")? == Some(true) {
            return Ok(Err(
                "actearly=\"true\" (the force from the activation after its \
                           update) is not supported"
                    .into(),
            ));
        }
        if let Some(d) = self.num(el, "actdim")?
            && d != 1.0
            && d != -1.0
        {
            return Ok(Err(format!(
                "actdim={d}: only one activation per actuator is supported"
            )));
        }
        let (time_constant, tau_line, tau_attr) = if tag == "position" {
            let v = self.get(el, "timeconst")?;
            let line = v.as_ref().map_or(dyn_line, |v| v.line);
            (self.num(el, "timeconst")?.unwrap_or(0.0), line, "timeconst")
        } else {
            match self.get(el, "dynprm")? {
                Some(v) => {
                    let p = self.nums(el, &v)?;
                    (p.first().copied().unwrap_or(0.0), v.line, "dynprm")
                }
                None => (1.0, dyn_line, "dynprm"),
            }
        };
        let filter = dynamics != ActivationDynamics::Integrator;
        if filter && !(time_constant > 0.0 && (time_constant as f32) > 0.0) {
            return Err(self.error(
                tau_line,
                &format!("{tag}.{tau_attr}"),
                format!(
                    "{label}: the filter's time constant must be positive, found {time_constant}"
                ),
            ));
        }
        let range = self.affine_range(el, label, tag, "actrange", "actlimited")?;
        let range = (range != [-UNLIMITED, UNLIMITED]).then_some(range);
        Ok(Ok(Activation {
            dynamics,
            time_constant: if filter { time_constant as f32 } else { 0.0 },
            range,
        }))
    }

    /// A `ctrlrange` / `forcerange` as MuJoCo limits it (`*limited`, else `autolimits` and the
    /// range's presence); `[-1e20, 1e20]` when unlimited.
    fn affine_range(
        &self,
        el: &El,
        label: &str,
        tag: &str,
        attr: &str,
        limited_attr: &str,
    ) -> Result<[f32; 2]> {
        let range = match self.get(el, attr)? {
            Some(v) => {
                let [lo, hi] = self.fixed::<2>(el, &v)?;
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    return Err(self.error(
                        v.line,
                        &format!("{tag}.{attr}"),
                        format!("{label}: expected lower <= upper, found [{lo}, {hi}]"),
                    ));
                }
                Some([lo as f32, hi as f32])
            }
            None => None,
        };
        let limited = match self.tristate(el, limited_attr)? {
            Some(l) => l,
            None => range.is_some() && self.autolimits,
        };
        match (limited, range) {
            (false, _) => Ok([-UNLIMITED, UNLIMITED]),
            (true, Some(r)) => Ok(r),
            (true, None) => Err(self.error(
                self.line(el.node),
                &format!("{tag}.{attr}"),
                format!("{label}: {limited_attr} is true but {attr} is missing"),
            )),
        }
    }
}
