//! The one progress-bar style of every long-running command (rollouts, training, the paper's
//! experiments): a bar on standard error that indicatif hides when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` units named `unit` ("steps", "it", "evals"), with `prefix` before
/// the bar (may be empty), elapsed time, rate, estimated time left and a message.
pub fn bar(len: u64, unit: &str, prefix: &str) -> ProgressBar {
    let template = format!(
        "{{prefix}}[{{bar:30}}] {{pos}}/{{len}} {unit}  {{elapsed}}  {{per_sec}}  eta {{eta}}  {{msg}}"
    );
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    if !prefix.is_empty() {
        bar.set_prefix(format!("{prefix} "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_valid_for_any_unit() {
        for unit in ["steps", "it", "evals", "{odd}"] {
            let b = bar(10, unit, "quadruped: gradient");
            b.set_position(3);
            assert_eq!(b.position(), 3);
            assert_eq!(b.length(), Some(10));
        }
    }
}
