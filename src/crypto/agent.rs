//! Signing through an ssh-agent: the key stays in the agent, rollbook sends it the exact bytes to
//! sign (the documented signed message, as `ssh-keygen -Y sign` sends its own) and checks the
//! reply with `verify_strict` before anyone uses it.
//!
//! IO (a Unix socket), like `keyfile`: the protocol is the `ssh-agent-client-rs` crate's; the
//! only cryptography here is the strict check of the reply.

use std::path::{Path, PathBuf};

use ssh_agent_client_rs::{Client, Error as AgentError, Identity};

use super::keys::{KeyError, PublicKey, Signature};

/// An Ed25519 key held by the ssh-agent listening at `socket`, checked present when opened.
#[derive(Debug, Clone)]
pub struct AgentKey {
    socket: PathBuf,
    public: PublicKey,
}

impl AgentKey {
    /// Connects to the agent at `socket` and checks that it holds `public`: a missing key is
    /// named before any work is done, not after a proposal was drafted.
    pub fn open(socket: &Path, public: PublicKey) -> Result<AgentKey, KeyError> {
        let key = AgentKey {
            socket: socket.to_path_buf(),
            public,
        };
        let identities = key
            .connect()?
            .list_all_identities()
            .map_err(|error| key.unreachable(error))?;
        let held = identities.len();
        if !identities.iter().any(|identity| key.is_this_key(identity)) {
            return Err(KeyError::AgentLacksKey {
                socket: key.socket.clone(),
                key_id: public.key_id(),
                held,
            });
        }
        Ok(key)
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Asks the agent for an Ed25519 signature over `message`, then checks it strictly under
    /// this key: an agent that answers with another key's signature, another algorithm or
    /// malformed bytes is refused here, before the signature reaches an event.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        let key_id = self.public.key_id();
        let identity: Identity<'static> = self.ssh_public().into();
        let reply = self
            .connect()?
            .sign(identity, message)
            .map_err(|error| match error {
                AgentError::RemoteFailure => KeyError::AgentRefused { key_id },
                other => self.unreachable(other),
            })?;
        let bad_reply = |reason: String| KeyError::AgentBadReply { key_id, reason };
        if reply.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(bad_reply(format!(
                "the signature's algorithm is {}",
                reply.algorithm()
            )));
        }
        let signature = <[u8; 64]>::try_from(reply.as_bytes())
            .map_err(|_| bad_reply("an Ed25519 signature is 64 bytes".to_string()))?;
        self.public
            .verify_strict(message, &Signature::from_bytes(&signature))
            .map_err(|error| bad_reply(error.to_string()))?;
        Ok(signature)
    }

    fn connect(&self) -> Result<Client, KeyError> {
        Client::connect(&self.socket).map_err(|error| self.unreachable(error))
    }

    fn unreachable(&self, error: AgentError) -> KeyError {
        KeyError::AgentUnreachable {
            socket: self.socket.clone(),
            reason: error.to_string(),
        }
    }

    /// The key in `ssh-key`'s type, to name it in a sign request.
    fn ssh_public(&self) -> ssh_key::PublicKey {
        let key_data = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(
            self.public.as_bytes(),
        ));
        ssh_key::PublicKey::new(key_data, "")
    }

    fn is_this_key(&self, identity: &Identity<'_>) -> bool {
        match identity {
            Identity::PublicKey(key) => key
                .key_data()
                .ed25519()
                .is_some_and(|ed25519| ed25519.0 == self.public.as_bytes()),
            // A certificate names its key too, but signing through it is another protocol path.
            Identity::Certificate(_) => false,
        }
    }
}
