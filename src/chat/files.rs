//! Downloads for the adapters' [`FileFetcher`](crate::engine::FileFetcher)s:
//! over HTTP(S), or from a path on this machine (the console's `:file`
//! anywhere; a OneBot peer's `get_file` answer only inside
//! `onebot.file_dir`), never more than [`MAX_FILE_BYTES`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rust_i18n::t;

/// The largest file any adapter downloads (20 MB, Telegram's limit for
/// bots; a 5,000-row wish list is well under 1 MB, a photo a few MB).
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// Why a download failed. `Display` is for logs; [`FetchError::message`]
/// is the line shown in a chat. Names are file names, never where a file
/// lies or a URL (its query may carry a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: larger than {mb} MB", mb = MAX_FILE_BYTES >> 20)]
    TooBig(String),
    #[error("{0}: download timed out")]
    TimedOut(String),
    /// The network, the server or the file system said no; the detail.
    #[error("{0}")]
    Failed(String),
    /// A local path while `onebot.file_dir` is not set.
    #[error("{0}: a path on this machine, and onebot.file_dir is not set")]
    NoFileDir(String),
    /// A local path outside `onebot.file_dir` (after following links).
    #[error("{0}: outside onebot.file_dir")]
    OutsideFileDir(String),
    /// A URL that is not http(s).
    #[error("{0}: not an http(s) URL")]
    NotHttp(String),
}

impl FetchError {
    /// One line for the user, in `locale`.
    pub fn message(&self, locale: &str) -> String {
        let l = locale;
        match self {
            FetchError::TooBig(_) => {
                t!("files.too_big", locale = l, mb = MAX_FILE_BYTES >> 20).into_owned()
            }
            FetchError::TimedOut(_) => t!("files.fetch.timed_out", locale = l).into_owned(),
            FetchError::Failed(e) => t!(
                "files.fetch.failed",
                locale = l,
                error = crate::service::clip(e, 80)
            )
            .into_owned(),
            FetchError::NoFileDir(_) => t!("files.fetch.no_file_dir", locale = l).into_owned(),
            FetchError::OutsideFileDir(_) => {
                t!("files.fetch.outside_file_dir", locale = l).into_owned()
            }
            FetchError::NotHttp(_) => t!("files.fetch.not_http", locale = l).into_owned(),
        }
    }
}

