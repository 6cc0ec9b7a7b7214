//! What a cgroup path says about its owner: a container id (docker, containerd/cri, cri-o,
//! podman scopes), a Kubernetes pod uid (kubepods slices), or a systemd unit. Pure string
//! parsing, shared by the entity graph (paths carried by events) and the `/proc` resolver.

/// The owners named by one cgroup path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupOwner {
    /// 64-hex-digit container id.
    pub container_id: Option<String>,
    /// Pod uid (dashes restored).
    pub pod_uid: Option<String>,
    /// systemd unit (`foo.service`), the innermost `.service` or `.scope` that is not a
    /// container scope.
    pub unit: Option<String>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn container_in(component: &str) -> Option<&str> {
    // docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, or
    // a bare <id> (cgroupfs driver).
    let stem = component
        .strip_suffix(".scope")
        .unwrap_or(component)
        .rsplit(['-', ':'])
        .next()?;
    is_hex64(stem).then_some(stem)
}

fn pod_in(component: &str) -> Option<String> {
    // kubepods-burstable-pod<uid_with_underscores>.slice or pod<uid> (cgroupfs driver).
    let stem = component.strip_suffix(".slice").unwrap_or(component);
    let at = stem.rfind("pod")?;
    let uid = &stem[at + 3..];
    let uid = uid.replace('_', "-");
    (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

/// Parses a cgroup path (`/kubepods.slice/.../cri-containerd-<id>.scope`).
pub fn parse(path: &str) -> CgroupOwner {
    let mut owner = CgroupOwner::default();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if let Some(id) = container_in(component) {
            owner.container_id = Some(id.to_owned());
            continue;
        }
        if component.contains("pod") {
            if let Some(uid) = pod_in(component) {
                owner.pod_uid = Some(uid);
                continue;
            }
        }
        if component.ends_with(".service") || component.ends_with(".scope") {
            owner.unit = Some(component.to_owned());
        }
    }
    owner
}

/// The cgroup path of `/proc/<pid>/cgroup` text: the v2 path, unless it is the root on a
/// hybrid host, then the v1 `memory` path; else the first path.
pub fn from_proc_cgroup(text: &str) -> Option<&str> {
    let mut first = None;
    let mut v2 = None;
    let mut memory = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            memory = Some(path);
        }
        first.get_or_insert(path);
    }
    match (v2, memory) {
        (Some("/"), Some(m)) => Some(m),
        (Some(p), _) => Some(p),
        (None, Some(m)) => Some(m),
        (None, None) => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn kubernetes_systemd_driver() {
        let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-{ID}.scope");
        let o = parse(&p);
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(
            o.pod_uid.as_deref(),
            Some("1b2c3d4e-0000-1111-2222-333344445555")
        );
        assert_eq!(o.unit, None, "a container scope is not a unit");
    }

    #[test]
    fn docker_and_units() {
        assert_eq!(
            parse(&format!("/system.slice/docker-{ID}.scope"))
                .container_id
                .as_deref(),
            Some(ID)
        );
        let o = parse("/system.slice/nginx.service");
        assert_eq!(o.unit.as_deref(), Some("nginx.service"));
        assert_eq!(o.container_id, None);
        assert_eq!(
            parse("/user.slice/user-0.slice/session-3.scope")
                .unit
                .as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(parse("/"), CgroupOwner::default());
    }

    #[test]
    fn proc_cgroup_prefers_v2() {
        let text = "12:memory:/old\n0::/system.slice/a.service\n";
        assert_eq!(from_proc_cgroup(text), Some("/system.slice/a.service"));
        assert_eq!(from_proc_cgroup("4:cpu:/x\n"), Some("/x"));
        assert_eq!(from_proc_cgroup("garbage"), None);
        let hybrid = "4:memory:/process_api/a8c2\n1:cpu:/\n0::/\n";
        assert_eq!(from_proc_cgroup(hybrid), Some("/process_api/a8c2"));
    }
}
