//! The registrar role's credential issuer for anonymous polls: a 2048-bit RSA key held by the node
//! in its data directory (`issuer.key`, beside `server.key`), which signs citizens' blinded
//! credential messages (RFC 9474) and never enters the log; its public half does, in the
//! definitions of the polls it issues for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use blind_rsa_signatures::SecretKey;
use projections::credential::{padding_options, IssuerKey};
use projections::limits;

/// Why the issuer key cannot be used, or a blinded message cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot read the issuer key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the issuer key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the issuer key file {path} does not hold a valid {}-bit RSA private key (PKCS #8 PEM)",
        limits::ISSUER_KEY_BITS
    )]
    Malformed { path: String },
    #[error("an issuer key could not be generated")]
    Generation,
    #[error(
        "this node already holds {} issuer keys, the most it keeps",
        limits::ISSUER_KEYS_MAX
    )]
    TooManyKeys,
    #[error("the blinded message is {length_bytes} bytes, not the issuer modulus's {expected_bytes}, or not below it")]
    BlindedMessage {
        length_bytes: usize,
        expected_bytes: usize,
    },
}

/// The registrar role's credential issuer key for anonymous polls (see `issuer.rs`).
pub const ISSUER_KEY_FILE: &str = "issuer.key";

/// The directory, inside the data directory, of the issuer keys for districts.
pub const DISTRICT_ISSUER_DIRECTORY: &str = "issuer-keys";

/// The node's issuers: `issuer.key` for audiences without districts, and one key per district
/// in `issuer-keys/`, each created the first time an official asks for it. A poll for districts
/// names one key per district, so each ballot's credential tells which district's residents it
/// counts among, and the log can show counted ≤ issued for every district.
pub struct IssuerRing {
    data_directory: PathBuf,
    /// Every issuer read or created so far, by the district it issues for.
    held: Mutex<Vec<(Option<String>, Arc<Issuer>)>>,
}

impl IssuerRing {
    /// The ring of the data directory at `data_directory`, with every issuer key already there
    /// read and checked.
    pub fn open(data_directory: &Path) -> Result<IssuerRing, IssuerError> {
        let ring = IssuerRing {
            data_directory: data_directory.to_path_buf(),
            held: Mutex::new(Vec::new()),
        };
        let mut held = Vec::new();
        let main = data_directory.join(ISSUER_KEY_FILE);
        if main.exists() {
            held.push((None, Arc::new(Issuer::read(&main)?)));
        }
        let directory = data_directory.join(DISTRICT_ISSUER_DIRECTORY);
        if let Ok(files) = std::fs::read_dir(&directory) {
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|extension| extension == "key") {
                    let district = std::fs::read_to_string(path.with_extension("district"))
                        .map_err(|source| IssuerError::Read {
                            path: path.with_extension("district").display().to_string(),
                            source,
                        })?;
                    held.push((Some(district), Arc::new(Issuer::read(&path)?)));
                }
            }
        }
        *ring.lock() = held;
        Ok(ring)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Option<String>, Arc<Issuer>)>> {
        // A panic while holding the lock left the list whole: each push is one step.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The issuer for `district` (for audiences without districts when `None`), created on
    /// first use.
    pub fn for_district(&self, district: Option<&str>) -> Result<Arc<Issuer>, IssuerError> {
        let mut held = self.lock();
        if let Some((_, issuer)) = held.iter().find(|(named, _)| named.as_deref() == district) {
            return Ok(issuer.clone());
        }
        // Each new key costs a key generation and a file: asking for endless districts must not.
        if held.len() >= limits::ISSUER_KEYS_MAX {
            return Err(IssuerError::TooManyKeys);
        }
        let path = match district {
            None => self.data_directory.join(ISSUER_KEY_FILE),
            Some(district) => self.district_key_path(district)?,
        };
        let (issuer, created) = Issuer::read_or_create(&path)?;
        if created {
            tracing::info!(file = %path.display(), district = district.unwrap_or(""), "created an issuer key");
        }
        let issuer = Arc::new(issuer);
        held.push((district.map(str::to_string), issuer.clone()));
        Ok(issuer)
    }

    /// The path of `district`'s key: named by a digest, since district names are any text; the
    /// name itself is written beside it.
    fn district_key_path(&self, district: &str) -> Result<PathBuf, IssuerError> {
        use sha2::Digest;
        let directory = self.data_directory.join(DISTRICT_ISSUER_DIRECTORY);
        let write_error = |path: &Path, source| IssuerError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&directory).map_err(|source| write_error(&directory, source))?;
        let name = hex::encode(&sha2::Sha256::digest(district.as_bytes())[..16]);
        let path = directory.join(format!("{name}.key"));
        let named = path.with_extension("district");
        std::fs::write(&named, district).map_err(|source| write_error(&named, source))?;
        Ok(path)
    }

    /// The held issuer whose public key is `key`, if this node holds it.
    pub fn holding(&self, key: &IssuerKey) -> Option<Arc<Issuer>> {
        self.lock()
            .iter()
            .find(|(_, issuer)| issuer.public_key() == key)
            .map(|(_, issuer)| issuer.clone())
    }
}

