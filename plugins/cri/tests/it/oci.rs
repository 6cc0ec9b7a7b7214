//! Builds a one-layer OCI image layout tarball holding a static busybox, for
//! `ctr images import`.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Whether `path` is a statically linked ELF executable (no PT_INTERP program header).
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= bytes.len() && u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) != 3
    })
}

fn sha256(data: &[u8]) -> String {
    hex_string(&Sha256::digest(data))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, path, data).unwrap();
}

/// Writes an OCI image layout tarball named `image_name` to `out`: `/bin/busybox` plus
/// `sh`, `sleep` and `true` links; its default command sleeps (used as the pod sandbox
/// image too).
pub fn write_busybox_image(busybox: &Path, image_name: &str, out: &Path) {
    let mut layer = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    layer
        .append_data(&mut dir, "bin/", std::io::empty())
        .unwrap();
    append(
        &mut layer,
        "bin/busybox",
        &std::fs::read(busybox).unwrap(),
        0o755,
    );
    for applet in ["sh", "sleep", "true"] {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        link.set_size(0);
        link.set_mtime(0);
        layer
            .append_link(&mut link, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let layer_digest = sha256(&layer);

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sleep", "100000"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    })
    .to_string();
    let config_digest = sha256(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    })
    .to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": format!("sha256:{manifest_digest}"), "size": manifest.len(),
                       "annotations": {"io.containerd.image.name": image_name,
                                       "org.opencontainers.image.ref.name": "test"}}],
    })
    .to_string();

    let mut image = tar::Builder::new(Vec::new());
    append(
        &mut image,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    );
    append(&mut image, "index.json", index.as_bytes(), 0o644);
    for (digest, data) in [
        (&layer_digest, layer.as_slice()),
        (&config_digest, config.as_bytes()),
        (&manifest_digest, manifest.as_bytes()),
    ] {
        append(&mut image, &format!("blobs/sha256/{digest}"), data, 0o644);
    }
    let mut file = std::fs::File::create(out).unwrap();
    file.write_all(&image.into_inner().unwrap()).unwrap();
}
