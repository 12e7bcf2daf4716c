//! `{ aws_secret = "name" }`: one read of AWS Secrets Manager with the env's AWS settings
//! (`crate::aws`), its failures said as what to do.

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

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
    if config.region().is_none() {
        return Err((
            format!("cannot read AWS secret `{name}`: no AWS region is set"),
            "set the env's `region` in weft.toml, or AWS_REGION, or the profile's region".into(),
        ));
    }
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
fn failure(
    name: &str,
    profile: Option<&str>,
    config: &aws_config::SdkConfig,
    err: SdkError<GetSecretValueError, HttpResponse>,
) -> Failure {
    let region = config
        .region()
        .map_or_else(|| "no region".to_string(), |r| format!("region {r}"));
    let account = match profile {
        Some(profile) => format!("profile `{profile}`, {region}"),
        None => region,
    };
    if let SdkError::DispatchFailure(failure) = &err {
        if !failure.is_io() && !failure.is_timeout() {
            // Before any connection: the credentials could not be had.
            return (
                format!(
                    "cannot read AWS secret `{name}` ({account}): {}",
                    causes(&err).trim_end_matches([' ', ':'])
                ),
                "give weft AWS credentials: the env's `profile`, AWS_PROFILE, \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or `aws sso login`"
                    .into(),
            );
        }
    }
    if let SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) = &err {
        let endpoint = ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .map_or_else(String::new, |url| format!(" at {url}"));
        return (
            format!(
                "cannot reach AWS Secrets Manager{endpoint} ({account}): {}",
                causes(&err)
            ),
            "check the network, the region and the endpoint (AWS_ENDPOINT_URL, \
             AWS_ENDPOINT_URL_SECRETS_MANAGER)"
                .into(),
        );
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    // An answer that is not the service's JSON (a proxy's, an emulator's) still says why in
    // an XML or text body.
    let said = err.message().map(str::to_string).or_else(|| {
        let body = err.raw_response()?.body().bytes()?;
        let body = String::from_utf8_lossy(body);
        let start = body.find("<Message>")? + "<Message>".len();
        let len = body[start..].find("</Message>")?;
        Some(body[start..start + len].to_string())
    });
    let denied = matches!(
        err.code(),
        Some(
            "AccessDeniedException"
                | "AccessDenied"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
        )
    ) || (err.code().is_none() && status == Some(403));
    if denied {
        return (
            format!(
                "AWS refused to read secret `{name}` ({account}): {}",
                said.as_deref().unwrap_or("access denied")
            ),
            "give the env's credentials `secretsmanager:GetSecretValue` on it (and \
             `kms:Decrypt` on its key), or set the env's `profile`"
                .into(),
        );
    }
    if err.code() == Some("ResourceNotFoundException") {
        return (
            format!("AWS Secrets Manager has no secret `{name}` ({account})"),
            "check its name and the env's `region` and `profile` in weft.toml".into(),
        );
    }
    let why = match (err.code(), said, status) {
        (Some(code), Some(said), _) => format!("{code}: {said}"),
        (None, Some(said), _) => said,
        (Some(code), None, _) => code.to_string(),
        (None, None, Some(status)) => format!("it answered HTTP {status}"),
        (None, None, None) => causes(&err),
    };
    (
        format!("cannot read AWS secret `{name}` ({account}): {why}"),
        "check the env's AWS credentials, `region` and `profile`".into(),
    )
}

/// An error and its causes, each said once: the SDK's own words, without its debug dumps.
fn causes(err: &dyn std::error::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        // Each on one line: an error's own lines (the providers a chain tried) would break
        // the report's.
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
        next = e.source();
    }
    said.join(": ")
}
