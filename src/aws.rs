//! The AWS SDK's settings for an env, as the ec2 provider and `{ aws_secret = .. }` both read
//! them: the standard chain (variables, `~/.aws`, SSO, `credential_process`), the env's
//! `profile` and `region` over it, and the endpoint variables (`AWS_ENDPOINT_URL`, a
//! service's own such as `AWS_ENDPOINT_URL_EC2`), which the SDK reads itself.

/// The SDK settings with `profile`'s credentials and region, and `region` over both.
pub async fn sdk_config(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = profile {
        // The profile's credentials even when AWS_ACCESS_KEY_ID is set: the env names its
        // account.
        loader = loader.profile_name(profile).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(profile)
                .build(),
        );
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    loader.load().await
}
