//! Loading an object with the kernel's BTF and attaching its programs.

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, Program, RawTracePoint,
        TracePoint,
    },
    Btf, Ebpf, EbpfLoader,
};

use crate::{privilege, tracefs, Attach, EbpfError, ObjectSpec, ProgramSpec};

/// Name of the ring buffer map in every object (`tapio.h`).
pub(crate) const RING_MAP: &str = "events";
/// Name of the per-CPU counters map in every object (`tapio.h`).
pub(crate) const STATS_MAP: &str = "tapio_stats";

/// A loaded and attached object. Dropping `ebpf` detaches every program.
pub struct Loaded {
    /// The object: programs (attached) and the maps a handler has not taken.
    pub ebpf: Ebpf,
    pub(crate) ring: RingBuf<MapData>,
    pub(crate) stats: PerCpuArray<MapData, u64>,
    /// Optional programs that could not be attached, with why.
    pub degraded: Vec<String>,
}

/// Maps an aya error to a permission error when the kernel said EPERM / EACCES.
fn permission_or(
    error: &(dyn std::error::Error + 'static),
    otherwise: impl FnOnce() -> EbpfError,
) -> EbpfError {
    if privilege::is_eperm(error) {
        let mut e = privilege::permission_error(&[]);
        if let EbpfError::Permission { message } = &mut e {
            *message = format!("permission denied by the kernel: {message}");
        }
        e
    } else {
        otherwise()
    }
}

/// Loads `spec.object`, attaches its programs and takes the ring and counters maps.
pub(crate) fn load(spec: &ObjectSpec) -> Result<Loaded, EbpfError> {
    privilege::check()?;
    let btf = Btf::from_sys_fs().map_err(EbpfError::Btf)?;
    let mut loader = EbpfLoader::new();
    loader
        .btf(Some(&btf))
        .map_max_entries(RING_MAP, spec.ring_bytes)
        .override_global("tapio_wakeup_bytes", &spec.wakeup_bytes, true);
    for (map, entries) in &spec.map_sizes {
        loader.map_max_entries(map, *entries);
    }
    for (name, bytes) in &spec.globals {
        loader.override_global(name, bytes.as_slice(), true);
    }
    let mut ebpf = loader.load(spec.object).map_err(|e| {
        if privilege::is_eperm(&e) {
            permission_or(&e, || unreachable!())
        } else {
            EbpfError::Load {
                object: spec.name,
                source: Box::new(e),
            }
        }
    })?;
    let mut degraded = Vec::new();
    for program in &spec.programs {
        if let Err(e) = attach(spec.name, &mut ebpf, program, &btf) {
            if program.optional && !e.is_permission() {
                log::warn!(
                    "{}: optional program not attached: {}",
                    spec.name,
                    e.chain()
                );
                degraded.push(e.chain());
            } else {
                return Err(e);
            }
        }
    }
    let map_error = |map: &'static str, source| EbpfError::Map {
        object: spec.name,
        map,
        source,
    };
    let ring = ebpf
        .take_map(RING_MAP)
        .ok_or_else(|| map_error(RING_MAP, None))?;
    let ring = RingBuf::try_from(ring).map_err(|e| map_error(RING_MAP, Some(e)))?;
    let stats = ebpf
        .take_map(STATS_MAP)
        .ok_or_else(|| map_error(STATS_MAP, None))?;
    let stats = PerCpuArray::try_from(stats).map_err(|e| map_error(STATS_MAP, Some(e)))?;
    Ok(Loaded {
        ebpf,
        ring,
        stats,
        degraded,
    })
}

/// Loads one program into the kernel and attaches it.
fn attach(
    object: &'static str,
    ebpf: &mut Ebpf,
    spec: &ProgramSpec,
    btf: &Btf,
) -> Result<(), EbpfError> {
    let target = spec.attach.target();
    let fail = |action: &'static str, e: aya::programs::ProgramError| {
        if privilege::is_eperm(&e) {
            permission_or(&e, || unreachable!())
        } else {
            EbpfError::Program {
                action,
                program: spec.name,
                target: target.clone(),
                source: Box::new(e),
            }
        }
    };
    if let Attach::Tracepoint { .. } = spec.attach {
        tracefs::ensure_mounted()?;
    }
    let program: &mut Program = ebpf
        .program_mut(spec.name)
        .ok_or(EbpfError::MissingProgram {
            object,
            program: spec.name,
        })?;
    match &spec.attach {
        Attach::RawTracepoint(name) => {
            let p: &mut RawTracePoint = program.try_into().map_err(|e| fail("load", e))?;
            p.load().map_err(|e| fail("load", e))?;
            p.attach(name).map_err(|e| fail("attach", e))?;
        }
        Attach::BtfTracepoint(name) => {
            let p: &mut BtfTracePoint = program.try_into().map_err(|e| fail("load", e))?;
            p.load(name, btf).map_err(|e| fail("load", e))?;
            p.attach().map_err(|e| fail("attach", e))?;
        }
        Attach::Tracepoint { category, name } => {
            let p: &mut TracePoint = program.try_into().map_err(|e| fail("load", e))?;
            p.load().map_err(|e| fail("load", e))?;
            p.attach(category, name).map_err(|e| fail("attach", e))?;
        }
        Attach::CgroupSkb { egress } => {
            let root = crate::cgroup2::root()?;
            let cgroup = std::fs::File::open(&root).map_err(|source| EbpfError::Io {
                what: "opening the cgroup v2 root",
                source,
            })?;
            let kind = if *egress {
                CgroupSkbAttachType::Egress
            } else {
                CgroupSkbAttachType::Ingress
            };
            let p: &mut CgroupSkb = program.try_into().map_err(|e| fail("load", e))?;
            p.load().map_err(|e| fail("load", e))?;
            // On kernels >= 5.7 aya attaches with a BPF link, which always coexists with
            // other programs and must be created with no flags (`Single` = flags 0;
            // `AllowMultiple` would pass BPF_F_ALLOW_MULTI and get EINVAL).
            p.attach(&cgroup, kind, CgroupAttachMode::Single)
                .map_err(|e| fail("attach", e))?;
        }
    }
    Ok(())
}
