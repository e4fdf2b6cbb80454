//! Signer keys against the real tools auditors and signers use: `openssl` and `ssh-keygen`.
//!
//! Each test works in its own temporary directory and runs the installed binaries.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ed25519_dalek::pkcs8::{EncodePrivateKey as _, KeypairBytes, PublicKeyBytes};
use ed25519_dalek::SigningKey;
use rollbook::crypto::keyfile::{public_key_path, read_public_key, read_secret_key, write_keypair};
use rollbook::crypto::keys::{KeyError, KeyId, PublicKey, SecretKey, Signature};
use rollbook::crypto::to_hex;
use tempfile::TempDir;

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("tool output is UTF-8")
}

fn write_file(dir: &TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, contents).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn ssh_keygen(dir: &TempDir, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.path().join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-C", "test@desk", "-f"])
        .arg(&path)
        .args(args));
    path
}

fn openssl_genpkey(dir: &TempDir, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.path().join(name);
    run(Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path));
    path
}

/// `ssh-keygen -lf PATH` prints `256 SHA256:... comment (ED25519)`: the second field.
fn ssh_keygen_fingerprint(path: &Path) -> String {
    let output = run(Command::new("ssh-keygen").arg("-lf").arg(path));
    stdout_text(&output)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

fn unsupported_type(error: KeyError) -> String {
    match error {
        KeyError::UnsupportedKeyType { found } => found,
        other => panic!("expected an unsupported key type, got: {other}"),
    }
}

/// Adds the Ed25519 group order L to the S half of a signature (little-endian), producing the
/// classic malleated twin that lax verifiers accept.
fn add_group_order_to_s(signature: &[u8; 64]) -> [u8; 64] {
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];
    let mut malleated = *signature;
    let mut carry = 0u16;
    for (position, order_byte) in GROUP_ORDER.iter().enumerate() {
        let sum = u16::from(malleated[32 + position]) + u16::from(*order_byte) + carry;
        malleated[32 + position] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes because S < L < 2^253");
    malleated
}

#[test]
fn generated_key_round_trips_through_every_format() {
    let secret = SecretKey::generate().unwrap();
    let public = secret.public();

    let pem = secret.to_pkcs8_pem_v1();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(SecretKey::parse(&pem).unwrap().public(), public);
    assert_eq!(
        PublicKey::parse(&public.to_openssh_line("alice")).unwrap(),
        public
    );
    assert_eq!(PublicKey::parse(&public.to_spki_pem()).unwrap(), public);
    assert_eq!(
        PublicKey::from_bytes_checked(&public.as_bytes()).unwrap(),
        public
    );

    let message = b"rollbook/v1/approval\0proposal 42";
    let signature = Signature::from_bytes(&secret.sign(message));
    public.verify_strict(message, &signature).unwrap();
    assert!(matches!(
        public.verify_strict(b"another message", &signature),
        Err(KeyError::BadSignature)
    ));
    let other = SecretKey::generate().unwrap().public();
    assert_ne!(other, public);
    assert!(other.verify_strict(message, &signature).is_err());
}

#[test]
fn openssl_reads_our_pkcs8_and_derives_the_same_public_key() {
    let dir = TempDir::new().unwrap();
    let secret = SecretKey::generate().unwrap();
    let key_path = write_file(&dir, "key.pem", secret.to_pkcs8_pem_v1().as_bytes());

    let output = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_path));
    let spki = stdout_text(&output);
    assert_eq!(PublicKey::parse(&spki).unwrap(), secret.public());
    assert_eq!(spki, secret.public().to_spki_pem());
}

#[test]
fn openssl_genpkey_keys_parse_and_match_their_public_half() {
    let dir = TempDir::new().unwrap();
    let key_path = openssl_genpkey(&dir, "key.pem", &["-algorithm", "ed25519"]);
    let public_path = dir.path().join("pub.pem");
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_path)
        .arg("-out")
        .arg(&public_path));

    let secret = SecretKey::parse(&read_text(&key_path)).unwrap();
    let public = read_public_key(&public_path).unwrap();
    assert_eq!(secret.public(), public);
    assert_eq!(read_secret_key(&key_path).unwrap().0.public(), public);
}

