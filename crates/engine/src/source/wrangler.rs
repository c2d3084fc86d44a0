//! Finding a D1 database in a wrangler project: its config (`wrangler.json`,
//! `wrangler.jsonc` or `wrangler.toml`) and the local file miniflare keeps it in.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// One `d1_databases` entry of a wrangler config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WranglerDatabase {
    pub binding: String,
    pub name: String,
    pub id: String,
    /// `migrations_dir`, relative to the project; wrangler's default is "migrations".
    pub migrations_dir: String,
}

const CONFIG_NAMES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// Reads the project's config and picks the database whose binding or name is `wanted`
/// (or the only one when `wanted` is `None`).
pub fn find_database(project: &Path, wanted: Option<&str>) -> Result<WranglerDatabase> {
    let source_error = |message: String| Error::Source { path: project.to_path_buf(), message };
    if !project.is_dir() {
        return Err(source_error("is not a directory; --wrangler takes the project directory that holds wrangler.toml".into()));
    }
    let Some(config_path) = CONFIG_NAMES.iter().map(|n| project.join(n)).find(|p| p.is_file()) else {
        return Err(source_error(format!("has no wrangler config; expected one of {}", CONFIG_NAMES.join(", "))));
    };
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| Error::Source { path: config_path.clone(), message: format!("cannot read: {e}") })?;
    let config_error = |message: String| Error::Source { path: config_path.clone(), message };
    let value: serde_json::Value = if config_path.extension().is_some_and(|e| e == "toml") {
        let parsed: toml::Value = toml::from_str(&text).map_err(|e| config_error(format!("invalid TOML: {e}")))?;
        serde_json::to_value(parsed).map_err(|e| config_error(format!("cannot read the TOML values: {e}")))?
    } else {
        serde_json::from_str(&strip_jsonc(&text)).map_err(|e| config_error(format!("invalid JSON: {e}")))?
    };

    let mut databases = Vec::new();
    for entry in value.get("d1_databases").and_then(|d| d.as_array()).into_iter().flatten() {
        let field = |key: &str| entry.get(key).and_then(|v| v.as_str()).map(str::to_string);
        databases.push(WranglerDatabase {
            binding: field("binding").unwrap_or_default(),
            name: field("database_name").unwrap_or_default(),
            id: field("database_id").unwrap_or_default(),
            migrations_dir: field("migrations_dir").unwrap_or_else(|| "migrations".to_string()),
        });
    }
    if databases.is_empty() {
        return Err(config_error("declares no d1_databases".into()));
    }
    let listing = databases.iter().map(|d| format!("{} (binding {})", d.name, d.binding)).collect::<Vec<_>>().join(", ");
    let chosen = match wanted {
        Some(wanted) => databases.iter().find(|d| d.binding == wanted || d.name == wanted).cloned().ok_or_else(|| {
            config_error(format!("has no D1 database with binding or name {wanted:?}; it declares: {listing}"))
        })?,
        None if databases.len() == 1 => databases[0].clone(),
        None => return Err(config_error(format!("declares several D1 databases ({listing}); choose one with --database"))),
    };
    if chosen.id.is_empty() {
        return Err(config_error(format!("the D1 database {:?} has no database_id, which names its local file", chosen.name)));
    }
    Ok(chosen)
}

/// Path of the database's local file under `.wrangler/state/v3/d1`.
pub fn local_database_path(project: &Path, database: &WranglerDatabase) -> Result<PathBuf> {
    let dir = project.join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
    let path = dir.join(format!("{}.sqlite", durable_object_file_name(&database.id)));
    if !path.is_file() {
        return Err(Error::Source {
            path,
            message: format!(
                "not found: no local D1 state for database {:?} (id {}); run `wrangler d1 execute {} --local` or `wrangler dev` once to create it",
                database.name, database.id, database.name
            ),
        });
    }
    Ok(path)
}

/// Computes the file name miniflare gives a D1 database's Durable Object:
/// with `k = SHA-256("miniflare-D1DatabaseObject")`, `a = HMAC-SHA256(k, id)[..16]` and
/// the name is `hex(a || HMAC-SHA256(k, a)[..16])`.
pub fn durable_object_file_name(database_id: &str) -> String {
    let key = Sha256::digest(b"miniflare-D1DatabaseObject");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(database_id.as_bytes());
    let first: [u8; 16] = mac.finalize().into_bytes()[..16].try_into().expect("16 bytes");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(&first);
    let second = mac.finalize().into_bytes();
    format!("{}{}", hex::encode(first), hex::encode(&second[..16]))
}

/// Removes `//` and `/* */` comments and trailing commas from JSONC, leaving strings intact.
/// Only ASCII bytes are removed, so the result stays valid UTF-8.
fn strip_jsonc(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            in_string = c != b'"';
            i += 1;
        } else if c == b'"' {
            in_string = true;
            out.push(c);
            i += 1;
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_trailing_commas(&out)
}

/// Drops each comma that is followed (after whitespace) by `}` or `]`, outside strings.
fn remove_trailing_commas(bytes: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            in_string = c != b'"';
        } else if c == b',' {
            let next = bytes[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
            if !matches!(next, Some(b'}') | Some(b']')) {
                out.push(c);
            }
        } else {
            in_string = c == b'"';
            out.push(c);
        }
        i += 1;
    }
    String::from_utf8(out).expect("only ASCII bytes were removed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_matches_wrangler_local_state() {
        // The name wrangler 4.86 gave the database with this id in a real project.
        assert_eq!(
            durable_object_file_name("00000000-0000-4000-8000-000000000001"),
            "37202af4a48e51a6f9bf1676145f85cdbaaf76a4a51b95f5120b328bf5460e72"
        );
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_removed() {
        let text = "{\n // note\n \"a\": \"x // not a comment\", /* block */ \"b\": [1, 2,],\n \"c\": \"zoë\",\n}";
        let value: serde_json::Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(value["a"], "x // not a comment");
        assert_eq!(value["b"], serde_json::json!([1, 2]));
        assert_eq!(value["c"], "zoë");
    }

    #[test]
    fn database_found_by_binding_in_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("wrangler.toml"),
            "name = \"x\"\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"appdb\"\ndatabase_id = \"abc\"\n",
        )
        .unwrap();
        let found = find_database(dir.path(), Some("DB")).unwrap();
        assert_eq!(found.name, "appdb");
    }

    #[test]
    fn unknown_database_lists_the_declared_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("wrangler.jsonc"),
            "{ \"d1_databases\": [ { \"binding\": \"DB\", \"database_name\": \"appdb\", \"database_id\": \"abc\" }, ] }",
        )
        .unwrap();
        let error = find_database(dir.path(), Some("other")).unwrap_err().to_string();
        assert!(error.contains("appdb (binding DB)"), "{error}");
    }
}
