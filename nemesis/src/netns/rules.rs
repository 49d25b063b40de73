//! The nftables text for one node namespace: a table with two input chains, one for
//! partitions and one for packet loss, each replaced whole in one `nft -f` transaction.

use std::fmt::Write;
use std::net::Ipv4Addr;

/// The chain partitions go in.
pub const PARTITION: &str = "partition";
/// The chain packet loss goes in.
pub const LOSS: &str = "loss";

/// Creates the run's table with both chains, empty (everything accepted).
pub fn table(table: &str) -> String {
    format!(
        "table inet {table} {{\n\
         \tchain {PARTITION} {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n\
         \tchain {LOSS} {{\n\t\ttype filter hook input priority filter + 1; policy accept;\n\t}}\n\
         }}\n"
    )
}

fn set(addrs: &[Ipv4Addr]) -> String {
    let list: Vec<String> = addrs.iter().map(Ipv4Addr::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

/// Replaces the partition chain: drop everything from `silenced` (none: accept all).
pub fn partition(table: &str, silenced: &[Ipv4Addr]) -> String {
    let mut s = format!("flush chain inet {table} {PARTITION}\n");
    if !silenced.is_empty() {
        let _ = writeln!(
            s,
            "add rule inet {table} {PARTITION} ip saddr {} drop",
            set(silenced)
        );
    }
    s
}

/// Replaces the loss chain: drop `percent` % of the packets from `peers` (0 or no peers:
/// drop nothing).
pub fn loss(table: &str, peers: &[Ipv4Addr], percent: u8) -> String {
    let mut s = format!("flush chain inet {table} {LOSS}\n");
    if percent > 0 && !peers.is_empty() {
        // numgen's modulus bounds its comparison to 0..=99: all of it is a plain drop
        let chance = if percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        };
        let _ = writeln!(
            s,
            "add rule inet {table} {LOSS} ip saddr {} {chance}drop",
            set(peers)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_cut_only_flushes() {
        assert_eq!(partition("t", &[]), "flush chain inet t partition\n");
        assert_eq!(
            loss("t", &[Ipv4Addr::new(10, 77, 0, 1)], 0),
            "flush chain inet t loss\n"
        );
        let p = partition(
            "t",
            &[Ipv4Addr::new(10, 77, 0, 2), Ipv4Addr::new(10, 77, 0, 3)],
        );
        assert!(
            p.ends_with("ip saddr { 10.77.0.2, 10.77.0.3 } drop\n"),
            "{p}"
        );
        let l = loss("t", &[Ipv4Addr::new(10, 77, 0, 2)], 30);
        assert!(l.contains("numgen random mod 100 < 30 drop"), "{l}");
        let all = loss("t", &[Ipv4Addr::new(10, 77, 0, 2)], 100);
        assert!(all.ends_with("ip saddr { 10.77.0.2 } drop\n"), "{all}");
    }
}