#[test]
fn pkcs8_v2_with_embedded_public_key_parses_and_a_mismatched_one_is_refused() {
    let signing = SigningKey::from_bytes(&[7u8; 32]);
    let v2_pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let secret = SecretKey::parse(&v2_pem).unwrap();
    assert_eq!(
        secret.public().as_bytes(),
        signing.verifying_key().to_bytes()
    );

    let other_public = SigningKey::from_bytes(&[8u8; 32])
        .verifying_key()
        .to_bytes();
    let mismatched = KeypairBytes {
        secret_key: [7u8; 32],
        public_key: Some(PublicKeyBytes(other_public)),
    }
    .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
    .unwrap();
    assert!(matches!(
        SecretKey::parse(&mismatched),
        Err(KeyError::Malformed { .. })
    ));
}

#[test]
fn ssh_keygen_keys_parse_and_fingerprints_match() {
    let dir = TempDir::new().unwrap();
    let key_path = ssh_keygen(&dir, "id_ed25519", &["-t", "ed25519", "-N", ""]);
    let public_path = public_key_path(&key_path);

    let (secret, warning) = read_secret_key(&key_path).unwrap();
    assert_eq!(warning, None, "ssh-keygen writes 0600");
    let public = read_public_key(&public_path).unwrap();
    assert_eq!(secret.public(), public);

    let fingerprint = ssh_keygen_fingerprint(&public_path);
    assert_eq!(public.key_id().to_string(), fingerprint);
    assert_eq!(fingerprint.parse::<KeyId>().unwrap(), public.key_id());

    // Our own OpenSSH line reads back in ssh-keygen with the same fingerprint.
    let our_line_path = write_file(&dir, "ours.pub", public.to_openssh_line("ours").as_bytes());
    assert_eq!(ssh_keygen_fingerprint(&our_line_path), fingerprint);
}

#[test]
fn our_signature_verifies_with_openssl_pkeyutl() {
    let dir = TempDir::new().unwrap();
    let secret = SecretKey::generate().unwrap();
    let message = b"approve proposal 018f: roll 12 VIX calls";
    let public_path = write_file(&dir, "pub.pem", secret.public().to_spki_pem().as_bytes());
    let message_path = write_file(&dir, "message", message);
    let signature_path = write_file(&dir, "signature", &secret.sign(message));

    let verify = |message_path: &Path, signature_path: &Path| {
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&public_path)
            .args(["-rawin", "-in"])
            .arg(message_path)
            .arg("-sigfile")
            .arg(signature_path)
            .output()
            .unwrap()
    };
    let output = verify(&message_path, &signature_path);
    assert!(
        output.status.success(),
        "openssl refused our signature: {}{}",
        stdout_text(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout_text(&output).contains("Signature Verified Successfully"));

    let tampered_path = write_file(
        &dir,
        "tampered",
        b"approve proposal 018f: roll 99 VIX calls",
    );
    assert!(!verify(&tampered_path, &signature_path).status.success());

    // The malleated twin is refused by OpenSSL too, so auditors and rollbook agree.
    let malleated = add_group_order_to_s(&secret.sign(message));
    let malleated_path = write_file(&dir, "malleated", &malleated);
    assert!(!verify(&message_path, &malleated_path).status.success());
}

#[test]
fn openssl_signature_verifies_with_our_strict_verifier() {
    let dir = TempDir::new().unwrap();
    let key_path = openssl_genpkey(&dir, "key.pem", &["-algorithm", "ed25519"]);
    let message_path = write_file(&dir, "message", b"signed by openssl");
    let signature_path = dir.path().join("signature");
    run(Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(&key_path)
        .arg("-in")
        .arg(&message_path)
        .arg("-out")
        .arg(&signature_path));
    let signature_bytes: [u8; 64] = fs::read(&signature_path).unwrap().try_into().unwrap();
    let public = SecretKey::parse(&read_text(&key_path)).unwrap().public();
    public
        .verify_strict(
            b"signed by openssl",
            &Signature::from_bytes(&signature_bytes),
        )
        .unwrap();
}

