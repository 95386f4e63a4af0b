//! Mesh geoms: `<asset><mesh>` read from STL files (with the `stl_io` crate) or from inline
//! `vertex`/`face` data, and the volume, centre of mass and inertia that MuJoCo's compiler gives
//! them (`user_mesh.cc`: `ComputeFaceCentroid`, `ComputeVolume`, `ComputeInertia`).
//!
//! MuJoCo re-centres a mesh at its centre of mass and turns it to its principal axes, so a mesh
//! geom's frame is the geom's `pos`/orientation composed with that offset and rotation; its
//! mass is `density` times the mesh volume (or `mass`), its inertia the mesh's per unit
//! density scaled by the same factor. Meshes only contribute mass here: backdrive has no mesh
//! contact shape.

use super::*;

/// MuJoCo's `mjMINVAL`: faces and volumes below it count as empty.
const MINVAL: f64 = 1e-15;

/// How a mesh's mass is spread: MuJoCo's `<mesh inertia>` (`legacy` by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum MeshInertia {
    /// Pyramids from the face centroid with their volumes taken unsigned: exact for closed
    /// convex meshes, overcounting concave ones (MuJoCo's default).
    Legacy,
    /// Signed pyramid volumes (the divergence theorem): exact for any closed, consistently
    /// oriented mesh; an inconsistent orientation is an error, as in MuJoCo.
    Exact,
    /// The mass on the surface (`density` is per area).
    Shell,
}

/// A mesh's volume (area for a shell), centre of mass and inertia per unit density about the
/// centre of mass, in the mesh's own coordinates (after `scale`, `refpos` and `refquat`), and
/// its vertices there (for a contact box's fit).
#[derive(Clone, Debug)]
pub(super) struct MeshMass {
    pub(super) volume: f64,
    pub(super) com: DVec3,
    pub(super) inertia: DMat3,
    pub(super) vertices: std::rc::Rc<[DVec3]>,
}

/// The equivalent-inertia box of a mesh (half sizes along the principal axes `axes`, centred
/// at the centre of mass: MuJoCo's `boxsz`) and the largest difference between the mesh's
/// extent and the box's over directions (a latitude-longitude grid), in metres.
pub(super) fn inertia_box(mesh: &MeshMass, eig: [f64; 3], axes: DMat3) -> (DVec3, f64) {
    let sum: f64 = eig.iter().sum();
    let half =
        DVec3::from_array(eig.map(|e| 0.5 * (6.0 * (sum - 2.0 * e) / mesh.volume).max(0.0).sqrt()));
    let local: Vec<DVec3> = mesh
        .vertices
        .iter()
        .map(|&v| axes.transpose() * (v - mesh.com))
        .collect();
    let mut worst = 0.0_f64;
    let steps = 24;
    for i in 0..=steps {
        let theta = std::f64::consts::PI * i as f64 / steps as f64;
        for j in 0..(2 * steps) {
            let phi = std::f64::consts::PI * j as f64 / steps as f64;
            let n = DVec3::new(
                theta.sin() * phi.cos(),
                theta.sin() * phi.sin(),
                theta.cos(),
            );
            let mesh_extent = local
                .iter()
                .map(|v| v.dot(n))
                .fold(f64::NEG_INFINITY, f64::max);
            let box_extent = half.x * n.x.abs() + half.y * n.y.abs() + half.z * n.z.abs();
            worst = worst.max((mesh_extent - box_extent).abs());
        }
    }
    (half, worst)
}

/// Area, unit normal and centroid of a triangle; a face of area below `MINVAL` has area 0 (and
/// then contributes nothing), as in MuJoCo.
fn triangle(a: DVec3, b: DVec3, c: DVec3) -> (f64, DVec3, DVec3) {
    let n = (b - a).cross(c - a);
    let len = n.length();
    let center = (a + b + c) / 3.0;
    if len < MINVAL {
        return (0.0, n, center);
    }
    (0.5 * len, n / len, center)
}

