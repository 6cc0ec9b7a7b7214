//! Keeps the running plugins in step with `plugins.d` and the config.
//!
//! One slot per file path. Reconciling a path: check the file (strict modes, allowlist),
//! load its content-addressed copy, refuse it (keeping any running instance) if anything is
//! wrong, otherwise create the new instance BEFORE stopping the old one, then swap. The same
//! content is a no-op. Every load, swap, stop and refusal is logged with the plugin's name,
//! version and file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tapio_plugin_api::{EventSink, HostHandle};
use tapio_ring::Producer;

use crate::config::LoadedConfig;
use crate::event::Event;
use crate::plugin::actor::{CallError, Instance};
use crate::plugin::host_services::HostServices;
use crate::plugin::library::{
    check_file, content_addressed_copy, load_library, LoadPolicy, LoadedLibrary,
};
use crate::plugin::sink::{FullPolicy, HostSink, SinkShared};
use crate::plugin::stats::StatsRegistry;

/// How long a health poll may stay unanswered before the plugin is reported hung.
const POLL_HANG_AFTER: Duration = Duration::from_secs(5);

/// Settings the manager runs with (from the config and the command line).
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// The watched plugins directory.
    pub dir: PathBuf,
    /// Where content-addressed copies go.
    pub runtime_dir: PathBuf,
    /// Root of per-plugin state directories.
    pub state_dir: PathBuf,
    /// File checks.
    pub policy: LoadPolicy,
    /// Deadline for `create`.
    pub create_timeout: Duration,
    /// Deadline for `start`.
    pub start_timeout: Duration,
    /// Deadline for `stop`.
    pub stop_timeout: Duration,
    /// Full-ring policy of the sinks handed to plugins.
    pub full_policy: FullPolicy,
    /// Plugin tags switched off on the command line (`--enable-ebpf=false` -> `ebpf`).
    pub disabled_tags: Vec<String>,
}

/// The state of one plugin file, as shown by `/metrics` and the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// An instance runs.
    Running,
    /// Loaded but not started: the config or a command-line switch disables it.
    Disabled(String),
    /// Refused (and no older build of this file runs); the reason.
    Refused(String),
    /// Loaded, but its instance failed to start or was abandoned; the reason.
    Failed(String),
}

/// A row of [`ManagerStatus`].
#[derive(Debug, Clone)]
pub struct SlotInfo {
    /// The file in the plugins directory.
    pub file: PathBuf,
    /// Plugin name, once a build of this file loaded.
    pub name: Option<&'static str>,
    /// Version of the loaded build.
    pub version: Option<String>,
    /// State.
    pub state: SlotState,
    /// Why the newest content of the file was refused while an older build keeps running.
    pub last_refusal: Option<String>,
}

/// What the manager publishes after every change.
#[derive(Debug, Clone, Default)]
pub struct ManagerStatus {
    /// One row per plugin file.
    pub slots: Vec<SlotInfo>,
    /// Libraries loaded since start (never unloaded).
    pub retained_libraries: usize,
    /// Instances abandoned after missing a deadline (their threads may still run).
    pub abandoned_instances: usize,
    /// Whether the first scan of the plugins directory has completed.
    pub initial_scan_done: bool,
}

impl ManagerStatus {
    /// Plugins with a running instance.
    pub fn active(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Running)
            .count()
    }
}

struct Running {
    instance: Instance,
    sink: Arc<SinkShared>,
    library: Arc<LoadedLibrary>,
    config_json: String,
}

/// What identifies a file's current content cheaply: a change of any of these re-reads and
/// re-hashes it (ctime covers chmod/chown, which strict modes care about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
    })
}

#[derive(Default)]
struct Slot {
    /// The file's identity when it was last checked.
    stamp: Option<FileStamp>,
    /// The build that is loaded for this file (running or not).
    library: Option<Arc<LoadedLibrary>>,
    running: Option<Running>,
    state: Option<SlotState>,
    /// sha256 of content that was refused, to not retry it until it changes.
    refused_sha: Option<String>,
    last_refusal: Option<String>,
}

