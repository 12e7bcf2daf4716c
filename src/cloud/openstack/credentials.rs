//! OpenStack credentials as their users keep them: a cloud of `clouds.yaml` (with the secrets
//! of `secure.yaml` merged in), found where openstacksdk looks, or the `OS_*` variables of an
//! openrc file. Keystone v3 passwords and application credentials. The secrets are hidden
//! from every log line as soon as they are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cloud::CloudError;

/// How weft proves who it is to Keystone.
#[derive(Clone, PartialEq)]
pub enum Method {
    /// A user's password, scoped to a project.
    Password {
        /// The user's name (or id, when `user_id` is set).
        user: String,
        /// Whether `user` is an id.
        user_id: bool,
        /// The user's domain (name), `Default` when unset.
        user_domain: String,
        /// The password.
        password: String,
        /// The project's name (or id, when `project_id` is set).
        project: String,
        /// Whether `project` is an id.
        project_id: bool,
        /// The project's domain (name), `Default` when unset.
        project_domain: String,
    },
    /// An application credential (scoped to its project by Keystone).
    ApplicationCredential {
        /// Its id.
        id: String,
        /// Its secret.
        secret: String,
    },
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Password { user, project, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .field("project", project)
                .finish_non_exhaustive(),
            Method::ApplicationCredential { id, .. } => f
                .debug_struct("ApplicationCredential")
                .field("id", id)
                .finish_non_exhaustive(),
        }
    }
}

/// Where and as whom weft talks to an OpenStack cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// Keystone's v3 URL (`https://keystone.example.com:5000/v3`).
    pub auth_url: String,
    /// How to authenticate.
    pub method: Method,
    /// The region whose endpoints are used; the first of the catalog when unset.
    pub region: Option<String>,
    /// The endpoint interface (`public` by default).
    pub interface: String,
    /// Where they came from, for messages: `clouds.yaml cloud `x` (/path)` or `OS_* variables`.
    pub origin: String,
    /// The CA certificates (a PEM file) an HTTPS Keystone and its endpoints are checked
    /// against instead of this host's (`cacert`, `OS_CACERT`).
    pub cacert: Option<PathBuf>,
}

/// One cloud of `clouds.yaml` or `secure.yaml`; unknown keys are ignored, as openstacksdk does.
#[derive(Debug, Default, Clone, Deserialize)]
struct CloudEntry {
    #[serde(default)]
    auth: BTreeMap<String, serde_yaml_ng::Value>,
    auth_type: Option<String>,
    region_name: Option<String>,
    interface: Option<String>,
    cacert: Option<String>,
    verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, CloudEntry>,
}

/// The files openstacksdk reads `name` (`clouds.yaml`, `secure.yaml`) from, in its order: the
/// variable's file, the current folder, `~/.config/openstack`, `/etc/openstack`.
fn candidates(variable: &str, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(path) = std::env::var_os(variable).filter(|v| !v.is_empty()) {
        found.push(PathBuf::from(path));
    }
    found.push(PathBuf::from(name));
    if let Some(config) = crate::config::weft_dir("XDG_CONFIG_HOME", ".config") {
        // weft_dir names `<config>/weft`; openstack's folder is its sibling.
        if let Some(parent) = config.parent() {
            found.push(parent.join("openstack").join(name));
        }
    }
    found.push(Path::new("/etc/openstack").join(name));
    found
}

