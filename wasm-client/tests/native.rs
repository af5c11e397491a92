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

use common::{Device, PASSWORD, Relay, contains, now, totp, two_friends};
use crypto_core::attachment::ciphertext_len_for;
use wasm_client::api::{Reauth, SecondFactor};
use wasm_client::{Conversation, ErrorCode, Event, LoginOutcome, MessageStatus, UPLOAD_PIECE};

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

/// A room of three where two members are not friends: sender keys go over pairwise sessions
/// (fellow members may reach each other's devices), every member reads every message, a
/// second device of a member gets the keys too, and whoever left gets nothing more.
#[tokio::test(flavor = "current_thread")]
async fn a_room_of_three() {
    let relay = Relay::start("room");
    let mut ada = Device::new(&relay).await;
    let mut bob = Device::new(&relay).await;
    let mut carol = Device::new(&relay).await;
    let mut ids = Vec::new();
    for (d, name) in [(&mut ada, "ada"), (&mut bob, "bob"), (&mut carol, "carol")] {
        let created = d
            .client
            .register(&format!("{name}@example.org"), PASSWORD, name, name)
            .await
            .unwrap();
        ids.push(created.user_id);
        d.sign_in(&format!("{name}@example.org"), &format!("{name} laptop"))
            .await;
    }
    let (ada_id, bob_id, carol_id) = (ids[0], ids[1], ids[2]);
    // Ada is friends with Bob and with Carol; Bob and Carol are not friends.
    for (d, ms_id) in [(&mut bob, "ada"), (&mut carol, "ada")] {
        d.client.send_friend_request(ms_id, None).await.unwrap();
    }
    for r in ada.client.friend_requests().await.unwrap().incoming {
        ada.client.accept_friend_request(r.id).await.unwrap();
    }
    let room = ada.client.create_room(None).await.unwrap().id;
    ada.client.invite_to_room(room, "bob").await.unwrap();
    ada.client.invite_to_room(room, "carol").await.unwrap();
    bob.client.join_room(room).await.unwrap();
    // Only friends may be invited: Bob cannot invite Carol, a stranger to him.
    let refused = bob.client.invite_to_room(room, "carol").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotFound);
    carol.client.join_room(room).await.unwrap();
    let mut bob2 = Device::new(&relay).await;
    bob2.sign_in("bob@example.org", "bob phone").await;
    for d in [&mut ada, &mut bob, &mut bob2, &mut carol] {
        d.connect().await;
        d.synced().await;
    }

    let first = "room secret one a81f";
    ada.send_room(room, first).await;
    for d in [&mut bob, &mut bob2, &mut carol] {
        let m = d.receives(first).await;
        assert_eq!(
            (m.conversation, m.from_user),
            (Conversation::Room(room), ada_id)
        );
    }
    let from_bob = "bob to the room 44c2";
    bob.send_room(room, from_bob).await;
    for d in [&mut ada, &mut bob2, &mut carol] {
        let m = d.receives(from_bob).await;
        assert_eq!(
            (m.conversation, m.from_user),
            (Conversation::Room(room), bob_id)
        );
    }
    let from_carol = "carol answers 0b9e";
    carol.send_room(room, from_carol).await;
    for d in [&mut ada, &mut bob, &mut bob2] {
        assert_eq!(d.receives(from_carol).await.from_user, carol_id);
    }

    // Carol leaves; Ada's next message reaches Bob's devices, not Carol.
    carol.client.leave_room(room).await.unwrap();
    let after = "after carol left 6d07";
    ada.send_room(room, after).await;
    bob.receives(after).await;
    bob2.receives(after).await;
    let from_bob_again = "bob after carol left 19fa";
    bob.send_room(room, from_bob_again).await;
    ada.receives(from_bob_again).await;
    let history = carol
        .client
        .history(Conversation::Room(room), 50, None)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .all(|m| m.text != after && m.text != from_bob_again)
    );
    let texts: Vec<String> = ada
        .client
        .history(Conversation::Room(room), 50, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, [first, from_bob, from_carol, after, from_bob_again]);

    // Roles: Ada created the room and is its admin. Bob may not remove anyone; Ada brings
    // Carol back, then removes her: Bob hears who did it, and what follows skips Carol.
    let members = bob.client.room_members(room).await.unwrap();
    let role_of = |id: i64| {
        members
            .iter()
            .find(|m| m.user_id == id)
            .map(|m| m.role.clone())
    };
    assert_eq!(role_of(ada_id).as_deref(), Some("admin"));
    assert_eq!(role_of(bob_id).as_deref(), Some("member"));
    let refused = bob
        .client
        .remove_room_member(room, ada_id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotRoomAdmin, "{refused:?}");
    ada.client.invite_to_room(room, "carol").await.unwrap();
    carol.client.join_room(room).await.unwrap();
    let back = "carol is back 7c11";
    ada.send_room(room, back).await;
    carol.receives(back).await;
    ada.client.remove_room_member(room, carol_id).await.unwrap();
    let removed = bob
        .until("carol removed", |e| {
            matches!(e, Event::RoomsChanged { change: Some(c), user_id: Some(u), .. }
                if c == "removed" && *u == carol_id)
        })
        .await;
    assert!(
        matches!(removed, Event::RoomsChanged { by: Some(by), .. } if by == ada_id),
        "{removed:?}"
    );
    let after_removal = "after carol was removed 3e5a";
    ada.send_room(room, after_removal).await;
    bob.receives(after_removal).await;
    let renamed = ada.client.rename_room(room, Some("Weekend")).await.unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Weekend"));
    assert!(
        carol
            .client
            .history(Conversation::Room(room), 50, None)
            .await
            .unwrap()
            .iter()
            .all(|m| m.text != after_removal)
    );

    let at_rest = relay.bytes_at_rest();
    for p in [
        first,
        from_bob,
        from_carol,
        after,
        from_bob_again,
        back,
        after_removal,
    ] {
        assert!(!contains(&at_rest, p.as_bytes()), "relay holds {p:?}");
    }
}