#[test]
fn malleated_signature_is_refused() {
    let secret = SecretKey::generate().unwrap();
    let message = b"pay 1 USD";
    let signature = secret.sign(message);
    secret
        .public()
        .verify_strict(message, &Signature::from_bytes(&signature))
        .unwrap();
    let malleated = add_group_order_to_s(&signature);
    assert_ne!(malleated, signature);
    assert!(matches!(
        secret
            .public()
            .verify_strict(message, &Signature::from_bytes(&malleated)),
        Err(KeyError::BadSignature)
    ));
}

#[test]
fn other_key_types_are_refused_with_their_name() {
    let dir = TempDir::new().unwrap();
    let cases = [
        ("id_rsa", vec!["-t", "rsa", "-b", "2048", "-N", ""], "RSA"),
        ("id_ecdsa", vec!["-t", "ecdsa", "-N", ""], "ECDSA"),
    ];
    for (name, args, type_name) in cases {
        let key_path = ssh_keygen(&dir, name, &args);
        let found = unsupported_type(SecretKey::parse(&read_text(&key_path)).unwrap_err());
        assert!(found.contains(type_name), "{name}: {found}");
        let found = unsupported_type(
            PublicKey::parse(&read_text(&public_key_path(&key_path))).unwrap_err(),
        );
        assert!(found.contains(type_name), "{name}.pub: {found}");
        let message = read_secret_key(&key_path).unwrap_err().to_string();
        assert!(message.contains(type_name), "{message}");
        assert!(message.contains(name), "error names the file: {message}");
    }

    let genpkey_cases = [
        (
            "rsa.pem",
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "RSA",
        ),
        (
            "ec.pem",
            vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ECDSA",
        ),
        ("x25519.pem", vec!["-algorithm", "X25519"], "X25519"),
        ("ed448.pem", vec!["-algorithm", "ED448"], "Ed448"),
    ];
    for (name, args, type_name) in genpkey_cases {
        let key_path = openssl_genpkey(&dir, name, &args);
        let found = unsupported_type(SecretKey::parse(&read_text(&key_path)).unwrap_err());
        assert!(found.contains(type_name), "{name}: {found}");
        let output = run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key_path));
        let found = unsupported_type(PublicKey::parse(&stdout_text(&output)).unwrap_err());
        assert!(found.contains(type_name), "{name} public: {found}");
    }

    // Traditional (PKCS#1) RSA PEM.
    let rsa_path = dir.path().join("rsa.pem");
    let output = run(Command::new("openssl")
        .args(["pkey", "-traditional", "-in"])
        .arg(&rsa_path));
    let traditional = stdout_text(&output);
    assert!(traditional.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(unsupported_type(SecretKey::parse(&traditional).unwrap_err()).contains("RSA"));
}

