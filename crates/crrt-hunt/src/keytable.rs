//! Flat tables for the indicator set: open addressing over keys that are
//! already hashes (or addresses mixed once), so a cached set is loaded by
//! copying arrays rather than inserting 100,000 entries into hash maps,
//! and a lookup is one multiply at most and a probe.

/// A free slot's value.
pub(crate) const EMPTY: u32 = u32::MAX;

/// A key whose bits choose its slot.
pub(crate) trait Slot: Copy + Eq + Default {
    fn slot(self) -> usize;
}

impl Slot for u64 {
    /// Text keys are hashes already.
    fn slot(self) -> usize {
        self as usize
    }
}

impl Slot for u128 {
    /// Addresses are not hashes: IPv4 ones differ in their low 32 bits
    /// only. A folded multiply spreads them.
    fn slot(self) -> usize {
        let x = (self as u64) ^ ((self >> 64) as u64);
        let p = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
        ((p as u64) ^ ((p >> 64) as u64)) as usize
    }
}

/// Key to value, at most half full; a value is never [`EMPTY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table<K> {
    keys: Vec<K>,
    values: Vec<u32>,
    len: usize,
}

impl<K: Slot> Table<K> {
    pub(crate) fn with_capacity(n: usize) -> Table<K> {
        let slots = (n.max(4) * 2).next_power_of_two();
        Table {
            keys: vec![K::default(); slots],
            values: vec![EMPTY; slots],
            len: 0,
        }
    }

    /// A table from its arrays, as [`Table::parts`] gave them; `None` if
    /// they cannot be one (a damaged cache).
    pub(crate) fn from_parts(keys: Vec<K>, values: Vec<u32>) -> Option<Table<K>> {
        let len = values.iter().filter(|v| **v != EMPTY).count();
        (keys.len() == values.len() && keys.len().is_power_of_two() && len * 2 <= keys.len())
            .then_some(Table { keys, values, len })
    }

    pub(crate) fn parts(&self) -> (&[K], &[u32]) {
        (&self.keys, &self.values)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.keys.len() - 1
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: K) -> Option<u32> {
        let mask = self.mask();
        let mut i = key.slot() & mask;
        loop {
            let value = self.values[i];
            if value == EMPTY {
                return None;
            }
            if self.keys[i] == key {
                return Some(value);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts `value` under `key` if it is free; returns the value already
    /// there otherwise.
    pub(crate) fn insert(&mut self, key: K, value: u32) -> Option<u32> {
        if (self.len + 1) * 2 > self.keys.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = key.slot() & mask;
        loop {
            let there = self.values[i];
            if there == EMPTY {
                self.keys[i] = key;
                self.values[i] = value;
                self.len += 1;
                return None;
            }
            if self.keys[i] == key {
                return Some(there);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, Table::with_capacity(self.keys.len()));
        for (key, value) in old.keys.into_iter().zip(old.values) {
            if value != EMPTY {
                self.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_through_collisions_and_growth() {
        let mut table: Table<u64> = Table::with_capacity(0);
        // Keys sharing their low bits probe past each other.
        for n in 0..1000u32 {
            assert_eq!(table.insert(u64::from(n) << 40, n), None);
        }
        assert_eq!(table.insert(5 << 40, 9), Some(5), "first value kept");
        for n in 0..1000u32 {
            assert_eq!(table.get(u64::from(n) << 40), Some(n));
        }
        assert_eq!(table.get(1000 << 40), None);
        let (keys, values) = table.parts();
        let back = Table::from_parts(keys.to_vec(), values.to_vec()).expect("sound");
        assert_eq!(back, table);
        assert!(Table::<u64>::from_parts(vec![0; 3], vec![EMPTY; 3]).is_none());
        assert!(Table::<u64>::from_parts(vec![0; 4], vec![1; 4]).is_none());
        let addresses: Table<u128> = Table::with_capacity(0);
        assert_eq!(addresses.get(7), None);
    }
}
