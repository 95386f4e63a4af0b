//! Mass properties: `<inertial>`, the volume and inertia of geom shapes, and principal frames.

use super::*;

/// Mass, centre of mass and inertia tensor about the centre of mass, in world coordinates.
#[derive(Clone, Copy, Debug)]
pub(super) struct MassPart {
    pub(super) mass: f64,
    pub(super) com: DVec3,
    pub(super) inertia: DMat3,
}

pub(super) fn combine(parts: &[MassPart]) -> Option<MassPart> {
    let mass: f64 = parts.iter().map(|p| p.mass).sum();
    if mass <= 0.0 || !mass.is_finite() {
        return None;
    }
    let com = parts.iter().map(|p| p.com * p.mass).sum::<DVec3>() / mass;
    let mut inertia = DMat3::ZERO;
    for p in parts {
        let d = p.com - com;
        let shift = DMat3::from_diagonal(DVec3::splat(d.length_squared()))
            - DMat3::from_cols(d * d.x, d * d.y, d * d.z);
        inertia += p.inertia + shift * p.mass;
    }
    Some(MassPart { mass, com, inertia })
}

impl<'a, 'input> Ctx<'a, 'input> {
    pub(super) fn inertial(&mut self, node: Node, bpos: DVec3, brot: DQuat) -> Result<MassPart> {
        self.check_attrs(
            node,
            &[
                "pos",
                "quat",
                "euler",
                "axisangle",
                "xyaxes",
                "zaxis",
                "mass",
                "diaginertia",
                "fullinertia",
            ],
            &[],
        );
        let el = self.el(node, None, None);
        let line = self.line(node);
        let pos = self
            .vec3(&el, "pos")?
            .ok_or_else(|| self.error(line, "inertial.pos", "<inertial> needs a pos"))?;
        let mass = self
            .num(&el, "mass")?
            .ok_or_else(|| self.error(line, "inertial.mass", "<inertial> needs a mass"))?;
        if mass < 0.0 {
            return Err(self.error(
                self.attr_line(node, "mass"),
                "inertial.mass",
                format!("expected a mass >= 0, found {mass}"),
            ));
        }
        let q = self.orientation(&el)?;
        let diag = self.vec3(&el, "diaginertia")?;
        let full = match self.get(&el, "fullinertia")? {
            Some(v) => Some(self.fixed::<6>(&el, &v)?),
            None => None,
        };
        let local = match (diag, full) {
            (Some(d), None) => {
                let r = DMat3::from_quat(q);
                r * DMat3::from_diagonal(d) * r.transpose()
            }
            (None, Some(f)) => {
                if node
                    .attributes()
                    .any(|a| ["quat", "euler", "axisangle", "xyaxes", "zaxis"].contains(&a.name()))
                {
                    return Err(self.error(
                        line,
                        "inertial.fullinertia",
                        "fullinertia cannot be combined with an orientation",
                    ));
                }
                DMat3::from_cols_array(&[f[0], f[3], f[4], f[3], f[1], f[5], f[4], f[5], f[2]])
            }
            (Some(_), Some(_)) => {
                return Err(self.error(
                    line,
                    "inertial",
                    "give diaginertia or fullinertia, not both",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    line,
                    "inertial.diaginertia",
                    "<inertial> needs diaginertia or fullinertia",
                ));
            }
        };
        let (eig, _) = symmetric_eigen(&local);
        if eig
            .iter()
            .any(|&e| e < -1e-12 * eig.iter().map(|e| e.abs()).sum::<f64>())
        {
            return Err(self.error(
                line,
                "inertial",
                format!("the inertia matrix is not positive semi-definite (eigenvalues {eig:?})"),
            ));
        }
        let r = DMat3::from_quat(brot);
        Ok(MassPart {
            mass,
            com: bpos + brot * pos,
            inertia: r * local * r.transpose(),
        })
    }
}

/// Volume and principal inertia per unit mass, with MuJoCo's formulas.
pub(super) fn volume_and_inertia(kind: GeomType, size: &[f64]) -> (f64, DVec3) {
    use std::f64::consts::PI;
    match kind {
        GeomType::Sphere => {
            let r = size[0];
            (4.0 / 3.0 * PI * r.powi(3), DVec3::splat(0.4 * r * r))
        }
        GeomType::Capsule => {
            let (r, h) = (size[0], 2.0 * size[1]);
            let volume = PI * r * r * h + 4.0 / 3.0 * PI * r.powi(3);
            // MuJoCo: a cylinder plus two hemispheres displaced along z.
            let sphere = 4.0 * r / (4.0 * r + 3.0 * h);
            let cyl = 1.0 - sphere;
            let ixy = cyl * (3.0 * r * r + h * h) / 12.0
                + 0.4 * sphere * r * r
                + sphere * h * (3.0 * r + 2.0 * h) / 8.0;
            let iz = cyl * r * r / 2.0 + 0.4 * sphere * r * r;
            (volume, DVec3::new(ixy, ixy, iz))
        }
        GeomType::Cylinder => {
            let (r, h) = (size[0], 2.0 * size[1]);
            let ixy = (3.0 * r * r + h * h) / 12.0;
            (PI * r * r * h, DVec3::new(ixy, ixy, r * r / 2.0))
        }
        GeomType::Box => {
            let (a, b, c) = (size[0], size[1], size[2]);
            (
                8.0 * a * b * c,
                DVec3::new(
                    (b * b + c * c) / 3.0,
                    (a * a + c * c) / 3.0,
                    (a * a + b * b) / 3.0,
                ),
            )
        }
        GeomType::Ellipsoid => {
            let (a, b, c) = (size[0], size[1], size[2]);
            (
                4.0 / 3.0 * PI * a * b * c,
                DVec3::new(
                    (b * b + c * c) / 5.0,
                    (a * a + c * c) / 5.0,
                    (a * a + b * b) / 5.0,
                ),
            )
        }
        // A mesh's volume and inertia come from its file (`mesh::mass_properties`).
        GeomType::Plane | GeomType::Mesh => (0.0, DVec3::ZERO),
    }
}

