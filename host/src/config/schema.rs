//! Checks `collectors.<plugin>.config` against the plugin's declared schema, with the line
//! and column of each offending value.
//!
//! The YAML text is parsed again with a schema-driven `DeserializeSeed`: errors raised while
//! visiting a value carry that value's location (serde_yaml_ng attaches it), so an unknown or
//! mistyped field is reported as `FILE:LINE:COLUMN: collectors.dns.config.timeout: ...`.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tapio_plugin_api::{ConfigField, FieldKind};

use super::locate::line_of_field;
use super::ConfigError;

/// Validates the plugin's section of `text` against `fields`; returns the section as a JSON
/// object with defaults filled in.
pub fn validate(
    file: &str,
    text: &str,
    plugin: &str,
    fields: &[ConfigField],
) -> Result<Map<String, Value>, ConfigError> {
    let mut found: Option<Map<String, Value>> = None;
    if !text.trim().is_empty() {
        let seed = Document {
            plugin,
            fields,
            found: &mut found,
        };
        seed.deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| {
                let mut err = ConfigError::from_yaml(file, text, &e);
                // Field errors are raised as "@key@ message" (see `field_error`): the key
                // completes the path, which serde_yaml_ng stops at the `config` mapping.
                if let Some((key, message)) = err
                    .message
                    .strip_prefix('@')
                    .and_then(|m| m.split_once("@ "))
                {
                    err.field = Some(format!("collectors.{plugin}.config.{key}"));
                    err.message = message.to_owned();
                }
                err
            })?;
    }
    let mut config = found.unwrap_or_default();
    for field in fields {
        let name = field.name.as_str();
        if config.contains_key(name) {
            continue;
        }
        match field.default.to_json() {
            Some(value) => {
                config.insert(name.to_owned(), value);
            }
            None if matches!(field.default, tapio_plugin_api::ConfigDefault::Required) => {
                // Missing: the line of the section it is missing from, when it is written.
                let section = format!("collectors.{plugin}.config");
                return Err(ConfigError {
                    file: file.to_owned(),
                    line: line_of_field(text, &section)
                        .or_else(|| line_of_field(text, &format!("collectors.{plugin}"))),
                    column: None,
                    field: Some(format!("collectors.{plugin}.config.{name}")),
                    message: format!(
                        "missing required field `{name}` ({}): {}",
                        field.kind.as_str(),
                        field.doc
                    ),
                });
            }
            None => {}
        }
    }
    Ok(config)
}

/// An error about field `key`, tagged so `validate` can complete the field path.
fn field_error<E: de::Error>(key: &str, message: impl fmt::Display) -> E {
    E::custom(format!("@{key}@ {message}"))
}

/// The whole document: finds `collectors:`.
struct Document<'a> {
    plugin: &'a str,
    fields: &'a [ConfigField],
    found: &'a mut Option<Map<String, Value>>,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Document {
            plugin,
            fields,
            found,
        } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == "collectors" {
                map.next_value_seed(Collectors {
                    plugin,
                    fields,
                    found: &mut *found,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `collectors:`: finds the plugin's section.
struct Collectors<'a> {
    plugin: &'a str,
    fields: &'a [ConfigField],
    found: &'a mut Option<Map<String, Value>>,
}

impl<'de> DeserializeSeed<'de> for Collectors<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Collectors<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of collector names")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Collectors {
            plugin,
            fields,
            found,
        } = self;
        while let Some(key) = map.next_key::<String>()? {
            if key == plugin {
                map.next_value_seed(Section {
                    fields,
                    found: &mut *found,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `collectors.<plugin>:`: finds `config:`.
struct Section<'a> {
    fields: &'a [ConfigField],
    found: &'a mut Option<Map<String, Value>>,
}

impl<'de> DeserializeSeed<'de> for Section<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Section<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping with `enabled` and `config`")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "config" {
                *self.found = Some(map.next_value_seed(Fields {
                    fields: self.fields,
                })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `collectors.<plugin>.config:`: every key must be a schema field of the right type.
struct Fields<'a> {
    fields: &'a [ConfigField],
}

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of config fields")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        // Keys are checked by a seed so an error points at the key's own line.
        while let Some(field) = map.next_key_seed(Key {
            fields: self.fields,
        })? {
            let key = field.name.as_str();
            if out.contains_key(key) {
                return Err(field_error(key, format!("duplicate field `{key}`")));
            }
            let value = map.next_value_seed(FieldValue { field })?;
            out.insert(key.to_owned(), value);
        }
        Ok(out)
    }
}

/// A config key: must name a schema field.
struct Key<'a> {
    fields: &'a [ConfigField],
}

impl<'de, 'a> DeserializeSeed<'de> for Key<'a> {
    type Value = &'a ConfigField;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'a> Visitor<'de> for Key<'a> {
    type Value = &'a ConfigField;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.fields
            .iter()
            .find(|f| f.name.as_str() == key)
            .ok_or_else(|| {
                let known: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
                let known = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                field_error(
                    key,
                    format!("unknown field `{key}` (this plugin accepts: {known})"),
                )
            })
    }
}

/// One field's value, checked against its kind and choices.
struct FieldValue<'a> {
    field: &'a ConfigField,
}

