//! A model with one body over each kind of world shape, for the GPU tests.
#![allow(dead_code)]

use backdrive::model::{Model, ModelBuilder, ShapeKind, WorldShapeKind};

/// Five bodies dropped, spinning, onto a tilted plane, a sphere, a capsule, a box and a
/// cylinder fixed to the world, with the ground plane z = 0 below them.
pub fn world_shapes_model() -> Model {
    let tilt = glam::Quat::from_rotation_x(0.2).to_array();
    let along_x = glam::Quat::from_rotation_y(std::f32::consts::FRAC_PI_2).to_array();
    let upright = [0.0, 0.0, 0.0, 1.0];
    let small_box = ShapeKind::Box {
        half_extents: [0.15, 0.1, 0.05],
    };
    let ball = ShapeKind::Sphere { radius: 0.1 };
    ModelBuilder::new("world shapes")
        .with_settings(|s| s.solver_iterations = 8)
        .world_shape(WorldShapeKind::Plane, [0.0, 0.0, 0.2], tilt)
        .world_shape(
            WorldShapeKind::Sphere { radius: 0.3 },
            [2.0, 0.0, 0.3],
            upright,
        )
        .world_shape(
            WorldShapeKind::Capsule {
                radius: 0.15,
                half_length: 0.4,
            },
            [4.0, 0.0, 0.2],
            along_x,
        )
        .world_shape(
            WorldShapeKind::Box {
                half_extents: [0.5, 0.4, 0.25],
            },
            [6.0, 0.0, 0.25],
            tilt,
        )
        .world_shape(
            WorldShapeKind::Cylinder {
                radius: 0.3,
                half_length: 0.3,
            },
            [8.0, 0.0, 0.3],
            upright,
        )
        .body("on_plane", 1.0, [0.0, 0.0, 0.5])
        .shape(small_box.clone(), [0.0; 3])
        .with_body(|b| b.angular_velocity = [0.5, 1.0, 0.0])
        .body("on_sphere", 1.0, [2.1, 0.0, 0.8])
        .shape(
            ShapeKind::Capsule {
                radius: 0.05,
                half_length: 0.1,
            },
            [0.0; 3],
        )
        .with_body(|b| b.linear_velocity = [0.2, 0.1, 0.0])
        .body("on_capsule", 1.0, [4.0, 0.05, 0.6])
        .shape(ball.clone(), [0.0; 3])
        .body("on_box", 1.0, [6.3, 0.0, 0.7])
        .shape(small_box, [0.0; 3])
        .with_body(|b| {
            b.angular_velocity = [0.0, 2.0, 1.0];
            b.restitution = 0.4;
        })
        .body("on_cylinder", 1.0, [8.25, 0.0, 0.8])
        .shape(ball, [0.0; 3])
        .with_body(|b| b.linear_velocity = [0.3, 0.0, -1.0])
        .build()
        .unwrap()
}
