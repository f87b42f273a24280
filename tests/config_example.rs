//! `deploy/moocard.example.toml` documents every setting: it parses with `Config::from_table`,
//! its values are the real defaults, every key of `Config` appears in it (optional ones as
//! commented-out examples) and every key names its `MOOCARD_<SECTION>__<KEY>` variable.

use moocard::config::Config;

const EXAMPLE: &str = include_str!("../deploy/moocard.example.toml");

/// `section.key` paths of every leaf of a table (arrays count as leaves).
fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => leaves(t, &path, out),
            _ => out.push(path),
        }
    }
}

fn keys_of(config: &Config) -> Vec<String> {
    let toml::Value::Table(t) = toml::Value::try_from(config).expect("serializes") else {
        panic!("config is not a table");
    };
    let mut out = Vec::new();
    leaves(&t, "", &mut out);
    out
}

fn no_env() -> std::vec::IntoIter<(String, String)> {
    Vec::new().into_iter()
}

/// An issuer, which key-file settings require.
fn with_issuer() -> std::vec::IntoIter<(String, String)> {
    vec![(
        "MOOCARD_AUTH__ISSUER".to_owned(),
        "https://idp.example.test".to_owned(),
    )]
    .into_iter()
}

/// The example with `# key = value` lines uncommented where the key is otherwise unset,
/// which is how optional settings (no default) are documented.
fn with_optional_keys(parsed: &toml::Table) -> String {
    let mut section: Option<&toml::Table> = Some(parsed);
    let mut out = String::new();
    for line in EXAMPLE.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = parsed.get(name).and_then(toml::Value::as_table);
        }
        let commented = trimmed.strip_prefix("# ").and_then(|l| l.split_once(" = "));
        match (commented, section) {
            (Some((key, value)), Some(t))
                if !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && !t.contains_key(key) =>
            {
                out.push_str(&format!("{key} = {value}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn example_parses_and_holds_the_defaults() {
    let doc: toml::Table = EXAMPLE.parse().expect("the example is valid TOML");
    let example = Config::from_table(doc, no_env()).expect("the example is a valid config");
    let defaults = Config::default().validate().expect("defaults are valid");
    assert_eq!(
        toml::Value::try_from(&example).expect("serializes"),
        toml::Value::try_from(&defaults).expect("serializes"),
        "a value in deploy/moocard.example.toml is not the default"
    );
}

#[test]
fn example_documents_every_key_and_its_env_var() {
    let doc: toml::Table = EXAMPLE.parse().expect("the example is valid TOML");
    let mut present = Vec::new();
    leaves(&doc, "", &mut present);
    for key in keys_of(&Config::default()) {
        assert!(present.contains(&key), "{key} is missing from the example");
    }
    // Optional keys are commented out; uncommented they must be real keys (deny_unknown_fields).
    let full: toml::Table = with_optional_keys(&doc).parse().expect("valid TOML");
    // With an issuer: key files without one are refused (dev mode never by accident).
    let full = Config::from_table(full, with_issuer()).expect("commented keys are real keys");
    let all = keys_of(&full);
    assert!(
        all.len() > keys_of(&Config::default()).len(),
        "no optional key"
    );
    for key in all {
        let var = format!("MOOCARD_{}", key.replace('.', "__").to_uppercase());
        let mentioned = EXAMPLE
            .lines()
            .any(|l| l.starts_with("# env: ") && l.contains(&var));
        assert!(mentioned, "{key}: the example does not name {var}");
        if !present.contains(&key) {
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            assert!(
                EXAMPLE.contains(&format!("# {leaf} = ")),
                "{key} is neither set nor shown commented out"
            );
        }
    }
}

#[test]
fn env_vars_named_in_the_example_are_accepted() {
    for line in EXAMPLE.lines() {
        let Some(rest) = line.strip_prefix("# env: ") else {
            continue;
        };
        let var = rest.split([' ', '=']).next().unwrap_or_default();
        if !var.starts_with("MOOCARD_") {
            continue;
        }
        // Any value of the right shape will do: take the default's own value.
        let doc: toml::Table = with_optional_keys(&EXAMPLE.parse().expect("toml"))
            .parse()
            .expect("toml");
        let path: Vec<String> = var["MOOCARD_".len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        let mut value = toml::Value::Table(doc);
        for p in &path {
            value = value
                .get(p)
                .cloned()
                .unwrap_or_else(|| panic!("{var}: no such key"));
        }
        let literal = match &value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut env: Vec<(String, String)> = with_issuer().collect();
        env.push((var.to_owned(), literal));
        Config::from_table(toml::Table::new(), env.into_iter())
            .unwrap_or_else(|e| panic!("{var} is rejected: {e}"));
    }
}

/// Every `MOOCARD_*` variable the deploy files put in the process environment is a
/// setting: the loader refuses unknown ones, so a stray name would stop the service (the
/// systemd worker unit once passed MOOCARD_WORKER_CONCURRENCY and could not start).
#[test]
fn deploy_files_set_only_known_variables() {
    let files = [
        (
            "systemd api",
            include_str!("../deploy/systemd/moocard.service"),
        ),
        (
            "systemd worker",
            include_str!("../deploy/systemd/moocard-worker@.service"),
        ),
        ("Dockerfile", include_str!("../deploy/Dockerfile")),
        (
            "k8s configmap",
            include_str!("../deploy/k8s/configmap.yaml"),
        ),
        ("k8s api", include_str!("../deploy/k8s/api.yaml")),
        ("k8s worker", include_str!("../deploy/k8s/worker.yaml")),
    ];
    let mut seen = 0;
    for (what, text) in files {
        for line in text.lines() {
            let line = line
                .trim()
                .trim_start_matches("ENV ")
                .trim_start_matches("- name: ");
            let line = line.strip_prefix("Environment=").unwrap_or(line);
            let Some(start) = line.find("MOOCARD_") else {
                continue;
            };
            if line.starts_with('#') || start != 0 {
                continue;
            }
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name == "MOOCARD_CONFIG" {
                continue; // The config file's path, read before the settings.
            }
            seen += 1;
            let env = with_issuer().chain([(name.clone(), "1".to_owned())]);
            if let Err(e) = Config::from_table(toml::Table::new(), env) {
                assert!(
                    !e.0.contains("unknown field"),
                    "{what}: {name} is not a setting: {}",
                    e.0
                );
            }
        }
    }
    assert!(
        seen >= 10,
        "found only {seen} variables in the deploy files"
    );
}
