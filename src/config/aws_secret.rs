//! `{ aws_secret = "name" }`: one read of AWS Secrets Manager with the env's AWS settings
//! (`crate::aws`), its failures said as what to do.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Why a read failed, and the fix.
type Failure = (String, String);

/// The text of secret `name` (its `SecretString`, or its binary value when that is UTF-8),
/// read with `profile`'s credentials in `region` (else the standard ones).
pub async fn read(
    name: &str,
    profile: Option<&str>,
    region: Option<&str>,
) -> Result<String, Failure> {
    let config = crate::aws::sdk_config(profile, region).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let out = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|err| failure(name, profile, &config, err))?;
    if let Some(text) = out.secret_string() {
        return Ok(text.to_string());
    }
    match out.secret_binary() {
        Some(bytes) => String::from_utf8(bytes.as_ref().to_vec()).map_err(|_| {
            (
                format!("AWS secret `{name}` holds binary data that is not UTF-8 text"),
                "store the secret as text (base64, for binary data)".into(),
            )
        }),
        None => Err((
            format!("AWS secret `{name}` has no value in its current version"),
            format!("give it one: aws secretsmanager put-secret-value --secret-id {name} ..."),
        )),
    }
}

/// Why reading `name` failed, and the fix.
fn failure<E, R>(
    name: &str,
    profile: Option<&str>,
    config: &aws_config::SdkConfig,
    err: SdkError<E, R>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let region = config
        .region()
        .map_or_else(|| "no region".to_string(), |r| format!("region {r}"));
    let account = match profile {
        Some(profile) => format!("profile `{profile}`, {region}"),
        None => region,
    };
    if let SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) = &err {
        let endpoint = ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .map_or_else(String::new, |url| format!(" at {url}"));
        return (
            format!(
                "cannot reach AWS Secrets Manager{endpoint} ({account}): {}",
                DisplayErrorContext(&err)
            ),
            "check the network, the region and the endpoint (AWS_ENDPOINT_URL, \
             AWS_ENDPOINT_URL_SECRETS_MANAGER)"
                .into(),
        );
    }
    match err.code() {
        Some("ResourceNotFoundException") => (
            format!("AWS Secrets Manager has no secret `{name}` ({account})"),
            "check its name and the env's `region` and `profile` in weft.toml".into(),
        ),
        Some("AccessDeniedException") | Some("UnrecognizedClientException") => (
            format!(
                "AWS refused to read secret `{name}` ({account}): {}",
                err.message().unwrap_or("access denied")
            ),
            "give the env's credentials `secretsmanager:GetSecretValue` on it (and \
             `kms:Decrypt` on its key), or set the env's `profile`"
                .into(),
        ),
        _ => (
            format!(
                "cannot read AWS secret `{name}` ({account}): {}",
                DisplayErrorContext(&err)
            ),
            "check the env's AWS credentials, `region` and `profile`".into(),
        ),
    }
}
