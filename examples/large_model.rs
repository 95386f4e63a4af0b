//! Writes a large synthetic model (a chain of N hinged capsule links with a servo each) for
//! timing model loading from the command line:
//!
//! `cargo run --release --example large_model -- toml 100000 /tmp/chain.toml`
//! `cargo run --release --example large_model -- xml 20000 /tmp/chain.xml`

#[path = "../tests/common/large_models.rs"]
mod large_models;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [format, n, path] = args.as_slice() else {
        anyhow::bail!("usage: large_model toml|xml BODIES FILE");
    };
    let n: usize = n.parse()?;
    let text = match format.as_str() {
        "toml" => large_models::chain_toml(n),
        "xml" => large_models::chain_mjcf(n),
        other => anyhow::bail!("unknown format '{other}': expected toml or xml"),
    };
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    Ok(())
}
