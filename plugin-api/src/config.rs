//! Config schema a plugin declares, and the validated config it receives.
//!
//! A plugin lists its fields in [`PluginInfo::config`](crate::PluginInfo::config). The host
//! validates the user's YAML against that list BEFORE the plugin is created (unknown field,
//! wrong type, value outside `choices`: an error naming the file, line and field), fills the
//! defaults, and hands the plugin the result as JSON text. The plugin deserializes it with
//! [`Config::parse`] into its own `serde` struct.
//!
//! Ownership: schema items are `'static` (they live in the plugin library, which the host
//! never unloads). The JSON text handed to `create` is borrowed for that call only.

use abi_stable::{
    std_types::{RSlice, RStr},
    StableAbi,
};
use serde::de::DeserializeOwned;

use crate::PluginError;

/// The type of a config field, as the host validates it.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `true` / `false`.
    Bool,
    /// A signed integer.
    Int,
    /// A non-negative integer.
    UInt,
    /// A number.
    Float,
    /// Text.
    String,
    /// A duration as text with a unit: `250ms`, `10s`, `5m`, `1h`.
    Duration,
    /// A list of texts.
    StringList,
    /// Any YAML value, passed through unchecked (the plugin validates it).
    Any,
}

impl FieldKind {
    /// The name shown to users (`"duration"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldKind::Bool => "bool",
            FieldKind::Int => "int",
            FieldKind::UInt => "uint",
            FieldKind::Float => "float",
            FieldKind::String => "string",
            FieldKind::Duration => "duration",
            FieldKind::StringList => "list of strings",
            FieldKind::Any => "any",
        }
    }
}

/// A field's default, or whether it may be left out.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub enum ConfigDefault {
    /// The user must set it.
    Required,
    /// Optional with no default: absent from the JSON the plugin receives.
    Absent,
    /// Default boolean.
    Bool(bool),
    /// Default signed integer.
    Int(i64),
    /// Default unsigned integer.
    UInt(u64),
    /// Default number.
    Float(f64),
    /// Default text (also used for durations).
    Str(RStr<'static>),
    /// Default list of texts.
    StrList(RSlice<'static, RStr<'static>>),
}

impl ConfigDefault {
    /// The default as a JSON value, or `None` for [`Required`](Self::Required) and
    /// [`Absent`](Self::Absent).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        Some(match *self {
            ConfigDefault::Required | ConfigDefault::Absent => return None,
            ConfigDefault::Bool(b) => Value::Bool(b),
            ConfigDefault::Int(i) => Value::from(i),
            ConfigDefault::UInt(u) => Value::from(u),
            ConfigDefault::Float(f) => Value::from(f),
            ConfigDefault::Str(s) => Value::from(s.as_str()),
            ConfigDefault::StrList(list) => {
                Value::Array(list.iter().map(|s| Value::from(s.as_str())).collect())
            }
        })
    }
}

/// One field of a plugin's config schema. `'static`: lives in the plugin library.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct ConfigField {
    /// Key under `collectors.<plugin>.config`.
    pub name: RStr<'static>,
    /// Type checked by the host.
    pub kind: FieldKind,
    /// Default, or whether it may be omitted.
    pub default: ConfigDefault,
    /// For `String` (and each item of `StringList`): the allowed values; empty = any.
    pub choices: RSlice<'static, RStr<'static>>,
    /// One or two sentences for `plugins inspect` and the generated reference.
    pub doc: RStr<'static>,
}

