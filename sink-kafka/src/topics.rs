//! Topic creation as Kafka Connect does it for source connectors (KIP-158,
//! `topic.creation.*`).
//!
//! Connect creates a topic the first time a connector produces to it, before the first record,
//! when the worker allows it (`topic.creation.enable`, default true) and the connector sets
//! `topic.creation.default.replication.factor` and `topic.creation.default.partitions`. Settings
//! come from groups: `topic.creation.groups` lists named groups, each with
//! `topic.creation.<group>.include` / `.exclude` (lists of regular expressions matched against
//! the whole topic name), `.replication.factor`, `.partitions` (falling back to the default
//! group's) and any other `topic.creation.<group>.<topic config>` (`cleanup.policy`,
//! `compression.type`, `retention.ms`, …) passed to the broker as topic configuration. A topic
//! takes the first listed group that includes and does not exclude it, else the `default`
//! group. `-1` for partitions or replication factor means the broker's default.
//!
//! A topic that already exists is left as it is (Connect does the same). Without topic creation
//! the broker's auto-creation (if enabled) decides.

use std::collections::BTreeMap;

use regex::Regex;

/// `-1`: let the broker decide (its `num.partitions` / `default.replication.factor`).
pub const BROKER_DEFAULT: i32 = -1;

/// One group of topic settings.
#[derive(Clone, Debug)]
pub struct TopicGroup {
    pub name: String,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Topic configuration (`cleanup.policy`, …).
    pub configs: BTreeMap<String, String>,
}

impl TopicGroup {
    fn matches(&self, topic: &str) -> bool {
        self.include.iter().any(|r| r.is_match(topic))
            && !self.exclude.iter().any(|r| r.is_match(topic))
    }
}

/// The groups of one connector, in match order, the default group last.
#[derive(Clone, Debug)]
pub struct TopicCreation {
    groups: Vec<TopicGroup>,
}

/// A `topic.creation.*` problem: the key (without the prefix) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicCreationError {
    pub key: String,
    pub message: String,
}