/// Volume (or area), centre of mass and inertia of a triangle mesh, computed as MuJoCo's
/// compiler does: the pyramids from the area-weighted face centroid locate the centre of mass,
/// the pyramids from the centre of mass give the inertia and the volume. `faces` index
/// `vertices` (checked by the caller). The error says why MuJoCo would refuse the mesh.
pub(super) fn mass_properties(
    vertices: &[DVec3],
    faces: &[[usize; 3]],
    mode: MeshInertia,
) -> std::result::Result<MeshMass, String> {
    let tri = |f: &[usize; 3]| triangle(vertices[f[0]], vertices[f[1]], vertices[f[2]]);
    if mode == MeshInertia::Exact {
        // Each directed edge of a closed, consistently oriented mesh appears once.
        let mut edges: Vec<(usize, usize)> = faces
            .iter()
            .filter(|f| tri(f).0 > MINVAL.sqrt())
            .flat_map(|f| [(f[0], f[1]), (f[1], f[2]), (f[2], f[0])])
            .collect();
        edges.sort_unstable();
        if let Some(w) = edges.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "its faces have inconsistent orientation (the faces containing vertices {} and \
                 {}); inertia=\"exact\" needs a closed, consistently oriented mesh",
                w[0].0 + 1,
                w[0].1 + 1
            ));
        }
    }
    let mut area_sum = 0.0;
    let mut facecen = DVec3::ZERO;
    for f in faces {
        let (area, _, center) = tri(f);
        area_sum += area;
        facecen += area * center;
    }
    if area_sum < MINVAL {
        return Err("its surface area is too small".to_string());
    }
    let facecen = facecen / area_sum;

    // The centre of mass: pyramids (or, for a shell, faces) weighted from the face centroid.
    let mut weight = 0.0;
    let mut com = DVec3::ZERO;
    for f in faces {
        let (area, normal, center) = tri(f);
        let w = match mode {
            MeshInertia::Shell => area,
            MeshInertia::Exact => (center - facecen).dot(normal) * area / 3.0,
            MeshInertia::Legacy => ((center - facecen).dot(normal) * area / 3.0).abs(),
        };
        weight += w;
        com += w * (center * 0.75 + facecen * 0.25);
    }
    if weight < MINVAL {
        return Err(if weight < 0.0 {
            "its volume is negative (misoriented triangles)".to_string()
        } else {
            "its volume is too small (inertia=\"shell\" puts the mass on its surface)".to_string()
        });
    }
    let com = com / weight;

    // Second moments of the pyramids with apex at the centre of mass (of the triangles, for a
    // shell): for vertices D, E, F, V/20 (2 sum_v v_i v_j + sum_{v != w} v_i w_j).
    let mut volume = 0.0;
    let mut p = DMat3::ZERO;
    for f in faces {
        let [d, e, g] = f.map(|k| vertices[k] - com);
        let (area, normal, center) = triangle(d, e, g);
        let (w, c) = match mode {
            MeshInertia::Shell => (area, 12.0),
            MeshInertia::Exact => (center.dot(normal) * area / 3.0, 20.0),
            MeshInertia::Legacy => ((center.dot(normal) * area / 3.0).abs(), 20.0),
        };
        volume += w;
        let outer = |a: DVec3, b: DVec3| DMat3::from_cols(a * b.x, a * b.y, a * b.z);
        let sum = (outer(d, d) + outer(e, e) + outer(g, g)) * 2.0
            + outer(d, e)
            + outer(e, d)
            + outer(d, g)
            + outer(g, d)
            + outer(e, g)
            + outer(g, e);
        p += sum * (w / c);
    }
    // An open mesh can weigh differently from the centre of mass than from the face centroid.
    if volume < MINVAL {
        return Err(format!(
            "its volume seen from its centre of mass is {volume:e}: is the mesh closed?"
        ));
    }
    let trace = p.x_axis.x + p.y_axis.y + p.z_axis.z;
    let inertia = DMat3::from_diagonal(DVec3::splat(trace)) - p;
    let (eig, _) = symmetric_eigen(&inertia);
    let (lo, hi) = (
        eig.iter().copied().fold(f64::INFINITY, f64::min),
        eig.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    if eig.iter().any(|e| !e.is_finite()) || lo <= 0.0 {
        return Err(format!(
            "its inertia has a non-positive principal moment ({eig:?})"
        ));
    }
    let sum: f64 = eig.iter().sum();
    if sum - hi < hi * (1.0 - 1e-6) - 1e-9 {
        return Err(format!("its principal moments {eig:?} violate A + B >= C"));
    }
    Ok(MeshMass {
        volume,
        com,
        inertia,
        vertices: vertices.into(),
    })
}