impl ConfigField {
    const fn new(
        name: &'static str,
        kind: FieldKind,
        default: ConfigDefault,
        doc: &'static str,
    ) -> Self {
        ConfigField {
            name: RStr::from_str(name),
            kind,
            default,
            choices: RSlice::from_slice(&[]),
            doc: RStr::from_str(doc),
        }
    }
    /// A boolean field with a default.
    pub const fn bool(name: &'static str, default: bool, doc: &'static str) -> Self {
        Self::new(name, FieldKind::Bool, ConfigDefault::Bool(default), doc)
    }
    /// A signed integer field with a default.
    pub const fn int(name: &'static str, default: i64, doc: &'static str) -> Self {
        Self::new(name, FieldKind::Int, ConfigDefault::Int(default), doc)
    }
    /// An unsigned integer field with a default.
    pub const fn uint(name: &'static str, default: u64, doc: &'static str) -> Self {
        Self::new(name, FieldKind::UInt, ConfigDefault::UInt(default), doc)
    }
    /// A number field with a default.
    pub const fn float(name: &'static str, default: f64, doc: &'static str) -> Self {
        Self::new(name, FieldKind::Float, ConfigDefault::Float(default), doc)
    }
    /// A text field with a default.
    pub const fn string(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(
            name,
            FieldKind::String,
            ConfigDefault::Str(RStr::from_str(default)),
            doc,
        )
    }
    /// A duration field (`"10s"`) with a default.
    pub const fn duration(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self::new(
            name,
            FieldKind::Duration,
            ConfigDefault::Str(RStr::from_str(default)),
            doc,
        )
    }
    /// A list-of-texts field with a default (`&[RStr::from_str("a")]`).
    pub const fn string_list(
        name: &'static str,
        default: &'static [RStr<'static>],
        doc: &'static str,
    ) -> Self {
        Self::new(
            name,
            FieldKind::StringList,
            ConfigDefault::StrList(RSlice::from_slice(default)),
            doc,
        )
    }
    /// A field of any shape, passed through unchecked, absent unless set.
    pub const fn any(name: &'static str, doc: &'static str) -> Self {
        Self::new(name, FieldKind::Any, ConfigDefault::Absent, doc)
    }
    /// Makes the field mandatory (drops the default).
    pub const fn required(mut self) -> Self {
        self.default = ConfigDefault::Required;
        self
    }
    /// Makes the field optional with no default.
    pub const fn optional(mut self) -> Self {
        self.default = ConfigDefault::Absent;
        self
    }
    /// Restricts a text field (or the items of a list) to these values.
    pub const fn choices(mut self, choices: &'static [RStr<'static>]) -> Self {
        self.choices = RSlice::from_slice(choices);
        self
    }
}

/// The validated config handed to [`Collector::create`](crate::Collector::create).
///
/// Ownership: borrows the host's JSON text for the duration of `create`; parse what you keep.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    json: &'a str,
}

impl<'a> Config<'a> {
    /// Wraps JSON text (used by the export macro and by test harnesses).
    pub const fn from_json(json: &'a str) -> Self {
        Config { json }
    }

    /// The JSON object: every schema field with its value or default.
    pub const fn as_json(&self) -> &'a str {
        self.json
    }

    /// Deserializes the config into the plugin's own type.
    ///
    /// Use [`duration`] for duration fields:
    /// `#[serde(with = "tapio_plugin_api::config::duration")] interval: Duration`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_str(self.json)
            .map_err(|e| PluginError::config(format!("invalid config: {e}")))
    }
}

/// Parses a duration written with a unit (`"250ms"`, `"10s"`, `"1h 30m"`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// `serde` helpers for duration fields, for `#[serde(with = "...::config::duration")]`.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Reads a duration from text with a unit.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    /// Writes a duration as text with a unit.
    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::time::Duration;

    static LIST: [RStr<'static>; 2] = [RStr::from_str("a"), RStr::from_str("b")];

    #[test]
    fn defaults_render_as_json() {
        assert_eq!(
            ConfigField::uint("n", 3, "").default.to_json(),
            Some(serde_json::json!(3))
        );
        assert_eq!(
            ConfigField::string_list("l", &LIST, "").default.to_json(),
            Some(serde_json::json!(["a", "b"]))
        );
        assert_eq!(
            ConfigField::uint("n", 3, "").required().default.to_json(),
            None
        );
        assert_eq!(ConfigField::any("x", "").default.to_json(), None);
    }

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(with = "duration")]
        every: Duration,
        name: String,
    }

    #[test]
    fn parse_reads_durations_and_reports_errors() {
        let ok: Sample = Config::from_json(r#"{"every":"1m 5s","name":"x"}"#)
            .parse()
            .unwrap();
        assert_eq!(ok.every, Duration::from_secs(65));
        assert_eq!(ok.name, "x");
        let err = Config::from_json(r#"{"every":"soon","name":"x"}"#)
            .parse::<Sample>()
            .unwrap_err();
        assert!(err.message.contains("invalid duration \"soon\""), "{err}");
    }
}
