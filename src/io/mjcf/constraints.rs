//! `<tendon>` and `<equality>`: fixed tendons and joint and tendon equalities become backdrive
//! [`Tendon`]s, `connect` and `weld` become loop-closing ball and fixed joints.

use super::*;
use crate::model::{Tendon, TendonSite, TendonTerm};

/// A `<fixed>` tendon as written: MJCF joint names and coefficients, and its limits (MuJoCo's
/// tendon length, not yet shifted by the joints' `ref`).
#[derive(Clone, Debug)]
pub(super) struct FixedTendon {
    pub(super) name: String,
    line: usize,
    pub(super) terms: Vec<(String, f64)>,
    limits: Option<[f64; 2]>,
    /// `stiffness` (non-zero) and `springlength` as written (None: MuJoCo's default, the
    /// length at the joints' `springref`).
    spring: Option<(f64, Option<f64>)>,
}

impl FixedTendon {
    /// The one joint (MJCF name) and its coefficient, when every other coefficient is zero:
    /// then the tendon is that joint's coordinate, scaled.
    pub(super) fn single_joint(&self) -> Option<(&str, f64)> {
        let mut merged: Vec<(&str, f64)> = Vec::new();
        for (j, c) in &self.terms {
            match merged.iter_mut().find(|(m, _)| m == j) {
                Some(m) => m.1 += c,
                None => merged.push((j, *c)),
            }
        }
        merged.retain(|(_, c)| *c != 0.0);
        match merged.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// A `<spatial>` tendon as written: its two sites (names, with their lines) and its limits
/// (MuJoCo's tendon length, the distance between the sites).
#[derive(Clone, Debug)]
pub(super) struct SpatialTendon {
    name: String,
    line: usize,
    sites: [(String, usize); 2],
    limits: Option<[f64; 2]>,
}

const TENDON_KNOWN: &[&str] = &[
    "name",
    "class",
    "limited",
    "range",
    "stiffness",
    "damping",
    "frictionloss",
    "springlength",
    "armature",
];
const TENDON_SILENT: &[&str] = &[
    "group",
    "user",
    "rgba",
    "material",
    "width",
    "margin",
    "solreflimit",
    "solimplimit",
    "solreffriction",
    "solimpfriction",
    "actuatorfrclimited",
    "actuatorfrcrange",
];
const EQUALITY_SILENT: &[&str] = &["solref", "solimp"];

impl<'a, 'input> Ctx<'a, 'input> {
    /// One `<tendon>` section: its `<fixed>` and two-site `<spatial>` tendons are collected;
    /// other spatial paths and tendon forces other than a fixed tendon's stiffness are
    /// unsupported.
    pub(super) fn tendon_section(
        &self,
        node: Node<'a, 'input>,
        tendons: &mut Vec<FixedTendon>,
        spatial: &mut Vec<SpatialTendon>,
    ) -> Result<()> {
        self.check_attrs(node, &[], &[]);
        for c in node.children().filter(|n| n.is_element()) {
            let tag = c.tag_name().name();
            let line = self.line(c);
            let name = c
                .attribute("name")
                .map(str::to_string)
                .unwrap_or_else(|| format!("tendon at line {line}"));
            if tag == "spatial" {
                self.spatial_tendon(c, &name, line, spatial)?;
                continue;
            }
            if tag != "fixed" {
                self.warn(line, tag, format!("unknown tendon <{tag}> was ignored"));
                continue;
            }
            self.check_attrs(c, TENDON_KNOWN, TENDON_SILENT);
            let el = self.el(c, Some("tendon"), None);
            let mut forces = false;
            let stiffness = self.num(&el, "stiffness")?.unwrap_or(0.0);
            let mut spring = None;
            if stiffness < 0.0 {
                return Err(self.error(
                    self.attr_line(c, "stiffness"),
                    "fixed.stiffness",
                    format!("tendon '{name}': expected a stiffness >= 0, found {stiffness}"),
                ));
            }
            if stiffness > 0.0 {
                // MuJoCo's springlength: one value, or a dead band [lower, upper]; -1 (the
                // default) means the length at the joints' springref.
                let rest = match self.get(&el, "springlength")? {
                    None => None,
                    Some(v) => match self.nums(&el, &v)?.as_slice() {
                        [l] | [l, _] if *l == -1.0 => None,
                        [l] => Some(*l),
                        [l, u] if l == u => Some(*l),
                        [_, _] => {
                            self.unsupported(
                                v.line,
                                "fixed",
                                format!(
                                    "tendon '{name}': a spring with a dead band (two different \
                                     springlength values) is not supported; it was dropped"
                                ),
                            );
                            None
                        }
                        other => {
                            return Err(self.error(
                                v.line,
                                "fixed.springlength",
                                format!(
                                    "tendon '{name}': expected 1 or 2 numbers, found {}{}",
                                    other.len(),
                                    v.origin()
                                ),
                            ));
                        }
                    },
                };
                spring = Some((stiffness, rest));
            }
            for (attr, what) in [
                ("damping", "tendon damping"),
                ("frictionloss", "dry tendon friction (frictionloss)"),
                ("armature", "tendon armature"),
            ] {
                if let Some(v) = self.num(&el, attr)?
                    && v != 0.0
                {
                    forces = true;
                    self.unsupported(
                        self.attr_line(c, attr),
                        "fixed",
                        format!("tendon '{name}': {what} is not supported; it was dropped"),
                    );
                }
            }
            let _ = forces;
            let limits = self.tendon_limits(&el, line, "fixed", &name)?;
            let mut terms = Vec::new();
            for j in c.children().filter(|n| n.is_element()) {
                if j.tag_name().name() != "joint" {
                    self.warn(
                        self.line(j),
                        j.tag_name().name(),
                        format!(
                            "<{}> in fixed tendon '{name}' was ignored",
                            j.tag_name().name()
                        ),
                    );
                    continue;
                }
                self.check_attrs(j, &["joint", "coef"], &[]);
                let jel = self.el(j, None, None);
                let Some(joint) = j.attribute("joint") else {
                    return Err(self.error(
                        self.line(j),
                        "joint.joint",
                        format!("a joint of tendon '{name}' names no joint"),
                    ));
                };
                let coef = self.num(&jel, "coef")?.unwrap_or(1.0);
                terms.push((joint.to_string(), coef));
            }
            tendons.push(FixedTendon {
                name,
                line,
                terms,
                limits,
                spring,
            });
        }
        Ok(())
    }

    /// A tendon's `limited` and `range` (MuJoCo's tendon length): `None` when not limited.
    fn tendon_limits(
        &self,
        el: &El,
        line: usize,
        tag: &str,
        name: &str,
    ) -> Result<Option<[f64; 2]>> {
        let range = match self.get(el, "range")? {
            Some(v) => Some((self.fixed::<2>(el, &v)?, v)),
            None => None,
        };
        let limited = match self.tristate(el, "limited")? {
            Some(l) => l,
            None => range.is_some() && self.autolimits,
        };
        match (limited, range) {
            (false, _) => Ok(None),
            (true, None) => Err(self.error(
                line,
                &format!("{tag}.range"),
                format!("tendon '{name}' is limited but has no range"),
            )),
            (true, Some(([lo, hi], v))) if lo > hi => Err(self.error(
                v.line,
                &format!("{tag}.range"),
                format!("expected lower <= upper, found [{lo}, {hi}]{}", v.origin()),
            )),
            (true, Some((bounds, _))) => Ok(Some(bounds)),
        }
    }

    /// A `<spatial>` tendon: a straight string or rod between two sites (a limited one
    /// becomes a distance limit between them); paths through more sites, wrapping around
    /// geoms, pulleys and tendon forces are unsupported.
    fn spatial_tendon(
        &self,
        c: Node<'a, 'input>,
        name: &str,
        line: usize,
        spatial: &mut Vec<SpatialTendon>,
    ) -> Result<()> {
        self.check_attrs(c, TENDON_KNOWN, TENDON_SILENT);
        let el = self.el(c, Some("tendon"), None);
        for (attr, what) in [
            ("stiffness", "tendon stiffness"),
            ("damping", "tendon damping"),
            ("frictionloss", "dry tendon friction (frictionloss)"),
            ("armature", "tendon armature"),
        ] {
            if let Some(v) = self.num(&el, attr)?
                && v != 0.0
            {
                self.unsupported(
                    self.attr_line(c, attr),
                    "spatial",
                    format!("spatial tendon '{name}': {what} is not supported; it was dropped"),
                );
            }
        }
        for attr in ["solreflimit", "solimplimit"] {
            if let Some(v) = self.get(&el, attr)?
                && v.class.is_none()
            {
                self.warn(
                    v.line,
                    "spatial",
                    format!(
                        "spatial tendon '{name}': {attr} is ignored: backdrive limits are soft \
                         with settings.joint_frequency and joint_damping_ratio"
                    ),
                );
            }
        }
        let limits = self.tendon_limits(&el, line, "spatial", name)?;
        let mut sites = Vec::new();
        for p in c.children().filter(|n| n.is_element()) {
            let tag = p.tag_name().name();
            if tag != "site" {
                self.unsupported(
                    self.line(p),
                    tag,
                    format!(
                        "spatial tendon '{name}': <{tag}> (wrapping around geoms, pulleys) is \
                         not supported, only a straight path between two sites; the tendon \
                         was dropped"
                    ),
                );
                return Ok(());
            }
            self.check_attrs(p, &["site"], &[]);
            let Some(site) = p.attribute("site") else {
                return Err(self.error(
                    self.line(p),
                    "site.site",
                    format!("a site of spatial tendon '{name}' names no site"),
                ));
            };
            sites.push((site.to_string(), self.line(p)));
        }
        let Ok(sites) = <[(String, usize); 2]>::try_from(sites) else {
            self.unsupported(
                line,
                "spatial",
                format!(
                    "spatial tendon '{name}': only a straight path between exactly two sites is \
                     supported; it was dropped"
                ),
            );
            return Ok(());
        };
        spatial.push(SpatialTendon {
            name: name.to_string(),
            line,
            sites,
            limits,
        });
        Ok(())
    }

    /// Limited spatial tendons become spatial [`Tendon`]s between their two sites, each site
    /// placed in the frame of the backdrive body its MJCF body belongs to. Unlimited ones hold
    /// nothing (backdrive has no tendon sensors) and are skipped.
    pub(super) fn spatial_tendons(
        &self,
        spatial: &[SpatialTendon],
        world: &World,
        frames: &[BodyFrame],
        model: &mut Model,
    ) -> Result<()> {
        for t in spatial {
            // `<flag limit="disable"/>` turns tendon limits off too.
            let Some([lo, hi]) = t.limits.filter(|_| !world.limit_off) else {
                continue;
            };
            let mut sites = Vec::with_capacity(2);
            for (site, line) in &t.sites {
                let Some(s) = world.sites.iter().find(|s| &s.name == site) else {
                    return Err(self.error(
                        *line,
                        "site.site",
                        format!("spatial tendon '{}': unknown site '{site}'", t.name),
                    ));
                };
                // A site on the world body, or on a static body, stays in world coordinates.
                let placed = s.body.and_then(|b| {
                    let f = &frames[b];
                    let mj = &world.bodies[b];
                    let local = mj.rot.inverse() * (s.pos - mj.pos);
                    f.body.map(|bd| {
                        let rotation = DQuat::from_array(f.rotation.map(f64::from));
                        let offset = DVec3::from_array(f.offset.map(f64::from));
                        (bd, offset + rotation * local)
                    })
                });
                sites.push(match placed {
                    Some((bd, p)) => TendonSite {
                        body: Some(model.bodies[bd].name.clone()),
                        position: p.as_vec3().to_array(),
                    },
                    None => TendonSite {
                        body: None,
                        position: s.pos.as_vec3().to_array(),
                    },
                });
            }
            if sites[0].body == sites[1].body {
                self.warn(
                    t.line,
                    "spatial",
                    format!(
                        "spatial tendon '{}': both sites move with one body, so its length \
                         never changes; it was dropped",
                        t.name
                    ),
                );
                continue;
            }
            model.tendons.push(Tendon {
                name: t.name.clone(),
                terms: Vec::new(),
                sites,
                length: None,
                limits: Some([lo as f32, hi as f32]),
                spring: None,
            });
        }
        Ok(())
    }

    /// A tendon's terms as backdrive joints, coefficients of one joint summed and zeros
    /// dropped; `Err` holds why it cannot be (an unknown joint is an error of the file).
    fn backdrive_terms(
        &self,
        terms: &[(String, f64)],
        line: usize,
        field: &str,
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
    ) -> Result<std::result::Result<Vec<TendonTerm>, String>> {
        let mut out: Vec<TendonTerm> = Vec::new();
        for (joint, coef) in terms {
            let Some((bd, kind)) = joint_map.get(joint) else {
                if world.free_joints.contains(joint) {
                    return Ok(Err(format!("joint '{joint}' is a free joint")));
                }
                return Err(self.error(line, field, format!("unknown joint '{joint}'")));
            };
            if *kind == JKind::Ball {
                return Ok(Err(format!("joint '{joint}' is a ball joint")));
            }
            match out.iter_mut().find(|t| &t.joint == bd) {
                Some(t) => t.coefficient += *coef as f32,
                None => out.push(TendonTerm {
                    joint: bd.clone(),
                    axis: 0,
                    coefficient: *coef as f32,
                }),
            }
        }
        out.retain(|t| t.coefficient != 0.0);
        if out.is_empty() {
            return Ok(Err("every coefficient is zero".to_string()));
        }
        Ok(Ok(out))
    }

    /// MuJoCo's `ref` of an MJCF joint (0 when unknown): tendon lengths count from it.
    fn joint_reference(world: &World, joint: &str) -> f64 {
        world
            .bodies
            .iter()
            .flat_map(|b| &b.joints)
            .find(|j| j.name == joint)
            .map(|j| j.reference)
            .unwrap_or(0.0)
    }

    /// Adds a tendon to the model if its row acts on two bodies; otherwise reports it as
    /// unsupported with the reason.
    fn push_tendon(&self, model: &mut Model, tendon: Tendon, line: usize, element: &str) {
        match tendon.chain(model) {
            Ok(_) => model.tendons.push(tendon),
            Err(why) => self.unsupported(
                line,
                element,
                format!(
                    "'{}' couples joints in a way backdrive's two-body rows cannot hold: {why}; \
                     it was dropped",
                    tendon.name
                ),
            ),
        }
    }

    /// Fixed tendons with a stiffness become tendons with a spring (no row, so any joints).
    /// The rest length counts from the model pose, as backdrive's coordinates do: MuJoCo's
    /// `springlength` less the length at the joints' `ref`, or by default the length at
    /// their `springref` (already measured from `ref`).
    fn tendon_springs(
        &self,
        tendons: &[FixedTendon],
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        model: &mut Model,
    ) -> Result<()> {
        for t in tendons {
            let Some((stiffness, rest)) = t.spring else {
                continue;
            };
            let terms =
                match self.backdrive_terms(&t.terms, t.line, "fixed.joint", world, joint_map)? {
                    Ok(terms) => terms,
                    Err(why) => {
                        self.unsupported(
                            t.line,
                            "fixed",
                            format!("tendon '{}': {why}; its spring was dropped", t.name),
                        );
                        continue;
                    }
                };
            let joint = |name: &str| {
                world
                    .bodies
                    .iter()
                    .flat_map(|b| &b.joints)
                    .find(|j| j.name == name)
            };
            let rest_length: f64 = match rest {
                Some(l) => {
                    l - t
                        .terms
                        .iter()
                        .map(|(j, c)| c * joint(j).map_or(0.0, |j| j.reference))
                        .sum::<f64>()
                }
                None => t
                    .terms
                    .iter()
                    .map(|(j, c)| c * joint(j).map_or(0.0, |j| j.passive.springref))
                    .sum(),
            };
            // A limited tendon also becomes a tendon with limits, under its own name.
            let name = if t.limits.is_some() {
                format!("{}_spring", t.name)
            } else {
                t.name.clone()
            };
            model.tendons.push(Tendon {
                name,
                terms,
                sites: Vec::new(),
                length: None,
                limits: None,
                spring: Some(crate::model::TendonSpring {
                    stiffness: stiffness as f32,
                    rest_length: rest_length as f32,
                }),
            });
        }
        Ok(())
    }

    /// Limited fixed tendons become tendons with limits; then every `<equality>` section.
    pub(super) fn constraints(
        &self,
        tendons: &[FixedTendon],
        equalities: &[Node<'a, 'input>],
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        frames: &[BodyFrame],
        model: &mut Model,
    ) -> Result<()> {
        self.tendon_springs(tendons, world, joint_map, model)?;
        for t in tendons {
            let Some([lo, hi]) = t.limits else { continue };
            match self.backdrive_terms(&t.terms, t.line, "fixed.joint", world, joint_map)? {
                Ok(terms) => {
                    let at_reference: f64 = t
                        .terms
                        .iter()
                        .map(|(j, c)| c * Self::joint_reference(world, j))
                        .sum();
                    let tendon = Tendon {
                        name: t.name.clone(),
                        terms,
                        sites: Vec::new(),
                        length: None,
                        limits: Some([(lo - at_reference) as f32, (hi - at_reference) as f32]),
                        spring: None,
                    };
                    self.push_tendon(model, tendon, t.line, "fixed");
                }
                Err(why) => self.unsupported(
                    t.line,
                    "fixed",
                    format!("tendon '{}': {why}; it was dropped", t.name),
                ),
            }
        }
        for node in equalities {
            self.check_attrs(*node, &[], &[]);
            for c in node.children().filter(|n| n.is_element()) {
                self.equality(c, tendons, world, joint_map, frames, model)?;
            }
        }
        Ok(())
    }

    /// One equality constraint.
    fn equality(
        &self,
        c: Node<'a, 'input>,
        tendons: &[FixedTendon],
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        frames: &[BodyFrame],
        model: &mut Model,
    ) -> Result<()> {
        let tag = c.tag_name().name();
        let line = self.line(c);
        let el = self.el(c, Some("equality"), None);
        let name = c
            .attribute("name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{tag}_equality_{line}"));
        if let Some(false) = self.tristate(&el, "active")? {
            self.warn(
                line,
                tag,
                format!("equality '{name}' is inactive (active=\"false\"); it was ignored"),
            );
            return Ok(());
        }
        if self.get(&el, "solref")?.is_some() || self.get(&el, "solimp")?.is_some() {
            self.warn(
                line,
                tag,
                format!(
                    "equality '{name}': solref/solimp are not mapped; it is as soft as \
                     backdrive's joints (a connect or weld as their locks, \
                     settings.lock_frequency; a joint or tendon coupling as their limits, \
                     settings.joint_frequency)"
                ),
            );
        }
        match tag {
            "joint" | "tendon" => {
                self.check_attrs(
                    c,
                    &[
                        "name",
                        "class",
                        "active",
                        "polycoef",
                        tag_pair(tag).0,
                        tag_pair(tag).1,
                    ],
                    EQUALITY_SILENT,
                );
                self.coupling_equality(c, &el, &name, tendons, world, joint_map, model)
            }
            "connect" | "weld" => self.loop_joint(c, &el, &name, world, frames, model),
            "distance" | "flex" | "flexvert" | "flexstrain" => {
                self.unsupported(
                    line,
                    tag,
                    format!("<{tag}> equality constraints are not supported; '{name}' was dropped"),
                );
                Ok(())
            }
            other => {
                self.warn(
                    line,
                    other,
                    format!("unknown equality <{other}> was ignored"),
                );
                Ok(())
            }
        }
    }

    /// `<joint joint1 joint2 polycoef>` and `<tendon tendon1 tendon2 polycoef>`: with
    /// `polycoef = c0 c1 0 0 0`, `x1 - x1_0 = c0 + c1 (x2 - x2_0)`, a tendon held at `c0`.
    #[allow(clippy::too_many_arguments)]
    fn coupling_equality(
        &self,
        c: Node<'a, 'input>,
        el: &El,
        name: &str,
        tendons: &[FixedTendon],
        world: &World,
        joint_map: &HashMap<String, (String, JKind)>,
        model: &mut Model,
    ) -> Result<()> {
        let tag = c.tag_name().name();
        let line = self.line(c);
        let (first, second) = tag_pair(tag);
        let field = format!("{tag}.{first}");
        let poly = match self.get(el, "polycoef")? {
            Some(v) => {
                let p = self.nums(el, &v)?;
                if p.len() != 5 {
                    return Err(self.error(
                        v.line,
                        &format!("{tag}.polycoef"),
                        format!("expected 5 numbers, found {}{}", p.len(), v.origin()),
                    ));
                }
                p
            }
            None => vec![0.0, 1.0, 0.0, 0.0, 0.0],
        };
        let terms_of = |which: &str| -> Result<Option<Vec<(String, f64)>>> {
            let Some(x) = c.attribute(which) else {
                return Ok(None);
            };
            if tag == "joint" {
                return Ok(Some(vec![(x.to_string(), 1.0)]));
            }
            match tendons.iter().find(|t| t.name == x) {
                Some(t) => Ok(Some(t.terms.clone())),
                None => Err(self.error(
                    self.attr_line(c, which),
                    &format!("{tag}.{which}"),
                    format!("equality '{name}': unknown fixed tendon '{x}'"),
                )),
            }
        };
        let Some(mut terms) = terms_of(first)? else {
            return Err(self.error(line, &field, format!("equality '{name}' needs {first}")));
        };
        if let Some(other) = terms_of(second)? {
            if poly[2..].iter().any(|p| *p != 0.0) {
                self.unsupported(
                    line,
                    tag,
                    format!(
                        "equality '{name}': only a linear polycoef (c0 c1 0 0 0) is supported; \
                         it was dropped"
                    ),
                );
                return Ok(());
            }
            terms.extend(other.into_iter().map(|(j, k)| (j, -poly[1] * k)));
        }
        match self.backdrive_terms(&terms, line, &field, world, joint_map)? {
            Ok(terms) => {
                let tendon = Tendon {
                    name: name.to_string(),
                    terms,
                    sites: Vec::new(),
                    length: Some(poly[0] as f32),
                    limits: None,
                    spring: None,
                };
                self.push_tendon(model, tendon, line, tag);
            }
            Err(why) => self.unsupported(
                line,
                tag,
                format!("equality '{name}': {why}; it was dropped"),
            ),
        }
        Ok(())
    }

    /// `<connect>` and `<weld>` between two bodies (or a body and the world): a ball or a fixed
    /// joint that closes a loop. The joint rows act between any two bodies, so nothing else is
    /// needed; like every joint, it also turns off sphere contacts between the two bodies.
    fn loop_joint(
        &self,
        c: Node<'a, 'input>,
        el: &El,
        name: &str,
        world: &World,
        frames: &[BodyFrame],
        model: &mut Model,
    ) -> Result<()> {
        let tag = c.tag_name().name();
        let line = self.line(c);
        self.check_attrs(
            c,
            &[
                "name",
                "class",
                "active",
                "body1",
                "body2",
                "anchor",
                "relpose",
                "torquescale",
                "site1",
                "site2",
            ],
            EQUALITY_SILENT,
        );
        if c.attribute("site1").is_some() || c.attribute("site2").is_some() {
            self.unsupported(
                line,
                tag,
                format!("<{tag}> '{name}' between sites is not supported (only body1/body2); it was dropped"),
            );
            return Ok(());
        }
        if tag == "weld" {
            let identity_or_unset = match self.get(el, "relpose")? {
                Some(v) => self.fixed::<7>(el, &v)?[3..].iter().all(|q| *q == 0.0),
                None => true,
            };
            let unit_torque = self.num(el, "torquescale")?.is_none_or(|t| t == 1.0);
            if !identity_or_unset || !unit_torque {
                self.unsupported(
                    line,
                    tag,
                    format!(
                        "weld '{name}': relpose and torquescale are not supported (the weld \
                         holds the bodies' initial relative pose); it was dropped"
                    ),
                );
                return Ok(());
            }
        }
        // (MJCF body index, backdrive body index); None: the world.
        let body_of = |attr: &str| -> Result<Option<(Option<usize>, Option<usize>)>> {
            let Some(b) = c.attribute(attr) else {
                return Ok(None);
            };
            if b == "world" {
                return Ok(Some((None, None)));
            }
            match world.bodies.iter().position(|x| x.name == b) {
                Some(i) => Ok(Some((Some(i), frames.get(i).and_then(|f| f.body)))),
                None => Err(self.error(
                    self.attr_line(c, attr),
                    &format!("{tag}.{attr}"),
                    format!("{tag} '{name}': unknown body '{b}'"),
                )),
            }
        };
        let Some((mj1, bd1)) = body_of("body1")? else {
            return Err(self.error(
                line,
                &format!("{tag}.body1"),
                format!("{tag} '{name}' needs body1"),
            ));
        };
        let (mj2, bd2) = body_of("body2")?.unwrap_or((None, None));
        let anchor_local = self.vec3(el, "anchor")?.unwrap_or(DVec3::ZERO);
        // connect: the anchor is in body1's frame; weld: in body2's.
        let frame_body = if tag == "connect" { mj1 } else { mj2 };
        let (pos, rot) = frame_body
            .and_then(|i| world.bodies.get(i))
            .map(|b| (b.pos, b.rot))
            .unwrap_or((DVec3::ZERO, DQuat::IDENTITY));
        let anchor = pos + rot * anchor_local;
        let (parent, child) = match (bd1, bd2) {
            (_, Some(b)) => (bd1, b),
            (Some(a), None) => (None, a),
            (None, None) => {
                self.warn(
                    line,
                    tag,
                    format!("{tag} '{name}' joins two static bodies; it was ignored"),
                );
                return Ok(());
            }
        };
        if Some(child) == parent {
            self.warn(
                line,
                tag,
                format!("{tag} '{name}' joins a body to itself (bodies merged into one); ignored"),
            );
            return Ok(());
        }
        let mut jname = name.to_string();
        let mut k = 1;
        while model.joints.iter().any(|j| j.name == jname) {
            jname = format!("{name}_{k}");
            k += 1;
        }
        model.joints.push(Joint {
            name: jname,
            kind: if tag == "connect" {
                JointKind::Ball
            } else {
                JointKind::Fixed
            },
            parent: parent.map(|p| model.bodies[p].name.clone()),
            child: model.bodies[child].name.clone(),
            anchor: anchor.as_vec3().to_array(),
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
        Ok(())
    }
}

/// The attributes naming an equality's first and second object.
fn tag_pair(tag: &str) -> (&'static str, &'static str) {
    if tag == "joint" {
        ("joint1", "joint2")
    } else {
        ("tendon1", "tendon2")
    }
}