/// Whether `s` is an `http://` or `https://` URL.
pub fn is_http(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether `s` names a URL of some scheme (`ftp://`, `file://`, …) rather
/// than a path.
pub fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

fn client() -> Result<&'static reqwest::Client, FetchError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| FetchError::Failed(format!("HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// GET `url`, refusing an error status and anything over the limit (by
/// its announced length, or as it arrives).
pub async fn http_get(url: &str) -> Result<Vec<u8>, FetchError> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let shown = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("file");
    if !is_http(url) {
        return Err(FetchError::NotHttp(shown.to_string()));
    }
    let failed = |e: reqwest::Error| FetchError::Failed(format!("{shown}: {}", e.without_url()));
    let mut resp = client()?.get(url).send().await.map_err(failed)?;
    if !resp.status().is_success() {
        return Err(FetchError::Failed(format!(
            "{shown}: HTTP {}",
            resp.status().as_u16()
        )));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_FILE_BYTES as u64)
    {
        return Err(FetchError::TooBig(shown.to_string()));
    }
    let mut data = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        if data.len() + chunk.len() > MAX_FILE_BYTES {
            return Err(FetchError::TooBig(shown.to_string()));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// The file name in a path or `file://` URL, for messages.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Read a regular file on this machine (`file://` URLs too), within the
/// limit: the console's `:file`, which the operator typed. Errors name the
/// file, not where it lies: they are shown in chats.
pub async fn read_local(path: &str) -> Result<Vec<u8>, FetchError> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    read_file(Path::new(path), file_name(path)).await
}

/// Read a file a peer named (a OneBot implementation's `get_file` answer)
/// only when it lies inside `dir`, both taken as the file system resolves
/// them (`..` and symbolic links followed): nothing else on this machine
/// can be read that way. No `dir` configured: no local file at all.
pub async fn read_local_within(dir: Option<&Path>, path: &str) -> Result<Vec<u8>, FetchError> {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let name = file_name(path);
    let Some(dir) = dir else {
        tracing::warn!(
            path,
            "a file named by its path on this machine was refused: set onebot.file_dir \
             to the directory the OneBot implementation keeps its files in"
        );
        return Err(FetchError::NoFileDir(name.to_string()));
    };
    let outside = || {
        tracing::warn!(path, dir = %dir.display(), "a path outside onebot.file_dir was refused");
        FetchError::OutsideFileDir(name.to_string())
    };
    let dir = tokio::fs::canonicalize(dir).await.map_err(|_| outside())?;
    let real: PathBuf = match tokio::fs::canonicalize(path).await {
        Ok(real) => real,
        // Missing inside the directory is a failed download; anywhere
        // else it is refused like any outside path, so an answer does not
        // tell which files exist out there.
        Err(e) => {
            let parent = Path::new(path).parent().unwrap_or(Path::new(path));
            return match tokio::fs::canonicalize(parent).await {
                Ok(p) if p.starts_with(&dir) => {
                    Err(FetchError::Failed(format!("{name}: {}", e.kind())))
                }
                _ => Err(outside()),
            };
        }
    };
    if !real.starts_with(&dir) {
        return Err(outside());
    }
    read_file(&real, name).await
}

async fn read_file(path: &Path, name: &str) -> Result<Vec<u8>, FetchError> {
    use tokio::io::AsyncReadExt;
    let fail = |e: std::io::Error| {
        tracing::warn!(path = %path.display(), error = %e, "reading a local file failed");
        FetchError::Failed(format!("{name}: {}", e.kind()))
    };
    let file = tokio::fs::File::open(path).await.map_err(fail)?;
    // Not a device or a /proc file, which may claim a length of 0 and
    // never end.
    if !file.metadata().await.map_err(fail)?.is_file() {
        return Err(FetchError::Failed(format!("{name}: not a regular file")));
    }
    let mut data = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .await
        .map_err(fail)?;
    if data.len() > MAX_FILE_BYTES {
        return Err(FetchError::TooBig(name.to_string()));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_told_apart_from_paths_and_file_ids() {
        assert!(is_http("https://multimedia.nt.qq.com.cn/download?id=1"));
        assert!(is_http("HTTP://127.0.0.1:8080/f"));
        assert!(!is_http("/a1b2-c3d4"));
        assert!(!is_http("file:///tmp/x.xlsx"));
        assert!(!is_http("BQACAgUAAxkBAAI"));
        assert!(is_url("ftp://x/y") && is_url("file:///tmp/x") && is_url("https://x"));
        assert!(!is_url("/tmp/a://b") && !is_url("C:\\x") && !is_url("a b://c"));
    }

    #[tokio::test]
    async fn local_files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.csv");
        std::fs::write(&small, "学校,年级\n").unwrap();
        let got = read_local(&format!("file://{}", small.display())).await;
        assert_eq!(got.unwrap(), "学校,年级\n".as_bytes());
        let big = dir.path().join("big.bin");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES as u64 + 1).unwrap();
        let err = read_local(big.to_str().unwrap()).await.unwrap_err();
        assert_eq!(err.to_string(), "big.bin: larger than 20 MB");
        let err = read_local("/dev/zero").await.unwrap_err();
        assert_eq!(err.to_string(), "zero: not a regular file");
        let missing = dir.path().join("gone.csv");
        let err = read_local(missing.to_str().unwrap()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "gone.csv: entity not found",
            "no directory shown"
        );
    }

    #[tokio::test]
    async fn peer_paths_only_inside_the_file_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("napcat");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ok.csv"), "a\n").unwrap();
        let secret = root.path().join("secret.txt");
        std::fs::write(&secret, "key").unwrap();
        let inside = dir.join("ok.csv");
        let d = Some(dir.as_path());
        assert_eq!(
            read_local_within(d, inside.to_str().unwrap())
                .await
                .unwrap(),
            b"a\n"
        );
        let url = format!("file://{}", inside.display());
        assert_eq!(read_local_within(d, &url).await.unwrap(), b"a\n");
        // `..` out of the directory, a link out of it, a path elsewhere,
        // a path that does not exist: all refused alike.
        let dotdot = format!("{}/../secret.txt", dir.display());
        #[cfg(unix)]
        std::os::unix::fs::symlink(&secret, dir.join("link.txt")).unwrap();
        let link = dir.join("link.txt");
        for path in [
            dotdot.as_str(),
            link.to_str().unwrap(),
            secret.to_str().unwrap(),
            "/etc/passwd",
            "/nonexistent/x.csv",
        ] {
            let err = read_local_within(d, path).await.unwrap_err();
            assert!(
                matches!(err, FetchError::OutsideFileDir(_)),
                "{path}: {err:?}"
            );
        }
        // Missing inside: a plain failure.
        let gone = dir.join("gone.csv");
        let err = read_local_within(d, gone.to_str().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "gone.csv: entity not found");
        // A link whose target lies inside is fine.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&inside, dir.join("alias.csv")).unwrap();
            let alias = dir.join("alias.csv");
            assert!(read_local_within(d, alias.to_str().unwrap()).await.is_ok());
        }
        // No directory configured: no local file at all.
        let err = read_local_within(None, inside.to_str().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::NoFileDir("ok.csv".into()));
        assert_eq!(
            err.message("zh-CN"),
            rust_i18n::t!("files.fetch.no_file_dir", locale = "zh-CN")
        );
    }
}
