//! The user data of a new cloud machine (EC2, OpenStack): weft's cloud-config (login keys,
//! the host key weft made for it, the role's packages) and the user's own part, as one MIME
//! multi-part document cloud-init reads at first boot.

use super::{hostkey, CloudError, MachineSpec};

/// The user's `user_data` as a MIME part type, from its first line as cloud-init reads it.
pub fn user_data_type(text: &str) -> Result<&'static str, CloudError> {
    let first = text.lines().next().unwrap_or_default().trim_end();
    let kind = if first.starts_with("#!") {
        "text/x-shellscript"
    } else if first == "#cloud-config" {
        "text/cloud-config"
    } else if first == "#cloud-boothook" {
        "text/cloud-boothook"
    } else if first == "#include" {
        "text/x-include-url"
    } else {
        return Err(CloudError::Config(format!(
            "user_data must start with `#!` (a script) or `#cloud-config`, not `{first}`"
        )));
    };
    Ok(kind)
}

/// The role's own `user_data` as a part (its type and text), checked before anything is made.
pub fn user_part(spec: &MachineSpec) -> Result<Option<(&'static str, &str)>, CloudError> {
    spec.user_data
        .as_deref()
        .map(|text| Ok((user_data_type(text)?, text)))
        .transpose()
}

/// A new machine's host key, made here (its private half hidden from every output), and its
/// user data: `weft_key` and the role's `keys` may log in, the host key and the role's
/// packages, then `user` (from `user_part`). The user data holds the private key: never
/// printed or logged.
pub fn for_machine(
    weft_key: &String,
    spec: &MachineSpec,
    user: Option<(&str, &str)>,
) -> Result<(hostkey::HostKey, String), CloudError> {
    let host_key = hostkey::generate()?;
    crate::logging::hide(&host_key.private);
    let keys: Vec<&String> = std::iter::once(weft_key).chain(&spec.keys).collect();
    let user_data = multipart(&cloud_config(&keys, &host_key, &spec.packages), user);
    Ok((host_key, user_data))
}

/// Removes the user data (which holds the host's private key) from cloud-init's files on
/// every boot; `bootcmd` runs after cloud-init has written them and read the keys.
const SCRUB_USER_DATA: &str = "rm -f /var/lib/cloud/instance/user-data.txt \
/var/lib/cloud/instance/user-data.txt.i /var/lib/cloud/instance/cloud-config.txt";

/// The cloud-config weft needs: its login keys, the machine's own host key and the role's
/// packages.
pub fn cloud_config(keys: &[&String], host_key: &hostkey::HostKey, packages: &[String]) -> String {
    let mut config = serde_json::json!({
        "ssh_authorized_keys": keys.iter().map(|k| k.trim()).collect::<Vec<_>>(),
        "ssh_deletekeys": true,
        "ssh_genkeytypes": [],
        "ssh_keys": {
            "ed25519_private": host_key.private,
            "ed25519_public": host_key.public,
        },
        "bootcmd": [["sh", "-c", SCRUB_USER_DATA]],
    });
    if !packages.is_empty() {
        config["packages"] = serde_json::json!(packages);
    }
    // JSON is YAML: no indentation to get wrong around the key's lines.
    format!("#cloud-config\n{config}\n")
}

/// A MIME multi-part document: weft's cloud-config, then the user's part as it is.
pub fn multipart(cloud_config: &str, user: Option<(&str, &str)>) -> String {
    let boundary = format!("weft-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut doc =
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n");
    let mut part = |kind: &str, name: &str, body: &str| {
        doc.push_str(&format!(
            "--{boundary}\nContent-Type: {kind}; charset=\"utf-8\"\nMIME-Version: 1.0\n\
             Content-Transfer-Encoding: 8bit\nContent-Disposition: attachment; filename=\"{name}\"\n\n{body}"
        ));
        // The line break before a boundary belongs to the boundary: the part stays as written.
        doc.push('\n');
    };
    part("text/cloud-config", "weft.cfg", cloud_config);
    if let Some((kind, body)) = user {
        part(kind, "user-data", body);
    }
    doc.push_str(&format!("--{boundary}--\n"));
    doc
}
