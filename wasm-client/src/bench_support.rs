//! The workloads of `cargo xtask bench client`, shared by the native bench
//! (`benches/client.rs`) and the browser one (`tests/bench_browser.rs`) so both measure the
//! same code. Not part of the API.

use crate::client::{Conversation, ConversationSummary, Message, MessageStatus};
use crate::error::Result;
use crate::store::Store;
use crate::store::sealed::SealedStore;
use crypto_core::{Account, Session, SessionMessage};

/// A pair of established sessions (Alice → Bob, Bob → Alice), set up through X3DH.
pub fn session_pair() -> Result<(Session, Session)> {
    let alice = Account::new()?;
    let mut bob = Account::new()?;
    bob.generate_signed_prekey(1_700_000_000)?;
    bob.generate_one_time_prekeys(1)?;
    let bundle = bob.prekey_bundle(true)?;
    let mut to_bob = alice.create_outbound_session(&bundle)?;
    let first = to_bob.encrypt(b"hello")?;
    let SessionMessage::Prekey(prekey) = first else {
        return Err(crate::ClientError::InvalidArgument(
            "no prekey message".into(),
        ));
    };
    let (mut to_alice, _) = bob.create_inbound_session(&prekey)?;
    // One reply so both sides send ratchet messages.
    let reply = to_alice.encrypt(b"hi")?;
    to_bob.decrypt(&reply)?;
    Ok((to_bob, to_alice))
}

/// Encrypts `plaintext` on one side and decrypts it on the other, `rounds` times, alternating
/// directions (so the DH ratchet turns every time, as in a conversation).
pub fn encrypt_decrypt(
    a: &mut Session,
    b: &mut Session,
    plaintext: &[u8],
    rounds: usize,
) -> Result<()> {
    for i in 0..rounds {
        let (from, to) = if i % 2 == 0 {
            (&mut *a, &mut *b)
        } else {
            (&mut *b, &mut *a)
        };
        let wire = from.encrypt(plaintext)?.encode();
        let opened = to.decrypt(&SessionMessage::decode(&wire)?)?;
        if opened.len() != plaintext.len() {
            return Err(crate::ClientError::InvalidArgument("round trip".into()));
        }
    }
    Ok(())
}

fn message(i: u64) -> Message {
    Message {
        id: format!("{i:032x}"),
        conversation: Conversation::User(2),
        from_user: 2,
        from_device: 3,
        outgoing: false,
        sent_at: 1_795_000_000_000,
        stored_at: 1_795_000_000_000,
        text: "a message of about the length people write, with a few words in it".into(),
        attachment: None,
        reply_to: None,
        status: MessageStatus::Received,
        unverified_key: false,
    }
}

/// Writes `count` messages of one conversation the way the client stores history (sealed
/// `msg:<conv>:<n>` records and the conversation summary), `batch` per write.
pub async fn write_history<S: Store>(store: &SealedStore<S>, count: u64, batch: u64) -> Result<()> {
    let mut n = 0;
    while n < count {
        let mut b = store.batch();
        let end = (n + batch).min(count);
        for i in n..end {
            b.put(&format!("msg:u2:{i}"), &message(i));
        }
        b.put(
            "conv:u2",
            &ConversationSummary {
                count: end,
                unread: end,
                last: Some(message(end - 1)),
            },
        );
        b.commit().await?;
        n = end;
    }
    Ok(())
}

/// Reads the last `count` messages back, as `Client::history` does.
pub async fn read_last<S: Store>(store: &SealedStore<S>, count: u64) -> Result<usize> {
    let summary: ConversationSummary = store.get("conv:u2").await?.unwrap_or_default();
    let start = summary.count.saturating_sub(count);
    let names: Vec<String> = (start..summary.count)
        .map(|i| format!("msg:u2:{i}"))
        .collect();
    Ok(store
        .get_many::<Message>(&names)
        .await?
        .into_iter()
        .flatten()
        .count())
}
