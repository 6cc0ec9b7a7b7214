//! A member that requires TLS client certificates: the collector reaches it with the
//! configured CA and client certificate, and reports a TLS failure without them.

use std::time::Duration;

use serde_json::json;
use tapio_plugin_api::HealthStatus;
use tapio_plugin_etcd::EtcdCollector;
use tapio_plugin_testkit::{Harness, Value};

use crate::peer::{Member, MemberSpec};
use crate::scenarios::{fast_config, has, of_type};
use crate::{can_run, certs, serial};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn client_certificate_auth() {
    if !can_run("client_certificate_auth") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let pki = certs::make(dir.path());
    let member = Member::spawn(MemberSpec::single(dir.path(), Some(pki.server.clone())));
    member.wait_healthy(Some(&pki.client), WAIT);
    let url = member.spec.client_url();
    assert!(url.starts_with("https://"));
    let path = |p: &std::path::Path| p.display().to_string();

    // With the CA and a client certificate: healthy, with real metrics.
    let config = fast_config(
        &url,
        json!({
            "ca_file": path(&pki.client.ca),
            "cert_file": path(&pki.client.cert),
            "key_file": path(&pki.client.key),
        }),
    );
    let mut h = Harness::<EtcdCollector>::create(&config).unwrap();
    h.start().unwrap();
    let events = h.wait_until(WAIT, |e| has(e, "etcd.endpoint.status"));
    let status = of_type(&events, "etcd.endpoint.status")[0];
    assert_eq!(status.attr("etcd.healthy"), Some(&Value::Bool(true)));
    assert!(status.int("etcd.db.size_bytes").is_some_and(|n| n > 0));
    assert_eq!(h.health().status, HealthStatus::Healthy);
    h.stop().unwrap();

    // Without a client certificate, or trusting another CA: a TLS error, never data.
    let cases = [
        (
            "no client certificate",
            json!({"ca_file": path(&pki.client.ca)}),
        ),
        (
            "unknown server CA",
            json!({
                "ca_file": path(&pki.other_ca),
                "cert_file": path(&pki.client.cert),
                "key_file": path(&pki.client.key),
            }),
        ),
    ];
    for (case, extra) in cases {
        let mut h = Harness::<EtcdCollector>::create(&fast_config(&url, extra)).unwrap();
        h.start().unwrap();
        let events = h.wait_until(WAIT, |e| has(e, "etcd.endpoint.unreachable"));
        let health = h.health();
        h.stop().unwrap();
        let down = of_type(&events, "etcd.endpoint.unreachable");
        assert_eq!(down.len(), 1, "{case}: {events:?}");
        assert_eq!(down[0].str("error.type"), Some("tls"), "{case}: {down:?}");
        assert!(!has(&events, "etcd.endpoint.status"), "{case}: {events:?}");
        assert_eq!(health.status, HealthStatus::Degraded, "{case}");
        assert!(
            health.reason.contains("tls handshake"),
            "{case}: {health:?}"
        );
    }
}
