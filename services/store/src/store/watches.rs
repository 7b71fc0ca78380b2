//! Watch: replay from history or an initial list, then the fan-out's events.
use super::*;

impl Store {
    /// Start a watch. Events arrive on the returned channel until the receiver is dropped; an
    /// `Err` (TooOld when the watcher fell out of the retained window) ends the stream.
    pub fn watch(&self, opts: WatchOptions) -> Result<mpsc::Receiver<Result<WatchEvent>>> {
        if let Some(kind) = opts.kind {
            opts.fields
                .check_supported(kind)
                .map_err(|e| StoreError::BadRequest(e.to_string()))?;
        }
        let (tx, rx) = mpsc::channel(self.inner.config.watch_buffer.max(1));
        let mut initial = Vec::new();
        let start = {
            let c = self.cache();
            match opts.resource_version {
                Some(rv) => {
                    if rv < c.compacted {
                        return Err(StoreError::TooOld {
                            requested: rv,
                            oldest: c.compacted + 1,
                        });
                    }
                    rv
                }
                None => {
                    let kinds: Vec<Kind> = match opts.kind {
                        Some(k) => vec![k],
                        None => Kind::ALL.to_vec(),
                    };
                    for k in kinds {
                        let ns = opts.namespace.as_deref().filter(|n| !n.is_empty());
                        for s in c.range(k, ns, None) {
                            if s.matches(&opts.labels, &opts.fields) {
                                initial.push(WatchEvent::Change {
                                    typ: EventType::Added,
                                    object: s.clone(),
                                });
                            }
                        }
                    }
                    c.revision
                }
            }
        };
        let store = self.clone();
        tokio::spawn(async move { store.run_watch(opts, start, initial, tx).await });
        Ok(rx)
    }
}
