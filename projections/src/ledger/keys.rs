//! Keys and roles: the log's identity (server key, admin keys), every registered key, the roles
//! the admin grants and the attestations registrars make.
//!
//! Invariant: a key is registered once, by itself; roles and attestations name registered keys
//! only, so `evolve` finds every record it changes.

use std::collections::BTreeMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::refusal::Refusal;
use crate::command::{
    AdminHandOver, Attestation, Genesis, KeyRevocation, RecoveryApproval, RecoveryQuorum,
    RegisterKey, Role, RoleChange,
};
use crate::keyed_map::KeyedMap;
use crate::limits;
use crate::protocol::PublicKey;
use crate::text::{check_field, Lines};
use crate::time::Timestamp;

/// The actions whose rules live here.
#[derive(Clone, Copy, Debug)]
pub enum KeyAction<'a> {
    Genesis(&'a Genesis),
    RegisterKey(&'a RegisterKey),
    GrantRole(&'a RoleChange),
    RevokeRole(&'a RoleChange),
    HandOverAdmin(&'a AdminHandOver),
    ApproveRecovery(&'a RecoveryApproval),
    AttestResident(&'a Attestation),
    RevokeKey(&'a KeyRevocation),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogIdentity {
    pub server_key: PublicKey,
    pub log_origin: String,
    pub admin_keys: std::collections::BTreeSet<PublicKey>,
    /// Who may replace an admin key, fixed at genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryQuorum>,
}

/// Approvals gathered so far for replacing one admin key with one successor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecovery {
    pub revoked: PublicKey,
    pub successor: PublicKey,
    pub approvers: std::collections::BTreeSet<PublicKey>,
}

/// Where in the log a key took an office: the granting entry's position and server time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub position: u64,
    pub server_time: Timestamp,
}

impl Grant {
    fn of(event: &Event) -> Grant {
        Grant {
            position: event.position,
            server_time: event.server_time,
        }
    }
}

/// A role a key holds: an official's department, and the grant it holds the role since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRole {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    pub granted: Grant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub registered_at_position: u64,
    pub registered_at: Timestamp,
    /// The attestation, boxed: most keys are citizens without one, and a record without it
    /// takes 24 bytes instead of 72 (a million records in every ledger copy).
    pub(super) standing: Option<Box<KeyStanding>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeyStanding {
    pub(super) district: Option<String>,
    pub(super) verified: bool,
    /// The resident tag of the key's attestation; kept after revocation, so the resident's
    /// earlier ballots stay theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) resident_tag: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) revoked: bool,
}

/// One resident, known by the registrar's tag alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// The registration position of the first key attested with this tag: the resident's
    /// number wherever one voice per resident counts (ballots), whichever key they use.
    pub number: u64,
    /// The key attested with this tag that is not revoked, if any: at most one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_key: Option<PublicKey>,
}

static NO_ROLES: BTreeMap<Role, HeldRole> = BTreeMap::new();

impl KeyRecord {
    pub(super) fn new(registered_at_position: u64, registered_at: Timestamp) -> KeyRecord {
        KeyRecord {
            registered_at_position,
            registered_at,
            standing: None,
        }
    }

    /// The district a registrar attested, if any.
    pub fn district(&self) -> Option<&str> {
        self.standing
            .as_ref()
            .and_then(|standing| standing.district.as_deref())
    }

    /// Whether a registrar attested the holder as a verified resident.
    pub fn verified(&self) -> bool {
        self.standing
            .as_ref()
            .is_some_and(|standing| standing.verified)
    }

    /// The registrar's tag for the resident this key was attested for, if any.
    pub fn resident_tag(&self) -> Option<&str> {
        let standing = self.standing.as_deref()?;
        standing.resident_tag.as_deref()
    }

    /// Whether the key was revoked: it can do nothing more.
    pub fn revoked(&self) -> bool {
        self.standing
            .as_deref()
            .is_some_and(|standing| standing.revoked)
    }

    pub(super) fn standing_mut(&mut self) -> &mut KeyStanding {
        self.standing.get_or_insert_with(Box::default)
    }
}

/// The keys aggregate. Read access to the records goes through `Deref` (a key-ordered
/// `KeyedMap`); only `evolve` changes them.
///
/// Serialised (inside the ledger's JSON, flattened) without its records: they are many, and
/// snapshots pack them in a binary form of their own. The roles and the admins' grants, few,
/// stay in the JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    identity: Option<LogIdentity>,
    /// Recoveries short of their threshold, in the order they were first approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending_recoveries: Vec<PendingRecovery>,
    /// Every resident tag a registrar attested, with its active key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) residents: BTreeMap<String, Resident>,
    /// Every registered key. A hash map: only ever looked up by key, and with a million citizens
    /// it takes about half the memory of an ordered map; walked only in key order.
    #[serde(skip)]
    pub(super) records: KeyedMap<PublicKey, KeyRecord>,
    /// The roles each key holds now, with their grants. Kept apart from the records: role
    /// holders are the city's few staff, and listing them must not walk a million citizens.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) roles: BTreeMap<PublicKey, BTreeMap<Role, HeldRole>>,
    /// Each admin key with the entry that made it one: the genesis, a hand-over or the
    /// recovery approval that reached the threshold. Its keys are the identity's admin keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    admins_since: BTreeMap<PublicKey, Grant>,
}

impl Deref for Keys {
    type Target = KeyedMap<PublicKey, KeyRecord>;

    fn deref(&self) -> &Self::Target {
        &self.records
    }
}

impl Keys {
    /// The log's identity, from its genesis entry; `None` before it.
    pub fn identity(&self) -> Option<&LogIdentity> {
        self.identity.as_ref()
    }

    pub fn server_key(&self) -> Option<PublicKey> {
        self.identity.as_ref().map(|identity| identity.server_key)
    }

    pub fn is_admin(&self, key: PublicKey) -> bool {
        self.identity
            .as_ref()
            .is_some_and(|identity| identity.admin_keys.contains(&key))
    }

    /// Recoveries short of their threshold.
    pub fn pending_recoveries(&self) -> &[PendingRecovery] {
        &self.pending_recoveries
    }

    fn is_recovery_key(&self, key: PublicKey) -> bool {
        self.identity
            .as_ref()
            .and_then(|identity| identity.recovery.as_ref())
            .is_some_and(|quorum| quorum.keys.contains(&key))
    }

    pub fn is_registered(&self, key: PublicKey) -> bool {
        self.records.contains_key(&key)
    }

    pub fn is_revoked(&self, key: PublicKey) -> bool {
        self.records.get(&key).is_some_and(KeyRecord::revoked)
    }

    /// Every attested resident by tag: anyone can check that none has two active keys.
    pub fn residents(&self) -> &BTreeMap<String, Resident> {
        &self.residents
    }

    /// The number one voice is counted under: the resident's where the key carries a resident
    /// tag (so a resident's new key continues their old key's ballot), else the key's own
    /// registration position.
    pub fn voter_number(&self, key: PublicKey) -> Option<u64> {
        let record = self.records.get(&key)?;
        match record.resident_tag() {
            Some(tag) => match self.residents.get(tag) {
                Some(resident) => Some(resident.number),
                None => unreachable!("key {key:?} carries a resident tag no attestation recorded"),
            },
            None => Some(record.registered_at_position),
        }
    }

    /// The resident tag of `key` while it is attested as a verified resident and not revoked.
    pub fn active_resident_tag(&self, key: PublicKey) -> Option<&str> {
        let record = self.records.get(&key)?;
        if record.revoked() || !record.verified() {
            return None;
        }
        record.resident_tag()
    }

    /// The roles `key` holds now (none for an unknown key); officials carry their department.
    pub fn roles_of(&self, key: PublicKey) -> &BTreeMap<Role, HeldRole> {
        self.roles.get(&key).unwrap_or(&NO_ROLES)
    }

    /// Every key holding a role now, in key order, with its roles.
    pub fn role_holders(&self) -> &BTreeMap<PublicKey, BTreeMap<Role, HeldRole>> {
        &self.roles
    }

    /// Every admin key, in key order, with the entry that made it one.
    pub fn admins_since(&self) -> &BTreeMap<PublicKey, Grant> {
        &self.admins_since
    }

    pub fn holds_role(&self, key: PublicKey, role: Role) -> bool {
        self.roles_of(key).contains_key(&role)
    }

    pub fn is_official_of(&self, key: PublicKey, department: &str) -> bool {
        self.roles_of(key)
            .get(&Role::Official)
            .is_some_and(|held| held.department.as_deref() == Some(department))
    }

    /// The refusal for `author` acting on something `department` answers for: none when they
    /// are its official, else whether they are an official at all.
    pub fn require_official_of(
        &self,
        author: PublicKey,
        department: Option<&str>,
    ) -> Result<(), Refusal> {
        match department {
            Some(department) if self.is_official_of(author, department) => Ok(()),
            _ if self.holds_role(author, Role::Official) => Err(Refusal::NotResponsibleDepartment),
            _ => Err(Refusal::NotOfficial),
        }
    }

    /// May `author` do `action` now?
    pub fn decide(&self, action: KeyAction<'_>, author: PublicKey) -> Result<(), Refusal> {
        match action {
            KeyAction::Genesis(genesis) => decide_genesis(genesis),
            KeyAction::RegisterKey(_) => self.decide_registration(author),
            KeyAction::GrantRole(change) => self.decide_role_change(author, change, true),
            KeyAction::RevokeRole(change) => self.decide_role_change(author, change, false),
            KeyAction::HandOverAdmin(hand_over) => {
                if !self.is_admin(author) {
                    return Err(Refusal::NotAdmin);
                }
                self.check_successor(hand_over.successor)
            }
            KeyAction::ApproveRecovery(approval) => self.decide_recovery(author, approval),
            KeyAction::AttestResident(attestation) => self.decide_attestation(author, attestation),
            KeyAction::RevokeKey(revocation) => self.decide_revocation(author, revocation),
        }
    }

    fn decide_registration(&self, author: PublicKey) -> Result<(), Refusal> {
        if author.is_weak() {
            Err(Refusal::WeakKey)
        } else if self.records.contains_key(&author) {
            Err(Refusal::KeyAlreadyRegistered)
        } else {
            Ok(())
        }
    }

    fn decide_role_change(
        &self,
        author: PublicKey,
        change: &RoleChange,
        grant: bool,
    ) -> Result<(), Refusal> {
        if !self.is_admin(author) {
            return Err(Refusal::NotAdmin);
        }
        if grant && self.is_admin(change.subject) {
            return Err(Refusal::SeparationOfDuties(
                "an admin key holds no other role: grant it to a key of its own".into(),
            ));
        }
        if !self.records.contains_key(&change.subject) {
            return Err(Refusal::KeyNotRegistered);
        }
        check_role_department(change, grant)?;
        let held = self.holds_role(change.subject, change.role);
        match (grant, held) {
            (true, true) => Err(Refusal::RoleAlreadyHeld),
            (false, false) => Err(Refusal::RoleNotHeld),
            (true, false) | (false, true) => Ok(()),
        }
    }

    fn decide_attestation(
        &self,
        author: PublicKey,
        attestation: &Attestation,
    ) -> Result<(), Refusal> {
        if !self.holds_role(author, Role::Registrar) {
            return Err(Refusal::NotRegistrar);
        }
        if !self.records.contains_key(&attestation.subject) {
            return Err(Refusal::KeyNotRegistered);
        }
        if attestation.subject == author {
            return Err(Refusal::SeparationOfDuties(
                "a registrar cannot attest their own key".into(),
            ));
        }
        self.check_resident_tag(attestation)?;
        match &attestation.district {
            Some(district) => check_field(
                "a district",
                district,
                Lines::One,
                limits::DISTRICT_CHARS_MAX,
            )
            .map_err(Refusal::InvalidAttestation),
            None => Ok(()),
        }
    }

    /// The tag rules of an attestation: a revoked key is attested no more; a verified resident
    /// carries a well-formed tag; a key's tag never changes; a tag has one active key at most.
    fn check_resident_tag(&self, attestation: &Attestation) -> Result<(), Refusal> {
        let invalid = |reason: &str| Err(Refusal::InvalidAttestation(reason.into()));
        let Some(record) = self.records.get(&attestation.subject) else {
            return Err(Refusal::KeyNotRegistered);
        };
        if record.revoked() {
            return Err(Refusal::KeyRevoked);
        }
        let tag = attestation.resident_tag.as_deref();
        if attestation.verified && tag.is_none() {
            return invalid("a verified resident carries a resident tag");
        }
        if record.resident_tag().is_some() && record.resident_tag() != tag {
            return invalid("a key's resident tag never changes: revoke it and attest a new key");
        }
        let Some(tag) = tag else {
            return Ok(());
        };
        let well_formed = tag.len() == limits::RESIDENT_TAG_HEX_CHARS
            && tag
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return invalid("a resident tag is 64 lowercase hexadecimal characters");
        }
        match self
            .residents
            .get(tag)
            .and_then(|resident| resident.active_key)
        {
            Some(active) if active != attestation.subject => Err(Refusal::ResidentAlreadyAttested),
            Some(_) | None => Ok(()),
        }
    }

    /// A key is revoked by itself, or by a registrar for a citizen who lost it. Keys that hold
    /// an office are the admin's to change (`revoke_role`, `hand_over_admin`).
    fn decide_revocation(
        &self,
        author: PublicKey,
        revocation: &KeyRevocation,
    ) -> Result<(), Refusal> {
        let subject = revocation.subject;
        let Some(record) = self.records.get(&subject) else {
            return Err(Refusal::KeyNotRegistered);
        };
        if record.revoked() {
            return Err(Refusal::KeyRevoked);
        }
        if self.is_admin(subject) {
            return Err(Refusal::InvalidAdminChange(
                "an admin key is replaced (hand_over_admin, approve_recovery), not revoked".into(),
            ));
        }
        if subject == author {
            return Ok(());
        }
        if !self.holds_role(author, Role::Registrar) {
            return Err(Refusal::NotRegistrar);
        }
        if !self.roles_of(subject).is_empty() {
            return Err(Refusal::SeparationOfDuties(
                "a registrar revokes residents' keys; an office holder's roles are the admin's"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A key may become an admin if it is sound, not an admin already, and holds no other office
    /// (a role or a recovery key's custody): one key, one duty.
    fn check_successor(&self, successor: PublicKey) -> Result<(), Refusal> {
        if successor.is_weak() {
            return Err(Refusal::WeakKey);
        }
        if self.is_admin(successor) {
            return Err(Refusal::InvalidAdminChange(
                "the successor is already an admin key".into(),
            ));
        }
        if !self.roles_of(successor).is_empty() || self.is_recovery_key(successor) {
            return Err(Refusal::SeparationOfDuties(
                "an admin key holds no role and is no recovery key".into(),
            ));
        }
        Ok(())
    }

    fn decide_recovery(
        &self,
        author: PublicKey,
        approval: &RecoveryApproval,
    ) -> Result<(), Refusal> {
        if !self.is_recovery_key(author) {
            return Err(Refusal::NotRecoveryKey);
        }
        if !self.is_admin(approval.revoked) {
            return Err(Refusal::InvalidAdminChange(
                "the key to replace is not an admin key".into(),
            ));
        }
        self.check_successor(approval.successor)?;
        let approved = self.pending_recoveries.iter().any(|pending| {
            pending.revoked == approval.revoked
                && pending.successor == approval.successor
                && pending.approvers.contains(&author)
        });
        if approved {
            return Err(Refusal::RecoveryAlreadyApproved);
        }
        Ok(())
    }

    /// Folds one decided event in.
    pub fn evolve(&mut self, action: KeyAction<'_>, event: &Event) {
        let author = event.command.author;
        match action {
            KeyAction::Genesis(genesis) => {
                self.identity = Some(LogIdentity {
                    server_key: author,
                    log_origin: genesis.log_origin.clone(),
                    admin_keys: genesis.admin_keys.iter().copied().collect(),
                    recovery: genesis.recovery.clone(),
                });
                let grant = Grant::of(event);
                self.admins_since = genesis.admin_keys.iter().map(|key| (*key, grant)).collect();
            }
            KeyAction::RegisterKey(_) => {
                let record = KeyRecord::new(event.position, event.server_time);
                self.records.insert(author, record);
            }
            KeyAction::GrantRole(change) => self.grant(change, Grant::of(event)),
            KeyAction::RevokeRole(change) => {
                let subject = change.subject;
                let Some(roles) = self.roles.get_mut(&subject) else {
                    unreachable!("a revoked role of key {subject:?}, which decide found held")
                };
                roles.remove(&change.role);
                if roles.is_empty() {
                    self.roles.remove(&subject);
                }
            }
            KeyAction::HandOverAdmin(hand_over) => {
                self.replace_admin(author, hand_over.successor, Grant::of(event));
            }
            KeyAction::ApproveRecovery(approval) => self.approve_recovery(author, approval, event),
            KeyAction::AttestResident(attestation) => self.attest(attestation),
            KeyAction::RevokeKey(revocation) => self.revoke(revocation.subject),
        }
    }

    fn grant(&mut self, change: &RoleChange, granted: Grant) {
        let subject = change.subject;
        if !self.records.contains_key(&subject) {
            unreachable!("a granted role names key {subject:?}, which decide found registered");
        }
        let held = HeldRole {
            department: change.department.clone(),
            granted,
        };
        self.roles
            .entry(subject)
            .or_default()
            .insert(change.role, held);
    }

    fn attest(&mut self, attestation: &Attestation) {
        let subject = attestation.subject;
        let number = match self.records.get(&subject) {
            Some(record) => record.registered_at_position,
            None => unreachable!("an attestation names key {subject:?}, which decide found"),
        };
        if let Some(tag) = &attestation.resident_tag {
            let resident = self.residents.entry(tag.clone()).or_insert(Resident {
                number,
                active_key: None,
            });
            resident.active_key = Some(subject);
        }
        let standing = self.standing_mut(subject, "an attestation");
        standing.district = attestation.district.clone();
        standing.verified = attestation.verified;
        standing.resident_tag = attestation.resident_tag.clone();
    }

    /// The key stops acting, its attestation and roles end, and its resident tag is free for
    /// a new key of the same resident.
    fn revoke(&mut self, subject: PublicKey) {
        let standing = self.standing_mut(subject, "a revocation");
        standing.revoked = true;
        standing.verified = false;
        standing.district = None;
        let tag = standing.resident_tag.clone();
        if let Some(resident) = tag.and_then(|tag| self.residents.get_mut(&tag)) {
            resident.active_key = None;
        }
        self.roles.remove(&subject);
    }

    /// `successor` takes `revoked`'s place among the admin keys; recoveries aimed at `revoked`
    /// lapse with it.
    fn replace_admin(&mut self, revoked: PublicKey, successor: PublicKey, granted: Grant) {
        let Some(identity) = self.identity.as_mut() else {
            unreachable!("an admin change before genesis, which decide refuses");
        };
        identity.admin_keys.remove(&revoked);
        identity.admin_keys.insert(successor);
        self.admins_since.remove(&revoked);
        self.admins_since.insert(successor, granted);
        self.pending_recoveries
            .retain(|pending| pending.revoked != revoked);
    }

    fn approve_recovery(
        &mut self,
        approver: PublicKey,
        approval: &RecoveryApproval,
        event: &Event,
    ) {
        let threshold = self
            .identity
            .as_ref()
            .and_then(|identity| identity.recovery.as_ref())
            .map_or_else(
                || unreachable!("a recovery approval in a log without a recovery quorum"),
                |quorum| quorum.threshold as usize,
            );
        let index = match self.pending_recoveries.iter().position(|pending| {
            pending.revoked == approval.revoked && pending.successor == approval.successor
        }) {
            Some(index) => index,
            None => {
                self.pending_recoveries.push(PendingRecovery {
                    revoked: approval.revoked,
                    successor: approval.successor,
                    approvers: Default::default(),
                });
                self.pending_recoveries.len() - 1
            }
        };
        let pending = &mut self.pending_recoveries[index];
        pending.approvers.insert(approver);
        if pending.approvers.len() >= threshold {
            self.replace_admin(approval.revoked, approval.successor, Grant::of(event));
        }
    }

    /// The standing of a key that `decide` found registered.
    fn standing_mut(&mut self, subject: PublicKey, what: &str) -> &mut KeyStanding {
        match self.records.get_mut(&subject) {
            Some(record) => record.standing_mut(),
            None => unreachable!("{what} names key {subject:?}, which decide found registered"),
        }
    }
}

fn check_role_department(change: &RoleChange, grant: bool) -> Result<(), Refusal> {
    match (change.role, &change.department) {
        (Role::Official, None) if grant => Err(Refusal::InvalidRoleChange(
            "an official needs a department".into(),
        )),
        (Role::Official, Some(department)) => {
            let max = limits::DEPARTMENT_CHARS_MAX;
            check_field("a department name", department, Lines::One, max)
                .map_err(Refusal::InvalidRoleChange)
        }
        (Role::Moderator | Role::Registrar | Role::Gateway, Some(_)) => Err(
            Refusal::InvalidRoleChange("only officials belong to a department".into()),
        ),
        (Role::Official, None) | (Role::Moderator | Role::Registrar | Role::Gateway, None) => {
            Ok(())
        }
    }
}

fn decide_genesis(genesis: &Genesis) -> Result<(), Refusal> {
    if genesis.admin_keys.is_empty() || genesis.admin_keys.iter().any(|key| key.is_weak()) {
        return Err(Refusal::WeakKey);
    }
    if genesis.admin_keys.len() > limits::ADMIN_KEYS_MAX {
        return Err(Refusal::InvalidAdminChange(format!(
            "a genesis names at most {} admin keys",
            limits::ADMIN_KEYS_MAX
        )));
    }
    match &genesis.recovery {
        Some(quorum) => check_recovery_quorum(quorum, &genesis.admin_keys),
        None => Ok(()),
    }
}

fn check_recovery_quorum(quorum: &RecoveryQuorum, admin_keys: &[PublicKey]) -> Result<(), Refusal> {
    let invalid = |reason: String| Err(Refusal::InvalidAdminChange(reason));
    let distinct: std::collections::BTreeSet<&PublicKey> = quorum.keys.iter().collect();
    if quorum.keys.is_empty()
        || quorum.keys.len() > limits::RECOVERY_KEYS_MAX
        || distinct.len() != quorum.keys.len()
    {
        return invalid(format!(
            "a recovery quorum names 1 to {} distinct keys",
            limits::RECOVERY_KEYS_MAX
        ));
    }
    if quorum.keys.iter().any(|key| key.is_weak()) {
        return Err(Refusal::WeakKey);
    }
    if quorum.keys.iter().any(|key| admin_keys.contains(key)) {
        return Err(Refusal::SeparationOfDuties(
            "a recovery key is no admin key".into(),
        ));
    }
    if quorum.threshold == 0 || quorum.threshold as usize > quorum.keys.len() {
        return invalid("a recovery threshold is 1 to the number of recovery keys".into());
    }
    Ok(())
}
