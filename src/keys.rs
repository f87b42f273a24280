//! Loading secrets: KEKs and the index secret from configuration, or, in the embedded
//! default, from a key file generated in the data directory with mode 0600.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, KekConfig, KeysConfig},
    crypto::{random_bytes, IdKeys, KeyRing},
};

/// The generated key file (`<data_dir>/keys.toml`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: KeysConfig,
}

/// Loaded secrets.
#[derive(Debug)]
pub struct Secrets {
    /// KEKs.
    pub ring: KeyRing,
    /// HMAC keys for ids.
    pub ids: IdKeys,
    /// Where they came from, for the start-up log.
    pub source: String,
}

fn decode32(what: &str, b64: &str) -> Result<[u8; 32], String> {
    let bytes = B64
        .decode(b64.trim())
        // The decoder's message names an offending byte of the key: say only what is wrong.
        .map_err(|_| format!("{what} is not valid base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} must be 32 bytes, got {}", bytes.len()))
}

/// Path of the generated key file.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("keys.toml")
}

/// Loads the configured keys, or reads/creates the key file when none are configured.
pub fn load(config: &Config) -> Result<Secrets, String> {
    let (keys, source) = if config.keys.keks.is_empty() && config.keys.index_secret.is_empty() {
        let path = key_file(&config.data_dir);
        (load_or_create_file(&path)?, path.display().to_string())
    } else if config.keys.keks.is_empty() || config.keys.index_secret.is_empty() {
        return Err("keys.keks and keys.index_secret must be configured together".into());
    } else {
        (config.keys.clone(), "configuration".into())
    };
    let mut pairs = Vec::new();
    for k in &keys.keks {
        pairs.push((
            k.id.clone(),
            decode32(&format!("key-encryption key {:?}", k.id), &k.key)?,
        ));
    }
    let active = if keys.active_kek.is_empty() {
        keys.keks.last().map(|k| k.id.clone()).unwrap_or_default()
    } else {
        keys.active_kek.clone()
    };
    let ring = KeyRing::new(pairs, &active)?;
    let ids = IdKeys::new(decode32("keys.index_secret", &keys.index_secret)?);
    Ok(Secrets { ring, ids, source })
}

fn load_or_create_file(path: &Path) -> Result<KeysConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let file: KeyFile = toml::from_str(&text).map_err(|e| {
                let e = crate::config::ConfigError::redacted(&e.to_string());
                format!("{}: {}", path.display(), e.0)
            })?;
            Ok(file.keys)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = KeysConfig {
                keks: vec![KekConfig {
                    id: "k1".into(),
                    key: B64.encode(random_bytes::<32>()),
                }],
                active_kek: "k1".into(),
                index_secret: B64.encode(random_bytes::<32>()),
            };
            let text =
                toml::to_string(&KeyFile { keys: keys.clone() }).map_err(|e| e.to_string())?;
            write_private(path, text.as_bytes())?;
            Ok(keys)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes a secret file readable only by its owner, never overwriting an existing one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Creates `dir` and any missing parents readable only by their owner (0700); existing
/// directories keep their mode (an operator may have chosen it).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A fresh base64 32-byte key, for `moocard keygen` and docs.
pub fn generate_b64() -> String {
    B64.encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_private_key_file_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let a = load(&config).expect("generated");
        let b = load(&config).expect("reloaded");
        assert_eq!(a.ids.mac("x", b"y"), b.ids.mac("x", b"y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_file(dir.path()))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rejects_bad_keys() {
        let mut config = Config::default();
        config.keys.keks = vec![KekConfig {
            id: "a".into(),
            key: "c2hvcnQ=".into(),
        }];
        config.keys.index_secret = generate_b64();
        assert!(load(&config).unwrap_err().contains("32 bytes"));
    }
}
