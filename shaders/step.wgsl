// The forward step kernel: one invocation per robot instance, `hdr.steps` steps per dispatch.
// Stage order: passive joint rows and joint limits (written first: an armature row, and a
// limit in MuJoCo's impedance model, need the joint speed at the step's start), fluid forces
// (from the velocities at the step's start), gravity, force actuators, constraint rows
// (joints, servos, contacts, world contacts, tendons),
// Gauss-Seidel solve, the actuators' activations (their forces used the values at the step's
// start), position update.

@compute @workgroup_size(64)
fn step_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    for (var s = 0u; s < hdr.steps; s++) {
        step_in_dispatch = s;
        joint_passive_rows_forward(i);
        joint_limit_rows_forward(i);
        fluid_forces_forward(i);
        integrate_velocity_forward(i);
        force_actuators_forward(i);
        joint_lock_rows_forward(i);
        servo_rows_forward(i);
        ground_contact_rows_forward(i);
        sphere_pair_rows_forward(i);
        world_contact_rows_forward(i);
        tendon_rows_forward(i);
        solve_forward(i);
        actuator_activation_forward(i);
        integrate_position_forward(i);
    }
}
