//! The `weft = ">=0.3, <0.5"` version ranges of `plugin.toml`, read by the `semver` crate (Cargo's
//! rules: a bare version means `^`, comparators are joined by `,`).

use semver::{BuildMetadata, Prerelease, Version, VersionReq};

/// Whether `version` lies in `range`; `Err` names the part of `range` that does not parse.
///
/// A pre-release or build of `version` (`0.3.0-dev`) counts as the release itself, so a weft built
/// from a branch loads the plugins its release would.
pub fn matches(range: &str, version: &str) -> Result<bool, String> {
    let req = VersionReq::parse(range).map_err(|_| bad_part(range))?;
    let mut version = Version::parse(version).map_err(|_| version.to_string())?;
    version.pre = Prerelease::EMPTY;
    version.build = BuildMetadata::EMPTY;
    Ok(req.matches(&version))
}

/// The first comparator of `range` that does not parse by itself, or the whole range when each
/// does and only their combination is wrong (`*, >=0.1`).
fn bad_part(range: &str) -> String {
    range
        .split(',')
        .map(str::trim)
        .find(|part| VersionReq::parse(part).is_err())
        .unwrap_or(range.trim())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn ranges_include_and_exclude() {
        assert_eq!(matches(">=0.1, <0.3", "0.2.5"), Ok(true));
        assert_eq!(matches(">=0.1, <0.3", "0.3.0"), Ok(false));
        assert_eq!(matches("^0.2", "0.2.9"), Ok(true));
        assert_eq!(matches("^0.2", "0.3.0"), Ok(false));
        assert_eq!(matches("0.2", "0.3.0"), Ok(false));
        assert_eq!(matches("^1.2", "1.9.0"), Ok(true));
        assert_eq!(matches("~1.2", "1.3.0"), Ok(false));
        assert_eq!(matches("*", "7.0.0"), Ok(true));
        assert_eq!(matches(">=0.0.1, <0.1", "0.1.0"), Ok(false));
    }

    #[test]
    fn a_pre_release_of_weft_counts_as_its_release() {
        assert_eq!(matches(">=0.1, <0.3", "0.2.0-dev"), Ok(true));
        assert_eq!(matches("^0.2", "0.2.0+abc"), Ok(true));
    }

    #[test]
    fn the_part_that_does_not_parse_is_named() {
        assert_eq!(matches(">= banana", "0.1.0"), Err(">= banana".into()));
        assert_eq!(matches(">=0.1, <zero", "0.1.0"), Err("<zero".into()));
        assert_eq!(matches("*, >=0.1", "0.1.0"), Err("*, >=0.1".into()));
    }
}