/// The node's issuer: its secret key and the public key polls name.
pub struct Issuer {
    secret: SecretKey,
    public: IssuerKey,
}

impl Issuer {
    /// Reads the issuer key at `path`, or creates it there (readable by its owner only) if the
    /// file does not exist yet: whether it was created.
    pub fn read_or_create(path: &Path) -> Result<(Issuer, bool), IssuerError> {
        if path.exists() {
            return Ok((Issuer::read(path)?, false));
        }
        let generated =
            blind_rsa_signatures::KeyPair::generate(&mut rand_core::OsRng, limits::ISSUER_KEY_BITS)
                .map_err(|_| IssuerError::Generation)?;
        let pem = generated.sk.to_pem().map_err(|_| IssuerError::Generation)?;
        crate::keys::write_private_file(path, pem.as_bytes()).map_err(|source| {
            IssuerError::Write {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok((Issuer::read(path)?, true))
    }

    /// Reads and checks the issuer key at `path`.
    pub fn read(path: &Path) -> Result<Issuer, IssuerError> {
        let malformed = || IssuerError::Malformed {
            path: path.display().to_string(),
        };
        let pem = std::fs::read_to_string(path).map_err(|source| IssuerError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let secret = SecretKey::from_pem(&pem).map_err(|_| malformed())?;
        let public = {
            use rsa::pkcs8::EncodePublicKey;
            let public = rsa::RsaPublicKey::from(&secret.0);
            let der = public.to_public_key_der().map_err(|_| malformed())?;
            IssuerKey::from_der(der.as_bytes()).map_err(|_| malformed())?
        };
        Ok(Issuer { secret, public })
    }

    /// The public key an anonymous poll's definition names.
    pub fn public_key(&self) -> &IssuerKey {
        &self.public
    }

    /// Signs a citizen's blinded credential message. RSA's own blinding (fresh randomness) keeps
    /// the signing time independent of the secret exponent; the result is deterministic.
    pub fn blind_sign(&self, blinded_message: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let refused = || IssuerError::BlindedMessage {
            length_bytes: blinded_message.len(),
            expected_bytes: self.public.modulus_bytes(),
        };
        let signed = self
            .secret
            .blind_sign(&mut rand_core::OsRng, blinded_message, &padding_options())
            .map_err(|_| refused())?;
        Ok(signed.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::protocol::PublicKey;
    use veche_verifier::credentials::{BlindingError, PendingCredential};

    #[test]
    fn an_issuer_key_is_created_once_private_to_its_owner_and_read_back_the_same() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(ISSUER_KEY_FILE);
        let (created, was_created) = Issuer::read_or_create(&path).unwrap();
        assert!(was_created);
        let (read, was_created) = Issuer::read_or_create(&path).unwrap();
        assert!(!was_created);
        assert_eq!(read.public_key(), created.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            Issuer::read(&path),
            Err(IssuerError::Malformed { .. })
        ));
    }

    #[test]
    fn a_citizen_blinds_the_issuer_signs_and_the_unblinded_credential_verifies_unlinkably() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(ISSUER_KEY_FILE);
        let (issuer, _) = Issuer::read_or_create(&path).unwrap();
        let ballot_key = PublicKey([5; 32]);
        let pending = PendingCredential::blind(issuer.public_key(), 40, ballot_key).unwrap();
        let signed = issuer.blind_sign(&pending.blinded_message).unwrap();
        let credential = pending.finalize(&signed).unwrap();
        assert_eq!(
            credential.verify(issuer.public_key(), 40, &ballot_key),
            Ok(())
        );
        // What the issuer saw (the blinded message and its own answer) is not what the ballot
        // carries: neither the credential's signature nor its message appears in the request.
        assert_ne!(credential.signature, signed);
        assert_ne!(credential.signature, pending.blinded_message);
        let again = PendingCredential::blind(issuer.public_key(), 40, ballot_key).unwrap();
        assert_ne!(
            again.blinded_message, pending.blinded_message,
            "the same ballot key blinds differently each time"
        );
        assert_eq!(
            pending.finalize(&signed[1..]),
            Err(BlindingError::SignatureLength {
                length_bytes: 255,
                expected_bytes: 256
            })
        );
        let other = issuer.blind_sign(&again.blinded_message).unwrap();
        assert_eq!(pending.finalize(&other), Err(BlindingError::DoesNotVerify));
        assert!(issuer.blind_sign(&[1; 255]).is_err());
        assert!(
            issuer.blind_sign(&[0xff; 256]).is_err(),
            "not below the modulus"
        );
    }
}
