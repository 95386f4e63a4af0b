//! Large synthetic models for the loading benchmark and the scaling test: a chain of `n`
//! capsule links, each hinged to the one before, as TOML and as MJCF (flat bodies, since
//! MJCF nesting is bounded), with one actuator per joint.
#![allow(dead_code)]

use std::fmt::Write;

/// A TOML model of `n` bodies, `n` joints and `n` actuators.
pub fn chain_toml(n: usize) -> String {
    let mut s = String::from("name = \"chain\"\n\n[settings]\ndt = 0.01\n");
    for i in 0..n {
        let x = i as f32 * 0.5;
        write!(
            s,
            "\n[[body]]\nname = \"link{i}\"\nmass = 1.0\nposition = [{x}, 0.0, 1.0]\n\n\
             [[body.shape]]\ntype = \"capsule\"\nradius = 0.05\nhalf_length = 0.2\n\
             rotation = [0.0, 0.7071068, 0.0, 0.7071068]\n"
        )
        .unwrap();
    }
    for i in 0..n {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("parent = \"link{}\"\n", i - 1)
        };
        let x = i as f32 * 0.5 - 0.25;
        write!(
            s,
            "\n[[joint]]\nname = \"hinge{i}\"\ntype = \"hinge\"\n{parent}child = \"link{i}\"\n\
             anchor = [{x}, 0.0, 1.0]\naxis = [0.0, 1.0, 0.0]\nlimits = [-1.0, 1.0]\n"
        )
        .unwrap();
    }
    for i in 0..n {
        write!(
            s,
            "\n[[actuator]]\nname = \"servo{i}\"\njoint = \"hinge{i}\"\ntype = \"position_servo\"\n\
             gain = 10.0\nmax_force = 5.0\n"
        )
        .unwrap();
    }
    s
}

/// An MJCF model of `n` free-standing bodies, each with a hinge, a capsule and a motor.
pub fn chain_mjcf(n: usize) -> String {
    let mut s = String::from(
        "<mujoco model=\"chain\">\n  <option timestep=\"0.01\"/>\n  <worldbody>\n    \
         <geom name=\"floor\" type=\"plane\" size=\"10 10 0.1\"/>\n",
    );
    for i in 0..n {
        let x = i as f32 * 0.5;
        writeln!(
            s,
            "    <body name=\"link{i}\" pos=\"{x} 0 1\">\n      <joint name=\"hinge{i}\" \
             type=\"hinge\" axis=\"0 1 0\" range=\"-57 57\"/>\n      <geom type=\"capsule\" \
             size=\"0.05\" fromto=\"-0.2 0 0 0.2 0 0\" mass=\"1\"/>\n    </body>"
        )
        .unwrap();
    }
    s.push_str("  </worldbody>\n  <actuator>\n");
    for i in 0..n {
        writeln!(
            s,
            "    <motor name=\"motor{i}\" joint=\"hinge{i}\" gear=\"1\"/>"
        )
        .unwrap();
    }
    s.push_str("  </actuator>\n</mujoco>\n");
    s
}
