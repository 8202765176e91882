//! The dashboard in a real browser: headless Chromium driven over WebDriver
//! (fantoccini → /usr/bin/chromedriver). The test starts chromedriver on a
//! free port (killed on drop) and serves the dashboard on 127.0.0.1:0 over
//! a test store. Without chromedriver the test FAILS: install Debian's
//! `chromium chromium-driver` (as `.ci/run` does). Every wait is bounded.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::TestDb;
use crate::web::{Chat, engine_at, scene};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest wait for anything in the browser.
const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group (see start_driver), and
        // the Chromium it started is in it: end the whole group, so no
        // browser outlives a test that failed before closing its session.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Driver {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
        "the browser tests need {CHROMEDRIVER} and {CHROMIUM}: \
         install them with `apt-get install -y chromium chromium-driver`"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
    let driver = Driver { child, port };
    // Ready when it accepts connections.
    let ready = tokio::time::timeout(WAIT, async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "chromedriver did not listen on {port}");
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=420,900"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        WAIT * 2,
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port)),
    )
    .await
    .expect("starting Chromium timed out")
    .expect("WebDriver session")
}

/// Go to `url`, bounded.
async fn goto(c: &Client, url: &str) {
    tokio::time::timeout(WAIT, c.goto(url))
        .await
        .unwrap_or_else(|_| panic!("loading {url} timed out"))
        .unwrap();
}

/// One WebDriver round trip, bounded.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} timed out"))
}

/// Poll `check` on the page source until it holds, bounded.
async fn wait_source(c: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    let r = tokio::time::timeout(WAIT, async {
        loop {
            let src = c.source().await.unwrap_or_default();
            if check(&src) {
                return src;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    match r {
        Ok(src) => src,
        Err(_) => panic!(
            "waited for {what}; page is\n{}",
            tokio::time::timeout(WAIT, c.source())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        ),
    }
}

/// The text of `#id`, polled until it equals `want`, bounded.
async fn wait_text(c: &Client, id: &str, want: &str) {
    let r = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(e) = c.find(Locator::Id(id)).await
                && e.text().await.is_ok_and(|t| t.trim() == want)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "#{id} never became {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium() {
    let driver = start_driver().await;
    let c = browser(&driver).await;
    for db in TestDb::both().await {
        scenario(&c, &db).await;
    }
    let _ = tokio::time::timeout(WAIT, c.close()).await;
    drop(driver);
}

/// Sign in, watch the board, export, reuse a link, and a cadre's view, on
/// one backend (a new server on a new port: cookies do not carry over).
async fn scenario(c: &Client, db: &TestDb) {
    eprintln!("browser scenario on {}", db.backend);
    // The browser posts with the server's origin: it is the public URL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (e, clock) = engine_at(db, &base).await;
    let mut chat = Chat::new(e.clone(), clock);
    scene(&mut chat).await;
    chat.say(
        "cadre",
        "g1",
        "/log 3月5日 学雷锋志愿服务 45人 90小时 三里铺",
    )
    .await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(tuanbot::web::serve(e.clone(), listener, shutdown));

    // Sign in through the one-time link: the page submits itself.
    let token = chat.link("staff").await;
    goto(c, &format!("{base}/login?t={token}")).await;
    wait_source(c, "the overview", |s| s.contains("本月活动")).await;
    let url = bounded("current_url", c.current_url()).await.unwrap();
    assert_eq!(url.path(), "/");

    // The board follows claims made through the engine.
    goto(c, &format!("{base}/board")).await;
    wait_text(c, "n-claimed", "0").await;
    chat.say("cadre", "g1", "认领 12").await;
    wait_text(c, "n-claimed", "1").await;
    chat.say("cadre", "g1", "认领 2 15").await;
    wait_text(c, "n-claimed", "3").await;
    wait_text(c, "n-open", "797").await;
    // Staff see the child's full name (毛轩 is wish 2).
    wait_source(c, "full names for staff", |s| s.contains("毛轩")).await;
    // And, refreshed by the script, the price and note of wish 2.
    wait_source(c, "price and note for staff", |s| {
        s.contains("¥35") && s.contains("希望能在六一前收到")
    })
    .await;

    // The XLSX export answers with a workbook.
    goto(
        c,
        &format!("{base}/activities?from=2026-03-01&to=2026-03-10"),
    )
    .await;
    let link = bounded("the export link", async {
        c.find(Locator::Id("export-xlsx"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap()
    })
    .await;
    let got = tokio::time::timeout(
        WAIT,
        c.execute_async(
            "const [url, done] = arguments;
             fetch(url).then(r => r.arrayBuffer().then(b => done({
               status: r.status, type: r.headers.get('content-type'),
               head: Array.from(new Uint8Array(b.slice(0, 2))), len: b.byteLength })))
             .catch(e => done({ error: String(e) }));",
            vec![json!(link)],
        ),
    )
    .await
    .expect("export timed out")
    .unwrap();
    assert_eq!(got["status"], 200, "{got}");
    assert!(
        got["type"]
            .as_str()
            .unwrap_or_default()
            .contains("spreadsheetml"),
        "{got}"
    );
    assert_eq!(got["head"], json!([80, 75]), "a zip (PK): {got}");
    // Clicking it starts a download and leaves the page where it was.
    bounded("clicking the export link", async {
        c.find(Locator::Id("export-xlsx"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap()
    })
    .await;
    wait_source(c, "the activities page after the download", |s| {
        s.contains("三里铺")
    })
    .await;
    assert_eq!(
        bounded("current_url", c.current_url())
            .await
            .unwrap()
            .path(),
        "/activities"
    );

    // The used link is refused.
    goto(c, &format!("{base}/login?t={token}")).await;
    wait_source(c, "the refusal", |s| s.contains("已经用过")).await;

    // A cadre's session is refused a staff page and sees their own org's
    // claims in full (as the holding org's cadre may, in private), no other.
    let cadre = chat.link("cadre").await;
    goto(c, &format!("{base}/login?t={cadre}")).await;
    wait_source(c, "the cadre overview", |s| {
        s.contains("本月活动") && s.contains("只读")
    })
    .await;
    goto(c, &format!("{base}/notices")).await;
    wait_source(c, "403", |s| s.contains("没有权限")).await;
    goto(c, &format!("{base}/board")).await;
    let src = wait_source(c, "the cadre board", |s| s.contains("毛轩")).await;
    assert!(src.contains("希望能在六一前收到"), "the note of 2");
    for name in crate::web::names_not_held(&[2, 12, 15]) {
        assert!(!src.contains(name.as_str()), "{name} in the cadre view");
    }

    let _ = stop.send(true);
    let _ = tokio::time::timeout(WAIT, server).await;
}
