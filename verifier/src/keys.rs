//! Key files and the randomness behind them, with a seeded twin for tests.
//!
//! A key file holds the 32-byte Ed25519 secret seed as 64 hexadecimal characters and a newline.

use std::path::Path;

use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};

/// Where random bytes come from.
pub trait Entropy: Send + Sync {
    fn fill(&self, bytes: &mut [u8]);
}

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        OsRng.fill_bytes(bytes);
    }
}

/// A deterministic generator (SHA-256 in counter mode over a seed) for reproducible tests and
/// simulations. Never used for real keys.
#[derive(Debug)]
pub struct SeededEntropy {
    seed: u64,
    counter: std::sync::atomic::AtomicU64,
}

impl SeededEntropy {
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy {
            seed,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        use sha2::{Digest, Sha256};
        for chunk in bytes.chunks_mut(32) {
            let counter = self
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let block = Sha256::new()
                .chain_update(self.seed.to_be_bytes())
                .chain_update(counter.to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

pub fn generate_key(entropy: &dyn Entropy) -> SigningKey {
    let mut seed = [0; 32];
    entropy.fill(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// A fresh command nonce: 16 random bytes as 32 lowercase hexadecimal characters.
pub fn generate_nonce(entropy: &dyn Entropy) -> String {
    let mut bytes = [0; 16];
    entropy.fill(&mut bytes);
    hex::encode(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path} does not hold 64 hexadecimal characters")]
    Malformed { path: String },
}

pub fn read_key_file(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut seed = [0; 32];
    hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| KeyFileError::Malformed {
        path: path.display().to_string(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file readable by its owner only; refuses to overwrite an existing one.
pub fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let line = format!("{}\n", hex::encode(key.to_bytes()));
    write_private_file(path, line.as_bytes()).map_err(|source| KeyFileError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `contents` to a new file that only its owner can read, synced; never overwrites.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Reads the key at `path`, or creates it there if the file does not exist yet.
pub fn read_or_create_key_file(
    path: &Path,
    entropy: &dyn Entropy,
) -> Result<(SigningKey, bool), KeyFileError> {
    if path.exists() {
        return Ok((read_key_file(path)?, false));
    }
    let key = generate_key(entropy);
    write_key_file(path, &key)?;
    Ok((key, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_reads_back_the_key_written() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("citizen.key");
        let key = generate_key(&SeededEntropy::new(1));
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(
            write_key_file(&path, &key).is_err(),
            "an existing key file is never overwritten"
        );
    }

    #[test]
    fn seeded_entropy_repeats_for_the_same_seed_and_differs_across_seeds() {
        let first = generate_nonce(&SeededEntropy::new(7));
        assert_eq!(first, generate_nonce(&SeededEntropy::new(7)));
        assert_ne!(first, generate_nonce(&SeededEntropy::new(8)));
        assert_eq!(first.len(), 32);
    }
}