/// The plugin manager. Owned by one thread; see [`crate::plugin::supervisor`].
pub struct PluginManager {
    settings: ManagerSettings,
    config: Arc<LoadedConfig>,
    ring: Producer<Event>,
    stats: Arc<StatsRegistry>,
    libraries: HashMap<String, Arc<LoadedLibrary>>,
    slots: BTreeMap<PathBuf, Slot>,
    abandoned: usize,
    initial_scan_done: bool,
    status: Arc<Mutex<ManagerStatus>>,
}

/// Whether `path` names a plugin file: `*.so`, not hidden (editors and `install` write
/// temporary files as `.name`), not a backup.
pub fn is_plugin_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with(".so") && !name.starts_with('.')
}

impl PluginManager {
    /// A manager with nothing loaded yet.
    pub fn new(
        settings: ManagerSettings,
        config: Arc<LoadedConfig>,
        ring: Producer<Event>,
        stats: Arc<StatsRegistry>,
        status: Arc<Mutex<ManagerStatus>>,
    ) -> Self {
        PluginManager {
            settings,
            config,
            ring,
            stats,
            libraries: HashMap::new(),
            slots: BTreeMap::new(),
            abandoned: 0,
            initial_scan_done: false,
            status,
        }
    }

    /// Scans the plugins directory: reconciles every plugin file, removes slots whose file
    /// is gone.
    pub fn scan(&mut self) {
        let mut present = Vec::new();
        match std::fs::read_dir(&self.settings.dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if is_plugin_file(&path) {
                        present.push(path);
                    }
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.settings.dir.display(), error = %e, "cannot read the plugins directory");
            }
        }
        present.sort();
        let gone: Vec<PathBuf> = self
            .slots
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        for path in gone {
            self.remove(&path);
        }
        for path in present {
            self.reconcile(&path);
        }
        self.initial_scan_done = true;
        self.publish();
    }

    /// Re-evaluates the files in `paths` (from the directory watcher).
    pub fn files_changed(&mut self, paths: &[PathBuf]) {
        for path in paths {
            if !is_plugin_file(path) || path.parent() != Some(self.settings.dir.as_path()) {
                continue;
            }
            if path.exists() {
                self.reconcile(path);
            } else {
                self.remove(path);
            }
        }
        self.publish();
    }

    /// Applies a new config: plugins whose enablement or config changed are restarted (the
    /// new instance is created before the old one stops).
    pub fn reload_config(&mut self, config: Arc<LoadedConfig>) {
        self.config = config;
        let paths: Vec<PathBuf> = self.slots.keys().cloned().collect();
        for path in paths {
            let Some(library) = self.slots.get(&path).and_then(|s| s.library.clone()) else {
                // Never loaded (refused): the new config may allow it now.
                if let Some(slot) = self.slots.get_mut(&path) {
                    slot.refused_sha = None;
                    slot.stamp = None;
                }
                self.reconcile(&path);
                continue;
            };
            self.apply(&path, library, false);
        }
        self.publish();
    }

    /// Asks every running instance for health and metrics; reports instances whose last
    /// poll has not returned.
    pub fn poll(&mut self) {
        for slot in self.slots.values() {
            if let Some(running) = &slot.running {
                if let Some(waiting) = running.instance.request_poll() {
                    if waiting > POLL_HANG_AFTER {
                        let name = running.library.descriptor.name;
                        self.stats.get(name).set_failed(format!(
                            "health() has not returned for {}s: the plugin appears hung",
                            waiting.as_secs()
                        ));
                    }
                }
            }
        }
    }

    /// Stops every instance (in parallel, each with the stop deadline).
    pub fn shutdown(&mut self) {
        let mut stopping = Vec::new();
        for (path, slot) in &mut self.slots {
            if let Some(running) = slot.running.take() {
                stopping.push((path.clone(), running));
            }
        }
        let timeout = self.settings.stop_timeout;
        let stats = Arc::clone(&self.stats);
        let results: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = stopping
                .into_iter()
                .map(|(path, running)| {
                    let stats = Arc::clone(&stats);
                    scope.spawn(move || stop_instance(&path, running, timeout, &stats))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .collect()
        });
        self.abandoned += results.iter().filter(|ok| !**ok).count();
        for slot in self.slots.values_mut() {
            if slot.state == Some(SlotState::Running) {
                slot.state = Some(SlotState::Disabled("host is shutting down".to_owned()));
            }
        }
        self.publish();
    }

    /// Brings the slot for `path` in step with the file's current content.
    fn reconcile(&mut self, path: &Path) {
        let stamp = file_stamp(path);
        let slot = self.slots.entry(path.to_owned()).or_default();
        if stamp.is_some() && slot.stamp == stamp {
            return; // Unchanged since the last check (a rescan or a duplicate event).
        }
        slot.stamp = stamp;
        let policy = self.settings.policy.clone();
        let checked = match check_file(path, &policy) {
            Ok(checked) => checked,
            Err(e) => return self.refuse(path, None, e.to_string()),
        };
        let slot = self.slots.entry(path.to_owned()).or_default();
        if slot
            .library
            .as_ref()
            .is_some_and(|l| l.sha256 == checked.sha256)
        {
            return; // Same content: nothing to do.
        }
        if slot.refused_sha.as_deref() == Some(&checked.sha256) {
            return; // Already refused this exact content.
        }
        let library = match self.libraries.get(&checked.sha256) {
            Some(library) => Arc::clone(library),
            None => {
                let loaded = content_addressed_copy(&self.settings.runtime_dir, &checked)
                    .and_then(|copy| load_library(&copy, checked.sha256.clone()));
                match loaded {
                    Ok(library) => {
                        let library = Arc::new(library);
                        self.libraries
                            .insert(checked.sha256.clone(), Arc::clone(&library));
                        library
                    }
                    Err(e) => return self.refuse(path, Some(checked.sha256), e.to_string()),
                }
            }
        };
        if let Some(other) = self.slots.iter().find_map(|(p, s)| {
            (p != path
                && s.library
                    .as_ref()
                    .is_some_and(|l| l.descriptor.name == library.descriptor.name))
            .then_some(p)
        }) {
            let reason = format!(
                "a plugin named '{}' is already loaded from {}",
                library.descriptor.name,
                other.display()
            );
            return self.refuse(path, Some(checked.sha256), reason);
        }
        self.apply(path, library, true);
    }

    /// Runs `library` for `path` according to the config: start, restart with a new
    /// config, replace an older build, or disable.
    fn apply(&mut self, path: &Path, library: Arc<LoadedLibrary>, new_build: bool) {
        let d = &library.descriptor;
        let name = d.name;
        if let Some(reason) = self.disabled_reason(&library) {
            let slot = self.slots.entry(path.to_owned()).or_default();
            if let Some(old) = slot.running.take() {
                let ok = stop_instance(path, old, self.settings.stop_timeout, &self.stats);
                self.abandoned += usize::from(!ok);
            }
            if slot.state != Some(SlotState::Disabled(reason.clone())) || new_build {
                tracing::info!(plugin = name, version = %d.version, file = %path.display(), reason = %reason, "plugin loaded but not started");
            }
            let slot = self.slots.entry(path.to_owned()).or_default();
            slot.library = Some(library);
            slot.state = Some(SlotState::Disabled(reason));
            slot.refused_sha = None;
            slot.last_refusal = None;
            return;
        }
        let config_json = match self.config.plugin_config(name, &d.config) {
            Ok(config) => serde_json::Value::Object(config).to_string(),
            Err(e) => {
                return self.refuse(
                    path,
                    Some(library.sha256.clone()),
                    format!("invalid config: {e}"),
                )
            }
        };
        let slot = self.slots.entry(path.to_owned()).or_default();
        if let Some(running) = &slot.running {
            if Arc::ptr_eq(&running.library, &library) && running.config_json == config_json {
                return; // Same build, same config.
            }
        }
        let stats = self.stats.get(name);
        let host = HostHandle::new(HostServices::new(
            name,
            Arc::clone(&stats),
            self.settings.state_dir.join(name),
        ));
        let instance = match Instance::create(
            &library,
            config_json.clone(),
            host,
            Arc::clone(&stats),
            self.settings.create_timeout,
        ) {
            Ok(instance) => instance,
            Err(e) => {
                self.abandoned += usize::from(matches!(e, CallError::Timeout { .. }));
                return self.refuse(path, Some(library.sha256.clone()), e.to_string());
            }
        };
        // The replacement is created: now stop the old instance.
        let slot = self.slots.entry(path.to_owned()).or_default();
        let old = slot.running.take();
        let old_version = old.as_ref().map(|o| o.library.descriptor.version.clone());
        let previous = old
            .as_ref()
            .map(|o| (Arc::clone(&o.library), o.config_json.clone()));
        if let Some(old) = old {
            let ok = stop_instance(path, old, self.settings.stop_timeout, &self.stats);
            self.abandoned += usize::from(!ok);
        }
        match self.start(path, &library, instance, config_json) {
            Ok(()) => match &old_version {
                Some(old) if new_build => {
                    stats.reloads.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(plugin = name, version = %d.version, previous = %old, file = %path.display(), sha256 = %short(&library.sha256), "plugin replaced");
                }
                Some(_) => {
                    tracing::info!(plugin = name, version = %d.version, file = %path.display(), "plugin restarted with a new config")
                }
                None => {
                    tracing::info!(plugin = name, version = %d.version, file = %path.display(), sha256 = %short(&library.sha256), "plugin loaded")
                }
            },
            Err(reason) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                stats.set_failed(reason.clone());
                tracing::error!(plugin = name, version = %d.version, file = %path.display(), reason = %reason, "plugin failed to start");
                let slot = self.slots.entry(path.to_owned()).or_default();
                slot.library = Some(Arc::clone(&library));
                slot.state = Some(SlotState::Failed(reason));
                if let Some((old_library, old_config)) = previous {
                    self.roll_back(path, old_library, old_config);
                }
            }
        }
    }

    /// Starts a created instance and records it in the slot.
    fn start(
        &mut self,
        path: &Path,
        library: &Arc<LoadedLibrary>,
        instance: Instance,
        config_json: String,
    ) -> Result<(), String> {
        let name = library.descriptor.name;
        let stats = self.stats.get(name);
        let sink = SinkShared::new(
            self.ring.clone(),
            name,
            Arc::clone(&stats),
            self.settings.full_policy,
        );
        // Reset the stats before `start`: a panic on a thread the plugin spawns during
        // `start` must stay recorded.
        stats.set_running(&library.descriptor.version);
        match instance.start(
            EventSink::new(HostSink(Arc::clone(&sink))),
            self.settings.start_timeout,
        ) {
            Ok(()) => {
                let slot = self.slots.entry(path.to_owned()).or_default();
                slot.library = Some(Arc::clone(library));
                slot.running = Some(Running {
                    instance,
                    sink,
                    library: Arc::clone(library),
                    config_json,
                });
                slot.state = Some(SlotState::Running);
                slot.refused_sha = None;
                slot.last_refusal = None;
                Ok(())
            }
            Err(e) => {
                sink.close();
                stats.set_stopped();
                let timed_out = matches!(e, CallError::Timeout { .. });
                if timed_out {
                    self.abandoned += 1;
                } else {
                    // It failed cleanly: let it release what it holds.
                    let _ = instance.stop(self.settings.stop_timeout);
                }
                Err(e.to_string())
            }
        }
    }

    /// After a replacement failed to start: runs the previous build again.
    fn roll_back(&mut self, path: &Path, library: Arc<LoadedLibrary>, config_json: String) {
        let name = library.descriptor.name;
        let stats = self.stats.get(name);
        let host = HostHandle::new(HostServices::new(
            name,
            Arc::clone(&stats),
            self.settings.state_dir.join(name),
        ));
        let result = Instance::create(
            &library,
            config_json.clone(),
            host,
            stats,
            self.settings.create_timeout,
        )
        .map_err(|e| e.to_string())
        .and_then(|instance| self.start(path, &library, instance, config_json));
        match result {
            Ok(()) => {
                tracing::warn!(plugin = name, version = %library.descriptor.version, file = %path.display(), "rolled back to the previous build")
            }
            Err(reason) => {
                tracing::error!(plugin = name, file = %path.display(), reason = %reason, "rollback to the previous build failed")
            }
        }
    }

    /// Why `library` must not run now, if it must not.
    fn disabled_reason(&self, library: &LoadedLibrary) -> Option<String> {
        let d = &library.descriptor;
        match self.config.enabled(d.name) {
            Some(false) => return Some(format!("collectors.{}.enabled is false", d.name)),
            None if !d.enabled_by_default => {
                return Some(format!(
                    "disabled by default; set collectors.{}.enabled: true",
                    d.name
                ))
            }
            _ => {}
        }
        d.tags
            .iter()
            .find(|t| self.settings.disabled_tags.contains(t))
            .map(|t| format!("--enable-{t}=false"))
    }

    /// Records a refusal. A running older build of the file keeps running.
    fn refuse(&mut self, path: &Path, sha256: Option<String>, reason: String) {
        let slot = self.slots.entry(path.to_owned()).or_default();
        slot.refused_sha = sha256;
        slot.last_refusal = Some(reason.clone());
        match &slot.running {
            Some(running) => {
                let d = &running.library.descriptor;
                tracing::error!(plugin = d.name, version = %d.version, file = %path.display(), reason = %reason, "plugin file refused; the running build keeps running");
            }
            None => {
                tracing::error!(file = %path.display(), reason = %reason, "plugin file refused");
                slot.state = Some(SlotState::Refused(reason));
            }
        }
    }

    /// Stops and forgets the slot of a removed file (the library stays mapped).
    fn remove(&mut self, path: &Path) {
        let Some(mut slot) = self.slots.remove(path) else {
            return;
        };
        if let Some(running) = slot.running.take() {
            let name = running.library.descriptor.name;
            let ok = stop_instance(path, running, self.settings.stop_timeout, &self.stats);
            self.abandoned += usize::from(!ok);
            tracing::info!(plugin = name, file = %path.display(), "plugin file removed; plugin stopped");
        }
    }

    /// Publishes the status for the metrics endpoint and the status line.
    fn publish(&self) {
        let slots = self
            .slots
            .iter()
            .map(|(file, slot)| SlotInfo {
                file: file.clone(),
                name: slot.library.as_ref().map(|l| l.descriptor.name),
                version: slot.library.as_ref().map(|l| l.descriptor.version.clone()),
                state: slot
                    .state
                    .clone()
                    .unwrap_or(SlotState::Refused("not loaded".to_owned())),
                last_refusal: slot.last_refusal.clone(),
            })
            .collect();
        *self.status.lock() = ManagerStatus {
            slots,
            retained_libraries: self.libraries.len(),
            abandoned_instances: self.abandoned,
            initial_scan_done: self.initial_scan_done,
        };
    }
}

/// Stops one instance with the deadline; `false` when it was abandoned.
fn stop_instance(path: &Path, running: Running, timeout: Duration, stats: &StatsRegistry) -> bool {
    let d = &running.library.descriptor;
    let plugin_stats = stats.get(d.name);
    let result = running.instance.stop(timeout);
    running.sink.close();
    plugin_stats.set_stopped();
    match result {
        Ok(()) => {
            tracing::info!(plugin = d.name, version = %d.version, file = %path.display(), "plugin stopped");
            true
        }
        Err(CallError::Timeout { after, .. }) => {
            plugin_stats.stop_timeouts.fetch_add(1, Ordering::Relaxed);
            plugin_stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(plugin = d.name, version = %d.version, file = %path.display(), deadline = ?after, "plugin missed its stop deadline; abandoned (its threads may still run, its events are refused)");
            false
        }
        Err(e) => {
            plugin_stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = d.name, version = %d.version, file = %path.display(), error = %e, "plugin stop reported an error");
            true
        }
    }
}

fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}