/// An attachment: encrypted on the device, uploaded, referenced in a message, downloaded and
/// checked by the friend; a tampered reference is refused; the relay's blob holds no plaintext.
/// Messages sent one after another, before the relay's `accepted` for the first is handled,
/// each go out once: a send writes its own ciphertexts, not the whole outbox again (only a
/// new connection resends what waits).
#[tokio::test(flavor = "current_thread")]
async fn each_ciphertext_is_sent_once_while_connected() {
    let relay = Relay::start("send_once");
    let (mut ada, _, mut bob, bob_id) = two_friends(&relay).await;
    let jobs_before = relay.metric("securechat_writer_jobs_total").await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three", "four"] {
        sent.push(ada.send(bob_id, text).await.id);
    }
    for text in ["one", "two", "three", "four"] {
        bob.receives(text).await;
    }
    for id in &sent {
        ada.until("accepted", |e| {
            matches!(e, Event::Status { id: i, status: MessageStatus::Sent | MessageStatus::Delivered, .. } if i == id)
        })
        .await;
    }
    // Bob's acks are writer jobs too: wait until all four went through.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while relay.metric("securechat_envelopes_acked_total").await < 4.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's acks never landed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let jobs = relay.metric("securechat_writer_jobs_total").await - jobs_before;
    // Four sends and four acks (acks may share a job): never the 1 + 2 + 3 + 4 sends of a
    // full outbox each time.
    assert!(jobs <= 8.0, "{jobs} writer jobs for four messages");
}