/// Eigenvalues and eigenvectors (columns, right-handed) of a symmetric 3x3 matrix, by
/// nalgebra's symmetric eigen-decomposition. The columns are ordered and signed to stay as
/// close as possible to the input's own axes, so a matrix that is nearly diagonal keeps its
/// axis order (and the principal frame barely turns). Bounded work whatever the input: a
/// matrix that is not finite, or that does not converge, gives NaN eigenvalues.
pub(super) fn symmetric_eigen(m: &DMat3) -> ([f64; 3], DMat3) {
    let nan = ([f64::NAN; 3], DMat3::IDENTITY);
    let cols = m.to_cols_array();
    if !cols.iter().all(|v| v.is_finite()) {
        return nan;
    }
    let matrix = nalgebra::Matrix3::from_column_slice(&cols);
    let Some(eigen) = nalgebra::SymmetricEigen::try_new(matrix, f64::EPSILON, 1000) else {
        return nan;
    };
    let vector = |k: usize| {
        let c = eigen.eigenvectors.column(k);
        DVec3::new(c[0], c[1], c[2])
    };
    // The assignment of eigenvectors to axes x, y, z with the largest diagonal.
    const PERMUTATIONS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    let diagonal = |p: &[usize; 3]| -> f64 { (0..3).map(|axis| vector(p[axis])[axis].abs()).sum() };
    let best = PERMUTATIONS
        .iter()
        .copied()
        .max_by(|a, b| diagonal(a).total_cmp(&diagonal(b)))
        .expect("six permutations");
    let mut axes = [DVec3::ZERO; 3];
    let mut values = [0.0; 3];
    for axis in 0..3 {
        let v = vector(best[axis]);
        axes[axis] = if v[axis] < 0.0 { -v } else { v };
        values[axis] = eigen.eigenvalues[best[axis]];
    }
    let mut frame = DMat3::from_cols(axes[0], axes[1], axes[2]);
    if frame.determinant() < 0.0 {
        // Flip the axis least aligned with its own, where the sign is least meaningful.
        let weakest = (0..3)
            .min_by(|&a, &b| axes[a][a].abs().total_cmp(&axes[b][b].abs()))
            .expect("three axes");
        axes[weakest] = -axes[weakest];
        frame = DMat3::from_cols(axes[0], axes[1], axes[2]);
    }
    (values, frame)
}

/// Principal moments and the orientation of the principal frame; `preferred` is used when its
/// axes are already principal.
pub(super) fn principal_frame(inertia: &DMat3, preferred: DQuat) -> ([f64; 3], DQuat) {
    let r = DMat3::from_quat(preferred);
    let local = r.transpose() * *inertia * r;
    let scale = local.x_axis.x.abs() + local.y_axis.y.abs() + local.z_axis.z.abs();
    let off = local.y_axis.x.abs() + local.z_axis.x.abs() + local.z_axis.y.abs();
    if off <= 1e-9 * scale {
        return ([local.x_axis.x, local.y_axis.y, local.z_axis.z], preferred);
    }
    let (eig, vecs) = symmetric_eigen(&local);
    let q = (preferred * DQuat::from_mat3(&vecs)).normalize();
    (eig, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_eigen_diagonalises() {
        let m = DMat3::from_cols_array(&[4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0]);
        let (e, v) = symmetric_eigen(&m);
        // Nearly diagonal: the axes keep their order and direction.
        assert!(e[0] > e[1] && e[1] > e[2], "{e:?}");
        assert!(
            v.x_axis.x > 0.8 && v.y_axis.y > 0.8 && v.z_axis.z > 0.8,
            "{v}"
        );
        let d = v.transpose() * m * v;
        for (i, ei) in e.iter().enumerate() {
            assert!((d.col(i)[i] - ei).abs() < 1e-12);
            for j in 0..3 {
                if i != j {
                    assert!(d.col(i)[j].abs() < 1e-12);
                }
            }
        }
        assert!((v.determinant() - 1.0).abs() < 1e-12);
        let (e, _) = symmetric_eigen(&DMat3::from_cols_array(&[f64::NAN; 9]));
        assert!(e.iter().all(|x| x.is_nan()));
        // Repeated eigenvalues and a permuted diagonal.
        let m = DMat3::from_diagonal(DVec3::new(1.0, 3.0, 1.0));
        let (e, v) = symmetric_eigen(&m);
        assert_eq!(e, [1.0, 3.0, 1.0]);
        assert!((v.determinant() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn capsule_inertia_matches_mujoco() {
        // MuJoCo 4.0: capsule r = 0.1, half-length 0.3, density 1000.
        let (v, i) = volume_and_inertia(GeomType::Capsule, &[0.1, 0.3]);
        let m = 1000.0 * v;
        assert!((m - 23.03834612632515).abs() < 1e-9);
        assert!((i.x * m - 1.1006046263076241).abs() < 1e-9);
        assert!((i.z * m - 0.11100294042683936).abs() < 1e-9);
    }
}
