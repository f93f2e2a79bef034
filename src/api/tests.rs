use http::{HeaderMap, HeaderValue};

use super::config::{AuthMethod, AuthSetting};
use super::*;
use crate::http::canonical_path::CanonicalPath;

fn app_config(extra: &str) -> AppConfig {
    toml::from_str(&format!(
        "name = \"svc\"\nupstream = \"http://127.0.0.1:1/\"\nproviders = [\"p\"]\npath_prefix = \"/\"\n{extra}"
    ))
    .unwrap()
}

/// An ApiApp without validators (routing, metadata and header parsing only).
fn api(extra: &str) -> ApiApp {
    let cfg = app_config(extra);
    let default = Route::of(&cfg.auth.methods(), cfg.soap);
    let mut paths: Vec<(String, Option<Route>)> =
        cfg.api.iter().map(|p| (p.path_prefix.clone(), Route::of(&p.auth.methods(), p.soap.or(cfg.soap)))).collect();
    paths.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    ApiApp {
        default,
        paths,
        path_case: cfg.path_case,
        keep_authorization: cfg.keep_authorization,
        metadata_queries: cfg.metadata_queries.iter().map(|q| q.to_ascii_lowercase()).collect(),
        bearer: None,
        saml: None,
        realm: cfg.name,
    }
}

fn forms(p: &str) -> PathForms<'static> {
    PathForms::new(Box::leak(Box::new(CanonicalPath::parse(p).unwrap())))
}

#[test]
fn auth_setting_takes_one_method_or_a_list() {
    assert_eq!(app_config("").auth.methods(), [AuthMethod::Session]);
    assert_eq!(app_config("auth = \"saml-header\"").auth.methods(), [AuthMethod::SamlHeader]);
    let both = app_config("auth = [\"bearer\", \"saml-header\", \"bearer\"]").auth;
    assert_eq!(both.methods(), [AuthMethod::Bearer, AuthMethod::SamlHeader]);
    assert!(toml::from_str::<AppConfig>("name = \"a\"\nupstream = \"http://x/\"\nproviders = []\nauth = \"basic\"")
        .is_err());
    assert_eq!(AuthSetting::default(), AuthSetting::One(AuthMethod::Session));
}

#[test]
fn routes_follow_the_longest_api_prefix() {
    let a = api("[[api]]\npath_prefix = \"/svc/\"\nauth = \"bearer\"\nsoap = true\n\
         [[api]]\npath_prefix = \"/svc/public-page/\"\nauth = \"session\"");
    assert_eq!(a.route(&forms("/page")), None);
    let svc = a.route(&forms("/svc/Service.svc")).unwrap();
    assert!(svc.bearer && !svc.saml);
    assert_eq!(svc.soap, Some(true));
    assert_eq!(a.route(&forms("/svc/public-page/x")), None);
    // Routing reading: a `;param` does not move a path out of the API prefix.
    assert!(a.route(&forms("/svc;x/Service.svc")).is_some());
    let whole = api("auth = [\"bearer\", \"saml-header\"]");
    assert_eq!(whole.route(&forms("/anything")), Some(Route { bearer: true, saml: true, soap: None }));
}

#[test]
fn metadata_queries_match_exact_keys_on_get_and_head() {
    let a = api("auth = \"bearer\"");
    let yes = |m: Method, q: &str| a.is_metadata_request(&m, Some(q));
    assert!(yes(Method::GET, "wsdl"));
    assert!(yes(Method::GET, "singleWsdl"));
    assert!(yes(Method::HEAD, "xsd=xsd0"));
    assert!(yes(Method::GET, "WSDL"));
    assert!(yes(Method::GET, "xsd=xsd0&wsdl"));
    assert!(!yes(Method::GET, "wsdlx"));
    assert!(!yes(Method::GET, "a=wsdl"));
    assert!(!yes(Method::GET, "wsdl&op=delete"));
    assert!(!yes(Method::POST, "wsdl"));
    assert!(!a.is_metadata_request(&Method::GET, None));
    assert!(!a.is_metadata_request(&Method::GET, Some("")));
    let off = api("auth = \"bearer\"\nmetadata_queries = []");
    assert!(!off.is_metadata_request(&Method::GET, Some("wsdl")));
}

#[test]
fn soap_version_per_route() {
    let mut h = HeaderMap::new();
    let forced = Route { bearer: true, saml: false, soap: Some(true) };
    let detected = Route { soap: None, ..forced };
    let never = Route { soap: Some(false), ..forced };
    assert_eq!(forced.soap_version(&h), Some(SoapVersion::V11));
    assert_eq!(detected.soap_version(&h), None);
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/soap+xml"));
    assert_eq!(forced.soap_version(&h), Some(SoapVersion::V12));
    assert_eq!(detected.soap_version(&h), Some(SoapVersion::V12));
    assert_eq!(never.soap_version(&h), None);
}

