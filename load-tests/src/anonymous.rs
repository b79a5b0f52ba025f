//! The anonymous scenario: the poll names the node's issuer key (and a co-issuer's, with
//! `--co-issuer`). Every citizen blinds a credential message for a fresh per-poll ballot key,
//! requests credentials, fetches each issuer's blind signature and unblinds it; then each
//! ballot key casts. Requests, signature fetches and ballots are timed as phases of their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use projections::command::{Anonymity, AnonymousBallot, CredentialRequest};
use projections::credential::{BlindedMessage, Credential, IssuerKey};
use projections::protocol::public_key_of;
use projections::{Action, PublicKey};
use veche::keys::{generate_key, OsEntropy};
use veche_verifier::credentials::PendingCredential;

use crate::{answer_of, choice_of, fire, on_every_core, presign, Job, Outcome, Phase, Sample};

/// Who issues the poll's credentials: the node, and perhaps a co-issuer at its own address.
pub struct Issuers {
    node: IssuerKey,
    co_issuer: Option<(String, IssuerKey)>,
}

impl Issuers {
    /// Reads the node's issuer key and, given its address, the co-issuer's.
    pub async fn fetch(
        http: &reqwest::Client,
        base: &str,
        co_issuer: Option<&str>,
    ) -> anyhow::Result<Issuers> {
        let node = issuer_key_at(http, &format!("{base}/v1/issuer-keys")).await?;
        let co_issuer = match co_issuer {
            Some(address) => {
                let address = address.trim_end_matches('/').to_string();
                let key = issuer_key_at(http, &format!("{address}/v1/co-issuer")).await?;
                Some((address, key))
            }
            None => None,
        };
        Ok(Issuers { node, co_issuer })
    }

    /// What the poll's definition names.
    pub fn anonymity(&self) -> Anonymity {
        Anonymity {
            issuer_keys: vec![self.node.clone()],
            co_issuer_key: self.co_issuer.as_ref().map(|(_, key)| key.clone()),
        }
    }
}

async fn issuer_key_at(http: &reqwest::Client, url: &str) -> anyhow::Result<IssuerKey> {
    let (status, body) = answer_of(http.get(url), url).await?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {body}");
    }
    serde_json::from_value(body["issuer_key"].clone())
        .with_context(|| format!("GET {url} gave no issuer key: {body}"))
}

/// One citizen's anonymous voter: the per-poll ballot key and its credentials, pending until
/// the blind signatures are unblinded.
struct Voter {
    citizen: PublicKey,
    ballot_key: SigningKey,
    node: PendingCredential,
    co_issuer: Option<PendingCredential>,
    credential: Option<Credential>,
    co_issuer_credential: Option<Credential>,
}

/// What the issuance phases measured, and the anonymous ballots signed and ready to fire.
pub struct Issuance {
    pub phases: Vec<Phase>,
    /// Blinding every credential message, before the requests are signed.
    pub blinding: Duration,
    /// Signing the ballots, once the credentials are unblinded.
    pub presign: Duration,
    /// How many node credentials one core verifies per second, measured on one from this run.
    pub credential_verifications_per_second: f64,
    pub ballots: Vec<Job>,
}

/// Requests every citizen's credentials, fetches and unblinds them, then pre-signs one anonymous
/// ballot per ballot key.
pub async fn issue(
    http: &reqwest::Client,
    base: &str,
    issuers: &Issuers,
    citizens: &[SigningKey],
    poll: u64,
    options: usize,
    concurrency: usize,
) -> anyhow::Result<Issuance> {
    let started = Instant::now();
    let mut voters = blind_all(issuers, citizens, poll)?;
    let blinding = started.elapsed();
    let requests = request_jobs(&voters, citizens, poll, base)?;
    let mut phases = vec![fire(http, requests, concurrency, "requests", 0).await?];
    let node_urls = signature_urls(base, &voters, poll);
    let (phase, signatures) = fetch_all(http, node_urls, concurrency, "node signatures").await?;
    phases.push(phase);
    for (voter, signature) in voters.iter_mut().zip(signatures) {
        voter.credential = finalize(&voter.node, signature)?;
    }
    if let Some((address, _)) = &issuers.co_issuer {
        let urls = signature_urls(address, &voters, poll);
        let (phase, signatures) = fetch_all(http, urls, concurrency, "co-issuer sigs").await?;
        phases.push(phase);
        for (voter, signature) in voters.iter_mut().zip(signatures) {
            let pending = voter
                .co_issuer
                .as_ref()
                .context("a voter has no co-issuer blinding")?;
            voter.co_issuer_credential = finalize(pending, signature)?;
        }
    }
    let started = Instant::now();
    let ballots = ballot_jobs(&voters, poll, options, base)?;
    let presign = started.elapsed();
    Ok(Issuance {
        phases,
        blinding,
        presign,
        credential_verifications_per_second: single_core_credential_rate(
            &issuers.node,
            &voters,
            poll,
        ),
        ballots,
    })
}

