//! tracefs: classic tracepoints (and bpftrace) need it mounted at `/sys/kernel/tracing`;
//! raw tracepoints and `tp_btf` do not.

use std::path::Path;

use crate::EbpfError;

/// Where tracefs is expected.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Whether tracefs is mounted (its `events` directory exists).
pub fn is_mounted() -> bool {
    Path::new(TRACEFS).join("events").is_dir()
}

/// Mounts tracefs at [`TRACEFS`] unless it is mounted already.
pub fn ensure_mounted() -> Result<(), EbpfError> {
    if is_mounted() {
        return Ok(());
    }
    let source = c"tracefs";
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(EbpfError::Tracefs(std::io::Error::last_os_error()));
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(())
}
