//! [`Browser`]: a real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test.sh` installs), for the tests of the web consoles.
//! Each browser has its own chromedriver on a free port and its own profile directory, and
//! is killed with its whole process group when dropped. Helpers find elements, type, click,
//! await texts (bounded), save screenshots under the target directory and run axe-core (the
//! npm package, which the test command installs) on the page at desktop and phone width.
//! A browser may be started with a fake camera that shows a given picture
//! ([`Browser::open_with_camera`], [`write_y4m`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// How long an element or a text may take to appear.
pub const WAIT: Duration = Duration::from_secs(30);

/// Desktop and phone window sizes the pages are checked at.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's width (and height).
pub const PHONE: (u32, u32) = (390, 844);

/// A headless Chromium on one Ordo.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    base: String,
    driver: Child,
    profile: PathBuf,
}

fn chromium() -> String {
    std::env::var("ORDO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("ORDO_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// Where screenshots go: `<target>/web-screenshots/` beside the test binaries.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/web-screenshots
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .expect("target dir");
    target.join("web-screenshots")
}

/// The axe-core script: `ORDO_AXE_CORE`, else where the test command installs it.
fn axe_source() -> String {
    let path = std::env::var("ORDO_AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            let state = std::env::var("ORDO_STATE_DIR")
                .unwrap_or_else(|_| format!("{home}/.local/state/ordo"));
            PathBuf::from(state).join("axe-core/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "axe-core is missing at {} ({err}): run the tests with scripts/test.sh, which installs it",
            path.display()
        )
    })
}

