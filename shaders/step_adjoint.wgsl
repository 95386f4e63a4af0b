// The adjoint step kernel: one invocation per instance, one step per dispatch. The host loads
// the state at the start of the step into `state` and the adjoint of the next state into the
// adjoint buffer; the kernel recomputes the step (recording the solver's sweeps, or replaying
// them from the tape that `step_forward_taped` recorded: see `tape_index`), then runs
// every stage's adjoint in reverse order. On return `state` holds the start state again, the
// adjoint buffer holds the adjoint of the start state, parameter adjoints have accumulated and
// the command adjoints of this step are set.

fn copy_state_to_adjoint(region: u32, i: u32) {
    for (var k = 0u; k < hdr.state_len; k++) {
        adj_set(region + k, i, state_get(k, i));
    }
}

fn copy_adjoint_to_state(region: u32, i: u32) {
    for (var k = 0u; k < hdr.state_len; k++) {
        state_set(k, i, adj_get(region + k, i));
    }
}

@compute @workgroup_size(64)
fn step_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    step_in_dispatch = 0u;
    copy_state_to_adjoint(hdr.adj_start, i);
    for (var a = 0u; a < hdr.n_commands; a++) {
        adj_set(hdr.adj_commands + a, i, 0.0);
    }
    // A whole row's records per iteration: lavapipe caps an invocation's loop iterations (all
    // loops together) at 65,535, and a large model's sweeps need most of them.
    let zero = vec4<f32>(0.0);
    for (var r = 0u; r < hdr.n_rows; r++) {
        row_adj_set_record(r, 0u, i, zero);
        row_adj_set_record(r, 1u, i, zero);
        row_adj_set_record(r, 2u, i, zero);
        row_adj_set_record(r, 3u, i, zero);
        row_adj_set_record(r, 4u, i, zero);
        row_adj_set_record(r, 5u, i, zero);
        row_adj_set_record(r, 6u, i, zero);
        row_adj_set_record(r, 7u, i, zero);
    }

    joint_passive_rows_forward(i);
    joint_limit_rows_forward(i);
    fluid_forces_forward(i);
    integrate_velocity_forward(i);
    force_actuators_forward(i);
    copy_state_to_adjoint(hdr.adj_saved, i);
    joint_lock_rows_forward(i);
    servo_rows_forward(i);
    ground_contact_rows_forward(i);
    sphere_pair_rows_forward(i);
    world_contact_rows_forward(i);
    tendon_rows_forward(i);
    if (tape_plan.recorded != 0u) {
        solve_replay_tape(i);
    } else {
        solve_forward_taped(i);
    }
    actuator_activation_forward(i);

    integrate_position_adjoint(i);
    actuator_activation_adjoint(i);
    solve_adjoint(i);
    copy_adjoint_to_state(hdr.adj_saved, i);
    tendon_rows_adjoint(i);
    world_contact_rows_adjoint(i);
    sphere_pair_rows_adjoint(i);
    ground_contact_rows_adjoint(i);
    servo_rows_adjoint(i);
    joint_lock_rows_adjoint(i);
    force_actuators_adjoint(i);
    integrate_velocity_adjoint(i);
    copy_adjoint_to_state(hdr.adj_start, i);
    fluid_forces_adjoint(i);
    joint_limit_rows_adjoint(i);
    joint_passive_rows_adjoint(i);

    // The paper's per-step decay of the gradient flowing back in time, and a record of the
    // first step (counting back from the end) whose adjoint is not finite.
    var finite = true;
    for (var k = 0u; k < hdr.state_len; k++) {
        let g = adj_get(hdr.adj_state + k, i) * hdr.gradient_decay;
        adj_set(hdr.adj_state + k, i, g);
        finite = finite && is_finite(g);
    }
    for (var a = 0u; a < hdr.n_commands; a++) {
        finite = finite && is_finite(adj_get(hdr.adj_commands + a, i));
    }
    let recorded = adj_get(hdr.adj_nonfinite, i);
    adj_set(hdr.adj_nonfinite, i, select(recorded, f32(hdr.command_base_step + 1u), !finite && recorded == 0.0));
}

// step_forward's stages for one step (the rollout's header sequence sets steps = 1), recording
// the solver's tape at this step's place (`tape_index`), for rollouts whose tape fits.
@compute @workgroup_size(64)
fn step_forward_taped(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= hdr.n_instances) {
        return;
    }
    step_in_dispatch = 0u;
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
    solve_forward_taped(i);
    tape_record_velocities(i);
    actuator_activation_forward(i);
    integrate_position_forward(i);
}

// NaN and infinity have an all-ones exponent; comparisons alone may be folded away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
