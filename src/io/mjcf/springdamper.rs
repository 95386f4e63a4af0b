//! Joint `springdamper="timeconst dampratio"`: MuJoCo's compiler replaces the joint's
//! stiffness and damping by those of a mass-spring-damper with that time constant and damping
//! ratio, the mass being the joint's diagonal of the joint-space inertia at the model pose
//! (`dof_M0`, armature included): `stiffness = M0 / (timeconst^2 dampratio^2)`, `damping = 2
//! M0 / timeconst` (checked against MuJoCo 4.0.0's `jnt_stiffness` and `dof_damping`).
//! `M0` is the inertia about the joint's axis of the body's whole subtree (a hinge), or its
//! mass (a slide).

use super::*;

impl<'a, 'input> Ctx<'a, 'input> {
    /// Reads a joint's `springdamper` into `passive` (applied by [`apply_springdampers`]
    /// once the masses are known). MuJoCo acts only when both numbers are positive.
    pub(super) fn springdamper(
        &self,
        el: &El,
        name: &str,
        kind: JKind,
        passive: &mut JointPassive,
    ) -> Result<()> {
        let Some(v) = self.get(el, "springdamper")? else {
            return Ok(());
        };
        let [timeconst, dampratio] = self.fixed::<2>(el, &v)?;
        if !(timeconst > 0.0 && dampratio > 0.0) {
            return Ok(());
        }
        if kind == JKind::Ball {
            self.unsupported(
                v.line,
                "joint",
                format!("joint '{name}': springdamper on a ball joint is not supported"),
            );
            return Ok(());
        }
        // MuJoCo's M0 holds the armature as written, whether or not backdrive keeps it.
        let armature = self.num(el, "armature")?.unwrap_or(0.0).max(0.0);
        passive.springdamper = Some([timeconst, dampratio, armature]);
        Ok(())
    }
}

/// Sets the stiffness and damping of every joint with a `springdamper`, from the masses of
/// the MJCF bodies (`body_mass`, world frame) at the model pose.
pub(super) fn apply_springdampers(bodies: &mut [MjBody], body_mass: &[Option<MassPart>]) {
    if !bodies
        .iter()
        .any(|b| b.joints.iter().any(|j| j.passive.springdamper.is_some()))
    {
        return;
    }
    for b in 0..bodies.len() {
        if bodies[b]
            .joints
            .iter()
            .all(|j| j.passive.springdamper.is_none())
        {
            continue;
        }
        let subtree: Vec<MassPart> = (0..bodies.len())
            .filter(|&k| descends_from(bodies, k, b))
            .filter_map(|k| body_mass.get(k).copied().flatten())
            .collect();
        let composite = combine(&subtree);
        for j in &mut bodies[b].joints {
            let Some([timeconst, dampratio, armature]) = j.passive.springdamper else {
                continue;
            };
            let m0 = armature + composite.map_or(0.0, |c| joint_inertia(j, &c));
            j.passive.stiffness = m0 / (timeconst * timeconst * dampratio * dampratio);
            j.passive.damping = 2.0 * m0 / timeconst;
        }
    }
}

/// Whether body `k` is `root` or one of its descendants.
fn descends_from(bodies: &[MjBody], mut k: usize, root: usize) -> bool {
    loop {
        if k == root {
            return true;
        }
        match bodies[k].parent {
            Some(p) if p != k => k = p,
            _ => return false,
        }
    }
}

/// The inertia that a joint's coordinate sees in a rigid composite: its mass along a slide,
/// its moment of inertia about a hinge's axis through the anchor.
fn joint_inertia(j: &MjJoint, c: &MassPart) -> f64 {
    let axis = j.axis.normalize_or_zero();
    match j.kind {
        JKind::Slide => c.mass,
        _ => {
            let d = c.com - j.anchor;
            let about_com = axis.dot(c.inertia * axis);
            let offset = d.cross(axis).length_squared();
            about_com + c.mass * offset
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MuJoCo 4.0.0 on this model (benches: `mujoco.MjModel.from_xml_string`) gives
    /// `jnt_stiffness = [309.08948985, 26.17993878]` and `dof_damping = [30.29077001,
    /// 41.88790205]`.
    #[test]
    fn springdamper_matches_mujocos_stiffness_and_damping() {
        let xml = "<mujoco><worldbody><body pos='0 0 1'>\
            <joint name='a' type='hinge' axis='0 1 0' springdamper='0.1 0.7' armature='0.05'/>\
            <geom type='capsule' fromto='0 0 0 0.5 0 0' size='0.05'/>\
            <body pos='0.5 0 0'><joint name='b' type='slide' axis='1 0 0' \
            springdamper='0.2 2'/><geom type='sphere' size='0.1'/></body></body>\
            </worldbody></mujoco>";
        let options = MjcfOptions {
            ignore_unsupported: true,
            ..MjcfOptions::default()
        };
        let imp = from_str(xml, None, &options).unwrap();
        assert!(
            imp.warnings
                .iter()
                .all(|w| !w.message.contains("springdamper")),
            "{:?}",
            imp.warnings
        );
        let joint = |n: &str| imp.model.joints.iter().find(|j| j.name == n).unwrap();
        for (name, stiffness, damping) in [
            ("a", 309.08948985, 30.29077001),
            ("b", 26.17993878, 41.88790205),
        ] {
            let j = joint(name);
            let close = |x: f32, y: f64| (f64::from(x) - y).abs() < 1e-5 * y;
            assert!(
                close(j.stiffness, stiffness) && close(j.damping, damping),
                "joint {name}: stiffness {} damping {}, MuJoCo {stiffness} {damping}",
                j.stiffness,
                j.damping
            );
        }
    }
}
