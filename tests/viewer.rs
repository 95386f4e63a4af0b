//! The HTML trajectory viewer, opened in headless Chromium, shows the robot without script
//! errors; `rollout --html` writes it; PNG line charts decode and are not blank.
//!
//! The browser test needs Debian's `chromium` package (or `BACKDRIVE_CHROMIUM` naming a
//! Chromium or Chrome binary). Without one it prints "SKIPPED: chromium not found" and passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backdrive::io::plot::{self, ChartOptions};
use backdrive::io::viewer::{self, Trajectory, ViewerOptions};
use backdrive::{Simulator, io::models};

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("viewer-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Chromium binary: `BACKDRIVE_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BACKDRIVE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `extra` arguments, killing it after `limit`.
fn run_chromium(bin: &Path, page: &Path, profile: &Path, extra: &[String]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--window-size=800,600",
        "--virtual-time-budget=1500",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    // Read the pipes on threads so that a chatty browser cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).ok();
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).ok();
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within 120 s", bin.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

/// Decodes a PNG as 8-bit RGBA: width, height, pixels.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| match channels {
            1 => [c[0], c[0], c[0], 255],
            2 => [c[0], c[0], c[0], c[1]],
            3 => [c[0], c[1], c[2], 255],
            _ => [c[0], c[1], c[2], c[3]],
        })
        .collect();
    (info.width, info.height, pixels)
}

/// Simulates `n` quadrupeds for `steps` steps with sine commands, recording every other step.
fn quadruped_trajectory(n: usize, steps: u32) -> (backdrive::Model, Trajectory) {
    let model = models::builtin("quadruped").unwrap();
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let mut tr = Trajectory::for_model(&model, n);
    let dt = f64::from(model.settings.dt);
    tr.push(0.0, &sim.body_states().unwrap()).unwrap();
    let n_act = model.actuators.len();
    for k in 0..steps {
        let t = f64::from(k) * dt;
        let commands: Vec<f32> = (0..n * n_act)
            .map(|j| {
                let phase = 2.0 * std::f64::consts::PI * 1.5 * t + (j % n_act) as f64 * 0.8;
                (0.2 * (phase + (j / n_act) as f64).sin()) as f32
            })
            .collect();
        sim.set_commands(&commands).unwrap();
        sim.step(1).unwrap();
        if k % 2 == 1 {
            tr.push(f64::from(k + 1) * dt, &sim.body_states().unwrap())
                .unwrap();
        }
    }
    (model, tr)
}

#[test]
fn viewer_shows_the_quadruped_in_headless_chromium() {
    let dir = scratch("chromium");
    let (model, tr) = quadruped_trajectory(4, 60);
    assert_eq!(tr.len(), 31);
    let page = dir.join("quadruped.html");
    viewer::write_html(&page, &model, &tr, &ViewerOptions::default()).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: no external scripts, styles or fetches.
    for needle in [
        "src=\"http",
        "href=\"http",
        "<script src",
        "fetch(",
        "import(",
    ] {
        assert!(!html.contains(needle), "the page references '{needle}'");
    }
    assert!(!dir.join("quadruped.html.tmp").exists());

    let Some(bin) = chromium() else {
        println!("SKIPPED: chromium not found (install Debian's `chromium` package)");
        eprintln!("SKIPPED: chromium not found (install Debian's `chromium` package)");
        return;
    };

    // 1. The DOM after the page ran: the script marks success, and no error was caught.
    let out = run_chromium(
        &bin,
        &page,
        &dir.join("profile-dom"),
        &["--dump-dom".into()],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("<body"),
        "chromium --dump-dom failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("<div id=\"errors\"></div>"),
        "the page reported script errors:\n{}",
        dom[dom.find("id=\"errors\"").unwrap_or(0)..]
            .chars()
            .take(400)
            .collect::<String>()
    );
    assert!(
        dom.contains("data-status=\"ok\""),
        "the page did not finish drawing (status marker missing)"
    );
    assert!(
        dom.contains("all 4 side by side"),
        "instance choice missing"
    );

    // 2. A screenshot: the centre of the window shows the robots' colours.
    let shot = dir.join("quadruped.png");
    let out = run_chromium(
        &bin,
        &page,
        &dir.join("profile-shot"),
        &[format!("--screenshot={}", shot.display())],
    );
    assert!(
        out.status.success() && shot.is_file(),
        "chromium --screenshot failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, px) = decode_png(&shot);
    assert!(w >= 400 && h >= 300, "screenshot is {w}x{h}");
    let (mut torso, mut legs, mut saturated) = (0usize, 0usize, 0usize);
    for y in h / 4..3 * h / 4 {
        for x in w / 4..3 * w / 4 {
            let [r, g, b, _] = px[(y * w + x) as usize].map(i32::from);
            // Torso: orange (232, 119, 46), shaded. Thighs and shins: blue and teal.
            if r > g + 40 && g > b + 20 {
                torso += 1;
            }
            if b > r + 60 {
                legs += 1;
            }
            if r.max(g).max(b) - r.min(g).min(b) > 60 {
                saturated += 1;
            }
        }
    }
    println!(
        "screenshot {}: {w}x{h}, centre: {torso} torso pixels, {legs} leg pixels, {saturated} \
         saturated pixels",
        shot.display()
    );
    assert!(
        torso > 1000,
        "too few torso-coloured pixels ({torso}) in the centre"
    );
    assert!(
        legs > 100,
        "too few leg-coloured pixels ({legs}) in the centre"
    );
    // Not one colour: the background, grid, shadows and robots differ.
    let mut colours: Vec<[u8; 4]> = px.iter().step_by(7).copied().collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 50, "only {} colours", colours.len());
}

