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

/// Lowercases an ms_id and checks it is 3–32 of `a-z0-9._-` (ASCII only, so no look-alikes
/// from other scripts).
pub fn ms_id(raw: &str) -> Result<String, ApiError> {
    let id = raw.to_ascii_lowercase();
    let ok = MS_ID_LEN.contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(id)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidMsId,
            "ms_id must be 3 to 32 characters of a-z, 0-9, '.', '_' and '-'",
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert_eq!(
                ms_id(bad).unwrap_err().code,
                ErrorCode::InvalidMsId,
                "{bad}"
            );
        }
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
