//! Seeded random streams: one run seed, named substreams, one stream per chain.
//!
//! A run has one seed. Every consumer asks for a stream by name (`"init"`, `"metropolis"`, ...),
//! so adding a consumer never shifts the numbers another one sees. Chains get consecutive
//! `jump()`s of their stream (2¹²⁸ draws apart), and each chain only ever uses its own
//! generator, so results do not depend on the number of threads.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator of one chain or one stream: xoshiro256++ (fast, 256-bit state, jumpable).
pub type ChainRng = Xoshiro256PlusPlus;

/// The random streams of one run, all derived from a single seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomStreams {
    seed: u64,
}

impl RandomStreams {
    /// Streams derived from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The run seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The named substream. The same (seed, name) always gives the same stream; different names
    /// give unrelated streams.
    pub fn stream(&self, name: &str) -> ChainRng {
        // FNV-1a of the name, mixed with the seed; `seed_from_u64` then expands the 64-bit value
        // with SplitMix64 into the full 256-bit state.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        ChainRng::seed_from_u64(splitmix64(self.seed ^ splitmix64(h)))
    }

    /// `n` independent generators for `n` chains of the named stream: chain `i` starts `i` jumps
    /// (of 2¹²⁸ draws each) after the stream's start, so the sequences never overlap.
    pub fn chains(&self, name: &str, n: usize) -> Vec<ChainRng> {
        let mut rng = self.stream(name);
        (0..n)
            .map(|_| {
                let r = rng.clone();
                rng.jump();
                r
            })
            .collect()
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_and_name_give_the_same_stream() {
        let a = RandomStreams::new(7).stream("init").next_u64();
        let b = RandomStreams::new(7).stream("init").next_u64();
        assert_eq!(a, b);
        assert_ne!(a, RandomStreams::new(7).stream("moves").next_u64());
        assert_ne!(a, RandomStreams::new(8).stream("init").next_u64());
    }

    #[test]
    fn chains_are_distinct_and_reproducible() {
        let s = RandomStreams::new(1);
        let mut c1 = s.chains("mc", 3);
        let mut c2 = s.chains("mc", 3);
        let v1: Vec<u64> = c1.iter_mut().map(|r| r.next_u64()).collect();
        let v2: Vec<u64> = c2.iter_mut().map(|r| r.next_u64()).collect();
        assert_eq!(v1, v2);
        assert_ne!(v1[0], v1[1]);
        assert_ne!(v1[1], v1[2]);
    }
}