#[test]
fn rollout_html_alone_writes_a_viewer() {
    let dir = scratch("cli");
    let page = dir.join("nested").join("q.html");
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args(["rollout", "quadruped", "-n", "3", "--steps", "20", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("wrote a viewer of 21 frames x 3 instance(s)"),
        "{text}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("\"total_frames\":21"));
    assert!(html.contains("\"instances\":3"));
    assert!(!dir.join("nested").join("q.html.tmp").exists());
}

#[test]
fn viewer_subsamples_long_trajectories_and_caps_instances() {
    let model = models::builtin("ball").unwrap();
    let mut tr = Trajectory::new(1, 40, 20);
    assert_eq!(tr.kept_instances(), 20);
    for k in 0..5000 {
        let z = 1.0 - k as f32 * 1e-4;
        let poses = vec![([0.0, 0.0, z], [0.0, 0.0, 0.0, 1.0]); 20];
        tr.push_poses(f64::from(k) * 0.01, &poses).unwrap();
    }
    let options = ViewerOptions {
        max_frames: 1000,
        max_instances: 5,
        ..ViewerOptions::default()
    };
    let html = viewer::render_html(&model, &tr, &options).unwrap();
    assert!(html.contains("\"instances\":5,\"total_instances\":40"));
    assert!(html.contains("\"total_frames\":5000"));
    let frames = html.matches("],\n[").count() + 1;
    assert_eq!(frames, 1000);
    // The first and last frames are kept: z = 1 and z = 1 - 4999e-4 = 0.5001.
    assert!(html.contains("[0,0,1,0,0,0,1,"));
    assert!(html.contains("0,0,0.5001,0,0,0,1]]}"));
    // A trajectory of another model is refused.
    let quad = models::builtin("quadruped").unwrap();
    assert!(viewer::render_html(&quad, &tr, &options).is_err());
}

#[test]
fn line_charts_are_written_as_png() {
    let dir = scratch("plot");
    // Training curves: loss on a log axis, two series.
    let loss: Vec<(f64, f64)> = (0..200)
        .map(|i| {
            let i = f64::from(i);
            (
                i,
                2.0 * (-i / 40.0).exp() + 0.01 + 0.02 * (i * 0.7).sin().abs(),
            )
        })
        .collect();
    let grad: Vec<(f64, f64)> = loss.iter().map(|&(i, l)| (i, 3.0 * l.sqrt())).collect();
    let path = dir.join("sub").join("loss.png");
    plot::line_chart(
        &path,
        "training",
        "iteration",
        "loss",
        &[("loss", loss), ("gradient norm", grad)],
        true,
    )
    .unwrap();
    // Throughput against batch size, both axes logarithmic.
    let bench: Vec<(f64, f64)> = (0..12)
        .map(|k| {
            let n = f64::from(1u32 << k);
            (n, 4e3 * n / (1.0 + n / 512.0))
        })
        .collect();
    let bench_path = dir.join("bench.png");
    let options = ChartOptions {
        log_x: true,
        log_y: true,
        ..ChartOptions::default()
    };
    plot::line_chart_with(
        &bench_path,
        "forward throughput",
        "instances",
        "robot-steps/s",
        &[("lavapipe".to_string(), bench)],
        &options,
    )
    .unwrap();

    for p in [&path, &bench_path] {
        assert!(!p.with_extension("png.tmp").exists());
        let bytes = std::fs::metadata(p).unwrap().len();
        assert!(bytes > 5_000, "{}: only {bytes} bytes", p.display());
        let (w, h, px) = decode_png(p);
        assert_eq!((w, h), (900, 540), "{}", p.display());
        let mut colours = px.clone();
        colours.sort_unstable();
        colours.dedup();
        assert!(
            colours.len() > 20,
            "{}: {} colours",
            p.display(),
            colours.len()
        );
        // The series colours appear (blue first, then orange).
        let blue = px.iter().filter(|c| c[2] > 150 && c[0] < 80).count();
        assert!(blue > 300, "{}: {blue} blue pixels", p.display());
        println!("{}: {w}x{h}, {bytes} bytes", p.display());
    }
}