/// Vertices and faces of an STL file, binary or ASCII. A binary file whose 80-byte header
/// happens to start with `solid ` (some exporters write that) is recognised by its size.
pub(super) fn read_stl(path: &Path) -> std::result::Result<(Vec<DVec3>, Vec<[usize; 3]>), String> {
    let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() >= 84 {
        let count = u32::from_le_bytes([bytes[80], bytes[81], bytes[82], bytes[83]]) as u64;
        if 84 + 50 * count == bytes.len() as u64 && bytes.starts_with(b"solid") {
            // The header is free text in a binary file: blank it so it is not read as ASCII.
            bytes[..5].fill(b' ');
        }
    }
    let mesh = stl_io::read_stl(&mut std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable STL file: {e}"))?;
    let vertices: Vec<DVec3> = mesh
        .vertices
        .iter()
        .map(|v| DVec3::new(f64::from(v[0]), f64::from(v[1]), f64::from(v[2])))
        .collect();
    if let Some(k) = vertices.iter().position(|v| !v.is_finite()) {
        return Err(format!("vertex {} is not finite", k + 1));
    }
    let faces: Vec<[usize; 3]> = mesh.faces.iter().map(|f| f.vertices).collect();
    if faces.is_empty() {
        return Err("it has no triangles".to_string());
    }
    Ok((vertices, faces))
}

impl<'a, 'input> Ctx<'a, 'input> {
    /// A `type="mesh"` geom. Its mass is needed unless it is zero or the body's `<inertial>`
    /// stands; then the mesh is read and the geom carries the mesh's mass and inertia at the
    /// mesh's centre of mass, in its principal frame (MuJoCo's placement). A mesh that
    /// collides has no contact shape: unsupported (its mass is still counted), unless
    /// [`MjcfOptions::colliding_meshes_as_boxes`] gives it its equivalent-inertia box. A mesh not
    /// needed for mass and not colliding is visual: skipped and counted for one summary line.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mesh_geom(
        &mut self,
        el: &El,
        label: &str,
        line: usize,
        bpos: DVec3,
        brot: DQuat,
        mass_given: bool,
        on_world: bool,
        name: String,
    ) -> Result<Option<Geom>> {
        let colliding = self.int(el, "contype")?.unwrap_or(1) != 0
            || self.int(el, "conaffinity")?.unwrap_or(1) != 0;
        let massless = self.num(el, "mass")? == Some(0.0)
            || (self.num(el, "mass")?.is_none() && self.num(el, "density")? == Some(0.0));
        let as_box = colliding && self.options.colliding_meshes_as_boxes;
        if colliding && !as_box {
            self.unsupported(
                line,
                "geom",
                format!(
                    "{label}: a colliding mesh geom has no backdrive contact shape (give it \
                     contype=\"0\" conaffinity=\"0\" if it is only visual); its contact was \
                     dropped"
                ),
            );
        }
        if !as_box && (on_world || massless || mass_given) {
            if !colliding {
                self.diag.borrow_mut().visual_skipped += 1;
            }
            return Ok(None);
        }
        if let Some(v) = self.get(el, "fromto")? {
            return Err(self.error(
                v.line,
                "geom.fromto",
                format!("{label}: fromto cannot be used with a mesh geom"),
            ));
        }
        if self.tristate(el, "shellinertia")? == Some(true) {
            return Err(self.error(
                self.attr_line(el.node, "shellinertia"),
                "geom.shellinertia",
                format!(
                    "{label}: a mesh geom's inertia is set on its <mesh> asset \
                     (inertia=\"shell\"), not with shellinertia (as in MuJoCo)"
                ),
            ));
        }
        let Some(asset) = self.get(el, "mesh")? else {
            return Err(self.error(
                line,
                "geom.mesh",
                format!("{label}: a mesh geom needs the name of a <mesh> asset"),
            ));
        };
        let Some(mesh) = self.mesh_asset(asset.text.trim(), asset.line, label)? else {
            return Ok(None);
        };
        let (eig, axes) = symmetric_eigen(&mesh.inertia);
        let lpos = self.vec3(el, "pos")?.unwrap_or(DVec3::ZERO);
        let lrot = self.orientation(el)?;
        // The body's <inertial> stands (or the geom weighs nothing): the mesh is only a shape.
        let mass = if massless || mass_given {
            0.0
        } else {
            self.geom_mass(el, label, mesh.volume)?
        };
        let contact = self.geom_contact(el, label)?;
        let (kind, size, contype, conaffinity) = if as_box {
            let (half, deviation) = inertia_box(&mesh, eig, axes);
            self.warn(
                line,
                "geom",
                format!(
                    "{label}: the colliding mesh touches through its equivalent-inertia box \
                     ({:.1} x {:.1} x {:.1} mm at its centre of mass, along its principal \
                     axes; mass and inertia from the mesh): a contact point moves by at most \
                     {:.1} mm",
                    2e3 * half.x,
                    2e3 * half.y,
                    2e3 * half.z,
                    deviation * 1e3
                ),
            );
            (
                GeomType::Box,
                half.to_array().to_vec(),
                contact.contype,
                contact.conaffinity,
            )
        } else {
            // The contact was dropped above: the geom only carries mass.
            (GeomType::Mesh, Vec::new(), 0, 0)
        };
        Ok(Some(Geom {
            line,
            kind,
            pos: bpos + brot * (lpos + lrot * mesh.com),
            rot: (brot * lrot * DQuat::from_mat3(&axes)).normalize(),
            size,
            mass,
            inertia: DVec3::from_array(eig) * (mass / mesh.volume),
            friction: contact.friction,
            condim: contact.condim,
            contype,
            conaffinity,
            margin: contact.margin,
            gap: contact.gap,
            solref: contact.solref,
            solimp: contact.solimp,
            name,
        }))
    }

    /// The mass properties of the `<mesh>` asset `name` (read once per import). None when the
    /// mesh cannot be read by backdrive (OBJ or MSH files, a vertex cloud whose faces are its
    /// convex hull): that is unsupported, named with the mesh's line.
    fn mesh_asset(&self, name: &str, line: usize, label: &str) -> Result<Option<MeshMass>> {
        if let Some(m) = self.meshes.borrow().get(name) {
            return Ok(Some(m.clone()));
        }
        let named = |n: &Node| {
            n.attribute("name").map(str::to_string).or_else(|| {
                n.attribute("file").map(|f| {
                    Path::new(f)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
            })
        };
        let Some(node) = self.doc.root_element().descendants().find(|n| {
            n.has_tag_name("mesh")
                && n.parent_element().is_some_and(|p| p.has_tag_name("asset"))
                && named(n).as_deref() == Some(name)
        }) else {
            return Err(self.error(
                line,
                "geom.mesh",
                format!("{label}: no <mesh> asset named '{name}'"),
            ));
        };
        self.check_attrs(
            node,
            &[
                "name", "class", "file", "scale", "refpos", "refquat", "inertia", "vertex", "face",
            ],
            &[
                "smoothnormal",
                "maxhullvert",
                "normal",
                "texcoord",
                "content_type",
            ],
        );
        let el = self.el(node, Some("mesh"), None);
        let mline = self.line(node);
        let mode = match self.get(&el, "inertia")? {
            None => MeshInertia::Legacy,
            Some(v) => match v.text.trim() {
                "legacy" => MeshInertia::Legacy,
                "exact" => MeshInertia::Exact,
                "shell" => MeshInertia::Shell,
                "convex" => {
                    self.unsupported(
                        v.line,
                        "mesh",
                        format!(
                            "mesh '{name}': inertia=\"convex\" (the convex hull's) is not \
                             supported; the legacy computation was used (the same for a convex \
                             mesh)"
                        ),
                    );
                    MeshInertia::Legacy
                }
                other => {
                    return Err(self.error(
                        v.line,
                        "mesh.inertia",
                        format!(
                            "mesh '{name}': expected convex, exact, legacy or shell, found \
                             '{other}'{}",
                            v.origin()
                        ),
                    ));
                }
            },
        };
        let bad = |what: String| self.error(mline, "mesh", format!("mesh '{name}': {what}"));
        let (mut vertices, mut faces) = match (node.attribute("file"), self.get(&el, "vertex")?) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give its vertices in a file or in the vertex attribute, not both".into(),
                ));
            }
            (Some(file), None) => {
                let path = self.mesh_path(file);
                let ext = path
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default();
                match ext.as_str() {
                    "stl" => {}
                    "obj" | "msh" => {
                        self.unsupported(
                            self.attr_line(node, "file"),
                            "mesh",
                            format!(
                                "mesh '{name}' (used by {label}) reads '{}': backdrive reads STL \
                                 meshes only, so its mass was dropped",
                                path.display()
                            ),
                        );
                        return Ok(None);
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown mesh file type '{}' (expected .stl, .obj or .msh)",
                            path.display()
                        )));
                    }
                }
                read_stl(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?
            }
            (None, Some(v)) => {
                let xs = self.nums(&el, &v)?;
                if !xs.len().is_multiple_of(3) {
                    return Err(bad(format!(
                        "vertex data must be a multiple of 3 numbers, found {}",
                        xs.len()
                    )));
                }
                let vertices: Vec<DVec3> = xs
                    .chunks_exact(3)
                    .map(|c| DVec3::new(c[0], c[1], c[2]))
                    .collect();
                let Some(fv) = self.get(&el, "face")? else {
                    self.unsupported(
                        v.line,
                        "mesh",
                        format!(
                            "mesh '{name}' (used by {label}) has vertices but no faces: MuJoCo \
                             takes their convex hull, which backdrive does not build; its mass \
                             was dropped"
                        ),
                    );
                    return Ok(None);
                };
                let idx: Vec<usize> = fv
                    .text
                    .split_ascii_whitespace()
                    .map(|s| s.parse::<usize>().ok().filter(|&k| k < vertices.len()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        bad(format!(
                            "face must list vertex indices from 0 to {}",
                            vertices.len().saturating_sub(1)
                        ))
                    })?;
                if !idx.len().is_multiple_of(3) || idx.is_empty() {
                    return Err(bad(format!(
                        "face data must be a non-empty multiple of 3 indices, found {}",
                        idx.len()
                    )));
                }
                let faces = idx.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
                (vertices, faces)
            }
            (None, None) => return Err(bad("it has no file and no vertex data".into())),
        };
        if vertices.len() < 4 {
            return Err(bad(format!(
                "at least 4 vertices are required, found {}",
                vertices.len()
            )));
        }
        // MuJoCo's order: subtract refpos, turn by the conjugate of refquat, then scale.
        let scale = self.vec3(&el, "scale")?.unwrap_or(DVec3::ONE);
        let refpos = self.vec3(&el, "refpos")?.unwrap_or(DVec3::ZERO);
        let refquat = match self.get(&el, "refquat")? {
            Some(v) => {
                let [w, x, y, z] = self.fixed::<4>(&el, &v)?;
                let q = DQuat::from_xyzw(x, y, z, w);
                if q.length() < 1e-10 {
                    return Err(self.error(v.line, "mesh.refquat", "zero quaternion"));
                }
                q.normalize()
            }
            None => DQuat::IDENTITY,
        };
        for v in &mut vertices {
            *v = (refquat.inverse() * (*v - refpos)) * scale;
        }
        if scale.x * scale.y * scale.z < 0.0 {
            // A mirrored mesh keeps its faces pointing outward.
            for f in &mut faces {
                f.swap(1, 2);
            }
        }
        let mass = mass_properties(&vertices, &faces, mode).map_err(|e| {
            bad(match node.attribute("file") {
                Some(f) => format!("{}: {e}", self.mesh_path(f).display()),
                None => e,
            })
        })?;
        self.meshes
            .borrow_mut()
            .insert(name.to_string(), mass.clone());
        Ok(Some(mass))
    }

    /// Where a mesh file is, as MuJoCo looks for it: an absolute file name as it is; else
    /// `<compiler meshdir>` (or `assetdir`) if absolute, else the main model file's directory
    /// joined with it, then the file name (`strippath` drops the file's own directories).
    fn mesh_path(&self, file: &str) -> PathBuf {
        let compilers: Vec<Node> = self
            .doc
            .root_element()
            .children()
            .filter(|n| n.has_tag_name("compiler"))
            .collect();
        let last = |attr: &str| compilers.iter().rev().find_map(|c| c.attribute(attr));
        let strip = last("strippath").is_some_and(|s| s.trim() == "true");
        let file = Path::new(file);
        let file = match (strip, file.file_name()) {
            (true, Some(f)) => Path::new(f),
            _ => file,
        };
        if file.is_absolute() {
            return file.to_path_buf();
        }
        let dir = Path::new(last("meshdir").or(last("assetdir")).unwrap_or(""));
        if dir.is_absolute() {
            return dir.join(file);
        }
        let base = self
            .file
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        base.join(dir).join(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box [0, a] x [0, b] x [0, c] as 12 outward triangles.
    fn cuboid(a: f64, b: f64, c: f64) -> (Vec<DVec3>, Vec<[usize; 3]>) {
        let v: Vec<DVec3> = (0..8)
            .map(|k| {
                DVec3::new(
                    if k & 1 != 0 { a } else { 0.0 },
                    if k & 2 != 0 { b } else { 0.0 },
                    if k & 4 != 0 { c } else { 0.0 },
                )
            })
            .collect();
        let faces = vec![
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ];
        (v, faces)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-12)
    }

    #[test]
    fn a_closed_box_has_the_closed_form_volume_centre_and_inertia() {
        let (a, b, c) = (0.2, 0.5, 1.3);
        let (v, f) = cuboid(a, b, c);
        for mode in [MeshInertia::Legacy, MeshInertia::Exact] {
            let m = mass_properties(&v, &f, mode).unwrap();
            assert!(close(m.volume, a * b * c), "{mode:?}: {}", m.volume);
            assert!(
                (m.com - DVec3::new(a, b, c) / 2.0).length() < 1e-12,
                "{:?}",
                m.com
            );
            let want = DVec3::new(b * b + c * c, a * a + c * c, a * a + b * b) * (a * b * c / 12.0);
            let got = DVec3::new(m.inertia.x_axis.x, m.inertia.y_axis.y, m.inertia.z_axis.z);
            for k in 0..3 {
                assert!(close(got[k], want[k]), "{mode:?}: {got} vs {want}");
            }
            assert!(m.inertia.y_axis.x.abs() < 1e-14, "{}", m.inertia);
        }
    }

    #[test]
    fn a_tetrahedron_has_the_closed_form_inertia() {
        // The corner tetrahedron of the unit cube: V = 1/6, centroid (1/4, 1/4, 1/4), and
        // second moments about it: integral x^2 = 1/60 - V/16, integral xy = 1/120 - V/16.
        let v = vec![DVec3::ZERO, DVec3::X, DVec3::Y, DVec3::Z];
        let f = vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]];
        let m = mass_properties(&v, &f, MeshInertia::Exact).unwrap();
        let vol = 1.0 / 6.0;
        assert!(close(m.volume, vol), "{}", m.volume);
        assert!((m.com - DVec3::splat(0.25)).length() < 1e-14);
        let xx = 1.0 / 60.0 - vol / 16.0;
        let xy = 1.0 / 120.0 - vol / 16.0;
        assert!(close(m.inertia.x_axis.x, 2.0 * xx), "{}", m.inertia);
        assert!(close(m.inertia.y_axis.x, -xy), "{}", m.inertia);
        // Legacy agrees on a convex mesh.
        let l = mass_properties(&v, &f, MeshInertia::Legacy).unwrap();
        assert!(close(l.volume, vol) && close(l.inertia.z_axis.y, m.inertia.z_axis.y));
    }

    #[test]
    fn legacy_overcounts_a_concave_mesh_and_exact_does_not() {
        // An L-shaped prism of height 1 (area 7) whose face centroid lies in the notch, outside
        // the solid, so that some pyramids from it count negatively.
        let outline = [
            (0.0, 0.0),
            (4.0, 0.0),
            (4.0, 1.0),
            (1.0, 1.0),
            (1.0, 4.0),
            (0.0, 4.0),
        ];
        let mut v: Vec<DVec3> = outline
            .iter()
            .map(|&(x, y)| DVec3::new(x, y, 0.0))
            .collect();
        v.extend(outline.iter().map(|&(x, y)| DVec3::new(x, y, 1.0)));
        // Bottom (facing -z) and top (+z): the L split into two rectangles' triangles.
        let mut f = vec![
            [0, 2, 1],
            [0, 3, 2],
            [0, 5, 3],
            [3, 5, 4],
            [6, 7, 8],
            [6, 8, 9],
            [6, 9, 11],
            [9, 10, 11],
        ];
        for k in 0..6 {
            let n = (k + 1) % 6;
            f.push([k, n, n + 6]);
            f.push([k, n + 6, k + 6]);
        }
        let exact = mass_properties(&v, &f, MeshInertia::Exact).unwrap();
        assert!(close(exact.volume, 7.0), "{}", exact.volume);
        let legacy = mass_properties(&v, &f, MeshInertia::Legacy).unwrap();
        assert!(legacy.volume > 7.0 + 1e-6, "{}", legacy.volume);
        // Flipping one face is an error for exact, as in MuJoCo.
        let mut flipped = f.clone();
        flipped[0].swap(1, 2);
        let err = mass_properties(&v, &flipped, MeshInertia::Exact).unwrap_err();
        assert!(err.contains("inconsistent orientation"), "{err}");
        // An inside-out mesh has a negative volume.
        let inverted: Vec<[usize; 3]> = f.iter().map(|t| [t[0], t[2], t[1]]).collect();
        let err = mass_properties(&v, &inverted, MeshInertia::Exact).unwrap_err();
        assert!(err.contains("negative"), "{err}");
        // Legacy takes every pyramid's volume unsigned, so the inverted mesh is the same.
        let l2 = mass_properties(&v, &inverted, MeshInertia::Legacy).unwrap();
        assert!(close(l2.volume, legacy.volume));
    }

    #[test]
    fn a_box_meshs_inertia_box_is_itself() {
        let (v, f) = cuboid(0.2, 0.4, 0.6);
        let m = mass_properties(&v, &f, MeshInertia::Legacy).unwrap();
        let (eig, axes) = symmetric_eigen(&m.inertia);
        let (half, deviation) = inertia_box(&m, eig, axes);
        let mut sorted = half.to_array();
        sorted.sort_by(f64::total_cmp);
        for (got, want) in sorted.iter().zip([0.1, 0.2, 0.3]) {
            assert!((got - want).abs() < 1e-12, "{half}");
        }
        assert!(deviation < 1e-12, "{deviation}");
        // A tetrahedron is not its box: the corners stick out.
        let v = vec![DVec3::ZERO, DVec3::X, DVec3::Y, DVec3::Z];
        let f = vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]];
        let m = mass_properties(&v, &f, MeshInertia::Exact).unwrap();
        let (eig, axes) = symmetric_eigen(&m.inertia);
        let (_, deviation) = inertia_box(&m, eig, axes);
        assert!(deviation > 0.05 && deviation < 1.0, "{deviation}");
    }

    #[test]
    fn a_shell_puts_the_mass_on_the_surface() {
        let (a, b, c) = (1.0, 2.0, 3.0);
        let (v, f) = cuboid(a, b, c);
        let m = mass_properties(&v, &f, MeshInertia::Shell).unwrap();
        let area = 2.0 * (a * b + b * c + a * c);
        assert!(close(m.volume, area), "{}", m.volume);
        // A thin-walled box about its centre, x axis: the faces x = 0, a (b x c plates),
        // (b^2 + c^2) b c / 12 each; y faces (a x c) at y = +-b/2:
        // a c (c^2/12 + b^2/4); z faces (a x b) at z = +-c/2: a b (b^2/12 + c^2/4).
        let ixx = 2.0 * (b * c * (b * b + c * c) / 12.0)
            + 2.0 * (a * c * (c * c / 12.0 + b * b / 4.0))
            + 2.0 * (a * b * (b * b / 12.0 + c * c / 4.0));
        assert!(
            close(m.inertia.x_axis.x, ixx),
            "{} vs {ixx}",
            m.inertia.x_axis.x
        );
    }

    #[test]
    fn binary_and_ascii_stl_read_the_same_triangles() {
        let dir = tempfile::tempdir().unwrap();
        let (v, f) = cuboid(1.0, 2.0, 3.0);
        let triangles: Vec<stl_io::Triangle> = f
            .iter()
            .map(|t| stl_io::Triangle {
                normal: stl_io::Normal::new([0.0; 3]),
                vertices: t.map(|k| stl_io::Vertex::new(v[k].as_vec3().to_array())),
            })
            .collect();
        let binary = dir.path().join("box.stl");
        let mut out = std::fs::File::create(&binary).unwrap();
        stl_io::write_stl(&mut out, triangles.iter()).unwrap();
        drop(out);
        // A binary header that starts with "solid" is still binary.
        let mut bytes = std::fs::read(&binary).unwrap();
        bytes[..6].copy_from_slice(b"solid ");
        let tricky = dir.path().join("tricky.stl");
        std::fs::write(&tricky, &bytes).unwrap();
        let mut ascii = String::from("solid box\n");
        for t in &f {
            ascii += "facet normal 0 0 0\nouter loop\n";
            for &k in t {
                ascii += &format!("vertex {} {} {}\n", v[k].x, v[k].y, v[k].z);
            }
            ascii += "endloop\nendfacet\n";
        }
        ascii += "endsolid box\n";
        let text = dir.path().join("box_ascii.stl");
        std::fs::write(&text, ascii).unwrap();
        for path in [&binary, &tricky, &text] {
            let (verts, faces) = read_stl(path).unwrap();
            assert_eq!((verts.len(), faces.len()), (8, 12), "{}", path.display());
            let m = mass_properties(&verts, &faces, MeshInertia::Exact).unwrap();
            assert!(close(m.volume, 6.0), "{}: {}", path.display(), m.volume);
        }
        // Truncated and garbage files are errors, not panics.
        let cut = dir.path().join("cut.stl");
        std::fs::write(&cut, &bytes[..200]).unwrap();
        assert!(read_stl(&cut).is_err());
        let junk = dir.path().join("junk.stl");
        std::fs::write(&junk, b"solid x\nfacet normal nonsense\n").unwrap();
        assert!(read_stl(&junk).is_err());
        assert!(read_stl(&dir.path().join("missing.stl")).is_err());
    }
}