#[test]
fn passphrase_protected_keys_decrypt_with_their_passphrase_only() {
    let dir = TempDir::new().unwrap();
    let ssh_path = ssh_keygen(
        &dir,
        "id_encrypted",
        &["-t", "ed25519", "-N", "correct horse"],
    );
    let pkcs8_path = openssl_genpkey(
        &dir,
        "encrypted.pem",
        &[
            "-algorithm",
            "ed25519",
            "-aes-256-cbc",
            "-pass",
            "pass:correct horse",
        ],
    );
    assert!(read_text(&pkcs8_path).starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let openssl_public = stdout_text(&run(Command::new("openssl")
        .args(["pkey", "-pubout", "-passin", "pass:correct horse", "-in"])
        .arg(&pkcs8_path)));
    let expected = [
        (
            &ssh_path,
            read_public_key(&public_key_path(&ssh_path)).unwrap(),
        ),
        (&pkcs8_path, PublicKey::parse(&openssl_public).unwrap()),
    ];
    for (path, public) in expected {
        let text = read_text(path);
        // Without a passphrase: it says what it needs.
        let error = SecretKey::parse(&text).unwrap_err();
        assert!(matches!(error, KeyError::Encrypted), "{error}");
        assert!(error.to_string().contains("--passphrase-file"), "{error}");
        // With the right one: the key whose public half the tools derive, and it signs.
        let secret = SecretKey::parse_encrypted(&text, b"correct horse").unwrap();
        assert_eq!(secret.public(), public, "{}", path.display());
        let signature = secret.sign(b"message");
        public
            .verify_strict(b"message", &Signature::from_bytes(&signature))
            .unwrap();
        // With a wrong one (or none): refused as a wrong passphrase, never a key.
        for wrong in [&b"correct horsE"[..], b"", b"correct horse "] {
            assert!(
                matches!(
                    SecretKey::parse_encrypted(&text, wrong),
                    Err(KeyError::WrongPassphrase)
                ),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn keygen_with_a_passphrase_writes_encrypted_pkcs8_that_openssl_reads() {
    let dir = TempDir::new().unwrap();
    let key_path = dir.path().join("alice.key");
    let key_id = write_keypair(&key_path, "alice", Some(b"s3cret phrase")).unwrap();
    let text = read_text(&key_path);
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    assert!(matches!(SecretKey::parse(&text), Err(KeyError::Encrypted)));
    assert!(matches!(
        SecretKey::parse_encrypted(&text, b"wrong"),
        Err(KeyError::WrongPassphrase)
    ));
    let secret = SecretKey::parse_encrypted(&text, b"s3cret phrase").unwrap();
    assert_eq!(secret.public().key_id(), key_id);
    // OpenSSL decrypts it (the v1 layout inside) and derives the same public key.
    let output = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-passin", "pass:s3cret phrase", "-in"])
        .arg(&key_path));
    assert_eq!(
        PublicKey::parse(&stdout_text(&output)).unwrap(),
        secret.public()
    );
    // And refuses a wrong passphrase, as rollbook does.
    let refused = Command::new("openssl")
        .args(["pkey", "-pubout", "-passin", "pass:wrong", "-in"])
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

#[test]
fn raw_blobs_hex_base64_garbage_and_empty_files_are_refused() {
    let dir = TempDir::new().unwrap();
    let secret = SigningKey::from_bytes(&[9u8; 32]);
    let keypair_bytes = secret.to_keypair_bytes();
    let seed_hex = to_hex(&secret.to_bytes());
    let keypair_hex = to_hex(&keypair_bytes);
    use base64::Engine as _;
    let keypair_base64 = base64::engine::general_purpose::STANDARD.encode(keypair_bytes);

    let raw_path = write_file(&dir, "raw64", &keypair_bytes);
    assert!(read_secret_key(&raw_path).is_err());
    let raw32_path = write_file(&dir, "raw32", &secret.to_bytes());
    assert!(read_secret_key(&raw32_path).is_err());

    let texts = [
        ("hex seed", seed_hex.as_str()),
        ("hex keypair", keypair_hex.as_str()),
        ("base64 keypair", keypair_base64.as_str()),
        ("garbage", "this is not a key\n"),
        ("broken pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        (
            "broken openssh",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
    ];
    for (name, text) in texts {
        assert!(
            SecretKey::parse(text).is_err(),
            "{name} accepted as a private key"
        );
        let path = write_file(&dir, name, text.as_bytes());
        let message = read_secret_key(&path).unwrap_err().to_string();
        assert!(message.contains(name), "error names the file: {message}");
    }
    assert!(matches!(
        SecretKey::parse(&seed_hex),
        Err(KeyError::NotASecretKey)
    ));

    let empty_path = write_file(&dir, "empty", b"");
    assert!(matches!(
        read_secret_key(&empty_path),
        Err(KeyError::InFile { ref source, .. }) if matches!(**source, KeyError::Empty)
    ));
    assert!(matches!(PublicKey::parse("  \n"), Err(KeyError::Empty)));

    // A public key given as bare hex or base64 is refused just the same.
    let public_hex = to_hex(&secret.verifying_key().to_bytes());
    assert!(matches!(
        PublicKey::parse(&public_hex),
        Err(KeyError::NotAPublicKey)
    ));

    // Mixing up the halves gets a message that says so.
    let secret_key = SecretKey::parse(&SecretKey::generate().unwrap().to_pkcs8_pem_v1()).unwrap();
    assert!(matches!(
        PublicKey::parse(&secret_key.to_pkcs8_pem_v1()),
        Err(KeyError::SecretKeyGiven)
    ));
    assert!(matches!(
        SecretKey::parse(&secret_key.public().to_openssh_line("x")),
        Err(KeyError::PublicKeyGiven)
    ));

    let oversized = "A".repeat(rollbook::crypto::keys::KEY_TEXT_LEN_MAX_BYTES + 1);
    assert!(matches!(
        SecretKey::parse(&oversized),
        Err(KeyError::TooLarge { .. })
    ));
    let missing = dir.path().join("missing");
    let message = read_secret_key(&missing).unwrap_err().to_string();
    assert!(message.contains("missing"), "{message}");
}

#[test]
fn small_order_public_keys_are_refused() {
    // The identity point (y = 1): order 1, every signature "verifies" under lax rules.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(
        PublicKey::from_bytes_checked(&identity),
        Err(KeyError::WeakKey)
    ));
    // The point of order 2 (y = -1).
    let mut order_two = [0xffu8; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    assert!(matches!(
        PublicKey::from_bytes_checked(&order_two),
        Err(KeyError::WeakKey)
    ));

    // And through both text formats.
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&identity);
    use base64::Engine as _;
    let line = format!(
        "ssh-ed25519 {} weak",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    assert!(matches!(PublicKey::parse(&line), Err(KeyError::WeakKey)));

    // SPKI for Ed25519 is a fixed 12-byte DER prefix followed by the key (RFC 8410).
    let mut spki = rollbook::crypto::from_hex("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&identity);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    assert!(matches!(PublicKey::parse(&pem), Err(KeyError::WeakKey)));
}

#[test]
fn non_canonical_public_key_encodings_are_refused() {
    // y = p + k (p = 2^255 - 19) encodes the same y as k; only k is canonical.
    let mut refused = 0;
    for k in 0u8..19 {
        let mut encoding = [0xffu8; 32];
        encoding[0] = 0xed + k;
        encoding[31] = 0x7f;
        if ed25519_dalek::VerifyingKey::from_bytes(&encoding).is_ok() {
            assert!(
                matches!(
                    PublicKey::from_bytes_checked(&encoding),
                    Err(KeyError::NonCanonical)
                ),
                "y = p + {k} accepted"
            );
            refused += 1;
        }
    }
    assert!(refused > 0, "at least one y = p + k is on the curve");

    // x = 0 with the sign bit set ("negative zero"): a second spelling of the identity.
    let mut negative_zero = [0u8; 32];
    negative_zero[0] = 1;
    negative_zero[31] = 0x80;
    assert!(PublicKey::from_bytes_checked(&negative_zero).is_err());

    // A regular key with its sign bit flipped is a different, valid point: not our concern,
    // but it must never compare equal to the original.
    let public = SecretKey::generate().unwrap().public();
    let mut flipped = public.as_bytes();
    flipped[31] ^= 0x80;
    if let Ok(other) = PublicKey::from_bytes_checked(&flipped) {
        assert_ne!(other, public);
        assert_ne!(other.key_id(), public.key_id());
    }
}

#[test]
fn file_mode_warning_fires_for_group_or_other_bits() {
    let dir = TempDir::new().unwrap();
    let secret = SecretKey::generate().unwrap();
    let key_path = write_file(&dir, "key.pem", secret.to_pkcs8_pem_v1().as_bytes());

    let (_key, warning) = read_secret_key(&key_path).unwrap();
    assert_eq!(warning, None);

    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o644)).unwrap();
    let (key, warning) = read_secret_key(&key_path).unwrap();
    assert_eq!(key.public(), secret.public());
    let warning = warning.expect("0644 draws a warning");
    assert!(
        warning.contains("UNPROTECTED PRIVATE KEY FILE"),
        "{warning}"
    );
    assert!(warning.contains("0644"), "{warning}");
    assert!(
        warning.contains(&key_path.display().to_string()),
        "{warning}"
    );

    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(read_secret_key(&key_path).unwrap().1.is_some());
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(read_secret_key(&key_path).unwrap().1.is_none());
}

#[test]
fn write_keypair_creates_owner_only_files_and_never_overwrites() {
    let dir = TempDir::new().unwrap();
    let key_path = dir.path().join("alice");
    let key_id = write_keypair(&key_path, "alice@desk", None).unwrap();

    let mode = fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let public_path = public_key_path(&key_path);
    assert_eq!(public_path, dir.path().join("alice.pub"));
    let public_line = read_text(&public_path);
    assert!(public_line.starts_with("ssh-ed25519 "));
    assert!(public_line.ends_with(" alice@desk\n"));

    let (secret, warning) = read_secret_key(&key_path).unwrap();
    assert_eq!(warning, None);
    assert_eq!(secret.public().key_id(), key_id);
    assert_eq!(ssh_keygen_fingerprint(&public_path), key_id.to_string());
    // OpenSSL reads the private key we wrote.
    let output = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key_path));
    assert_eq!(
        PublicKey::parse(&stdout_text(&output)).unwrap(),
        secret.public()
    );

    let private_before = fs::read(&key_path).unwrap();
    let error = write_keypair(&key_path, "mallory", None).unwrap_err();
    assert!(matches!(error, KeyError::AlreadyExists { .. }), "{error}");
    assert!(error.to_string().contains("alice"), "{error}");
    assert_eq!(fs::read(&key_path).unwrap(), private_before);
    assert_eq!(read_text(&public_path), public_line);

    // An existing .pub alone also stops it, before any private key is written.
    let bob_path = dir.path().join("bob");
    fs::write(public_key_path(&bob_path), "not ours\n").unwrap();
    assert!(matches!(
        write_keypair(&bob_path, "bob", None),
        Err(KeyError::AlreadyExists { .. })
    ));
    assert!(!bob_path.exists());

    assert!(matches!(
        write_keypair(&dir.path().join("carol"), "carol\nevil", None),
        Err(KeyError::InvalidComment { .. })
    ));
    let missing_dir = dir.path().join("no/such/dir/key");
    let message = write_keypair(&missing_dir, "x", None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("no/such/dir"), "{message}");
}

/// Lowercase or uppercase hex to bytes, for the fixed vectors below.
fn unhex<const N: usize>(text: &str) -> [u8; N] {
    assert_eq!(text.len(), 2 * N, "{text}");
    let mut bytes = [0u8; N];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).unwrap();
    }
    bytes
}

