//! crypto-core's X25519 ([`X25519Secret::diffie_hellman`], [`x25519_many`]; on x86_64 with AVX2
//! computed on the Edwards form of the curve) against x25519-dalek's RFC 7748 ladder, byte for
//! byte: random scalars with (a) on-curve public keys, in and outside the prime-order subgroup,
//! (b) arbitrary 32-byte strings (points on the twist, bit 255 set, non-canonical u >= p), and
//! (c) every low-order point, which must be refused as non-contributory.

#![cfg(not(target_family = "wasm"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crypto_core::AgreementError;
use crypto_core::primitives::{X25519PublicKey, X25519Secret, x25519_many};
use proptest::prelude::*;

/// RFC 7748 X25519 by the reference ladder, with the wrapper's zero check.
fn expected(scalar: &[u8; 32], u: &[u8; 32]) -> Result<[u8; 32], AgreementError> {
    let out = x25519_dalek::x25519(*scalar, *u);
    if out == [0; 32] {
        Err(AgreementError::NonContributory)
    } else {
        Ok(out)
    }
}

fn ours(scalar: &[u8; 32], u: &[u8; 32]) -> Result<[u8; 32], AgreementError> {
    X25519Secret::from_bytes(scalar)
        .diffie_hellman(&X25519PublicKey::from_bytes(*u))
        .map(|shared| *shared)
}

/// The u-coordinates of the low-order points (orders 1, 2, 4, 8 on the curve and its twist:
/// 0, 1, the two of order 8, -1) and their non-canonical encodings p, p + 1 (libsodium's list).
const LOW_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

/// Every low-order encoding, with bit 255 clear and set (RFC 7748 ignores it).
fn low_order_points() -> Vec<[u8; 32]> {
    LOW_ORDER
        .iter()
        .flat_map(|hex| {
            let u: [u8; 32] = hex::decode(hex).unwrap().try_into().unwrap();
            let mut high = u;
            high[31] |= 0x80;
            [u, high]
        })
        .collect()
}

/// p = 2^255 - 19 plus `k`, little-endian (non-canonical for k in 0..19).
fn p_plus(k: u8) -> [u8; 32] {
    let mut u = [0xff; 32];
    u[0] = 0xed + k;
    u[31] = 0x7f;
    u
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Public keys of random secrets: prime-order points, all on the curve.
    #[test]
    fn on_curve_keys_match_the_ladder(scalar in any::<[u8; 32]>(), other in any::<[u8; 32]>()) {
        let u = X25519Secret::from_bytes(&other).public_key();
        prop_assert_eq!(ours(&scalar, u.as_bytes()), expected(&scalar, u.as_bytes()));
        prop_assert!(expected(&scalar, u.as_bytes()).is_ok());
    }

    /// (b) Any 32 bytes: half of them on the curve (mixed order), half on the twist; bit 255
    /// forced set too.
    #[test]
    fn arbitrary_strings_match_the_ladder(scalar in any::<[u8; 32]>(), u in any::<[u8; 32]>()) {
        prop_assert_eq!(ours(&scalar, &u), expected(&scalar, &u));
        let mut high = u;
        high[31] |= 0x80;
        prop_assert_eq!(ours(&scalar, &high), expected(&scalar, &high));
        prop_assert_eq!(ours(&scalar, &high), ours(&scalar, &u));
    }

    /// (b) Non-canonical u in [p, 2^255) and the same with bit 255 set, and u = -1, 2^255 - 1.
    #[test]
    fn non_canonical_u_match_the_ladder(scalar in any::<[u8; 32]>(), k in 0u8..19) {
        for u in [p_plus(k), { let mut h = p_plus(k); h[31] |= 0x80; h }, [0xff; 32]] {
            prop_assert_eq!(ours(&scalar, &u), expected(&scalar, &u));
        }
    }

    /// (c) Every low-order point gives zero, refused.
    #[test]
    fn low_order_points_are_refused(scalar in any::<[u8; 32]>()) {
        for u in low_order_points() {
            prop_assert_eq!(expected(&scalar, &u), Err(AgreementError::NonContributory));
            prop_assert_eq!(ours(&scalar, &u), Err(AgreementError::NonContributory));
        }
    }

    /// Several agreements in one call (shared and distinct points and secrets, on the curve and
    /// on the twist) equal the agreements one by one; one low-order key fails the whole call.
    #[test]
    fn many_equals_one_by_one(
        s in any::<[[u8; 32]; 3]>(),
        points in any::<[[u8; 32]; 2]>(),
        key in any::<[u8; 32]>(),
        low in 0usize..14,
    ) {
        let secrets = s.map(|bytes| X25519Secret::from_bytes(&bytes));
        let on_curve = X25519Secret::from_bytes(&key).public_key();
        let [p0, p1] = points.map(X25519PublicKey::from_bytes);
        let pairs = [
            (&secrets[0], &p0),
            (&secrets[1], &on_curve),
            (&secrets[0], &p1),
            (&secrets[2], &on_curve),
            (&secrets[1], &p0),
        ];
        let one_by_one: Result<Vec<[u8; 32]>, AgreementError> = pairs
            .iter()
            .map(|(secret, public)| secret.diffie_hellman(public).map(|shared| *shared))
            .collect();
        let many = x25519_many(pairs).map(|all| all.map(|shared| *shared).to_vec());
        prop_assert_eq!(&many, &one_by_one);
        for (i, (secret, public)) in pairs.iter().enumerate() {
            let reference = expected(&s[[0, 1, 0, 2, 1][i]], public.as_bytes());
            prop_assert_eq!(
                secret.diffie_hellman(public).map(|shared| *shared),
                reference
            );
        }
        let low = X25519PublicKey::from_bytes(low_order_points()[low]);
        prop_assert_eq!(
            x25519_many([(&secrets[0], &on_curve), (&secrets[1], &low)]).map(|_| ()),
            Err(AgreementError::NonContributory)
        );
    }
}

/// (a) On-curve points outside the prime-order subgroup (prime-order point + each 8-torsion
/// point), which the Edwards path multiplies by the unreduced clamped scalar.
#[cfg(target_arch = "x86_64")]
#[test]
fn on_curve_points_with_torsion_match_the_ladder() {
    use curve25519_dalek::Scalar;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::edwards::EdwardsPoint;
    for i in 0u8..64 {
        let base = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order([i.wrapping_mul(37); 32]));
        for torsion in EIGHT_TORSION {
            let u = (base + torsion).to_montgomery().to_bytes();
            let scalar = [i ^ 0x5a; 32];
            assert_eq!(ours(&scalar, &u), expected(&scalar, &u));
        }
    }
}

/// The random-string tests exercise both paths: some of the inputs are on the curve (Edwards
/// arithmetic), some on the twist (ladder).
#[cfg(target_arch = "x86_64")]
#[test]
fn random_strings_cover_curve_and_twist() {
    use curve25519_dalek::MontgomeryPoint;
    let mut state = 0x0123_4567_89ab_cdefu64;
    let (mut curve, mut twist) = (0, 0);
    for _ in 0..1000 {
        let mut u = [0u8; 32];
        for byte in &mut u {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            *byte = (state >> 56) as u8;
        }
        if MontgomeryPoint(u).to_edwards(0).is_some() {
            curve += 1;
        } else {
            twist += 1;
        }
        let scalar = [u[0]; 32];
        assert_eq!(ours(&scalar, &u), expected(&scalar, &u));
    }
    assert!(curve > 400 && twist > 400, "curve {curve}, twist {twist}");
}