fn read_clouds(path: &Path) -> Result<CloudsFile, CloudError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CloudError::Config(format!("cannot read {}: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text)
        .map_err(|e| CloudError::Config(format!("{} is not a clouds file: {e}", path.display())))
}

/// The first of `files` that exists, read.
fn first_file(files: &[PathBuf]) -> Result<Option<(PathBuf, CloudsFile)>, CloudError> {
    for path in files {
        if path.is_file() {
            return Ok(Some((path.clone(), read_clouds(path)?)));
        }
    }
    Ok(None)
}

fn text(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A cloud's settings as `OS_*`-style keys (`auth_url`, `username`, ...), from `clouds.yaml`.
fn entry_settings(entry: &CloudEntry) -> BTreeMap<String, String> {
    let mut settings: BTreeMap<String, String> = entry
        .auth
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
        .collect();
    if let Some(kind) = &entry.auth_type {
        settings.insert("auth_type".into(), kind.clone());
    }
    if let Some(region) = &entry.region_name {
        settings.insert("region_name".into(), region.clone());
    }
    if let Some(interface) = &entry.interface {
        settings.insert("interface".into(), interface.clone());
    }
    if let Some(cacert) = &entry.cacert {
        settings.insert("cacert".into(), cacert.clone());
    }
    if let Some(verify) = entry.verify {
        settings.insert("verify".into(), verify.to_string());
    }
    settings
}

/// Credentials of cloud `name` of the clouds.yaml weft finds, with its secure.yaml merged in.
pub fn from_clouds_yaml(name: &str) -> Result<Credentials, CloudError> {
    from_clouds_files(
        name,
        &candidates("OS_CLIENT_CONFIG_FILE", "clouds.yaml"),
        &candidates("OS_CLIENT_SECURE_FILE", "secure.yaml"),
    )
}

/// Credentials of cloud `name` of the first of `files` that exists, with the same cloud of the
/// first of `secure_files` merged in, key by key.
fn from_clouds_files(
    name: &str,
    files: &[PathBuf],
    secure_files: &[PathBuf],
) -> Result<Credentials, CloudError> {
    let Some((path, clouds)) = first_file(files)? else {
        let looked: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        return Err(CloudError::Config(format!(
            "no clouds.yaml for cloud `{name}` (looked at {})",
            looked.join(", ")
        )));
    };
    let Some(entry) = clouds.clouds.get(name) else {
        let known: Vec<&str> = clouds.clouds.keys().map(String::as_str).collect();
        return Err(CloudError::Config(format!(
            "{} has no cloud `{name}` (it has: {})",
            path.display(),
            known.join(", ")
        )));
    };
    let mut settings = entry_settings(entry);
    if let Some((_, secure)) = first_file(secure_files)? {
        if let Some(extra) = secure.clouds.get(name) {
            // Key by key: a secure.yaml holding only the password keeps clouds.yaml's rest.
            settings.extend(entry_settings(extra));
        }
    }
    let mut creds = from_settings(&settings, format!("cloud `{name}` of {}", path.display()))?;
    // A relative cacert is the clouds.yaml's neighbour, as openstacksdk reads it.
    if let (Some(cacert), Some(dir)) = (&creds.cacert, path.parent()) {
        if cacert.is_relative() {
            creds.cacert = Some(dir.join(cacert));
        }
    }
    Ok(creds)
}

/// Credentials from the `OS_*` variables of an openrc file.
pub fn from_os_variables(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Credentials, CloudError> {
    let settings: BTreeMap<String, String> = vars
        .filter_map(|(k, v)| Some((k.strip_prefix("OS_")?.to_ascii_lowercase(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    from_settings(&settings, "the OS_* variables".into())
}

/// The env's credentials: cloud `cloud` of clouds.yaml, else `OS_CLOUD`'s, else the `OS_*`
/// variables.
pub fn load(cloud: Option<&str>) -> Result<Credentials, CloudError> {
    let from_env = std::env::var("OS_CLOUD").ok().filter(|c| !c.is_empty());
    match cloud.map(str::to_string).or(from_env) {
        Some(name) => from_clouds_yaml(&name),
        None => from_os_variables(std::env::vars()),
    }
}

/// Credentials from settings named as in clouds.yaml's `auth` (`username`, `project_name`,
/// `application_credential_secret`, ...), which the `OS_*` variables also use.
fn from_settings(
    settings: &BTreeMap<String, String>,
    origin: String,
) -> Result<Credentials, CloudError> {
    let get = |key: &str| settings.get(key).cloned();
    // Hidden before anything can fail and print them.
    for key in ["password", "application_credential_secret", "token"] {
        if let Some(secret) = settings.get(key) {
            crate::logging::hide(secret);
        }
    }
    let missing = |what: &str| {
        CloudError::Config(format!(
            "the OpenStack credentials of {origin} lack `{what}` (OS_{} in an openrc)",
            what.to_ascii_uppercase()
        ))
    };
    let auth_url = get("auth_url").ok_or_else(|| missing("auth_url"))?;
    let auth_url = v3_url(&auth_url);
    // Unchecked TLS would hand the password to whoever answers: weft takes the cloud's CA
    // instead (`cacert`), as a file it can check against.
    let unchecked = get("verify").is_some_and(|v| v.eq_ignore_ascii_case("false"))
        || get("insecure").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    if unchecked {
        return Err(CloudError::Config(format!(
            "the OpenStack credentials of {origin} turn TLS verification off (`verify: false` \
             or OS_INSECURE), which weft refuses: give the cloud's CA certificate as `cacert: \
             /path/ca.pem` (OS_CACERT in an openrc)"
        )));
    }
    let kind = get("auth_type").unwrap_or_default();
    let app_credential = kind.contains("applicationcredential")
        || kind.contains("application_credential")
        || get("application_credential_secret").is_some();
    let method = if app_credential {
        let secret = get("application_credential_secret")
            .ok_or_else(|| missing("application_credential_secret"))?;
        let id = get("application_credential_id").ok_or_else(|| {
            CloudError::Config(format!(
                "the OpenStack credentials of {origin} name no `application_credential_id`: \
                 weft needs the credential's id (`openstack application credential show`)"
            ))
        })?;
        Method::ApplicationCredential { id, secret }
    } else if !kind.is_empty() && kind != "password" && kind != "v3password" {
        return Err(CloudError::Config(format!(
            "the OpenStack credentials of {origin} use auth_type `{kind}`: weft supports \
             `password` and `v3applicationcredential`"
        )));
    } else {
        let (user, user_id) = match (get("user_id"), get("username")) {
            (Some(id), _) => (id, true),
            (None, Some(name)) => (name, false),
            (None, None) => return Err(missing("username")),
        };
        let (project, project_id) = match (
            get("project_id").or(get("tenant_id")),
            get("project_name").or(get("tenant_name")),
        ) {
            (Some(id), _) => (id, true),
            (None, Some(name)) => (name, false),
            (None, None) => return Err(missing("project_name")),
        };
        let domain = get("domain_name").unwrap_or_else(|| "Default".into());
        Method::Password {
            user,
            user_id,
            user_domain: get("user_domain_name").unwrap_or_else(|| domain.clone()),
            password: get("password").ok_or_else(|| missing("password"))?,
            project,
            project_id,
            project_domain: get("project_domain_name").unwrap_or(domain),
        }
    };
    Ok(Credentials {
        auth_url,
        method,
        region: get("region_name"),
        interface: get("interface")
            .or(get("endpoint_type"))
            .map(|i| i.trim_end_matches("URL").to_string())
            .unwrap_or_else(|| "public".into()),
        origin,
        cacert: get("cacert").map(PathBuf::from),
    })
}

/// Keystone's URL as the v3 API's: `/v3` added when the URL names no version.
fn v3_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v3") {
        url.to_string()
    } else if let Some(base) = url.strip_suffix("/v2.0") {
        format!("{base}/v3")
    } else {
        format!("{url}/v3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn an_openrc_gives_a_password_scoped_to_its_project() {
        let creds = from_os_variables(vars(&[
            ("OS_AUTH_URL", "https://keystone.example.com:5000"),
            ("OS_USERNAME", "alice"),
            ("OS_PASSWORD", "s3cret-openrc"),
            ("OS_PROJECT_NAME", "shop"),
            ("OS_USER_DOMAIN_NAME", "Users"),
            ("OS_REGION_NAME", "RegionTwo"),
            ("HOME", "/root"),
        ]))
        .expect("credentials");
        assert_eq!(creds.auth_url, "https://keystone.example.com:5000/v3");
        assert_eq!(creds.region.as_deref(), Some("RegionTwo"));
        assert_eq!(creds.interface, "public");
        let Method::Password {
            user,
            user_domain,
            project,
            project_domain,
            ..
        } = &creds.method
        else {
            panic!("{creds:?}");
        };
        assert_eq!(
            (
                user.as_str(),
                user_domain.as_str(),
                project.as_str(),
                project_domain.as_str()
            ),
            ("alice", "Users", "shop", "Default")
        );
        // Debug output, which logs may carry, never holds the password.
        assert!(!format!("{creds:?}").contains("s3cret-openrc"));
    }

    #[test]
    fn an_openrc_without_a_user_or_url_names_what_it_lacks() {
        let err = from_os_variables(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_PASSWORD", "x"),
        ]))
        .expect_err("no user")
        .to_string();
        assert!(
            err.contains("`username`") && err.contains("OS_USERNAME"),
            "{err}"
        );
        let err = from_os_variables(vars(&[]))
            .expect_err("nothing")
            .to_string();
        assert!(err.contains("OS_AUTH_URL"), "{err}");
    }

    #[test]
    fn clouds_yaml_with_secure_yaml_gives_an_application_credential() {
        let dir = tempfile::tempdir().expect("dir");
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(
            &clouds,
            "clouds:\n  mine:\n    auth_type: v3applicationcredential\n    auth:\n      \
             auth_url: http://10.0.0.1:5000/v3/\n      application_credential_id: abc123\n    \
             region_name: RegionOne\n  other:\n    auth:\n      auth_url: http://x\n",
        )
        .expect("write");
        let secure = dir.path().join("secure.yaml");
        std::fs::write(
            &secure,
            "clouds:\n  mine:\n    auth:\n      application_credential_secret: from-secure\n",
        )
        .expect("write");
        let clouds_file = read_clouds(&clouds).expect("clouds");
        let mut settings = entry_settings(&clouds_file.clouds["mine"]);
        settings.extend(entry_settings(
            &read_clouds(&secure).expect("secure").clouds["mine"],
        ));
        let creds = from_settings(&settings, "test".into()).expect("credentials");
        assert_eq!(
            creds.method,
            Method::ApplicationCredential {
                id: "abc123".into(),
                secret: "from-secure".into()
            }
        );
        assert_eq!(creds.auth_url, "http://10.0.0.1:5000/v3");
    }

    #[test]
    fn secure_yaml_merges_into_the_cloud_weft_finds_and_cacert_sits_beside_it() {
        let dir = tempfile::tempdir().expect("dir");
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(
            &clouds,
            "clouds:\n  mine:\n    cacert: ca.pem\n    auth:\n      auth_url: \
             https://keystone.example.com:5000\n      username: alice\n      project_name: \
             shop\n  abs:\n    cacert: /etc/ssl/cloud.pem\n    auth:\n      auth_url: \
             https://k\n      username: bob\n      password: inline\n      project_id: p1\n",
        )
        .expect("write");
        let secure = dir.path().join("secure.yaml");
        std::fs::write(
            &secure,
            "clouds:\n  mine:\n    auth:\n      password: from-secure\n",
        )
        .expect("write");
        let missing = dir.path().join("nowhere.yaml");
        let files = [missing.clone(), clouds.clone()];
        let secure_files = [missing, secure];
        let creds = from_clouds_files("mine", &files, &secure_files).expect("mine");
        let Method::Password { user, password, .. } = &creds.method else {
            panic!("{creds:?}");
        };
        assert_eq!((user.as_str(), password.as_str()), ("alice", "from-secure"));
        assert_eq!(creds.cacert, Some(dir.path().join("ca.pem")));
        assert_eq!(creds.auth_url, "https://keystone.example.com:5000/v3");
        let creds = from_clouds_files("abs", &files, &secure_files).expect("abs");
        assert_eq!(creds.cacert, Some(PathBuf::from("/etc/ssl/cloud.pem")));
        let err = from_clouds_files("nosuch", &files, &secure_files)
            .expect_err("no such cloud")
            .to_string();
        assert!(
            err.contains("no cloud `nosuch`") && err.contains("abs, mine"),
            "{err}"
        );
    }

    #[test]
    fn turning_tls_verification_off_is_refused_and_os_cacert_is_read() {
        let dir = tempfile::tempdir().expect("dir");
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(
            &clouds,
            "clouds:\n  lax:\n    verify: false\n    auth:\n      auth_url: https://k\n      \
             username: a\n      password: p\n      project_name: s\n",
        )
        .expect("write");
        let err = from_clouds_files("lax", std::slice::from_ref(&clouds), &[])
            .expect_err("verify: false")
            .to_string();
        assert!(
            err.contains("`verify: false`") && err.contains("cacert"),
            "{err}"
        );
        let base = [
            ("OS_AUTH_URL", "https://k/v3"),
            ("OS_USERNAME", "a"),
            ("OS_PASSWORD", "p"),
            ("OS_PROJECT_NAME", "s"),
        ];
        let mut insecure = base.to_vec();
        insecure.push(("OS_INSECURE", "true"));
        let err = from_os_variables(vars(&insecure))
            .expect_err("OS_INSECURE")
            .to_string();
        assert!(err.contains("OS_INSECURE"), "{err}");
        let mut with_ca = base.to_vec();
        with_ca.push(("OS_CACERT", "/etc/ssl/cloud.pem"));
        let creds = from_os_variables(vars(&with_ca)).expect("credentials");
        assert_eq!(creds.cacert, Some(PathBuf::from("/etc/ssl/cloud.pem")));
    }

    #[test]
    fn an_unsupported_auth_type_is_named() {
        let err = from_os_variables(vars(&[
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_AUTH_TYPE", "v3oidcpassword"),
        ]))
        .expect_err("oidc")
        .to_string();
        assert!(err.contains("v3oidcpassword"), "{err}");
    }
}