/// The message every fixed vector below signs.
const VECTOR_MESSAGE: &[u8] = b"rollbook strict vector";

/// Fixed signatures over `VECTOR_MESSAGE` made with raw scalar arithmetic (not by a signing
/// key), each built to hold one edge case that strict verification exists for, with
/// ed25519-dalek's `verify_strict` verdict: (case, public key, signature, accepted).
const STRICT_VECTORS: &[(&str, &str, &str, bool)] = &[
    // R is the identity (r = 0, S = k*a): the cofactorless equation holds, R is of small order.
    (
        "small-order R",
        "4ae2c9491b568c1a37458340097898fb2903f82e1af669cd5eb48cd7d8517276",
        "0100000000000000000000000000000000000000000000000000000000000000\
         0cf39a361106acd1c587761798d4358f64b472d98761b032e6d032c1ddc80e0a",
        false,
    ),
    // R of order 2 under the same key: the equation does not hold either.
    (
        "small-order R of order 2",
        "4ae2c9491b568c1a37458340097898fb2903f82e1af669cd5eb48cd7d8517276",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\
         d2c5d4b4a16d5daa87d7e2a04ec3a1212d0e58c1b6bed3a6a2bfa0f2b8e51803",
        false,
    ),
    // A key and a nonce with torsion parts that cancel in the cofactorless equation: strict
    // verification accepts it (only the cofactored equation would differ here).
    (
        "mixed-order key and R, equation holds",
        "5540e881d3b1e0eb2f95456682307ed05568175e11c6644dfbd0539ecd70bb3b",
        "cd2469fc97b9e87ed7a7d4343662e6a29b1c00e8da9e5fc44d13327501f30e75\
         f5051c04202562aef2919edf66bccbe1bb20fdf69c04096a122236461329d007",
        true,
    ),
    // Torsion parts that do not cancel: refused.
    (
        "mixed-order key and R, equation fails",
        "c843e64a28dd074445af543d4a36b7b8acc96feb6f839b7bcdfbe928d340e59c",
        "3191030ed861938d81b9b071fc1761d9911a78b5d2a1d64adb5667349e7e1e17\
         1d4d459e45f2c33bd58e916b783fe4e32651612c37fb221a4f1f9e4544079209",
        false,
    ),
];

