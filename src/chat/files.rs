//! Downloads for the adapters' [`FileFetcher`](crate::engine::FileFetcher)s:
//! over HTTP(S) or from a path on this machine, never more than
//! [`MAX_FILE_BYTES`].

use std::sync::OnceLock;
use std::time::Duration;

/// The largest file any adapter downloads (20 MB, Telegram's limit for
/// bots; a 5,000-row wish list is well under 1 MB, a photo a few MB).
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

fn too_big(what: &str) -> String {
    format!("{what}: larger than {} MB", MAX_FILE_BYTES >> 20)
}

/// Whether `s` is an `http://` or `https://` URL.
pub fn is_http(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// GET `url`, refusing an error status and anything over the limit (by
/// its announced length, or as it arrives).
pub async fn http_get(url: &str) -> Result<Vec<u8>, String> {
    // Errors are shown in chats: the file's name, never the URL (its query
    // may carry a token).
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let shown = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("file");
    let mut resp = client()?
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{shown}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("{shown}: HTTP {}", resp.status().as_u16()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_FILE_BYTES as u64)
    {
        return Err(too_big(shown));
    }
    let mut data = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("{shown}: {}", e.without_url()))?
    {
        if data.len() + chunk.len() > MAX_FILE_BYTES {
            return Err(too_big(shown));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// Read a regular file on this machine (`file://` URLs too), within the
/// limit. Errors name the file, not where it lies: they are shown in chats.
pub async fn read_local(path: &str) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let path = path.strip_prefix("file://").unwrap_or(path);
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let fail = |e: std::io::Error| {
        tracing::warn!(path, error = %e, "reading a local file failed");
        format!("{name}: {}", e.kind())
    };
    let file = tokio::fs::File::open(path).await.map_err(fail)?;
    // Not a device or a /proc file, which may claim a length of 0 and
    // never end.
    if !file.metadata().await.map_err(fail)?.is_file() {
        return Err(format!("{name}: not a regular file"));
    }
    let mut data = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .await
        .map_err(fail)?;
    if data.len() > MAX_FILE_BYTES {
        return Err(too_big(name));
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
        assert_eq!(err, "big.bin: larger than 20 MB");
        let err = read_local("/dev/zero").await.unwrap_err();
        assert_eq!(err, "zero: not a regular file");
        let missing = dir.path().join("gone.csv");
        let err = read_local(missing.to_str().unwrap()).await.unwrap_err();
        assert_eq!(err, "gone.csv: entity not found", "no directory shown");
    }
}
