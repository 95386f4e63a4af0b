//! Document-wide settings: `<compiler>`, `<default>` classes, `<option>` and `<contact>`.

use super::*;

impl<'a, 'input> Ctx<'a, 'input> {
    pub(super) fn compiler(&mut self, node: Node) -> Result<()> {
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

    pub(super) fn default_class(
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

    pub(super) fn option(
        &mut self,
        node: Node,
        settings: &mut Settings,
        world: &mut World,
    ) -> Result<()> {
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
        // MuJoCo's inertia-box fluid model (shaders/fluid.wgsl); a geom's `fluidshape`
        // (the ellipsoid model) is refused where the geom is read.
        for name in ["density", "viscosity"] {
            if let Some(x) = self.num(&el, name)? {
                if !(x.is_finite() && x >= 0.0) {
                    return Err(self.error(
                        self.attr_line(node, name),
                        "option",
                        format!("{name}: expected a number >= 0, found {x}"),
                    ));
                }
                match name {
                    "density" => settings.fluid_density = x as f32,
                    _ => settings.fluid_viscosity = x as f32,
                }
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
            self.flags(c, world)?;
        }
        Ok(())
    }

    /// The attributes of one `<option><flag>`: the disabled contacts, limits and gravity.
    fn flags(&self, c: Node, world: &mut World) -> Result<()> {
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
                    "warmstart" | "filterparent" | "actuation" | "refsafe" | "sensor" | "midphase"
                    | "eulerdamp" | "autoreset" | "nativeccd" | "island" | "override" | "energy"
                    | "fwdinv" | "invdiscrete" | "multiccd" | "equality" | "frictionloss"
                    | "passive" | "clampctrl" | "spring" | "damper" | "sleep",
                    _,
                ) => {}
                (other, _) => self.warn(
                    line,
                    "flag",
                    format!("flag '{other}' is not supported and was ignored"),
                ),
            }
        }
        Ok(())
    }

    pub(super) fn contact(&mut self, node: Node, world: &mut World) {
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
                "pair" => {
                    self.check_attrs(
                        c,
                        &["geom1", "geom2"],
                        &[
                            "name",
                            "class",
                            "condim",
                            "friction",
                            "solref",
                            "solreffriction",
                            "solimp",
                            "gap",
                            "margin",
                        ],
                    );
                    let (Some(a), Some(b)) = (c.attribute("geom1"), c.attribute("geom2")) else {
                        self.warn(self.line(c), "pair", "needs geom1 and geom2; ignored");
                        continue;
                    };
                    world
                        .pairs
                        .push((a.to_string(), b.to_string(), self.line(c)));
                }
                other => self.warn(
                    self.line(c),
                    other,
                    format!("unknown element <{other}> inside <contact> was ignored"),
                ),
            }
        }
    }
}