/// Writes `luma` (`width` x `height` grey levels, row by row; both even) to `path` as a
/// one-frame Y4M video (4:2:0, no colour), the format Chromium's fake camera plays in a loop.
pub fn write_y4m(path: &Path, width: usize, height: usize, luma: &[u8]) {
    assert!(
        width.is_multiple_of(2) && height.is_multiple_of(2),
        "a 4:2:0 frame has an even size, not {width}x{height}"
    );
    assert_eq!(luma.len(), width * height, "one grey level per pixel");
    let mut video =
        format!("YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    video.extend_from_slice(luma);
    video.resize(video.len() + width * height / 2, 128);
    std::fs::write(path, video).expect("fake camera video written");
}

impl Browser {
    /// Starts chromedriver and a headless Chromium on `base_url` (an Ordo's address).
    pub async fn open(base_url: &str) -> Browser {
        Browser::launch(base_url, Vec::new()).await
    }

    /// Like [`Browser::open`], with one camera that plays `video` (a `.y4m` or `.mjpeg`
    /// file, see [`write_y4m`]) and pages allowed to use it without asking.
    pub async fn open_with_camera(base_url: &str, video: &Path) -> Browser {
        assert!(
            video.is_file(),
            "the fake camera's video is missing at {}",
            video.display()
        );
        Browser::launch(
            base_url,
            vec![
                "--use-fake-device-for-media-stream".into(),
                "--use-fake-ui-for-media-stream".into(),
                format!("--use-file-for-fake-video-capture={}", video.display()),
            ],
        )
        .await
    }

    async fn launch(base_url: &str, extra_args: Vec<String>) -> Browser {
        for (what, path) in [("chromium", chromium()), ("chromedriver", chromedriver())] {
            assert!(
                std::path::Path::new(&path).exists(),
                "{what} is missing at {path}: run the tests with scripts/test.sh, which installs it"
            );
        }
        let port = crate::process::free_port().expect("a free port");
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("ordo-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile directory");
        let url = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--lang=zh-CN",
        ]
        .map(String::from)
        .into();
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra_args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium(), "args": args }),
        );
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if started.elapsed() < WAIT => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("chromium starts under chromedriver: {err}"),
            }
        };
        Browser {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            driver,
            profile,
        }
    }

    /// Opens the admin console on `base_url` and logs in as the seeded admin.
    pub async fn admin_console(base_url: &str) -> Browser {
        let browser = Browser::open(base_url).await;
        browser.log_in_to_admin_console().await;
        browser
    }

    /// Opens the admin console's home and logs in as the seeded admin.
    pub async fn log_in_to_admin_console(&self) {
        self.goto("/admin#/").await;
        self.fill("#login-email", crate::ADMIN_EMAIL).await;
        self.fill("#login-password", crate::ADMIN_PASSWORD).await;
        self.click("#login-submit").await;
        self.wait_text("#who", crate::ADMIN_EMAIL).await;
    }

    /// Opens `path` (with its `#/...` view) on the Ordo.
    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client.goto(&url).await.expect("page opens");
    }

    /// Changes only the `#/...` view, as a link inside the page does.
    pub async fn view(&self, hash: &str) {
        self.client
            .execute(
                "location.hash = arguments[0]; return true;",
                vec![json!(hash)],
            )
            .await
            .expect("hash set");
    }

    /// The element `css`, once it is there and shown.
    pub async fn find(&self, css: &str) -> Element {
        self.find_located(Locator::Css(css), css).await
    }

    /// The element `locator` finds (named `what` in a failure), once it is there and shown.
    async fn find_located(&self, locator: Locator<'_>, what: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(locator).await {
                if element.is_displayed().await.unwrap_or(false) {
                    return element;
                }
            }
            if started.elapsed() > WAIT {
                let body = self.body_text().await;
                panic!("no element {what} on the page after {WAIT:?}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Whether `css` is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The text of the whole page.
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Clicks `css` (once it is there). When the page re-renders it between finding and
    /// clicking (a stale element), the new one is found and clicked, as a person would.
    pub async fn click(&self, css: &str) {
        self.click_located(Locator::Css(css), css).await;
    }

    /// Clicks the link that says exactly `words` (once it is there), as a person picks a
    /// link by what it says.
    pub async fn click_link(&self, words: &str) {
        self.click_located(Locator::LinkText(words), &format!("link {words:?}"))
            .await;
    }

    async fn click_located(&self, locator: Locator<'_>, what: &str) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let element = self.find_located(locator, what).await;
            match element.click().await {
                Ok(()) => return,
                Err(err) if attempts < 20 && err.to_string().contains("stale element") => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(err) => panic!("click {what}: {err}"),
            }
        }
    }

    /// Types `text` into `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("field cleared");
        element.send_keys(text).await.expect("typed");
    }

    /// The text of `css`, once it contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                let text = element.text().await.unwrap_or_default();
                if text.contains(needle) {
                    return text;
                }
            }
            if started.elapsed() > WAIT {
                let body = self.body_text().await;
                panic!("{css} never said {needle:?} in {WAIT:?}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Runs a script in the page and answers its value.
    pub async fn script(&self, source: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(source, args)
            .await
            .expect("script runs")
    }

    /// Sets the window to `(width, height)`.
    pub async fn size(&self, (width, height): (u32, u32)) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window resized");
    }

    /// Saves a screenshot as `<target>/web-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot taken");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot saved");
    }

    /// Runs axe-core on the page at desktop and phone width, saving a screenshot of each,
    /// and panics on any serious or critical violation (naming the rules and elements).
    pub async fn check_accessibility(&self, name: &str) {
        for (width_name, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.size(size).await;
            let loaded = self
                .script("return typeof window.axe === 'object';", vec![])
                .await;
            if loaded != json!(true) {
                let source = axe_source();
                self.client
                    .execute(&format!("{source}\n;return true;"), vec![])
                    .await
                    .expect("axe-core injected");
            }
            let answer = self
                .client
                .execute_async(
                    r#"const done = arguments[arguments.length - 1];
                    axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
                        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                        .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary) }))))
                      .catch((e) => done([{ id: 'axe-error', help: String(e) }]));"#,
                    vec![],
                )
                .await
                .expect("axe runs");
            self.screenshot(&format!("{name}-{width_name}")).await;
            let violations = answer.as_array().cloned().unwrap_or_default();
            assert!(
                violations.is_empty(),
                "{name} at {width_name} width has serious or critical accessibility violations: {}",
                serde_json::to_string_pretty(&violations).unwrap_or_default()
            );
        }
        self.size(DESKTOP).await;
    }

    /// Ends the session and its processes.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.kill_all();
    }

    fn kill_all(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_all();
    }
}
