//! [`StoreConfig`]: the tunables of an opened store.

/// How to open a [`Store`](crate::Store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// The size of redb's page cache, in bytes. redb's own default is 1 GiB; a light node wants
    /// tens of MiB. Default: [`StoreConfig::DEFAULT_CACHE_SIZE`] (64 MiB).
    pub cache_size: usize,
}

impl StoreConfig {
    /// The default page cache size: 64 MiB.
    pub const DEFAULT_CACHE_SIZE: usize = 64 * 1024 * 1024;
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_size: Self::DEFAULT_CACHE_SIZE,
        }
    }
}