impl FieldValue<'_> {
    fn wrong<E: de::Error>(&self, found: &str) -> E {
        field_error(
            self.field.name.as_str(),
            format!("must be a {}, found {found}", self.field.kind.as_str()),
        )
    }

    fn check_choice<E: de::Error>(&self, value: &str) -> Result<(), E> {
        let choices = self.field.choices;
        if choices.is_empty() || choices.iter().any(|c| c.as_str() == value) {
            return Ok(());
        }
        let list: Vec<&str> = choices.iter().map(|c| c.as_str()).collect();
        Err(field_error(
            self.field.name.as_str(),
            format!("`{value}` is not one of: {}", list.join(", ")),
        ))
    }
}

impl<'de> DeserializeSeed<'de> for FieldValue<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.field.kind == FieldKind::Any {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldValue<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {}", self.field.kind.as_str())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.field.kind {
            FieldKind::Bool => Ok(Value::Bool(v)),
            _ => Err(self.wrong("a boolean")),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.field.kind {
            FieldKind::Int => Ok(Value::from(v)),
            FieldKind::UInt if v >= 0 => Ok(Value::from(v as u64)),
            FieldKind::UInt => Err(self.wrong(&format!("the negative number {v}"))),
            FieldKind::Float => Ok(Value::from(v as f64)),
            _ => Err(self.wrong(&format!("the number {v}"))),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match self.field.kind {
            FieldKind::UInt => Ok(Value::from(v)),
            FieldKind::Int if v <= i64::MAX as u64 => Ok(Value::from(v as i64)),
            FieldKind::Float => Ok(Value::from(v as f64)),
            _ => Err(self.wrong(&format!("the number {v}"))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.field.kind {
            FieldKind::Float => Ok(Value::from(v)),
            _ => Err(self.wrong(&format!("the number {v}"))),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.field.kind {
            FieldKind::String => {
                self.check_choice(v)?;
                Ok(Value::from(v))
            }
            FieldKind::Duration => {
                tapio_plugin_api::config::parse_duration(v)
                    .map_err(|e| field_error(self.field.name.as_str(), e))?;
                Ok(Value::from(v))
            }
            _ => Err(self.wrong(&format!("the text {v:?}"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Err(self.wrong("nothing (null)"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.field.kind != FieldKind::StringList {
            return Err(self.wrong("a list"));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<serde_yaml_ng::Value>()? {
            let text = match item {
                serde_yaml_ng::Value::String(s) => s,
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(field_error(
                        self.field.name.as_str(),
                        "every item must be a string",
                    ))
                }
            };
            self.check_choice(&text)?;
            items.push(Value::from(text));
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Value, A::Error> {
        Err(self.wrong("a mapping"))
    }
}
