//! Input rules for account fields. Each returns the normalized value or a typed error.

use crate::api::error::{ApiError, ErrorCode};

/// Longest e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest local part of an e-mail address.
pub const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// ms_id length bounds.
pub const MS_ID_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

fn invalid_email() -> ApiError {
    ApiError::new(ErrorCode::InvalidEmail, "invalid e-mail address")
}

/// Trims and lowercases an address and checks its shape: printable ASCII, at most 254
/// characters, one `@`, a local part of 1–64 characters and a domain containing a dot.
pub fn email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_ascii_lowercase();
    if email.is_empty()
        || email.len() > MAX_EMAIL_LEN
        || !email.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid_email());
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid_email());
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || local.len() > MAX_EMAIL_LOCAL_LEN || !domain_ok {
        return Err(invalid_email());
    }
    Ok(email)
}

fn invalid_ms_id() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidMsId,
        "ms_id must be 3 to 32 characters of a-z, 0-9, '.', '_' and '-', start and end with a letter or digit, and not have two of '.', '_', '-' in a row",
    )
}

fn ms_id_separator(b: u8) -> bool {
    matches!(b, b'.' | b'_' | b'-')
}

/// The form two ms_ids must not share (issue #12 item 17): the separators `_` and `-` folded
/// into `.`, so `alice.smith`, `alice_smith` and `alice-smith` are one handle. Takes a
/// normalized (lowercase) ms_id.
#[must_use]
pub fn ms_id_key(ms_id: &str) -> String {
    ms_id.replace(['_', '-'], ".")
}

/// Lowercases an ms_id and checks it has the shape of one: 3–32 of `a-z0-9._-`. ASCII only,
/// so Cyrillic or Greek look-alikes, full-width forms, zero-width or other invisible
/// characters, and characters that only *lowercase* to ASCII (the Kelvin sign `K`) are all
/// refused; nothing is trimmed. Used to find existing ms_ids (lookups, requests, blocks);
/// new ms_ids must also pass [`ms_id`].
pub fn ms_id_lookup(raw: &str) -> Result<String, ApiError> {
    let id = raw.to_ascii_lowercase();
    let ok = MS_ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || ms_id_separator(b));
    if ok { Ok(id) } else { Err(invalid_ms_id()) }
}

/// The rules for a new ms_id (registration and `PUT /me/ms_id`): [`ms_id_lookup`]'s, and it
/// starts and ends with a letter or digit and has no two separators (`.`, `_`, `-`) in a row,
/// so `.alice`, `alice.`, `a..b` and `a._b` — easy to mistake for `alice` or `a.b` — are refused.
/// Returns the lowercased ms_id.
pub fn ms_id(raw: &str) -> Result<String, ApiError> {
    let id = ms_id_lookup(raw)?;
    let bytes = id.as_bytes();
    let ends_ok = bytes
        .first()
        .zip(bytes.last())
        .is_some_and(|(f, l)| f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric());
    let no_double = !bytes
        .windows(2)
        .any(|w| w.iter().all(|&b| ms_id_separator(b)));
    if ends_ok && no_double {
        Ok(id)
    } else {
        Err(invalid_ms_id())
    }
}

/// Control characters, and the invisible or direction-changing format characters that let a
/// name impersonate another or reorder the text around it (bidi embeddings, overrides and
/// isolates, directional marks, zero-width space, BOM, line and paragraph separators). The
/// zero-width joiner stays allowed: emoji sequences need it.
fn deceptive_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// Longest friend-request note, in characters.
pub const MAX_NOTE_CHARS: usize = 280;

/// Trims an optional friend-request note (CRLF line breaks become LF); an empty one is none.
/// At most 280 characters; no control characters other than `\n`, and none of the deceptive
/// format characters refused in display names.
pub fn note(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(note) = raw
        .map(|n| n.replace("\r\n", "\n"))
        .filter(|n| !n.trim().is_empty())
    else {
        return Ok(None);
    };
    let note = note.trim();
    if note.chars().count() > MAX_NOTE_CHARS
        || note.chars().any(|c| c != '\n' && deceptive_or_control(c))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "note must be at most 280 characters without control characters",
        ));
    }
    Ok(Some(note.to_owned()))
}

/// Trims a display name and checks it has 1–64 characters, no control characters and none of
/// the deceptive format characters above.
pub fn display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_DISPLAY_NAME_CHARS || name.chars().any(deceptive_or_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "display_name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// Trims a device name ("Firefox on laptop") and checks it has 1–64 characters, no control
/// characters and none of the deceptive format characters above.
pub fn device_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_DEVICE_NAME_CHARS || name.chars().any(deceptive_or_control) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(
            device_name("  Firefox on laptop ").unwrap(),
            "Firefox on laptop"
        );
        assert_eq!(device_name(&"é".repeat(64)).unwrap(), "é".repeat(64));
        for bad in ["", "  ", "a\nb", "a\u{202e}b", "x".repeat(65).as_str()] {
            assert_eq!(
                device_name(bad).unwrap_err().code,
                ErrorCode::InvalidInput,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email("  Alice@Example.ORG ").unwrap(), "alice@example.org");
        for bad in [
            "",
            "alice",
            "a@b",
            "a@@b.c",
            "a@b@c.d",
            "@b.c",
            "a@.b",
            "a b@c.d",
            "alicé@b.c",
            "a@b..c",
        ] {
            assert_eq!(
                email(bad).unwrap_err().code,
                ErrorCode::InvalidEmail,
                "{bad}"
            );
        }
        let long_local = format!("{}@b.cd", "a".repeat(65));
        assert!(email(&long_local).is_err());
        let long = format!("a@{}.cd", "b".repeat(250));
        assert!(email(&long).is_err());
    }

    #[test]
    fn ms_ids() {
        assert_eq!(ms_id("Alice_1.x-y").unwrap(), "alice_1.x-y");
        for bad in [
            "ab",
            &"a".repeat(33),
            "Bad Id",
            "ali\u{0441}e",
            "a/b",
            "ａbc",
            "\u{212a}elvin",
            "ali\u{200b}ce",
            ".alice",
            "alice.",
            "_alice",
            "alice-",
            "a..b",
            "a._b",
            " alice",
        ] {
            assert_eq!(
                ms_id(bad).unwrap_err().code,
                ErrorCode::InvalidMsId,
                "{bad}"
            );
        }
    }

    #[test]
    fn lookups_accept_old_shapes() {
        assert_eq!(ms_id_lookup("_Old.").unwrap(), "_old.");
        assert!(ms_id_lookup("ali\u{0441}e").is_err());
        assert!(ms_id_lookup("ab").is_err());
    }

    #[test]
    fn notes() {
        assert_eq!(note(None).unwrap(), None);
        assert_eq!(note(Some("  ")).unwrap(), None);
        assert_eq!(note(Some(" hi\nthere ")).unwrap().unwrap(), "hi\nthere");
        assert!(note(Some(&"é".repeat(280))).is_ok());
        assert!(note(Some(&"é".repeat(281))).is_err());
        assert!(note(Some("a\u{7}b")).is_err());
        assert_eq!(note(Some("a\r\nb")).unwrap().unwrap(), "a\nb");
        assert!(note(Some("a\rb")).is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Bob ").unwrap(), "Bob");
        assert!(display_name("   ").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name(&"é".repeat(64)).is_ok());
        assert!(display_name(&"é".repeat(65)).is_err());
    }
}
