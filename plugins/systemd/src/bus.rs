//! One connection to the bus: connect, subscribe to systemd's signals, take the snapshot
//! of the matching units, then turn each signal into tracker input until the connection or
//! systemd goes away. Returns why it ended; the worker decides when to try again.

use std::collections::HashMap;

use futures::StreamExt;
use tapio_plugin_api::{log, now_unix_nanos};
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, MatchRule, Message, MessageStream};

use crate::config::{Settings, SYSTEM_BUS};
use crate::error::BusError;
use crate::tracker::{Iface, Props, Tracker};
use crate::unit_path::{unit_name, unit_path, UNIT_PREFIX};
use tapio_event_buffer::OwnedEvent;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// What a session reports to the worker while it runs.
pub trait SessionObserver {
    /// Subscribed and the snapshot of `units` matching units is taken: healthy from now on.
    fn subscribed(&mut self, units: usize);
    /// A new snapshot of `units` units after a `daemon-reload`.
    fn resynced(&mut self, units: usize);
    /// Events to emit.
    fn events(&mut self, events: Vec<OwnedEvent>);
    /// A signal that could not be decoded (counted, logged once per kind).
    fn bad_signal(&mut self, why: String);
}

/// Connects to the configured bus.
async fn connect(settings: &Settings) -> Result<Connection, BusError> {
    let address = settings.bus_address.trim();
    let builder = match address {
        SYSTEM_BUS => zbus::connection::Builder::system(),
        "session" => zbus::connection::Builder::session(),
        other => zbus::connection::Builder::address(other),
    }
    .map_err(|source| BusError::Address {
        address: address.to_owned(),
        source: Box::new(source),
    })?;
    let build = builder
        .method_timeout(settings.call_timeout)
        .max_queued(1024)
        .build();
    match tokio::time::timeout(settings.call_timeout, build).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(source)) => Err(BusError::Connect {
            address: address.to_owned(),
            source: Box::new(source),
        }),
        Err(_) => Err(BusError::Timeout {
            what: format!("connecting to {address}"),
            after: settings.call_timeout,
        }),
    }
}

/// Calls `method` and returns the reply (errors name the call).
async fn call<B>(
    conn: &Connection,
    path: &str,
    iface: &str,
    method: &'static str,
    body: &B,
) -> Result<Message, BusError>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    conn.call_method(Some(SYSTEMD), path, Some(iface), method, body)
        .await
        .map_err(|source| BusError::Call {
            method,
            path: path.to_owned(),
            source: Box::new(source),
        })
}

fn rule(
    build: impl FnOnce() -> zbus::Result<MatchRule<'static>>,
) -> Result<MatchRule<'static>, BusError> {
    build().map_err(|source| BusError::Match {
        source: Box::new(source),
    })
}

