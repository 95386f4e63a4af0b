//! The cart-pole LQR example balances the pole, which falls without control.

mod common;

#[path = "../examples/cartpole_lqr.rs"]
#[allow(dead_code)]
mod cartpole_lqr;

#[test]
fn lqr_from_step_jacobians_balances_the_cartpole() {
    let out = cartpole_lqr::run(common::gpu(), true).unwrap();
    assert!(
        out.max_tilt_lqr < 0.3,
        "LQR let the pole tilt {}",
        out.max_tilt_lqr
    );
    assert!(
        out.final_cart_lqr.abs() < 1.0,
        "cart drifted to {}",
        out.final_cart_lqr
    );
    assert!(
        out.max_tilt_uncontrolled > 1.0,
        "without control the pole should fall, tilt {}",
        out.max_tilt_uncontrolled
    );
}
