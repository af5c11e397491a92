//! A store in one file (Node-free native apps, bots, tests): the whole map is rewritten to a
//! temporary file, synced, and renamed over the old one, so a crash leaves either the old or the
//! new map, never a mix. Meant for one account's state, not for large histories.

use super::{Store, StoreError, StoreOp};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// File format: repeated `u32 key length, key, u32 value length, value` (little endian).
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl FileStore {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let map = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError(format!("{}: {e}", path.display()))),
        };
        Ok(Self {
            path,
            map: Arc::new(Mutex::new(map)),
        })
    }

    fn persist(&self, map: &BTreeMap<String, Vec<u8>>) -> Result<(), StoreError> {
        let mut out = Vec::new();
        for (k, v) in map {
            put_len(&mut out, k.len())?;
            out.extend_from_slice(k.as_bytes());
            put_len(&mut out, v.len())?;
            out.extend_from_slice(v);
        }
        let tmp = self.path.with_extension("tmp");
        let io = |e: std::io::Error| StoreError(format!("{}: {e}", tmp.display()));
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&out).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), StoreError> {
    let len = u32::try_from(len).map_err(|_| StoreError("record too large".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn decode(mut bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, StoreError> {
    fn take<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
        let corrupt = || StoreError("store file is truncated".into());
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| corrupt())?;
        let (field, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        *bytes = rest;
        Ok(field)
    }
    let mut map = BTreeMap::new();
    while !bytes.is_empty() {
        let key = String::from_utf8(take(&mut bytes)?.to_vec())
            .map_err(|_| StoreError("store file key is not UTF-8".into()))?;
        let value = take(&mut bytes)?.to_vec();
        map.insert(key, value);
    }
    Ok(map)
}

impl Store for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self
            .map
            .lock()
            .map_err(|_| StoreError("file store poisoned".into()))?;
        Ok(map.get(key).cloned())
    }

    async fn write(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| StoreError("file store poisoned".into()))?;
        let mut next = map.clone();
        for op in ops {
            match op {
                StoreOp::Put(k, v) => {
                    next.insert(k, v);
                }
                StoreOp::Delete(k) => {
                    next.remove(&k);
                }
            }
        }
        self.persist(&next)?;
        *map = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_reopen_and_refuses_truncation() {
        let dir = std::env::temp_dir().join(format!("sc_filestore_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("store.bin");
        let store = FileStore::open(&path).unwrap();
        store
            .write(vec![
                StoreOp::Put("a".into(), b"1".to_vec()),
                StoreOp::Put("b".into(), b"22".to_vec()),
                StoreOp::Delete("a".into()),
            ])
            .await
            .unwrap();
        let again = FileStore::open(&path).unwrap();
        assert_eq!(again.get("a").await.unwrap(), None);
        assert_eq!(again.get("b").await.unwrap(), Some(b"22".to_vec()));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(FileStore::open(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
