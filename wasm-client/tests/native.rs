//! The client core against a real relay process (no mock): two users with two devices each,
//! TOTP for one, friends by ms_id, text both ways and to each user's own other devices, an
//! offline backlog, messages composed while the relay is down, a relay restart (SIGKILL), a
//! reload from the store, key-change detection; then a scan of the relay's files for the
//! plaintexts, and of the clients' stores for anything readable.
#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Device, PASSWORD, Relay, contains, now, totp};
use wasm_client::api::{Reauth, SecondFactor};
use wasm_client::{Conversation, ErrorCode, Event, LoginOutcome, MessageStatus};

#[tokio::test(flavor = "current_thread")]
async fn two_users_two_devices_each_through_a_real_relay() {
    let mut relay = Relay::start("e2e");
    let mut plaintexts: Vec<String> = Vec::new();

    // --- accounts ---
    let mut a1 = Device::new(&relay).await;
    let created = a1
        .client
        .register("ada@example.org", PASSWORD, "ada.l", "Ada")
        .await
        .unwrap();
    let ada = created.user_id;
    let mut b1 = Device::new(&relay).await;
    let bob = b1
        .client
        .register("bob@example.org", PASSWORD, "bob", "Bob")
        .await
        .unwrap()
        .user_id;
    // The relay's password rules arrive as typed errors.
    let weak = a1
        .client
        .register("eve@example.org", "password", "eve", "Eve")
        .await
        .unwrap_err();
    assert!(
        matches!(
            weak.code(),
            ErrorCode::WeakPassword | ErrorCode::PasswordLength
        ),
        "{weak:?}"
    );
    let wrong = a1
        .client
        .login("ada@example.org", "not the password at all")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::InvalidCredentials);

    // --- Ada turns TOTP on from her first device ---
    a1.sign_in("ada@example.org", "ada laptop").await;
    let setup = a1
        .client
        .totp_setup(&Reauth {
            password: PASSWORD.into(),
            method: None,
            code: None,
        })
        .await
        .unwrap();
    let recovery = a1
        .client
        .totp_activate(&totp(&setup.secret, now()))
        .await
        .unwrap();
    assert_eq!(recovery.map(|r| r.len()), Some(10));

    // Her second device must answer the challenge: the code of the next step (the relay
    // accepts one step of skew, and refuses the step the activation used).
    let mut a2 = Device::new(&relay).await;
    let outcome = a2.client.login("ada@example.org", PASSWORD).await.unwrap();
    let LoginOutcome::SecondFactorRequired {
        challenge, methods, ..
    } = outcome
    else {
        panic!("expected a second-factor challenge, got {outcome:?}");
    };
    assert!(methods.contains(&SecondFactor::Totp));
    let bad = a2
        .client
        .complete_second_factor(&challenge, SecondFactor::Totp, "000000")
        .await;
    // (000000 could be the right code one time in a million; then the next step proves it.)
    if let Err(e) = bad {
        assert_eq!(e.code(), ErrorCode::InvalidCode);
    }
    if !a2.client.is_signed_in() {
        a2.client
            .complete_second_factor(
                &challenge,
                SecondFactor::Totp,
                &totp(&setup.secret, now() + 30),
            )
            .await
            .unwrap();
    }
    a2.client.ensure_device("ada phone").await.unwrap();

    b1.sign_in("bob@example.org", "bob desktop").await;
    let mut b2 = Device::new(&relay).await;
    b2.sign_in("bob@example.org", "bob phone").await;

    // --- friends by ms_id ---
    let availability = a1.client.check_ms_id("BOB").await.unwrap();
    assert!(!availability.available);
    assert!(
        a1.client
            .check_ms_id("nobody.here")
            .await
            .unwrap()
            .available
    );
    b1.client
        .send_friend_request("ADA.L", Some("hi, it's Bob"))
        .await
        .unwrap();
    let requests = a1.client.friend_requests().await.unwrap();
    let [request] = requests.incoming.as_slice() else {
        panic!("{requests:?}");
    };
    assert_eq!(request.user_id, bob);
    a1.client.accept_friend_request(request.id).await.unwrap();
    let friends = b1.client.friends().await.unwrap();
    assert_eq!(friends.len(), 1);
    assert_eq!(friends[0].user_id, ada);

    for d in [&mut a1, &mut a2, &mut b1, &mut b2] {
        d.connect().await;
        d.synced().await;
    }

    // --- text both ways, to every device of the friend and to one's own other devices ---
    let hello = "hello Bob, the first secret 7f3a";
    plaintexts.push(hello.into());
    let sent = a1.send(bob, hello).await;
    assert_eq!(sent.status, MessageStatus::Pending);
    a1.until(
        "sent",
        |e| matches!(e, Event::Status { id, status: MessageStatus::Sent, .. } if *id == sent.id),
    )
    .await;
    for d in [&mut b1, &mut b2] {
        let m = d.receives(hello).await;
        assert_eq!(
            (m.from_user, m.conversation, m.outgoing),
            (ada, Conversation::User(ada), false)
        );
        assert_eq!(m.id, sent.id);
    }
    let synced = a2.receives(hello).await;
    assert_eq!(
        (synced.outgoing, synced.conversation, synced.status),
        (true, Conversation::User(bob), MessageStatus::Sent)
    );
    a1.until("delivered", |e| {
        matches!(e, Event::Status { id, status: MessageStatus::Delivered, .. } if *id == sent.id)
    })
    .await;

    let reply = "hi Ada, reply secret 91bc";
    plaintexts.push(reply.into());
    b2.send(ada, reply).await;
    for d in [&mut a1, &mut a2] {
        let m = d.receives(reply).await;
        assert_eq!(
            (m.from_user, m.conversation),
            (bob, Conversation::User(bob))
        );
    }
    b1.receives(reply).await;

    // --- offline backlog: Ada's phone is away while Bob writes three messages ---
    a2.client.disconnect();
    a2.socket = None;
    let backlog: Vec<String> = (0..3)
        .map(|i| format!("backlog secret number {i}"))
        .collect();
    for text in &backlog {
        plaintexts.push(text.clone());
        let m = b1.send(ada, text).await;
        b1.until(
            "sent",
            |e| matches!(e, Event::Status { id, status: MessageStatus::Sent, .. } if *id == m.id),
        )
        .await;
    }
    a2.connect().await;
    for text in &backlog {
        a2.receives(text).await;
    }
    let history = a2
        .client
        .history(Conversation::User(bob), 50, None)
        .await
        .unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, [hello, reply, &backlog[0], &backlog[1], &backlog[2]]);

    // --- the relay dies; Ada writes while it is down; it restarts; her app reloads ---
    relay.stop();
    let offline = "written while the relay was down 5e21";
    plaintexts.push(offline.into());
    let pending = a1.send(bob, offline).await;
    assert_eq!(pending.status, MessageStatus::Pending);
    relay.restart();
    let mut a1 = a1.reload(&relay).await;
    let stored = a1
        .client
        .history(Conversation::User(bob), 50, None)
        .await
        .unwrap();
    assert_eq!(stored.last().map(|m| m.text.as_str()), Some(offline));
    let mut b1 = b1.reload(&relay).await;
    let mut b2 = b2.reload(&relay).await;
    let mut a2 = a2.reload(&relay).await;
    for d in [&mut a1, &mut a2, &mut b1, &mut b2] {
        d.connect().await;
    }
    a1.until(
        "sent after restart",
        |e| matches!(e, Event::Status { id, status: MessageStatus::Sent, .. } if *id == pending.id),
    )
    .await;
    b1.receives(offline).await;
    b2.receives(offline).await;
    a2.receives(offline).await;
    // Nothing came twice: each device holds each message once.
    let history = b2
        .client
        .history(Conversation::User(ada), 50, None)
        .await
        .unwrap();
    assert_eq!(history.len(), 6, "{history:#?}");

    // --- safety numbers: the same digits on both sides ---
    let b1_id = b1.client.device_id().unwrap();
    let a1_id = a1.client.device_id().unwrap();
    let on_ada = a1.client.safety_number(bob, b1_id).await.unwrap();
    let on_bob = b1.client.safety_number(ada, a1_id).await.unwrap();
    assert_eq!(on_ada.digits(), on_bob.digits());
    assert_eq!(on_ada.digits().len(), 60);
    assert!(on_bob.compare_qr(&on_ada.qr_payload()).unwrap());

    // --- key change: Ada verified Bob; Bob adds a device; Ada is told and its messages are
    // flagged until she accepts ---
    a1.client.mark_verified(bob, true).await.unwrap();
    let mut b3 = Device::new(&relay).await;
    b3.sign_in("bob@example.org", "bob tablet").await;
    let b3_id = b3.client.device_id().unwrap();
    b3.connect().await;
    b3.synced().await;
    // Ada's next connection sees the new device list.
    a1.client.disconnect();
    a1.connect().await;
    let news = "after the new device 0c44";
    plaintexts.push(news.into());
    a1.send(bob, news).await;
    let changed = a1
        .until("key change", |e| matches!(e, Event::KeyChanged { .. }))
        .await;
    assert_eq!(
        changed,
        Event::KeyChanged {
            user_id: bob,
            device_id: b3_id,
            was_verified: true
        }
    );
    b3.receives(news).await;
    let from_tablet = "from the new tablet 77aa";
    plaintexts.push(from_tablet.into());
    b3.send(ada, from_tablet).await;
    let flagged = a1.receives(from_tablet).await;
    assert!(flagged.unverified_key);
    let older = a1
        .client
        .history(Conversation::User(bob), 50, None)
        .await
        .unwrap();
    assert!(
        older
            .iter()
            .filter(|m| m.text != from_tablet)
            .all(|m| !m.unverified_key)
    );
    a1.client.accept_identity(bob).await.unwrap();
    let after = "accepted now 3d9e";
    plaintexts.push(after.into());
    b3.send(ada, after).await;
    assert!(!a1.receives(after).await.unverified_key);

    // --- nothing readable at rest ---
    let at_rest = relay.bytes_at_rest();
    assert!(at_rest.len() > 10_000, "the scan found the database");
    for p in &plaintexts {
        assert!(
            !contains(&at_rest, p.as_bytes()),
            "relay holds plaintext {p:?}"
        );
    }
    for d in [&a1, &a2, &b1, &b2, &b3] {
        let snapshot = d.raw.snapshot();
        let mut all = Vec::new();
        for (k, v) in &snapshot {
            all.extend_from_slice(k.as_bytes());
            all.extend_from_slice(v);
        }
        for p in plaintexts.iter().map(String::as_str).chain([
            "ada.l",
            "bob@example.org",
            "example.org",
            "sessions:",
            "conv:",
        ]) {
            assert!(!contains(&all, p.as_bytes()), "a client store holds {p:?}");
        }
    }
}