#[test]
fn strict_verification_of_edge_case_vectors() {
    for (case, key, signature, accepted) in STRICT_VECTORS {
        let key = PublicKey::from_bytes_checked(&unhex(key)).unwrap();
        let signature = Signature::from_bytes(&unhex(&signature.replace(' ', "")));
        let verdict = key.verify_strict(VECTOR_MESSAGE, &signature);
        assert_eq!(verdict.is_ok(), *accepted, "{case}: {verdict:?}");
        if !accepted {
            assert!(matches!(verdict, Err(KeyError::BadSignature)), "{case}");
        }
    }
}

#[test]
fn a_weak_key_is_refused_even_where_its_equation_holds() {
    // Key = the identity (a = 0), R = [r]B, S = r: [S]B - [k]A = R, so only the key's small
    // order refuses this signature.
    let identity = unhex::<32>("0100000000000000000000000000000000000000000000000000000000000000");
    let signature = unhex::<64>(
        "3191030ed861938d81b9b071fc1761d9911a78b5d2a1d64adb5667349e7e1e17\
         f7fc87134415d33347c2a7f333621e2b3622b35720649aa16c1cef169d448507",
    );
    assert!(matches!(
        PublicKey::from_bytes_checked(&identity),
        Err(KeyError::WeakKey)
    ));
    // The primitive rollbook relies on refuses it too, had a weak key got through.
    let dalek = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    assert!(dalek
        .verify_strict(VECTOR_MESSAGE, &Signature::from_bytes(&signature))
        .is_err());
}

