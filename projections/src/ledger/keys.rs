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
use crate::command::{Attestation, Genesis, RegisterKey, Role, RoleChange};
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
    AttestResident(&'a Attestation),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogIdentity {
    pub server_key: PublicKey,
    pub log_origin: String,
    pub admin_keys: std::collections::BTreeSet<PublicKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub registered_at_position: u64,
    pub registered_at: Timestamp,
    /// Roles and attestation, boxed: most keys are citizens with neither, and a record without
    /// them takes 24 bytes instead of 72 (a million records in every ledger copy).
    pub(super) standing: Option<Box<KeyStanding>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeyStanding {
    pub(super) roles: BTreeMap<Role, Option<String>>,
    pub(super) district: Option<String>,
    pub(super) verified: bool,
}

static NO_ROLES: BTreeMap<Role, Option<String>> = BTreeMap::new();

impl KeyRecord {
    pub(super) fn new(registered_at_position: u64, registered_at: Timestamp) -> KeyRecord {
        KeyRecord {
            registered_at_position,
            registered_at,
            standing: None,
        }
    }

    /// Roles held now; officials carry their department.
    pub fn roles(&self) -> &BTreeMap<Role, Option<String>> {
        self.standing
            .as_ref()
            .map_or(&NO_ROLES, |standing| &standing.roles)
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

    pub(super) fn standing_mut(&mut self) -> &mut KeyStanding {
        self.standing.get_or_insert_with(Box::default)
    }
}

/// The keys aggregate. Read access to the records goes through `Deref` (a key-ordered
/// `KeyedMap`); only `evolve` changes them.
///
/// Serialised (inside the ledger's JSON, flattened) as its identity alone: the records are many,
/// and snapshots pack them in a binary form of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    identity: Option<LogIdentity>,
    /// Every registered key. A hash map: only ever looked up by key, and with a million citizens
    /// it takes about half the memory of an ordered map; walked only in key order.
    #[serde(skip)]
    pub(super) records: KeyedMap<PublicKey, KeyRecord>,
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

    pub fn is_registered(&self, key: PublicKey) -> bool {
        self.records.contains_key(&key)
    }

    pub fn holds_role(&self, key: PublicKey, role: Role) -> bool {
        self.records
            .get(&key)
            .is_some_and(|record| record.roles().contains_key(&role))
    }

    pub fn is_official_of(&self, key: PublicKey, department: &str) -> bool {
        self.records.get(&key).is_some_and(|record| {
            record
                .roles()
                .get(&Role::Official)
                .is_some_and(|held| held.as_deref() == Some(department))
        })
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
            KeyAction::AttestResident(attestation) => self.decide_attestation(author, attestation),
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
        let Some(record) = self.records.get(&change.subject) else {
            return Err(Refusal::KeyNotRegistered);
        };
        check_role_department(change, grant)?;
        let held = record.roles().contains_key(&change.role);
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

    /// Folds one decided event in.
    pub fn evolve(&mut self, action: KeyAction<'_>, event: &Event) {
        let author = event.command.author;
        match action {
            KeyAction::Genesis(genesis) => {
                self.identity = Some(LogIdentity {
                    server_key: author,
                    log_origin: genesis.log_origin.clone(),
                    admin_keys: genesis.admin_keys.iter().copied().collect(),
                });
            }
            KeyAction::RegisterKey(_) => {
                let record = KeyRecord::new(event.position, event.server_time);
                self.records.insert(author, record);
            }
            KeyAction::GrantRole(change) => {
                let roles = &mut self.standing_mut(change.subject, "a granted role").roles;
                roles.insert(change.role, change.department.clone());
            }
            KeyAction::RevokeRole(change) => {
                let roles = &mut self.standing_mut(change.subject, "a revoked role").roles;
                roles.remove(&change.role);
            }
            KeyAction::AttestResident(attestation) => {
                let standing = self.standing_mut(attestation.subject, "an attestation");
                standing.district = attestation.district.clone();
                standing.verified = attestation.verified;
            }
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
        (Role::Moderator | Role::Registrar, Some(_)) => Err(Refusal::InvalidRoleChange(
            "only officials belong to a department".into(),
        )),
        (Role::Official, None) | (Role::Moderator | Role::Registrar, None) => Ok(()),
    }
}

fn decide_genesis(genesis: &Genesis) -> Result<(), Refusal> {
    if genesis.admin_keys.is_empty() || genesis.admin_keys.iter().any(|key| key.is_weak()) {
        return Err(Refusal::WeakKey);
    }
    Ok(())
}
