//! Actuators: `<motor>` and the other actuator kinds, mapped onto backdrive servos and motors.

use super::*;

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
            if c.tag_name().name() != "motor" {
                self.non_motor_actuator(c);
                continue;
            }
            self.motor(c, world, joint_map, tendons, model, gears, actuator_names)?;
        }
        Ok(())
    }

    /// Actuators other than `<motor>` are dropped: unsupported when MuJoCo knows them.
    fn non_motor_actuator(&self, c: Node) {
        let tag = c.tag_name().name();
        let line = self.line(c);
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
                format!("<{tag}> actuators are not supported (only <motor>); it was dropped"),
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