impl TopicCreation {
    /// Builds the groups from the `topic.creation.*` keys with the prefix removed. `Ok(None)`:
    /// no topic creation for this connector (no key given).
    pub fn from_properties(
        properties: &BTreeMap<String, String>,
    ) -> Result<Option<TopicCreation>, Vec<TopicCreationError>> {
        if properties.is_empty() {
            return Ok(None);
        }
        let mut errors = Vec::new();
        let error = |key: &str, message: String| TopicCreationError {
            key: key.to_owned(),
            message,
        };
        let named: Vec<String> = properties
            .get("groups")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for name in &named {
            if name == "default" {
                errors.push(error(
                    "groups",
                    "`default` is always defined; do not list it".into(),
                ));
            }
        }
        // Each key belongs to `default` or a listed group.
        let mut per_group: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
        for (key, value) in properties {
            if key == "groups" {
                continue;
            }
            let group = std::iter::once("default")
                .chain(named.iter().map(String::as_str))
                .filter(|g| key.starts_with(&format!("{g}.")))
                .max_by_key(|g| g.len());
            match group {
                Some(group) => {
                    per_group
                        .entry(group)
                        .or_default()
                        .insert(&key[group.len() + 1..], value);
                }
                None => errors.push(error(
                    key,
                    "names no group listed in topic.creation.groups (nor `default`)".into(),
                )),
            }
        }
        let number = |group: &str,
                      setting: &str,
                      value: Option<&&str>,
                      fallback: Option<i32>,
                      errors: &mut Vec<TopicCreationError>|
         -> i32 {
            let key = format!("{group}.{setting}");
            match value {
                Some(text) => match text.trim().parse::<i32>() {
                    Ok(n)
                        if n == BROKER_DEFAULT
                            || (n >= 1
                                && (setting != "replication.factor" || n <= i16::MAX as i32)) =>
                    {
                        n
                    }
                    _ => {
                        errors.push(error(
                            &key,
                            format!("`{text}` is not -1 (broker default) or a positive number"),
                        ));
                        BROKER_DEFAULT
                    }
                },
                None => match fallback {
                    Some(n) => n,
                    None => {
                        errors.push(error(
                            &key,
                            "is required to enable topic creation for this connector".into(),
                        ));
                        BROKER_DEFAULT
                    }
                },
            }
        };
        let regexes = |group: &str,
                       setting: &str,
                       value: Option<&&str>,
                       errors: &mut Vec<TopicCreationError>|
         -> Vec<Regex> {
            let Some(value) = value else {
                return Vec::new();
            };
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .filter_map(|pattern| match Regex::new(&format!("^(?:{pattern})$")) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errors.push(error(
                            &format!("{group}.{setting}"),
                            format!("invalid regular expression `{pattern}`: {e}"),
                        ));
                        None
                    }
                })
                .collect()
        };
        let empty = BTreeMap::new();
        let default_settings = per_group.get("default").unwrap_or(&empty);
        let default_partitions = number(
            "default",
            "partitions",
            default_settings.get("partitions"),
            None,
            &mut errors,
        );
        let default_replication = number(
            "default",
            "replication.factor",
            default_settings.get("replication.factor"),
            None,
            &mut errors,
        );
        for setting in ["include", "exclude"] {
            if default_settings.contains_key(setting) {
                errors.push(error(
                    &format!("default.{setting}"),
                    "the default group includes every topic; it takes no include/exclude".into(),
                ));
            }
        }
        let configs = |settings: &BTreeMap<&str, &str>| -> BTreeMap<String, String> {
            settings
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        **k,
                        "include" | "exclude" | "partitions" | "replication.factor"
                    )
                })
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let mut groups = Vec::new();
        for name in named.iter().filter(|n| *n != "default") {
            let settings = per_group.get(name.as_str()).unwrap_or(&empty);
            let include = regexes(name, "include", settings.get("include"), &mut errors);
            if include.is_empty() && !settings.contains_key("include") {
                errors.push(error(
                    &format!("{name}.include"),
                    "is required for a listed group".into(),
                ));
            }
            groups.push(TopicGroup {
                name: name.clone(),
                include,
                exclude: regexes(name, "exclude", settings.get("exclude"), &mut errors),
                partitions: number(
                    name,
                    "partitions",
                    settings.get("partitions"),
                    Some(default_partitions),
                    &mut errors,
                ),
                replication_factor: number(
                    name,
                    "replication.factor",
                    settings.get("replication.factor"),
                    Some(default_replication),
                    &mut errors,
                ),
                configs: configs(settings),
            });
        }
        groups.push(TopicGroup {
            name: "default".into(),
            include: vec![Regex::new(".*").expect("valid")],
            exclude: Vec::new(),
            partitions: default_partitions,
            replication_factor: default_replication,
            configs: configs(default_settings),
        });
        if errors.is_empty() {
            Ok(Some(TopicCreation { groups }))
        } else {
            Err(errors)
        }
    }

    /// The group whose settings create `topic`.
    pub fn group_for(&self, topic: &str) -> &TopicGroup {
        self.groups
            .iter()
            .find(|g| g.matches(topic))
            .unwrap_or_else(|| self.groups.last().expect("the default group"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn groups_match_in_listed_order_and_fall_back_to_default() {
        let creation = TopicCreation::from_properties(&props(&[
            ("default.partitions", "6"),
            ("default.replication.factor", "-1"),
            ("default.cleanup.policy", "compact"),
            ("groups", "orders, logs"),
            ("orders.include", "dbz\\.public\\.orders.*"),
            ("orders.exclude", "dbz\\.public\\.orders_tmp"),
            ("orders.partitions", "12"),
            (
                "logs.include",
                "dbz\\.public\\..*log, dbz\\.public\\.orders_tmp",
            ),
            ("logs.cleanup.policy", "delete"),
            ("logs.retention.ms", "1000"),
        ]))
        .unwrap()
        .unwrap();
        let orders = creation.group_for("dbz.public.orders");
        assert_eq!(
            (
                orders.name.as_str(),
                orders.partitions,
                orders.replication_factor
            ),
            ("orders", 12, -1)
        );
        assert!(orders.configs.is_empty());
        let tmp = creation.group_for("dbz.public.orders_tmp");
        assert_eq!(tmp.name, "logs");
        assert_eq!(tmp.partitions, 6);
        assert_eq!(
            tmp.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        let other = creation.group_for("dbz.public.customers");
        assert_eq!(other.name, "default");
        assert_eq!(
            other.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        // Whole-name matches only.
        assert_eq!(creation.group_for("xdbz.public.orders").name, "default");
    }

    #[test]
    fn no_keys_no_creation_and_errors_name_the_key() {
        assert!(TopicCreation::from_properties(&BTreeMap::new())
            .unwrap()
            .is_none());
        let errors = TopicCreation::from_properties(&props(&[
            ("default.partitions", "0"),
            ("groups", "g"),
            ("g.exclude", "("),
            ("h.partitions", "3"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "default.partitions",
            "default.replication.factor",
            "g.include",
            "g.exclude",
            "h.partitions",
        ] {
            assert!(keys.contains(&key), "{key} not in {errors:?}");
        }
    }
}