#[tokio::test]
async fn authorization_header_is_parsed_strictly() {
    let a = api("auth = \"bearer\"");
    let route = a.route(&forms("/x")).unwrap();
    let mut h = HeaderMap::new();
    assert_eq!(a.authenticate(&route, &h).await.unwrap_err(), ApiFailure::Missing);
    h.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwdw=="));
    assert_eq!(a.authenticate(&route, &h).await.unwrap_err(), ApiFailure::Missing);
    // A scheme the route does not accept is no credential for it.
    h.insert(AUTHORIZATION, HeaderValue::from_static("SAML PHNhbWw+"));
    assert_eq!(a.authenticate(&route, &h).await.unwrap_err(), ApiFailure::Missing);
    h.append(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
    let two = a.authenticate(&route, &h).await.unwrap_err();
    assert_eq!(two, ApiFailure::Malformed("more than one Authorization header"));
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn failure_status_and_labels_keep_refusals_and_outages_apart() {
    let refused =
        ApiFailure::Refused { scheme: AuthMethod::Bearer, reason: "access_token_refused", detail: String::new() };
    let down = ApiFailure::Unavailable {
        scheme: AuthMethod::Bearer,
        reason: "unreachable",
        detail: String::new(),
        busy: false,
    };
    assert_eq!((refused.status(), refused.result()), (StatusCode::UNAUTHORIZED, "refused"));
    assert_eq!((down.status(), down.result()), (StatusCode::SERVICE_UNAVAILABLE, "error"));
    assert_eq!(ApiFailure::Missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ApiFailure::Missing.reason(), "missing_credential");
    // Provider errors keep their side: the IdP refusing the token is 401, the IdP down 503.
    let e = crate::provider::ProviderError::new(crate::provider::oidc::Failure::AccessTokenRefused);
    assert_eq!(ApiFailure::from_provider(AuthMethod::Bearer, &e).status(), StatusCode::UNAUTHORIZED);
    let e = crate::provider::ProviderError::new(crate::provider::CommonReason::Unreachable);
    assert_eq!(ApiFailure::from_provider(AuthMethod::Bearer, &e).status(), StatusCode::SERVICE_UNAVAILABLE);
    let e = crate::provider::ProviderError::new(crate::provider::oidc::Failure::TokenSignature(
        crate::provider::oidc::TokenKind::Profile,
    ));
    assert_eq!(ApiFailure::from_provider(AuthMethod::Bearer, &e).status(), StatusCode::SERVICE_UNAVAILABLE);
    let e = crate::provider::ProviderError::new(crate::provider::CommonReason::Busy);
    assert!(matches!(
        ApiFailure::from_provider(AuthMethod::SamlHeader, &e),
        ApiFailure::Unavailable { busy: true, .. }
    ));
}

#[test]
fn config_check_names_inconsistent_api_settings() {
    let check = |extra: &str| super::config::check(&app_config(extra), &[]);
    assert!(check("").is_empty());
    assert!(check("auth = [\"session\", \"bearer\"]").iter().any(|p| p.contains("cannot mix")));
    assert!(check("auth = \"bearer\"").iter().any(|p| p.contains("no [app.bearer]")));
    assert!(check("[bearer]\nprovider = \"p\"").iter().any(|p| p.contains("no auth includes \"bearer\"")));
    assert!(check("auth = \"bearer\"\n[bearer]\nprovider = \"p\"").iter().any(|p| p.contains("is not defined")));
    assert!(check("auth = \"saml-header\"\n[saml_header]\nprovider = \"p\"\ncaller = []")
        .iter()
        .any(|p| p.contains("at least one")));
    assert!(check("auth = []").iter().any(|p| p.contains("no method")));
    let outside = api_outside();
    assert!(outside.iter().any(|p| p.contains("outside the app's path_prefix")), "{outside:?}");
}

fn api_outside() -> Vec<String> {
    let cfg: AppConfig = toml::from_str(
        "name = \"svc\"\nupstream = \"http://127.0.0.1:1/\"\nproviders = [\"p\"]\npath_prefix = \"/app/\"\n\
         [[api]]\npath_prefix = \"/other/\"\nauth = \"bearer\"\n[bearer]\nprovider = \"p\"",
    )
    .unwrap();
    super::config::check(&cfg, &[])
}