#[test]
fn any_changed_bit_or_byte_is_refused() {
    for seed in 0u8..8 {
        let secret = SecretKey::parse(
            &SigningKey::from_bytes(&[seed; 32])
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .unwrap(),
        )
        .unwrap();
        let public = secret.public();
        let message = format!("roll {seed}").into_bytes();
        let signature = secret.sign(&message);
        public
            .verify_strict(&message, &Signature::from_bytes(&signature))
            .unwrap();
        // Bits of R (the first 256) and of S, the top ones included.
        for bit in [0usize, 7, 100, 255, 256, 300, 500, 504, 511] {
            let mut forged = signature;
            forged[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(
                public.verify_strict(&message, &Signature::from_bytes(&forged)),
                Err(KeyError::BadSignature)
            ));
        }
        let mut longer = message.clone();
        longer.push(0);
        assert!(public
            .verify_strict(&longer, &Signature::from_bytes(&signature))
            .is_err());
        assert!(public
            .verify_strict(&message[1..], &Signature::from_bytes(&signature))
            .is_err());
        // R spelled y + p (not canonical; a point for y < 19 where it decodes): refused.
        for y in 0u8..19 {
            let mut forged = signature;
            forged[..32].fill(0xff);
            forged[0] = 0xed + y;
            forged[31] = 0x7f;
            assert!(public
                .verify_strict(&message, &Signature::from_bytes(&forged))
                .is_err());
        }
    }
}
