//! The network's decisions, apart from any I/O: for each message, whether it arrives, how
//! many times and after how long. Seeded, so one seed gives one sequence of decisions for
//! one sequence of messages.
//!
//! Reordering (`--reorder P`) holds a message between nodes back by a further 10 to 100 ms
//! with probability P, so that messages sent after it on the same link overtake it: links
//! are not FIFO, as UDP and reconnecting TCP are not.
//!
//! Faults touch links between nodes only: clients and services are reached over links that
//! are never cut, lost or duplicated (as in Maelstrom, where a client's request may time
//! out but the client itself is not partitioned). Latency applies to every link.

use crate::config::Latency;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::time::Duration;

/// What happens to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Delivered once per delay (twice when duplicated).
    Deliver(Vec<Duration>),
    /// The link from its source to its destination is cut.
    Cut,
    /// Dropped by random loss.
    Lost,
}

pub struct Network {
    rng: ChaCha8Rng,
    latency: Latency,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    /// Messages held back so far.
    reordered: u64,
    /// Directed links (from, to) that carry nothing: `to` no longer hears `from`.
    cuts: BTreeSet<(String, String)>,
}

/// Node ids are `n` followed by digits; clients are `c...`, services have names.
pub fn is_node(id: &str) -> bool {
    id.len() > 1 && id.starts_with('n') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

pub fn is_client(id: &str) -> bool {
    id.len() > 1 && id.starts_with('c') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

impl Network {
    pub fn new(seed: u64, latency: Latency, loss: f64, duplicate: f64) -> Network {
        Network {
            rng: ChaCha8Rng::seed_from_u64(seed),
            latency,
            loss,
            duplicate,
            reorder: 0.0,
            reordered: 0,
            cuts: BTreeSet::new(),
        }
    }

    /// Holds a message between nodes back with probability `p` (see the module's map).
    /// At 0 no draw is made, so a seed's other decisions are as without reordering.
    pub fn with_reorder(mut self, p: f64) -> Network {
        self.reorder = p;
        self
    }

    /// How many messages were held back.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    pub fn set_cuts(&mut self, cuts: BTreeSet<(String, String)>) {
        self.cuts = cuts;
    }

    pub fn cuts(&self) -> &BTreeSet<(String, String)> {
        &self.cuts
    }

    fn delay(&mut self) -> Duration {
        let ms = match self.latency {
            Latency::Constant { ms } => ms,
            Latency::Uniform { min_ms, max_ms } if max_ms > min_ms => {
                self.rng.random_range(min_ms..max_ms)
            }
            Latency::Uniform { min_ms, .. } => min_ms,
            Latency::Exponential { mean_ms } => {
                // Inverse transform; 1 - u is in (0, 1], so the log is finite.
                let u: f64 = self.rng.random();
                -mean_ms * (1.0 - u).ln()
            }
        };
        Duration::from_secs_f64(ms.max(0.0) / 1e3)
    }

    /// Decides one message's fate.
    pub fn route(&mut self, src: &str, dest: &str) -> Fate {
        let between_nodes = is_node(src) && is_node(dest);
        if between_nodes {
            if self.cuts.contains(&(src.to_string(), dest.to_string())) {
                return Fate::Cut;
            }
            if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
                return Fate::Lost;
            }
        }
        let mut delays = vec![self.delay()];
        if between_nodes && self.duplicate > 0.0 && self.rng.random::<f64>() < self.duplicate {
            delays.push(self.delay());
        }
        if between_nodes && self.reorder > 0.0 && self.rng.random::<f64>() < self.reorder {
            let extra = Duration::from_millis(self.rng.random_range(10..=100));
            delays[0] += extra;
            self.reordered += 1;
        }
        Fate::Deliver(delays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_way_cut_blocks_one_direction_only_and_never_clients() {
        let mut n = Network::new(1, Latency::Constant { ms: 2.0 }, 0.0, 0.0);
        n.set_cuts([("n1".to_string(), "n2".to_string())].into());
        assert_eq!(n.route("n1", "n2"), Fate::Cut);
        assert_eq!(
            n.route("n2", "n1"),
            Fate::Deliver(vec![Duration::from_millis(2)])
        );
        assert!(matches!(n.route("c1", "n1"), Fate::Deliver(_)));
    }

    #[test]
    fn reordering_holds_messages_between_nodes_back_and_moves_no_other_decision() {
        let lat = Latency::Constant { ms: 1.0 };
        let mut r = Network::new(3, lat, 0.0, 0.0).with_reorder(1.0);
        for _ in 0..50 {
            let Fate::Deliver(d) = r.route("n1", "n2") else {
                panic!("delivered")
            };
            assert!((11..=101).contains(&(d[0].as_millis() as u64)), "{d:?}");
        }
        assert_eq!(r.reordered(), 50);
        // Clients are never held back.
        assert_eq!(
            r.route("c1", "n1"),
            Fate::Deliver(vec![Duration::from_millis(1)])
        );
        // At 0, the decisions are those of a network without the option.
        let mut a = Network::new(9, Latency::Exponential { mean_ms: 5.0 }, 0.2, 0.2);
        let mut b =
            Network::new(9, Latency::Exponential { mean_ms: 5.0 }, 0.2, 0.2).with_reorder(0.0);
        for _ in 0..100 {
            assert_eq!(a.route("n1", "n2"), b.route("n1", "n2"));
        }
        // Some held back, some not, at 0.3.
        let mut h = Network::new(4, lat, 0.0, 0.0).with_reorder(0.3);
        for _ in 0..200 {
            h.route("n2", "n3");
        }
        assert!((30..90).contains(&h.reordered()), "{}", h.reordered());
    }

    #[test]
    fn the_same_seed_decides_the_same_way() {
        let run = |seed| {
            let mut n = Network::new(seed, Latency::Exponential { mean_ms: 5.0 }, 0.3, 0.3);
            (0..200).map(|_| n.route("n1", "n2")).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let fates = run(7);
        let lost = fates.iter().filter(|f| **f == Fate::Lost).count();
        let dup = fates
            .iter()
            .filter(|f| matches!(f, Fate::Deliver(d) if d.len() == 2))
            .count();
        // 30% each, loosely: both happen, neither always.
        assert!((20..100).contains(&lost), "{lost}");
        assert!((10..100).contains(&dup), "{dup}");
        // Loss never touches clients or services.
        let mut n = Network::new(1, Latency::Constant { ms: 0.0 }, 1.0, 0.0);
        assert!(matches!(n.route("n1", "lin-kv"), Fate::Deliver(_)));
        assert_eq!(n.route("n1", "n3"), Fate::Lost);
    }

    #[test]
    fn uniform_latency_stays_in_its_bounds() {
        let mut n = Network::new(
            3,
            Latency::Uniform {
                min_ms: 1.0,
                max_ms: 4.0,
            },
            0.0,
            0.0,
        );
        for _ in 0..500 {
            let Fate::Deliver(d) = n.route("n1", "n2") else {
                panic!()
            };
            assert!(d[0] >= Duration::from_millis(1) && d[0] < Duration::from_millis(4));
        }
        assert!(is_node("n12") && !is_node("nx") && is_client("c3") && !is_node("lin-kv"));
    }
}
