//! The Ed25519 signature contexts of the protocol, in one list (docs/protocol.md §4).
//!
//! Every signed structure starts with its context string, and no context is a prefix of
//! another, so the bytes signed for one purpose can never be read as a valid input of another
//! (the finding behind this module: a "sign these bytes" API let a relay obtain
//! `"SecureChat v2 identity key" || X_evil` signed, binding its own X25519 key to a victim's
//! identity). Signing code builds its input only through [`SignatureContext::message`]; the
//! prefix-free property is checked by the tests below and by `tests/signature_contexts.rs`.

/// Declares [`SignatureContext`] and its list [`SignatureContext::ALL`] from one table, so a
/// new context cannot be left out of the prefix-freeness check.
macro_rules! signature_contexts {
    ($($(#[doc = $doc:literal])* $name:ident => $bytes:literal,)+) => {
        /// A purpose a long-term or sender key signs for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum SignatureContext {
            $($(#[doc = $doc])* $name,)+
        }

        impl SignatureContext {
            /// Every context, in declaration order.
            pub(crate) const ALL: &'static [Self] = &[$(Self::$name,)+];

            /// The context string (ASCII, no terminator).
            pub(crate) const fn as_bytes(self) -> &'static [u8] {
                match self {
                    $(Self::$name => $bytes,)+
                }
            }
        }
    };
}

signature_contexts! {
    /// The identity binding: `context || X25519 identity key` (protocol §5).
    IdentityKey => b"SecureChat v2 identity key",
    /// A signed prekey: `context || id || key || created_at` (protocol §6).
    SignedPrekey => b"SecureChat v2 signed prekey",
    /// A group message, signed by the sender key:
    /// `context || origin || header || ciphertext || tag` (protocol §12.2).
    GroupMessage => b"SecureChat v2 group message",
    /// A sender-key distribution, signed by the group signing key:
    /// `context || every byte of the distribution before the signature` (protocol §12.1).
    SenderKeyDistribution => b"SecureChat v2 sender key distribution",
    /// A relay's proof-of-possession challenge:
    /// `context || u32 origin length || origin || challenge (32)` (protocol §5.1).
    RelayChallenge => b"SecureChat v2 relay challenge",
}

impl SignatureContext {
    /// The bytes to sign or verify: the context string followed by `parts`.
    pub(crate) fn message(self, parts: &[&[u8]]) -> Vec<u8> {
        let context = self.as_bytes();
        let len = context.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(context);
        for part in parts {
            out.extend_from_slice(part);
        }
        out
    }
}

/// Every signature context string (for the tests that check the list against the protocol
/// document); not part of the API.
pub(crate) fn all_bytes() -> Vec<&'static [u8]> {
    SignatureContext::ALL.iter().map(|c| c.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether no context string is a prefix of (or equal to) another.
    fn is_prefix_free(contexts: &[&[u8]]) -> bool {
        contexts.iter().enumerate().all(|(i, a)| {
            contexts
                .iter()
                .enumerate()
                .all(|(j, b)| i == j || !b.starts_with(a))
        })
    }

    #[test]
    fn signature_contexts_are_prefix_free() {
        let all = all_bytes();
        assert_eq!(
            all.len(),
            5,
            "identity key, signed prekey, group message, sender key distribution, relay"
        );
        assert!(is_prefix_free(&all), "{all:?}");
    }

    #[test]
    fn prefix_check_catches_a_prefix_and_a_duplicate() {
        let (ab, abc, ac, b): (&[u8], &[u8], &[u8], &[u8]) = (b"ab", b"abc", b"ac", b"b");
        assert!(!is_prefix_free(&[ab, abc]));
        assert!(!is_prefix_free(&[abc, ab]));
        assert!(!is_prefix_free(&[ab, ab]));
        assert!(is_prefix_free(&[ab, ac, b]));
    }

    #[test]
    fn message_starts_with_the_context() {
        let msg = SignatureContext::RelayChallenge.message(&[b"x", b"yz"]);
        assert_eq!(msg, b"SecureChat v2 relay challengexyz");
    }
}
