//! The OpenAPI document matches the running relay: every operation it lists exists, the ones
//! that declare the session security schemes refuse anonymous calls with `unauthorized`, and
//! the ones that do not declare them never answer `unauthorized`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Backend, TestRelay};
use serde_json::Value;

#[actix_web::test]
async fn security_schemes_match_the_handlers() {
    let relay = TestRelay::start(Backend::Sqlite).await.unwrap();
    let client = relay.client();
    let doc: Value = client
        .get(relay.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session_token"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "securechat_session");

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "only {} paths documented", paths.len());
    let mut secured = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = client.request(m.clone(), relay.url(&concrete));
            if m != reqwest::Method::GET {
                req = req.header("content-type", "application/json").body("{}");
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let declares = op["security"].as_array().is_some_and(|s| {
                s.iter().any(|r| r.get("session_token").is_some())
                    && s.iter().any(|r| r.get("session_cookie").is_some())
            });
            assert_ne!(
                status, 404,
                "{method} {path} is documented but not routed: {body}"
            );
            if declares {
                secured += 1;
                assert_eq!(
                    (status, body["error"].as_str()),
                    (401, Some("unauthorized")),
                    "{method} {path} declares session auth but answered anonymously: {body}"
                );
            } else {
                assert_ne!(
                    body["error"].as_str(),
                    Some("unauthorized"),
                    "{method} {path} needs a session but its OpenAPI entry has no security"
                );
            }
        }
    }
    assert!(
        secured >= 7,
        "only {secured} operations declare session auth"
    );

    // Every error code the relay can send is in the schema, so clients can switch on it.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for code in relay_server::api::error::ErrorCode::ALL {
        let name = serde_json::to_value(code).unwrap();
        assert!(
            codes.iter().any(|c| c == name.as_str().unwrap()),
            "{name} missing from the ErrorCode schema"
        );
    }

    // docs/api.md documents every operation and every error code (it is written for client
    // authors; this keeps it from drifting).
    let api_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let entry = format!("`{} {path}`", method.to_uppercase());
            assert!(api_md.contains(&entry), "docs/api.md lacks {entry}");
        }
    }
    for code in &codes {
        assert!(
            api_md.contains(&format!("| `{code}` |")),
            "docs/api.md lacks error code {code}"
        );
    }
    relay.stop().await;
}
