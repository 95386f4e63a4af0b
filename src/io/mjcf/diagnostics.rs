//! Diagnostics beyond single attributes: validation errors placed at the MJCF element they
//! came from, and the self-collision warning.

use super::*;

impl<'a, 'input> Ctx<'a, 'input> {
    /// Places an error found by validating the imported model at the MJCF element and
    /// attribute the offending value came from. The validator speaks of the backdrive model
    /// (`body[0].position`); the user wrote `<body name="upper" pos="...">`.
    pub(super) fn locate_invalid(
        &self,
        model: &Model,
        frames: &[BodyFrame],
        m: &ModelError,
    ) -> ModelError {
        let seg = |k: usize| m.field.0.get(k);
        let (table, index, key) = match (seg(0), seg(1), seg(2)) {
            (Some(PathSegment::Key(t)), Some(PathSegment::Index(i)), Some(PathSegment::Key(k))) => {
                (t.as_str(), Some(*i), k.as_str())
            }
            (Some(PathSegment::Key(t)), Some(PathSegment::Key(k)), _) => {
                (t.as_str(), None, k.as_str())
            }
            (Some(PathSegment::Key(t)), _, _) => (t.as_str(), None, ""),
            _ => ("", None, ""),
        };
        let root = self.doc.root_element();
        let named = |tags: &[&str], name: &str| {
            root.descendants()
                .find(|n| tags.contains(&n.tag_name().name()) && n.attribute("name") == Some(name))
        };
        let (node, name, attrs): (Option<Node>, String, &[&str]) = match (table, index) {
            ("settings", _) => (
                root.children().find(|n| n.has_tag_name("option")),
                String::new(),
                match key {
                    "dt" => &["timestep"],
                    "gravity" => &["gravity"],
                    _ => &[],
                },
            ),
            ("body", Some(i)) => {
                let name = model
                    .bodies
                    .get(i)
                    .map(|b| b.name.clone())
                    .unwrap_or_default();
                // A backdrive body is the first MJCF body it carries (merged fixed children
                // follow it); unnamed bodies are `body<N>`, the N-th in file order.
                let mj = frames.iter().position(|f| f.body == Some(i));
                let node = mj.and_then(|k| {
                    named(&["body"], &frames[k].name)
                        .or_else(|| root.descendants().filter(|n| n.has_tag_name("body")).nth(k))
                });
                let attrs: &[&str] = match key {
                    "position" => &["pos"],
                    "orientation" => &["quat", "euler", "axisangle", "xyaxes", "zaxis"],
                    "mass" | "inertia" => &["mass"],
                    "shape" => &["size", "fromto"],
                    _ => &[],
                };
                (node, name, attrs)
            }
            ("joint", Some(i)) => {
                let name = model
                    .joints
                    .get(i)
                    .map(|j| j.name.clone())
                    .unwrap_or_default();
                let attrs: &[&str] = match key {
                    "anchor" => &["pos"],
                    "axis" => &["axis"],
                    "limits" => &["range"],
                    _ => &[],
                };
                (named(&["joint", "freejoint"], &name), name, attrs)
            }
            ("actuator", Some(i)) => {
                let name = model
                    .actuators
                    .get(i)
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                let attrs: &[&str] = match key {
                    "max_force" => &["forcerange", "gear", "ctrlrange"],
                    "gain" => &["kp"],
                    "joint" => &["joint"],
                    _ => &[],
                };
                let node = root
                    .children()
                    .filter(|n| n.has_tag_name("actuator"))
                    .flat_map(|a| a.children())
                    .find(|n| n.is_element() && n.attribute("name") == Some(name.as_str()));
                (node, name, attrs)
            }
            _ => (None, String::new(), &[]),
        };
        let node = node.unwrap_or(root);
        let tag = node.tag_name().name();
        let attr = attrs.iter().copied().find(|a| node.attribute(*a).is_some());
        let (line, field) = match attr {
            Some(a) => (self.attr_line(node, a), format!("{tag}.{a}")),
            None => (self.line(node), tag.to_string()),
        };
        let what = if name.is_empty() {
            String::new()
        } else {
            format!("{tag} '{name}': ")
        };
        let (file, line) = self.sources.origin(line);
        ModelError {
            file: file.map(Path::to_path_buf),
            line: Some(line),
            field: FieldPath::key(&field),
            message: format!("{what}{} {}", m.field, m.message),
        }
    }

