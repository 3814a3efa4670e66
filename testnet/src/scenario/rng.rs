//! The run's random choices (fault targets, jitter), reproducible from the seed: SplitMix64,
//! which is enough for picking nodes and is not used for anything secret.

/// A seeded generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One of `items`, or `None` if there are none.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = (self.next_u64() % items.len() as u64) as usize;
        items.get(i)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn picks_cover_every_item_and_repeat_with_the_seed() {
        let items = [1, 2, 3, 4];
        let mut r = Rng::new(5);
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[*r.pick(&items).unwrap() as usize - 1] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(Rng::new(3).next_u64(), Rng::new(3).next_u64());
        assert!(Rng::new(1).pick::<u8>(&[]).is_none());
        let u = Rng::new(8).unit();
        assert!((0.0..1.0).contains(&u));
    }
}