/// The session: runs until the connection or systemd goes away, then returns why.
pub async fn run(
    settings: &Settings,
    tracker: &mut Tracker,
    observer: &mut impl SessionObserver,
) -> BusError {
    match session(settings, tracker, observer).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn session(
    settings: &Settings,
    tracker: &mut Tracker,
    observer: &mut impl SessionObserver,
) -> Result<std::convert::Infallible, BusError> {
    let conn = connect(settings).await?;
    // Every incoming message goes into an unbounded queue at once, so that the snapshot's
    // replies are never stuck behind signals and no signal is lost meanwhile.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = MessageStream::from(&conn);
    let forward = tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                break;
            }
        }
    });
    let _abort = AbortOnDrop(forward);

    let dbus = zbus::fdo::DBusProxy::new(&conn)
        .await
        .map_err(|source| BusError::Match {
            source: Box::new(source),
        })?;
    let rules = [
        rule(|| {
            Ok(MatchRule::builder()
                .msg_type(MessageType::Signal)
                .sender(SYSTEMD)?
                .interface(PROPERTIES)?
                .member("PropertiesChanged")?
                .path_namespace(UNIT_PREFIX.trim_end_matches('/'))?
                .build())
        })?,
        rule(|| {
            Ok(MatchRule::builder()
                .msg_type(MessageType::Signal)
                .sender(SYSTEMD)?
                .interface(MANAGER)?
                .build())
        })?,
        rule(|| {
            Ok(MatchRule::builder()
                .msg_type(MessageType::Signal)
                .sender("org.freedesktop.DBus")?
                .interface("org.freedesktop.DBus")?
                .member("NameOwnerChanged")?
                .arg(0, SYSTEMD)?
                .build())
        })?,
    ];
    for r in rules {
        dbus.add_match_rule(r)
            .await
            .map_err(|source| BusError::Match {
                source: Box::new(source.into()),
            })?;
    }
    call(&conn, MANAGER_PATH, MANAGER, "Subscribe", &()).await?;

    tracker.clear();
    snapshot(&conn, tracker).await?;
    observer.subscribed(tracker.len());
    log::info!(
        "subscribed to systemd on {}; watching {} unit(s)",
        settings.bus_address,
        tracker.len()
    );

    // Between `Reloading(true)` and `Reloading(false)` systemd unloads and reloads every
    // unit (UnitRemoved / UnitNew for units that keep running): ignored, then resynced.
    let mut reloading = false;
    while let Some(item) = rx.recv().await {
        let msg = match item {
            Ok(m) => m,
            Err(e) => {
                observer.bad_signal(format!("cannot read a message: {e}"));
                continue;
            }
        };
        if msg.message_type() != MessageType::Signal {
            continue;
        }
        let was_reloading = reloading;
        handle(&conn, &msg, tracker, observer, &mut reloading).await?;
        if was_reloading && !reloading {
            // The reload is over: a fresh snapshot on the same subscription. Signals queued
            // meanwhile are applied after it when newer, ignored when older (serials).
            tracker.clear();
            snapshot(&conn, tracker).await?;
            observer.resynced(tracker.len());
        }
    }
    Err(BusError::Closed)
}

/// Baselines every matching loaded unit from `ListUnits`, and each matching service's
/// `Service` properties from `GetAll`.
async fn snapshot(conn: &Connection, tracker: &mut Tracker) -> Result<(), BusError> {
    type Listed = (
        String,
        String,
        String,
        String,
        String,
        String,
        OwnedObjectPath,
        u32,
        String,
        OwnedObjectPath,
    );
    let reply = call(conn, MANAGER_PATH, MANAGER, "ListUnits", &()).await?;
    let serial = reply.primary_header().serial_num().get();
    let units: Vec<Listed> = reply
        .body()
        .deserialize()
        .map_err(|source| BusError::Reply {
            method: "ListUnits",
            source: Box::new(source),
        })?;
    for (name, _, _, active, sub, _, path, ..) in units {
        if !tracker.wants(&name) {
            continue;
        }
        let props = Props {
            active_state: Some(active),
            sub_state: Some(sub),
            ..Props::default()
        };
        tracker.baseline(&name, Iface::Unit, &props, serial);
        if name.ends_with(".service") {
            let (props, serial) = get_all(conn, path.as_str(), SERVICE).await?;
            tracker.baseline(&name, Iface::Service, &props, serial);
        }
    }
    Ok(())
}

/// `GetAll(iface)` on `path`: the properties this collector reads and the reply serial.
async fn get_all(conn: &Connection, path: &str, iface: &str) -> Result<(Props, u32), BusError> {
    let reply = call(conn, path, PROPERTIES, "GetAll", &(iface,)).await?;
    let serial = reply.primary_header().serial_num().get();
    let map: HashMap<String, OwnedValue> =
        reply
            .body()
            .deserialize()
            .map_err(|source| BusError::Reply {
                method: "GetAll",
                source: Box::new(source),
            })?;
    Ok((props_of(&map), serial))
}