    /// One warning if MuJoCo would let geoms of different bodies collide.
    ///
    /// Pairs are counted by collision class (`contype`, `conaffinity`) rather than body pair by
    /// body pair, which was quadratic in the number of bodies: all colliding pairs, less those
    /// within one backdrive body (or both static), between a parent and its child, or
    /// excluded by `<contact>`.
    pub(super) fn self_collision_warning(
        &self,
        bodies: &[MjBody],
        world: &World,
        group_of: &[Option<usize>],
    ) {
        if world.contact_off {
            return;
        }
        type Class = (i64, i64);
        let collide = |a: Class, b: Class| (a.0 & b.1) != 0 || (b.0 & a.1) != 0;
        let class_of = |g: &GeomInfo| (g.contype, g.conaffinity);
        // Colliding pairs among geoms counted per class.
        let pairs_in = |counts: &HashMap<Class, u64>| -> u64 {
            let list: Vec<(Class, u64)> = counts.iter().map(|(c, n)| (*c, *n)).collect();
            let mut total = 0u64;
            for (k, &(ca, na)) in list.iter().enumerate() {
                if collide(ca, ca) {
                    total += na * na.saturating_sub(1) / 2;
                }
                for &(cb, nb) in &list[k + 1..] {
                    if collide(ca, cb) {
                        total += na * nb;
                    }
                }
            }
            total
        };
        let between = |a: &MjBody, b: &MjBody| -> u64 {
            let mut n = 0;
            for ga in &a.geoms {
                for gb in &b.geoms {
                    n += u64::from(collide(class_of(ga), class_of(gb)));
                }
            }
            n
        };
        let mut all: HashMap<Class, u64> = HashMap::new();
        let mut per_group: HashMap<Option<usize>, HashMap<Class, u64>> = HashMap::new();
        for (i, b) in bodies.iter().enumerate() {
            for g in &b.geoms {
                *all.entry(class_of(g)).or_default() += 1;
                *per_group
                    .entry(group_of[i])
                    .or_default()
                    .entry(class_of(g))
                    .or_default() += 1;
            }
        }
        let mut count = pairs_in(&all);
        for counts in per_group.values() {
            count -= pairs_in(counts);
        }
        let parent_of =
            |i: usize, j: usize| bodies[i].parent == Some(j) || bodies[j].parent == Some(i);
        for (i, b) in bodies.iter().enumerate() {
            if let Some(p) = b.parent
                && group_of[p] != group_of[i]
            {
                count -= between(&bodies[p], b);
            }
        }
        let index: HashMap<&str, usize> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i))
            .collect();
        let excluded = |i: usize, j: usize| {
            world
                .excludes
                .contains(&(bodies[i].name.clone(), bodies[j].name.clone()))
        };
        for (a, b) in &world.excludes {
            let (Some(&i), Some(&j)) = (index.get(a.as_str()), index.get(b.as_str())) else {
                continue;
            };
            // Each exclude is stored in both orders: count it once.
            if i < j && group_of[i] != group_of[j] && !parent_of(i, j) {
                count -= between(&bodies[i], &bodies[j]);
            }
        }
        if count == 0 {
            return;
        }
        // The first pair in file order, as an example: some pair exists, so the search ends.
        let example = (0..bodies.len()).find_map(|i| {
            ((i + 1)..bodies.len()).find_map(|j| {
                let (a, b) = (&bodies[i], &bodies[j]);
                if group_of[i] == group_of[j] || parent_of(i, j) || excluded(i, j) {
                    return None;
                }
                a.geoms.iter().find_map(|ga| {
                    b.geoms
                        .iter()
                        .find(|gb| collide(class_of(ga), class_of(gb)))
                        .map(|gb| (&a.name, &ga.name, &b.name, &gb.name, b.line))
                })
            })
        });
        if let Some((ba, ga, bb, gb, line)) = example {
            self.warn(
                line,
                "geom",
                format!(
                    "{count} geom pair(s) on different bodies may collide in MuJoCo (e.g. \
                     '{ga}' of '{ba}' and '{gb}' of '{bb}'), but backdrive bodies only touch \
                     the ground"
                ),
            );
        }
    }
}