/// A fresh ballot key per citizen, its credential message blinded for each issuer, on every
/// core (blinding is an RSA operation).
fn blind_all(issuers: &Issuers, citizens: &[SigningKey], poll: u64) -> anyhow::Result<Vec<Voter>> {
    on_every_core(citizens, |key| blind_one(issuers, key, poll))
}

fn blind_one(issuers: &Issuers, citizen: &SigningKey, poll: u64) -> anyhow::Result<Voter> {
    let ballot_key = generate_key(&OsEntropy);
    let ballot_public = public_key_of(&ballot_key);
    let node = PendingCredential::blind(&issuers.node, poll, ballot_public)?;
    let co_issuer = match &issuers.co_issuer {
        Some((_, key)) => Some(PendingCredential::blind(key, poll, ballot_public)?),
        None => None,
    };
    Ok(Voter {
        citizen: public_key_of(citizen),
        ballot_key,
        node,
        co_issuer,
        credential: None,
        co_issuer_credential: None,
    })
}

fn request_jobs(
    voters: &[Voter],
    citizens: &[SigningKey],
    poll: u64,
    base: &str,
) -> anyhow::Result<Vec<Job>> {
    let by_citizen: HashMap<PublicKey, &Voter> =
        voters.iter().map(|voter| (voter.citizen, voter)).collect();
    presign(
        citizens,
        |key| {
            let voter = by_citizen[&public_key_of(key)];
            let request = CredentialRequest {
                poll,
                blinded_message: BlindedMessage(voter.node.blinded_message.clone()),
                co_issuer_blinded_message: voter
                    .co_issuer
                    .as_ref()
                    .map(|pending| BlindedMessage(pending.blinded_message.clone())),
            };
            (Action::RequestCredentials(request), None)
        },
        base,
    )
}

fn signature_urls(address: &str, voters: &[Voter], poll: u64) -> Vec<String> {
    voters
        .iter()
        .map(|voter| format!("{address}/v1/polls/{poll}/credentials/{}", voter.citizen))
        .collect()
}

fn finalize(
    pending: &PendingCredential,
    signature: Option<Vec<u8>>,
) -> anyhow::Result<Option<Credential>> {
    match signature {
        Some(signature) => Ok(Some(pending.finalize(&signature)?)),
        None => Ok(None),
    }
}

fn ballot_jobs(
    voters: &[Voter],
    poll: u64,
    options: usize,
    base: &str,
) -> anyhow::Result<Vec<Job>> {
    // Only a voter whose every credential arrived can cast.
    let ready: Vec<&Voter> = voters
        .iter()
        .filter(|voter| {
            voter.credential.is_some()
                && (voter.co_issuer.is_none() || voter.co_issuer_credential.is_some())
        })
        .collect();
    let by_ballot_key: HashMap<PublicKey, &Voter> = ready
        .iter()
        .map(|voter| (public_key_of(&voter.ballot_key), *voter))
        .collect();
    let keys: Vec<SigningKey> = ready.iter().map(|voter| voter.ballot_key.clone()).collect();
    presign(
        &keys,
        |key| {
            let voter = by_ballot_key[&public_key_of(key)];
            let option = choice_of(key, options);
            let ballot = AnonymousBallot {
                poll,
                choices: vec![u32::try_from(option).unwrap_or(0)],
                district: None,
                credential: voter
                    .credential
                    .clone()
                    .unwrap_or_else(|| unreachable!("filtered above")),
                co_issuer_credential: voter.co_issuer_credential.clone(),
            };
            (Action::CastAnonymousBallot(ballot), Some(option))
        },
        base,
    )
}

