//! Issue 9 item 2 against a real Apache Tomcat 10.1 (Debian `libtomcat10-java`, started from
//! its jars in a temporary CATALINA_BASE): Tomcat serves `/admin;x/secret`, `/;x/admin/secret`
//! and `/admin;jsessionid=…/secret` as `/admin/secret`; through the gateway, a user without
//! `ADMIN` gets 403 for every one of them and never the file. A missing Java or Tomcat skips the
//! test with a message, unless `AISGATE_REQUIRE_PEERS` is set (`tools/test`), where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aisgate::sim::stack::StackOptions;
use support::Gateway;

const SECRET: &str = "SECRET-ADMIN-FILE";

struct Tomcat {
    child: Child,
    base: PathBuf,
    url: String,
}

impl Drop for Tomcat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// Debian's Tomcat jars (unversioned names), if installed.
fn tomcat_classpath() -> Option<String> {
    let jars: Vec<String> = std::fs::read_dir("/usr/share/java")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Unversioned names only (`tomcat10-catalina.jar`, not `tomcat10-catalina-10.1.60.jar`).
            name.strip_prefix("tomcat10-").is_some_and(|rest| rest.ends_with(".jar") && !rest.contains("10."))
        })
        .map(|p| p.display().to_string())
        .collect();
    jars.iter().any(|j| j.ends_with("tomcat10-catalina.jar")).then(|| jars.join(":"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

async fn start_tomcat() -> Option<Tomcat> {
    let java_ok = Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success());
    let Some(classpath) = tomcat_classpath().filter(|_| java_ok) else {
        let install = "apt-get install default-jre-headless libtomcat10-java";
        assert!(std::env::var_os("AISGATE_REQUIRE_PEERS").is_none(), "Tomcat is required ({install})");
        eprintln!("skipping: Java or Tomcat not found ({install})");
        return None;
    };
    let base = tempfile::tempdir().unwrap().keep();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    write(
        &base.join("conf/server.xml"),
        &format!(
            r#"<Server port="-1" shutdown="SHUTDOWN"><Service name="Catalina">
  <Connector port="{port}" address="127.0.0.1" protocol="HTTP/1.1"/>
  <Engine name="Catalina" defaultHost="localhost">
    <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
  </Engine></Service></Server>"#
        ),
    );
    write(
        &base.join("conf/web.xml"),
        r#"<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0">
  <servlet><servlet-name>default</servlet-name><servlet-class>org.apache.catalina.servlets.DefaultServlet</servlet-class></servlet>
  <servlet-mapping><servlet-name>default</servlet-name><url-pattern>/</url-pattern></servlet-mapping>
</web-app>"#,
    );
    write(&base.join("webapps/ROOT/admin/secret"), SECRET);
    write(&base.join("webapps/ROOT/public/page"), "PUBLIC-PAGE");
    for dir in ["logs", "temp", "work"] {
        std::fs::create_dir_all(base.join(dir)).unwrap();
    }
    let child = Command::new("java")
        .arg("-cp")
        .arg(&classpath)
        .arg(format!("-Dcatalina.home={}", base.display()))
        .arg(format!("-Dcatalina.base={}", base.display()))
        .args(["org.apache.catalina.startup.Bootstrap", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tomcat = Tomcat { child, base, url: format!("http://127.0.0.1:{port}") };
    // Bounded wait for the connector (JVM start-up), polling its answer.
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(resp) = client.get(format!("{}/public/page", tomcat.url)).send().await {
            if resp.status() == 200 {
                return Some(tomcat);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Tomcat did not start within 30 s");
}

#[tokio::test]
async fn tomcat_path_parameters_do_not_get_round_an_admin_rule() {
    let Some(tomcat) = start_tomcat().await else { return };
    let variants = ["/admin/secret", "/admin;x/secret", "/;x/admin/secret", "/admin;jsessionid=ABC/secret"];
    // The upstream really reads these as its /admin/secret file.
    for path in variants {
        let direct = reqwest::get(format!("{}{path}", tomcat.url)).await.unwrap();
        assert_eq!(direct.text().await.unwrap(), SECRET, "Tomcat serves {path} as /admin/secret");
    }
    let apps = format!(
        "[[app]]\nname = \"tomcat\"\nupstream = \"{}\"\nproviders = [\"jip\"]\npublic_paths = [\"/public\"]\n\
         [[app.rule]]\npath_prefix = \"/admin\"\nany_role = [\"ADMIN\"]\n",
        tomcat.url
    );
    let gw = Gateway::start(StackOptions { apps: Some(apps), ..Default::default() }).await;
    let (cookie, _) = gw.login_to("/", 0).await;
    for path in variants {
        let resp = gw.client.get(gw.url(path)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        assert!(!resp.text().await.unwrap().contains(SECRET), "{path}");
    }
    let public = gw.client.get(gw.url("/public/page")).send().await.unwrap();
    assert_eq!(public.text().await.unwrap(), "PUBLIC-PAGE");
    // `/public;x/…` is Tomcat's /public too, but not public for a literal upstream: login needed.
    assert_eq!(gw.client.get(gw.url("/public;x/page")).send().await.unwrap().status(), 401);
}
