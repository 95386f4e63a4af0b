//! Reading the XML: attribute values with their default class and line, numbers, orientations,
//! and the line-numbered errors and warnings raised while reading.

use super::*;

impl<'a, 'input> Ctx<'a, 'input> {
    /// 1-based line of a byte offset.
    pub(super) fn row(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&n| n < offset) + 1
    }

    pub(super) fn line(&self, node: Node) -> usize {
        self.row(node.range().start)
    }

    pub(super) fn attr_line(&self, node: Node, name: &str) -> usize {
        node.attribute_node(name)
            .map(|a| self.row(a.range().start))
            .unwrap_or_else(|| self.line(node))
    }

    /// Where a line of the merged text is, as the user reads it: `line N` in the model file,
    /// `FILE line N` in an included one.
    pub(super) fn place(&self, line: usize) -> String {
        let (file, l) = self.sources.origin(line);
        match file {
            Some(f) if self.sources.is_included(line) => format!("{} line {l}", f.display()),
            _ => format!("line {l}"),
        }
    }

    pub(super) fn error(&self, line: usize, field: &str, message: impl Into<String>) -> Error {
        let (file, line) = self.sources.origin(line);
        Error::from(ModelError {
            file: file.map(Path::to_path_buf),
            line: Some(line),
            field: FieldPath::key(field),
            message: message.into(),
        })
    }

    pub(super) fn diagnostic(
        &self,
        line: usize,
        element: &str,
        message: impl Into<String>,
    ) -> Warning {
        let (file, line) = self.sources.origin(line);
        Warning {
            file: file.map(Path::to_path_buf),
            line,
            element: element.to_string(),
            message: message.into(),
        }
    }

    pub(super) fn warn(&self, line: usize, element: &str, message: impl Into<String>) {
        let w = self.diagnostic(line, element, message);
        self.diag.borrow_mut().warnings.push((line, w));
    }

    /// A feature whose absence changes the physics: an error unless ignored.
    pub(super) fn unsupported(&self, line: usize, element: &str, message: impl Into<String>) {
        let w = self.diagnostic(line, element, message);
        self.diag.borrow_mut().unsupported.push((line, w));
    }

    pub(super) fn el(
        &self,
        node: Node<'a, 'input>,
        tag: Option<&'static str>,
        class: Option<&'a str>,
    ) -> El<'a, 'input> {
        El { node, tag, class }
    }

    /// The value of an attribute: the element's own, else its default class's.
    pub(super) fn get(&self, el: &El, name: &str) -> Result<Option<Val>> {
        if let Some(a) = el.node.attribute_node(name) {
            let line = self.row(a.range().start);
            return Ok(Some(Val {
                text: a.value().to_string(),
                line,
                place: self.place(line),
                name: name.to_string(),
                class: None,
            }));
        }
        let Some(tag) = el.tag else { return Ok(None) };
        let class = match el.node.attribute("class") {
            Some(c) => c,
            None => el.class.unwrap_or("main"),
        };
        let Some(attrs) = self.defaults.get(class) else {
            if class == "main" {
                return Ok(None);
            }
            return Err(self.error(
                self.attr_line(el.node, "class"),
                &format!("{}.class", el.node.tag_name().name()),
                format!("unknown default class '{class}'"),
            ));
        };
        Ok(attrs
            .get(tag)
            .and_then(|m| m.get(name))
            .map(|(v, line)| Val {
                text: v.clone(),
                line: *line,
                place: self.place(*line),
                name: name.to_string(),
                class: Some(class.to_string()),
            }))
    }

    pub(super) fn field(&self, el: &El, v: &Val) -> String {
        format!("{}.{}", el.node.tag_name().name(), v.name)
    }

    pub(super) fn nums(&self, el: &El, v: &Val) -> Result<Vec<f64>> {
        v.text
            .split_ascii_whitespace()
            .map(|s| match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(self.error(
                    v.line,
                    &self.field(el, v),
                    format!("expected a finite number, found '{s}'{}", v.origin()),
                )),
            })
            .collect()
    }

    /// Exactly `n` numbers.
    pub(super) fn fixed<const N: usize>(&self, el: &El, v: &Val) -> Result<[f64; N]> {
        let xs = self.nums(el, v)?;
        xs.as_slice().try_into().map_err(|_| {
            self.error(
                v.line,
                &self.field(el, v),
                format!("expected {N} numbers, found {}{}", xs.len(), v.origin()),
            )
        })
    }

    pub(super) fn num(&self, el: &El, name: &str) -> Result<Option<f64>> {
        match self.get(el, name)? {
            Some(v) => Ok(Some(self.fixed::<1>(el, &v)?[0])),
            None => Ok(None),
        }
    }

    pub(super) fn vec3(&self, el: &El, name: &str) -> Result<Option<DVec3>> {
        match self.get(el, name)? {
            Some(v) => Ok(Some(DVec3::from_array(self.fixed::<3>(el, &v)?))),
            None => Ok(None),
        }
    }

    pub(super) fn int(&self, el: &El, name: &str) -> Result<Option<i64>> {
        match self.get(el, name)? {
            Some(v) => v.text.trim().parse::<i64>().map(Some).map_err(|_| {
                self.error(
                    v.line,
                    &self.field(el, &v),
                    format!("expected an integer, found '{}'{}", v.text, v.origin()),
                )
            }),
            None => Ok(None),
        }
    }

    /// `true` / `false` / `auto` (as `None`).
    pub(super) fn tristate(&self, el: &El, name: &str) -> Result<Option<bool>> {
        match self.get(el, name)? {
            None => Ok(None),
            Some(v) => match v.text.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "auto" => Ok(None),
                other => Err(self.error(
                    v.line,
                    &self.field(el, &v),
                    format!(
                        "expected true, false or auto, found '{other}'{}",
                        v.origin()
                    ),
                )),
            },
        }
    }

    pub(super) fn angle(&self, x: f64) -> f64 {
        if self.degrees { x.to_radians() } else { x }
    }

    /// Checks the element's own attributes: `known` are handled by the caller, `silent` are
    /// ignored without a word, anything else is a warning.
    pub(super) fn check_attrs(&self, node: Node, known: &[&str], silent: &[&str]) {
        for a in node.attributes() {
            let n = a.name();
            if !known.contains(&n) && !silent.contains(&n) {
                self.warn(
                    self.row(a.range().start),
                    node.tag_name().name(),
                    format!("attribute '{n}' is not supported and was ignored"),
                );
            }
        }
    }

    /// Orientation from `quat`, `axisangle`, `euler`, `xyaxes` or `zaxis` (at most one).
    pub(super) fn orientation(&self, el: &El) -> Result<DQuat> {
        let mut found: Option<(Val, DQuat)> = None;
        for name in ["quat", "axisangle", "euler", "xyaxes", "zaxis"] {
            let Some(v) = self.get(el, name)? else {
                continue;
            };
            let q = match name {
                "quat" => {
                    let [w, x, y, z] = self.fixed::<4>(el, &v)?;
                    let q = DQuat::from_xyzw(x, y, z, w);
                    if q.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero quaternion"));
                    }
                    q.normalize()
                }
                "axisangle" => {
                    let [x, y, z, a] = self.fixed::<4>(el, &v)?;
                    let axis = DVec3::new(x, y, z);
                    if axis.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero axis"));
                    }
                    DQuat::from_axis_angle(axis.normalize(), self.angle(a))
                }
                "euler" => {
                    let e = self.fixed::<3>(el, &v)?;
                    let mut q = DQuat::IDENTITY;
                    for (k, c) in self.eulerseq.iter().enumerate() {
                        let axis = match c.to_ascii_lowercase() {
                            b'x' => DVec3::X,
                            b'y' => DVec3::Y,
                            _ => DVec3::Z,
                        };
                        let r = DQuat::from_axis_angle(axis, self.angle(e[k]));
                        q = if c.is_ascii_lowercase() { q * r } else { r * q };
                    }
                    q
                }
                "xyaxes" => {
                    let a = self.fixed::<6>(el, &v)?;
                    let x = DVec3::new(a[0], a[1], a[2]);
                    let y = DVec3::new(a[3], a[4], a[5]);
                    let bad = || self.error(v.line, &self.field(el, &v), "degenerate axes");
                    if x.length() < 1e-10 {
                        return Err(bad());
                    }
                    let x = x.normalize();
                    let y = y - x * x.dot(y);
                    if y.length() < 1e-10 {
                        return Err(bad());
                    }
                    let y = y.normalize();
                    DQuat::from_mat3(&DMat3::from_cols(x, y, x.cross(y))).normalize()
                }
                _ => {
                    let z = DVec3::from_array(self.fixed::<3>(el, &v)?);
                    if z.length() < 1e-10 {
                        return Err(self.error(v.line, &self.field(el, &v), "zero axis"));
                    }
                    DQuat::from_rotation_arc(DVec3::Z, z.normalize())
                }
            };
            if let Some((prev, _)) = &found {
                if prev.class.is_none() || v.class.is_some() {
                    return Err(self.error(
                        v.line,
                        &self.field(el, &v),
                        format!("orientation given twice ('{}' and '{}')", prev.name, v.name),
                    ));
                }
                // The element's own orientation overrides one from its default class.
                continue;
            }
            found = Some((v, q));
        }
        Ok(found.map(|(_, q)| q).unwrap_or(DQuat::IDENTITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euler_is_intrinsic_xyz() {
        let text = r#"<mujoco><worldbody><body euler="90 0 0"><freejoint/>
            <geom size="0.1"/></body></worldbody></mujoco>"#;
        let imp = from_str(text, None, &MjcfOptions::default()).unwrap();
        let q = glam::Quat::from_array(imp.frames[0].rotation);
        assert!(q.length() > 0.99);
        // The frame's rotation relative to the principal frame: a sphere's principal frame is
        // the body frame, so the body orientation carries the 90 degrees about x.
        let o = glam::Quat::from_array(imp.model.bodies[0].orientation);
        let z = o * glam::Vec3::Z;
        assert!((z - glam::Vec3::new(0.0, -1.0, 0.0)).length() < 1e-6, "{z}");
    }
}
