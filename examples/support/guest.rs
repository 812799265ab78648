//! Builds the Rust guest (`guests/guest`) for wasm32-unknown-unknown and
//! returns its bytes; shared by the `wasm_host` example and the benchmark.

use std::path::Path;
use std::process::Command;

/// Which allocator the guest's `#[global_allocator]` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestAllocator {
    /// The host's, through the `slotarena` imports.
    Host,
    /// std's own (dlmalloc), the baseline.
    Std,
}

/// Builds the guest (release, into `<repo>/target/guests/<allocator>`;
/// cargo makes this quick when nothing changed) and reads the module.
/// `repo` is the slotarena repository's root.
///
/// # Errors
///
/// A message naming the fix when the build fails, the usual cause being a
/// missing `rustup target add wasm32-unknown-unknown`.
pub fn build_guest(repo: &Path, allocator: GuestAllocator) -> Result<Vec<u8>, String> {
    let name = match allocator {
        GuestAllocator::Host => "host-alloc",
        GuestAllocator::Std => "std-alloc",
    };
    let target_dir = repo.join("target").join("guests").join(name);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--manifest-path")
        .arg(repo.join("guests/guest/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The host build's flags are not the guest's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if allocator == GuestAllocator::Std {
        command.args(["--features", "std-alloc"]);
    }
    let status = command
        .status()
        .map_err(|error| format!("could not run cargo to build the guest: {error}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest failed ({status}); is the target installed? \
             `rustup target add wasm32-unknown-unknown`"
        ));
    }
    let wasm = target_dir.join("wasm32-unknown-unknown/release/slotarena_guest.wasm");
    std::fs::read(&wasm).map_err(|error| format!("reading {}: {error}", wasm.display()))
}