#[tokio::test(flavor = "current_thread")]
async fn an_attachment_to_a_friend() {
    let relay = Relay::start("attachment");
    let (mut ada, _, mut bob, bob_id) = two_friends(&relay).await;

    // 1.5 MiB (several 64 KiB chunks and a partial last one) with a marker inside.
    let marker = b"ATTACHMENT PLAINTEXT MARKER 5c1d";
    let mut data = Vec::with_capacity(1_572_900);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 1_572_900 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data[700_000..700_000 + marker.len()].copy_from_slice(marker);
    // Read in pieces, with progress reports as the ciphertext leaves.
    let mut reads = Vec::new();
    let mut calls = Vec::new();
    let reference = ada
        .client
        .attachments()
        .upload_from(
            data.len() as u64,
            "application/octet-stream",
            "notes.bin",
            |offset, len| {
                reads.push((offset, len));
                let start = usize::try_from(offset).unwrap();
                std::future::ready(Ok(zeroize::Zeroizing::new(
                    data[start..start + len].to_vec(),
                )))
            },
            &mut |sent, total| calls.push((sent, total)),
        )
        .await
        .unwrap();
    assert_eq!(reference.size, data.len() as u64);
    assert_eq!(
        reads,
        [
            (0, UPLOAD_PIECE),
            (UPLOAD_PIECE as u64, data.len() - UPLOAD_PIECE)
        ]
    );
    let total = ciphertext_len_for(data.len() as u64).unwrap();
    assert_eq!(calls.last(), Some(&(total, total)), "{calls:?}");
    assert!(
        calls.windows(2).all(|w| w[0].0 <= w[1].0) && calls.iter().all(|c| c.1 == total),
        "{calls:?}"
    );
    assert!(
        calls.iter().filter(|c| c.0 > 0 && c.0 < total).count() >= 1,
        "progress before the end: {calls:?}"
    );
    // A source that gives fewer bytes than announced is refused before anything is sent.
    let short = ada
        .client
        .attachments()
        .upload_from(
            10,
            "text/plain",
            "short.txt",
            |_, _| std::future::ready(Ok(zeroize::Zeroizing::new(vec![0u8; 3]))),
            &mut |_, _| panic!("nothing is sent"),
        )
        .await
        .unwrap_err();
    assert_eq!(short.code(), ErrorCode::InvalidArgument, "{short:?}");
    let sent = ada
        .client
        .send_attachment(Conversation::User(bob_id), reference.clone(), "the file")
        .await
        .unwrap()
        .0;
    let received = bob.receives("the file").await;
    assert_eq!(received.id, sent.id);
    let got = received.attachment.expect("an attachment reference");
    assert_eq!(got, reference);
    let plaintext = bob.client.download_attachment(&got).await.unwrap();
    assert!(
        plaintext.as_slice() == data.as_slice(),
        "the attachment round-trips"
    );

    // A reference whose digest or key was changed is refused, not decrypted.
    let mut bad_digest = got.clone();
    bad_digest.digest = reference.key.clone();
    let err = bob
        .client
        .download_attachment(&bad_digest)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AttachmentMismatch, "{err:?}");
    let mut bad_key = got.clone();
    bad_key.key = reference.digest.clone();
    assert!(bob.client.download_attachment(&bad_key).await.is_err());

    let at_rest = relay.bytes_at_rest();
    assert!(at_rest.len() > data.len(), "the scan found the blob");
    assert!(!contains(&at_rest, marker));
    assert!(!contains(&at_rest, &data[100_000..100_064]));
}

