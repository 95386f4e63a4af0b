//! The fluid records: each body the fluid acts on, with its equivalent-inertia box.

use crate::model::Model;

/// Full side lengths of the box of uniform density with the body's mass and principal moments
/// of inertia, as MuJoCo's inertia fluid model computes it (`mj_inertiaBoxFluidModel`):
/// `b_x = sqrt(6 (I_y + I_z - I_x) / m)` and its permutations. A moment sum that the triangle
/// inequality makes zero or negative gives a side of `sqrt(6e-15 / m)` (MuJoCo's `mjMINVAL`
/// floor), not a NaN.
pub fn inertia_box(mass: f32, inertia: [f32; 3]) -> [f32; 3] {
    let m = f64::from(mass);
    let [ix, iy, iz] = inertia.map(f64::from);
    let side = |sum: f64| (sum.max(1e-15) / m * 6.0).sqrt() as f32;
    [side(iy + iz - ix), side(ix + iz - iy), side(ix + iy - iz)]
}

/// `[body slot, box side x, y, z]` per body under the fluid; none when the fluid's density
/// and viscosity are both zero, so that the fluid stage then runs no iteration at all and the
/// step is bit for bit the one without it.
pub(super) fn pack_fluid(model: &Model) -> Vec<u32> {
    let s = &model.settings;
    if s.fluid_density == 0.0 && s.fluid_viscosity == 0.0 {
        return Vec::new();
    }
    let mut packed = Vec::new();
    for (i, b) in model.bodies.iter().enumerate() {
        if !b.fluid_drag {
            continue;
        }
        let inertia = b
            .inertia
            .unwrap_or_else(|| crate::model::inertia_from_shapes(b.mass, &b.shapes));
        packed.push((i + 1) as u32);
        packed.extend(inertia_box(b.mass, inertia).map(f32::to_bits));
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_box_gives_back_its_sides() {
        // A solid box of mass m and sides (a, b, c) has I_x = m (b^2 + c^2) / 12, ...
        let (m, a, b, c) = (2.5_f32, 0.3_f32, 0.1_f32, 0.7_f32);
        let inertia = [
            m * (b * b + c * c) / 12.0,
            m * (a * a + c * c) / 12.0,
            m * (a * a + b * b) / 12.0,
        ];
        let sides = inertia_box(m, inertia);
        for (got, want) in sides.iter().zip([a, b, c]) {
            assert!((got - want).abs() < 1e-6, "{sides:?}");
        }
    }

    #[test]
    fn a_degenerate_inertia_gives_a_finite_box() {
        let sides = inertia_box(1.0, [1.0, 0.1, 0.1]);
        assert!(sides.iter().all(|s| s.is_finite() && *s > 0.0), "{sides:?}");
    }

    #[test]
    fn no_fluid_packs_no_record_and_a_fluid_packs_every_body_that_feels_it() {
        use crate::model::{ModelBuilder, ShapeKind};
        let mut model = ModelBuilder::new("two")
            .body("a", 1.0, [0.0, 0.0, 1.0])
            .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
            .body("b", 1.0, [1.0, 0.0, 1.0])
            .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
            .build()
            .unwrap();
        assert!(pack_fluid(&model).is_empty());
        let h = crate::engine::layout::Compiled::new(&model).header;
        assert_eq!(h.n_fluid, 0);
        model.settings.fluid_viscosity = 0.1;
        model.bodies[0].fluid_drag = false;
        let packed = pack_fluid(&model);
        assert_eq!(packed.len(), super::super::stride::FLUID);
        assert_eq!(packed[0], 2, "body b's slot");
        model.settings.fluid_viscosity = 0.0;
        model.settings.fluid_density = 1.0;
        assert_eq!(
            crate::engine::layout::Compiled::new(&model).header.n_fluid,
            1
        );
    }
}