/// How long a fetch waits for an issuer that has not yet seen the request (the co-issuer follows
/// the log a second behind).
const NOT_YET_SEEN_RETRY: Duration = Duration::from_millis(200);
const NOT_YET_SEEN_TIMEOUT: Duration = Duration::from_secs(30);

/// GETs every blind signature from `concurrency` workers; returns the phase and, in order, each
/// signature (`None` where the issuer did not answer).
async fn fetch_all(
    http: &reqwest::Client,
    urls: Vec<String>,
    concurrency: usize,
    name: &'static str,
) -> anyhow::Result<(Phase, Vec<Option<Vec<u8>>>)> {
    let offered = urls.len();
    let queue = Arc::new(Mutex::new(urls.into_iter().enumerate()));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(offered).max(1))
        .map(|_| {
            let queue = queue.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let next = match queue.lock() {
                        Ok(mut urls) => urls.next(),
                        Err(poisoned) => poisoned.into_inner().next(),
                    };
                    let Some((index, url)) = next else { break };
                    let sent = Instant::now();
                    let (outcome, signature) = fetch_one(&http, &url).await;
                    let answered_at = Instant::now();
                    let sample = Sample {
                        outcome,
                        latency: answered_at - sent,
                        option: None,
                        answered_at,
                    };
                    answers.push((index, sample, signature));
                }
                answers
            })
        })
        .collect();
    let mut signatures = vec![None; offered];
    let mut samples = Vec::with_capacity(offered);
    for worker in workers {
        for (index, sample, signature) in worker.await.context("a fetching task failed")? {
            signatures[index] = signature;
            samples.push(sample);
        }
    }
    Ok((
        Phase::of(name, offered, samples, started.elapsed()),
        signatures,
    ))
}

/// One blind signature, retried while the issuer answers 404 (it has not followed the log that
/// far yet).
async fn fetch_one(http: &reqwest::Client, url: &str) -> (Outcome, Option<Vec<u8>>) {
    let deadline = Instant::now() + NOT_YET_SEEN_TIMEOUT;
    loop {
        let (status, body) = match answer_of(http.get(url), url).await {
            Ok(answer) => answer,
            Err(error) => return (Outcome::Failed(format!("transport: {error}")), None),
        };
        if status.is_success() {
            let signature = body["blind_signature"]
                .as_str()
                .and_then(|text| hex::decode(text).ok());
            return match signature {
                Some(signature) => (Outcome::Acknowledged(None), Some(signature)),
                None => (Outcome::Failed("no-blind-signature".into()), None),
            };
        }
        if status != reqwest::StatusCode::NOT_FOUND || Instant::now() > deadline {
            let code = crate::problem_code_of(&body)
                .unwrap_or_else(|| format!("http-{}", status.as_u16()));
            return (Outcome::Rejected(code), None);
        }
        tokio::time::sleep(NOT_YET_SEEN_RETRY).await;
    }
}

/// Times one core verifying the first finished credential again and again, as the writer's
/// decision and every replay do for each ballot.
fn single_core_credential_rate(issuer: &IssuerKey, voters: &[Voter], poll: u64) -> f64 {
    let Some((voter, credential)) = voters.iter().find_map(|voter| {
        voter
            .credential
            .as_ref()
            .map(|credential| (voter, credential))
    }) else {
        return 0.0;
    };
    let ballot_key = public_key_of(&voter.ballot_key);
    let rounds = 300u32;
    let started = Instant::now();
    for _ in 0..rounds {
        let _ = std::hint::black_box(credential).verify(issuer, poll, &ballot_key);
    }
    f64::from(rounds) / started.elapsed().as_secs_f64().max(1e-9)
}

/// The mean size in bytes of the jobs' request bodies (the signed envelopes).
pub fn mean_body_bytes(jobs: &[Job]) -> f64 {
    if jobs.is_empty() {
        return 0.0;
    }
    jobs.iter().map(|job| job.body.len()).sum::<usize>() as f64 / jobs.len() as f64
}
