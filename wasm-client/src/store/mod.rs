//! Local storage: a raw key–value [`Store`] (public, so apps can plug in their own) and the
//! [`sealed::SealedStore`] over it that the client uses, where every record name is a keyed MAC
//! and every value is sealed (docs/client.md, "Local storage").

pub mod sealed;

#[cfg(target_family = "wasm")]
pub mod device_key;

#[cfg(not(target_family = "wasm"))]
mod file;
#[cfg(not(target_family = "wasm"))]
pub use file::FileStore;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// One change of a write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Set `key` to the value.
    Put(String, Vec<u8>),
    /// Remove `key`.
    Delete(String),
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// A raw key–value store. Implementations must apply a [`Store::write`] batch atomically: all
/// of it or none, even if the process dies in the middle (a torn write must not corrupt the
/// client's state).
pub trait Store {
    /// The value of `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>>;

    /// Applies `ops` atomically, in order.
    fn write(&self, ops: Vec<StoreOp>) -> impl Future<Output = Result<(), StoreError>>;

    /// The values of `keys`, in order. Stores that can read many records at once (one
    /// IndexedDB transaction) should override this; the default reads them one by one.
    fn get_many(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        }
    }
}

/// A store in memory (tests; ephemeral sessions). Clones share the same map, so a test can
/// open a second client over what the first one wrote.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, for tests that look at what is stored at rest.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self
            .map
            .lock()
            .map_err(|_| StoreError("memory store poisoned".into()))?;
        Ok(map.get(key).cloned())
    }

    async fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| StoreError("memory store poisoned".into()))?;
        for op in ops {
            match op {
                StoreOp::Put(k, v) => {
                    map.insert(k, v);
                }
                StoreOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }
}
