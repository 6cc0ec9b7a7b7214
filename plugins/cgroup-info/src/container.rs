//! The container a cgroup path belongs to.
//!
//! Layouts recognised (the last matching path component wins, so a container nested in a
//! pod slice resolves to the container):
//! - systemd driver: `.../docker-<id>.scope`, `.../cri-containerd-<id>.scope`,
//!   `.../crio-<id>.scope`, `.../libpod-<id>.scope`, inside `kubepods-...-pod<uid>.slice`;
//! - cgroupfs driver: `/docker/<id>`, `/kubepods/<qos>/pod<uid>/<id>`, `/crio/<id>`,
//!   `/libpod_parent/libpod-<id>`, `/containerd/<id>` (a bare 64-hex component under a
//!   runtime or pod parent).
//!
//! `crio-conmon-<id>.scope` is CRI-O's monitor process, not the container: ignored.

/// The runtime that manages a container, as far as the cgroup path tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (moby).
    Docker,
    /// containerd (the CRI plugin or plain containerd).
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman.
    Podman,
    /// A container id under a Kubernetes pod cgroup whose runtime the path does not name.
    Unknown,
}

impl Runtime {
    /// The `container.runtime.name` value (`docker`, `containerd`, `cri-o`, `podman`,
    /// `unknown`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// What a cgroup path says about its container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// The full 64-hex container id.
    pub id: String,
    /// The runtime.
    pub runtime: Runtime,
    /// The Kubernetes pod uid, when the path has a pod cgroup (dashes restored).
    pub pod_uid: Option<String>,
}

/// Whether `s` is a full container id: 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<prefix><id>.scope` -> id.
fn scope_id<'a>(component: &'a str, prefix: &str) -> Option<&'a str> {
    let id = component.strip_prefix(prefix)?.strip_suffix(".scope")?;
    is_container_id(id).then_some(id)
}

/// The pod uid of a pod cgroup component: `pod<uid>` (cgroupfs) or
/// `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(component: &str) -> Option<String> {
    let raw = if let Some(slice) = component.strip_suffix(".slice") {
        let at = slice.rfind("-pod")?;
        &slice[at + 4..]
    } else {
        component.strip_prefix("pod")?
    };
    let uid = raw.replace('_', "-");
    let ok = uid.len() >= 32 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    ok.then_some(uid)
}

/// The container of cgroup `path` (a path inside its hierarchy, `/a/b`), if any.
pub fn parse_container(path: &str) -> Option<ContainerRef> {
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let pod = components.iter().rev().find_map(|c| pod_uid(c));
    for (index, component) in components.iter().enumerate().rev() {
        let scoped = [
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
            ("libpod-", Runtime::Podman),
        ]
        .into_iter()
        .find_map(|(prefix, runtime)| scope_id(component, prefix).map(|id| (id, runtime)));
        if let Some((id, runtime)) = scoped {
            return Some(ContainerRef {
                id: id.to_owned(),
                runtime,
                pod_uid: pod,
            });
        }
        if is_container_id(component) {
            let parent = index.checked_sub(1).map(|i| components[i]).unwrap_or("");
            let runtime = match parent {
                "docker" => Runtime::Docker,
                "crio" => Runtime::CriO,
                "containerd" => Runtime::Containerd,
                _ if pod_uid(parent).is_some() => Runtime::Unknown,
                _ => continue,
            };
            return Some(ContainerRef {
                id: (*component).to_owned(),
                runtime,
                pod_uid: pod,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(path: &str) -> Option<(String, Runtime, Option<String>)> {
        parse_container(path).map(|c| (c.id, c.runtime, c.pod_uid))
    }

    #[test]
    fn docker_layouts() {
        let want = Some((ID.to_owned(), Runtime::Docker, None));
        assert_eq!(parse(&format!("/docker/{ID}")), want);
        assert_eq!(parse(&format!("/system.slice/docker-{ID}.scope")), want);
    }

    #[test]
    fn kubernetes_systemd_driver() {
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(
            parse(&path),
            Some((
                ID.to_owned(),
                Runtime::Containerd,
                Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".to_owned())
            ))
        );
        let crio = format!("/kubepods.slice/kubepods-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/crio-{ID}.scope");
        assert_eq!(parse(&crio).map(|c| c.1), Some(Runtime::CriO));
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let path = format!("/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/{ID}");
        assert_eq!(
            parse(&path),
            Some((
                ID.to_owned(),
                Runtime::Unknown,
                Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".to_owned())
            ))
        );
    }

    #[test]
    fn podman_and_crio_cgroupfs() {
        assert_eq!(
            parse(&format!("/machine.slice/libpod-{ID}.scope")).map(|c| c.1),
            Some(Runtime::Podman)
        );
        assert_eq!(
            parse(&format!("/crio/{ID}")).map(|c| c.1),
            Some(Runtime::CriO)
        );
    }

    #[test]
    fn not_containers() {
        assert_eq!(parse("/"), None);
        assert_eq!(parse("/system.slice/ssh.service"), None);
        assert_eq!(
            parse(&format!("/system.slice/crio-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            parse(&format!("/random/{ID}")),
            None,
            "a bare id needs a runtime parent"
        );
        assert_eq!(parse("/docker/0123"), None, "ids are 64 hex digits");
        let upper = ID.to_uppercase();
        assert_eq!(parse(&format!("/docker/{upper}")), None);
    }

    #[test]
    fn pod_slice_itself_is_not_a_container() {
        assert_eq!(
            parse("/kubepods.slice/kubepods-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice"),
            None
        );
    }
}
