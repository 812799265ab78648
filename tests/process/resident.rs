//! The process's resident memory, for the tests that check freed pages go
//! back to the OS (`#[path = "process/resident.rs"] mod resident;`). Each
//! such test sits alone in its binary, so no other test moves the figure.

/// Resident bytes of this process (`/proc/self/statm`, field 2).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// One MiB, for printing figures.
#[allow(dead_code)] // not every binary that includes this prints figures
pub const MIB: f64 = (1 << 20) as f64;
