//! Test cgroups ([`TestCgroup`] from `tapio-ebpf-support`) and container ids.

pub use tapio_ebpf_support::test_support::TestCgroup;

/// A fresh 64-hex container id.
pub fn container_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = nanos ^ (u64::from(std::process::id()) << 32);
    (0..4)
        .map(|i| {
            format!(
                "{:016x}",
                seed.rotate_left(i * 16).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            )
        })
        .collect()
}
