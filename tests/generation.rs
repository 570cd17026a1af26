//! One request, one generation: a config reload while a request is at the upstream does not
//! change what that request finishes with, and the next request sees the new config.

mod common;

use common::server::{read_request_head, Loopback};
use common::{client, start_gate, GateSpec};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

const BEFORE: &str = "Bel de servicedesk: generatie een";
const AFTER: &str = "Bel de servicedesk: generatie twee";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_request_does_not_reach_the_request_in_flight() {
    // The upstream takes the request, says so, waits until it is released, then closes the
    // connection without an answer: the gate must answer with its own upstream-failure page.
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release_rx)));
    let upstream = Loopback::start(move |mut stream| {
        let arrived = arrived_tx.clone();
        let release = release.lock().unwrap().take();
        async move {
            read_request_head(&mut stream).await;
            let _ = arrived.send(());
            if let Some(release) = release {
                let _ = release.await;
            }
            drop(stream);
        }
    })
    .await;
    let gate = start_gate(GateSpec {
        upstreams: vec![upstream.addr()],
        extra: format!("\n[block_page]\nsupport_contact = \"{BEFORE}\"\n"),
        ..GateSpec::default()
    })
    .await;

    let url = gate.url("/exam");
    let in_flight = tokio::spawn(async move {
        client()
            .get(url)
            .header("x-forwarded-for", "192.0.2.1")
            .header("accept", "text/html")
            .send()
            .await
            .expect("response")
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("the request reached the upstream in time");

    // The config changes while the request is at the upstream.
    let path = gate.gate.runtime().config.path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(BEFORE, AFTER)).unwrap();
    let report = poortwachter::lifecycle::reload_config(&gate.gate, "test");
    assert_eq!(report["result"], "ok", "{report}");
    let now_in_force = gate.gate.runtime();
    assert!(format!("{:?}", now_in_force.config.block_page).contains(AFTER));

    release_tx.send(()).unwrap();
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains(BEFORE) && !body.contains(AFTER),
        "the request finished on another generation than it started with:\n{body}"
    );

    // A request that starts now is answered from the new config.
    let resp = client()
        .get(gate.url("/exam"))
        .header("x-forwarded-for", "198.51.100.200")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body = resp.text().await.unwrap();
    assert!(body.contains(AFTER) && !body.contains(BEFORE), "{body}");
}
