//! `boltzflow`: the command line (DESIGN §7). `main` → `run()` → exit status: 0 on success,
//! 2 for bad input (with one paragraph saying what to change), 1 for other failures.

mod basins;
mod bg;
mod dihedrals;
mod energy;
mod kinetics;
mod plot;
mod run_common;
mod simulate;
mod train;
mod vae;
mod van;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generative, data-driven molecular simulation: reference systems and molecules (OpenMM XML),
/// samplers and molecular dynamics, internal coordinates, kinetics, Boltzmann generators, VAE
/// collective variables and variational autoregressive networks.
#[derive(Parser)]
#[command(name = "boltzflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a Boltzmann generator on the double well (ML, then ML + KL), reweight, and compare
    /// ΔF with the exact value; writes a report.
    Demo(bg::demo::DemoArgs),
    /// Sample `mueller` with the seed paper's Metropolis protocol and compare basin populations
    /// with the exact quadrature values.
    MetropolisDemo(simulate::DemoArgs),
    /// Train a Boltzmann generator, or a variational autoregressive network (`model = "van"`),
    /// from a TOML configuration into a run directory.
    Train(train::TrainArgs),
    /// Draw configurations (and log-weights) from a trained generator or VAN.
    Sample(bg::sample::SampleArgs),
    /// Reweight generated samples: ESS, free energies and profiles vs. exact references (VAN:
    /// F_q, energy and entropy per β vs. exact references).
    Evaluate(bg::evaluate::EvaluateArgs),
    /// Figures and an HTML page for a run directory.
    Report(bg::report::ReportArgs),
    /// Train and evaluate a grid of VAEs (decoders × β × replicates × latent dimensions) from a
    /// `model = "vae"` configuration with a `[sweep]` table; metrics.csv and the paper's figures.
    Sweep(vae::sweep::SweepArgs),
    /// Write a VAE's encoder mean (the learned CV of a molecule in internal coordinates) as a
    /// PLUMED input of DISTANCE/ANGLE/TORSION and CUSTOM actions.
    ExportPlumed(vae::plumed::ExportPlumedArgs),
    /// List the systems and their parameters.
    Systems,
    /// Evaluate energies (and forces) of configurations from a .npy file.
    Energy(energy::EnergyArgs),
    /// Run Metropolis or Langevin chains and save configurations.
    Simulate(Box<simulate::SimulateArgs>),
    /// Backbone φ/ψ dihedrals of peptide configurations, Ramachandran plot, basin populations.
    Dihedrals(dihedrals::DihedralsArgs),
    /// Kinetic analysis of trajectories: TICA, VAMP, clustering, MSMs, implied timescales, CK test
    #[command(subcommand)]
    Kinetics(kinetics::KineticsCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => bg::demo::run(&a),
        Command::MetropolisDemo(a) => simulate::demo(a),
        Command::Train(a) => train::run(&a).map(|_| ()),
        Command::Sample(a) if van::is_van_run(&a.run_dir) => van::evaluate::sample(&a),
        Command::Sample(a) if vae::is_vae_run(&a.run_dir) => vae::evaluate::sample(&a),
        Command::Sample(a) => bg::sample::run(&a),
        Command::Evaluate(a) if van::is_van_run(&a.run_dir) => van::evaluate::run(&a).map(|_| ()),
        Command::Evaluate(a) if vae::is_vae_run(&a.run_dir) => vae::evaluate::run(&a).map(|_| ()),
        Command::Evaluate(a) => bg::evaluate::run(&a).map(|_| ()),
        Command::Sweep(a) => vae::sweep::run(&a),
        Command::ExportPlumed(a) => vae::plumed::run(&a),
        Command::Report(a) => if van::is_van_run(&a.run_dir) {
            van::report::run(&a)
        } else if vae::is_vae_run(&a.run_dir) {
            vae::report::run(&a)
        } else {
            bg::report::run(&a)
        }
        .map(|p| println!("report: {}", p.display())),
        Command::Systems => {
            print_systems();
            Ok(())
        }
        Command::Energy(a) => energy::run(a),
        Command::Simulate(a) => simulate::run(*a),
        Command::Kinetics(c) => kinetics::run(c),
        Command::Dihedrals(a) => dihedrals::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", paragraph(&e));
            ExitCode::from(exit_status(&e))
        }
    }
}

/// The whole context chain as one paragraph.
fn paragraph(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for part in e.chain().map(ToString::to_string) {
        // Our errors already print their source; do not say it twice.
        if !out.ends_with(&part) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&part);
        }
    }
    out
}

/// 2 for errors in what the user gave (spec, file, shape, values), 1 otherwise.
fn exit_status(e: &anyhow::Error) -> u8 {
    use boltzflow_core::Error as E;
    match e.chain().find_map(|c| c.downcast_ref::<E>()).map(E::root) {
        Some(E::Numerical { .. }) | None => 1,
        Some(_) => 2,
    }
}

fn print_systems() {
    println!("{:<16} {:>4}  description", "system", "dim");
    for s in boltzflow_systems::catalog() {
        println!("{:<16} {:>4}  {}", s.name, s.dim, s.summary);
        for p in s.params {
            println!("{:<22}{}={:<8} {}", "", p.name, p.default, p.doc);
        }
    }
    println!("\nspin systems (for `model = \"van\"` configurations; dim = spins):");
    for s in boltzflow_systems::spins::CATALOG {
        println!("{:<16} {:>4}  {}", s.name, s.dim, s.summary);
        for p in s.params {
            println!("{:<22}{}={:<8} {}", "", p.name, p.default, p.doc);
        }
    }
    println!("\nSpecify a system as NAME or NAME:key=value,... (for example mueller:k=0.1).");
}
