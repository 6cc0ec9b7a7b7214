//! Unit object paths: systemd names each unit's D-Bus object
//! `/org/freedesktop/systemd1/unit/<label>`, where the label is the unit name with every
//! byte outside `[A-Za-z0-9]` (and a leading digit) written as `_xx` (lowercase hex).
//! Decoding the label gives the unit name of a signal without a round trip.

/// The prefix of every unit object path.
pub const UNIT_PREFIX: &str = "/org/freedesktop/systemd1/unit/";

/// The unit name of a unit object path, or `None` for any other path or a bad label.
pub fn unit_name(path: &str) -> Option<String> {
    let label = path.strip_prefix(UNIT_PREFIX)?;
    if label.is_empty() || label.contains('/') {
        return None;
    }
    if label == "_" {
        return Some(String::new());
    }
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = label.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The object path of `unit` (the inverse of [`unit_name`]).
pub fn unit_path(unit: &str) -> String {
    let mut path = String::from(UNIT_PREFIX);
    if unit.is_empty() {
        path.push('_');
        return path;
    }
    for (i, b) in unit.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_systemd_sends() {
        assert_eq!(
            unit_name("/org/freedesktop/systemd1/unit/dbus_2esocket").as_deref(),
            Some("dbus.socket")
        );
        assert_eq!(
            unit_name("/org/freedesktop/systemd1/unit/getty_40tty1_2eservice").as_deref(),
            Some("getty@tty1.service")
        );
        assert_eq!(
            unit_name("/org/freedesktop/systemd1/unit/_31x_2eservice").as_deref(),
            Some("1x.service")
        );
        assert_eq!(unit_name("/org/freedesktop/systemd1"), None);
        assert_eq!(unit_name("/org/freedesktop/systemd1/unit/a_2"), None);
        assert_eq!(unit_name("/org/freedesktop/systemd1/unit/a_zz"), None);
    }

    #[test]
    fn round_trips() {
        for unit in [
            "dbus.socket",
            "t-fail.service",
            "1x@y:z.service",
            "a_b.mount",
        ] {
            assert_eq!(unit_name(&unit_path(unit)).as_deref(), Some(unit), "{unit}");
        }
        assert_eq!(
            unit_path("dbus.socket"),
            "/org/freedesktop/systemd1/unit/dbus_2esocket"
        );
    }
}
