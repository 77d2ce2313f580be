//! Converts a trajectory between `.npy`, `.xtc`, `.trr` and `.dcd` (by extension):
//! `cargo run --release -p boltzflow-io --example convert_trajectory -- IN OUT [DT_PS]`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = args.as_slice() else {
        return Err("usage: convert_trajectory IN OUT [DT_PS]".into());
    };
    let dt: f64 = rest.first().map_or(Ok(1.0), |s| s.parse())?;
    let x = boltzflow_io::trajectory::read_coordinates(input.as_ref())?;
    boltzflow_io::trajectory::write_coordinates(output.as_ref(), x.view(), dt)?;
    println!(
        "{} frames × {} coordinates: {input} → {output}",
        x.nrows(),
        x.ncols()
    );
    Ok(())
}
