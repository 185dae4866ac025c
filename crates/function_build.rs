//! The build script of every function crate and of the bench's floor (`build = ...` in their
//! manifests): links their binaries as non-PIE executables on Linux.
//!
//! A position-independent executable carries one dynamic relocation per pointer in its data,
//! which the loader reads and applies at every cold start: 1.0 MiB of `.rela.dyn` in
//! create-checkout-session, all of it resident. Without PIE the linker resolves them once:
//! checkout's peak RSS 11.1 → 10.1 MiB and its init 2.6–3.0 → 2.3 ms in an A/B
//! (docs/performance-decisions.md, "Non-PIE functions"). The price is that the executable's own
//! code sits at a fixed address; libraries, heap and stacks stay randomised. Only the binaries
//! change: the code is compiled as before, and tests, fuzz targets and the local API stay PIE.

fn main() {
    // What it prints depends on the target alone (each target builds apart), so no change of
    // the package's files reruns it.
    println!("cargo::rerun-if-env-changed=CARGO_CFG_TARGET_OS");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
