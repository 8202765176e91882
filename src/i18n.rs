//! Locales. Texts live in `locales/*.yml` (rust-i18n); code holds only keys.

/// Locales we ship, the first being the default.
pub const SUPPORTED: &[&str] = &["zh-CN", "en"];

pub fn is_supported(locale: &str) -> bool {
    SUPPORTED.contains(&locale)
}

/// The locale to answer a person in: their stored choice, else their client's
/// language when it is English, else the configured default.
pub fn pick(person: Option<&str>, client: Option<&str>, default: &str) -> &'static str {
    let find = |l: &str| {
        SUPPORTED
            .iter()
            .copied()
            .find(|s| s.eq_ignore_ascii_case(l))
    };
    if let Some(l) = person.and_then(find) {
        return l;
    }
    if client.is_some_and(|c| c.to_ascii_lowercase().starts_with("en")) {
        return "en";
    }
    find(default).unwrap_or(SUPPORTED[0])
}

/// Translate `key` and fill `%{name}` placeholders from `args`. For callers
/// outside this crate (the CLI binary), where `t!` is not available.
pub fn tr(locale: &str, key: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut text = rust_i18n::t!(key, locale = locale).into_owned();
    for (name, value) in args {
        text = text.replace(&format!("%{{{name}}}"), &value.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks() {
        assert_eq!(pick(None, None, "zh-CN"), "zh-CN");
        assert_eq!(pick(None, Some("en-US"), "zh-CN"), "en");
        assert_eq!(pick(Some("zh-CN"), Some("en"), "en"), "zh-CN");
        assert_eq!(pick(None, Some("zh-hans"), "en"), "en");
        assert_eq!(pick(Some("fr"), None, "xx"), "zh-CN");
    }

    #[test]
    fn every_locale_has_the_same_keys() {
        // rust-i18n falls back silently; make a missing translation a test failure.
        let backend = crate::_rust_i18n_backend();
        let keys = |l: &str| {
            let mut k: Vec<String> = backend
                .messages_for_locale(l)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k.into_owned())
                .collect();
            k.sort();
            k
        };
        let zh = keys("zh-CN");
        assert!(zh.len() > 20, "locales not loaded: {zh:?}");
        assert_eq!(zh, keys("en"));
    }
}