/// The properties this collector reads, from a property map.
pub fn props_of(map: &HashMap<String, OwnedValue>) -> Props {
    fn text(map: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
        match map.get(key).map(|v| &**v) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        }
    }
    fn uint(map: &HashMap<String, OwnedValue>, key: &str) -> Option<u32> {
        match map.get(key).map(|v| &**v) {
            Some(Value::U32(u)) => Some(*u),
            _ => None,
        }
    }
    fn int(map: &HashMap<String, OwnedValue>, key: &str) -> Option<i32> {
        match map.get(key).map(|v| &**v) {
            Some(Value::I32(i)) => Some(*i),
            _ => None,
        }
    }
    Props {
        active_state: text(map, "ActiveState"),
        sub_state: text(map, "SubState"),
        result: text(map, "Result"),
        n_restarts: uint(map, "NRestarts"),
        main_pid: uint(map, "MainPID"),
        exec_main_pid: uint(map, "ExecMainPID"),
        exec_main_code: int(map, "ExecMainCode"),
        exec_main_status: int(map, "ExecMainStatus"),
    }
}

/// Properties whose invalidation (without a value) makes the collector fetch them.
const WATCHED: [&str; 8] = [
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "MainPID",
    "ExecMainPID",
    "ExecMainCode",
    "ExecMainStatus",
];

async fn handle(
    conn: &Connection,
    msg: &Message,
    tracker: &mut Tracker,
    observer: &mut impl SessionObserver,
    reloading: &mut bool,
) -> Result<(), BusError> {
    let header = msg.header();
    let (Some(iface), Some(member)) = (header.interface(), header.member()) else {
        return Ok(());
    };
    let serial = msg.primary_header().serial_num().get();
    match (iface.as_str(), member.as_str()) {
        ("org.freedesktop.DBus", "NameOwnerChanged") => {
            let Ok((name, old, new)) = msg.body().deserialize::<(String, String, String)>() else {
                observer.bad_signal("undecodable NameOwnerChanged".to_owned());
                return Ok(());
            };
            if name == SYSTEMD && new.is_empty() {
                return Err(BusError::ManagerGone);
            }
            if name == SYSTEMD && new != old {
                // A re-executed systemd (`daemon-reexec`) takes the name over from a new
                // connection: subscribe again and take a fresh snapshot.
                return Err(BusError::ManagerReplaced { owner: new });
            }
        }
        (MANAGER, "Reloading") => match msg.body().deserialize::<bool>() {
            Ok(true) => *reloading = true,
            Ok(false) => *reloading = false,
            Err(e) => observer.bad_signal(format!("undecodable Reloading: {e}")),
        },
        _ if *reloading => {}
        (MANAGER, "UnitNew") | (MANAGER, "UnitRemoved") => {
            match msg.body().deserialize::<(String, OwnedObjectPath)>() {
                Ok((unit, _)) if member.as_str() == "UnitNew" => tracker.loaded(&unit),
                Ok((unit, _)) => tracker.unloaded(&unit),
                Err(e) => observer.bad_signal(format!("undecodable {member}: {e}")),
            }
        }
        (PROPERTIES, "PropertiesChanged") => {
            let Some(unit) = header.path().and_then(|p| unit_name(p.as_str())) else {
                return Ok(());
            };
            if !tracker.wants(&unit) {
                return Ok(());
            }
            type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);
            let (changed_iface, values, invalidated) = match msg.body().deserialize::<Changed>() {
                Ok(c) => c,
                Err(e) => {
                    observer.bad_signal(format!("undecodable PropertiesChanged: {e}"));
                    return Ok(());
                }
            };
            let iface = match changed_iface.as_str() {
                UNIT => Iface::Unit,
                SERVICE => Iface::Service,
                _ => return Ok(()),
            };
            let mut props = props_of(&values);
            let mut serial = serial;
            if invalidated.iter().any(|p| WATCHED.contains(&p.as_str())) {
                // Values not sent: read them (the reply is newer than the signal).
                let (fetched, reply_serial) =
                    get_all(conn, &unit_path(&unit), &changed_iface).await?;
                props = fetched;
                serial = reply_serial;
            }
            let events = tracker.changed(now_unix_nanos(), &unit, iface, &props, serial);
            if !events.is_empty() {
                observer.events(events);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Aborts the forwarding task when the session ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
