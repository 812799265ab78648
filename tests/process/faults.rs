//! Page faults of the calling thread, for the test that checks churn on
//! one page faults nothing in again (`#[path = "process/faults.rs"] mod
//! faults;`).

/// Minor page faults this thread has taken (`/proc/thread-self/stat`,
/// field 10): a page handed back to the OS and written again costs one.
pub fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
    // The command name (field 2) may hold spaces: count after its ')'.
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 1..];
    after_name
        .split_whitespace()
        .nth(7)
        .unwrap()
        .parse()
        .unwrap()
}