/// The account operations of the client API against the relay: e-mail verification and
/// e-mail 2FA with mailed codes, sessions and revocation, an ms_id change that keeps the
/// conversation going, a password change that re-wraps the local store, security events,
/// blocks, and account deletion.
#[tokio::test(flavor = "current_thread")]
async fn account_management() {
    use wasm_client::store::sealed::{KdfParams, SealedStore};
    let relay = Relay::start("account");
    // Ada's store is wrapped with her account password, as the web app does.
    let mut ada = Device::with_store_password(&relay, PASSWORD).await;
    let mut bob = Device::new(&relay).await;
    ada.client
        .register("ada@example.org", PASSWORD, "ada", "Ada")
        .await
        .unwrap();
    let bob_id = bob
        .client
        .register("bob@example.org", PASSWORD, "bob", "Bob")
        .await
        .unwrap()
        .user_id;
    ada.sign_in("ada@example.org", "ada laptop").await;
    bob.sign_in("bob@example.org", "bob laptop").await;
    let reauth = |password: &str| Reauth {
        password: password.into(),
        method: None,
        code: None,
    };

    // E-mail verification, then e-mail codes as a second factor.
    let before = relay.mails();
    ada.client.send_email_verification().await.unwrap();
    ada.client
        .confirm_email(&relay.new_code(&before))
        .await
        .unwrap();
    assert!(ada.client.me().await.unwrap().email_verified);
    let before = relay.mails();
    ada.client.send_email_code().await.unwrap();
    let codes = ada
        .client
        .email_2fa_enable(&reauth(PASSWORD), &relay.new_code(&before))
        .await
        .unwrap();
    let recovery = codes.expect("recovery codes come with the first second factor");
    assert_eq!(recovery.len(), 10);
    let mut ada2 = Device::new(&relay).await;
    let LoginOutcome::SecondFactorRequired {
        challenge, methods, ..
    } = ada2
        .client
        .login("ada@example.org", PASSWORD)
        .await
        .unwrap()
    else {
        panic!("e-mail 2FA is on");
    };
    assert!(methods.contains(&SecondFactor::Email));
    let before = relay.mails();
    ada2.client.send_login_email_code(&challenge).await.unwrap();
    ada2.client
        .complete_second_factor(&challenge, SecondFactor::Email, &relay.new_code(&before))
        .await
        .unwrap();
    let sessions = ada.client.sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let other = sessions.iter().find(|s| !s.current).unwrap().id;
    ada.client.revoke_session(other).await.unwrap();
    assert_eq!(
        ada2.client.me().await.unwrap_err().code(),
        ErrorCode::Unauthorized
    );

    // Friends; then Bob changes his ms_id and the conversation goes on.
    ada.client.send_friend_request("bob", None).await.unwrap();
    let request = bob.client.friend_requests().await.unwrap().incoming[0].id;
    bob.client.accept_friend_request(request).await.unwrap();
    for d in [&mut ada, &mut bob] {
        d.connect().await;
        d.synced().await;
    }
    ada.send(bob_id, "before the rename").await;
    bob.receives("before the rename").await;
    assert_eq!(
        bob.client.change_ms_id("robert").await.unwrap().ms_id,
        "robert"
    );
    ada.client.friends().await.unwrap();
    ada.send(bob_id, "after the rename").await;
    bob.receives("after the rename").await;
    bob.send(ada.client.user_id().unwrap(), "still me").await;
    ada.receives("still me").await;

    // A password change: 2FA is on, so it takes a second factor (here a recovery code: the
    // relay mails at most one code a minute); the local store is re-wrapped under the new
    // password.
    let new_password = "a different horse battery 77";
    let auth = Reauth {
        password: PASSWORD.into(),
        method: Some(SecondFactor::Recovery),
        code: Some(recovery[0].clone()),
    };
    ada.client
        .change_password(&auth, new_password, KdfParams::INSECURE_FOR_TESTS)
        .await
        .unwrap();
    assert!(SealedStore::open(ada.raw.clone(), PASSWORD).await.is_err());
    assert!(
        SealedStore::open(ada.raw.clone(), new_password)
            .await
            .is_ok()
    );
    let kinds: Vec<String> = ada
        .client
        .security_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "email_verified",
        "email_2fa_enabled",
        "recovery_code_used",
        "password_changed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }

    // Blocks.
    bob.client.block("ada").await.unwrap();
    assert_eq!(bob.client.blocks().await.unwrap()[0].ms_id, "ada");
    bob.client.unblock("ada").await.unwrap();
    assert!(bob.client.blocks().await.unwrap().is_empty());

    // Account deletion needs the password (and a code with 2FA on).
    let wrong = bob.client.delete_account(&reauth("not my password")).await;
    assert_eq!(wrong.unwrap_err().code(), ErrorCode::InvalidCredentials);
    bob.client.delete_account(&reauth(PASSWORD)).await.unwrap();
    assert!(!bob.client.is_signed_in());
    let mut again = Device::new(&relay).await;
    let gone = again.client.login("bob@example.org", PASSWORD).await;
    assert_eq!(gone.unwrap_err().code(), ErrorCode::InvalidCredentials);
}
