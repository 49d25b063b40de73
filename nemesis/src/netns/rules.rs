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

fn names(ports: &[String]) -> String {
    let list: Vec<String> = ports.iter().map(|p| format!("\"{p}\"")).collect();
    format!("{{ {} }}", list.join(", "))
}

/// The hub's bridge table for twins, by the hub's port names: the twins' ports `twins`
/// reach only each other and the ports in `twin_side`; the originals' ports `originals`
/// never reach `twin_side`; nothing from a twin reaches the bridge itself (the clients) and
/// nothing from the bridge reaches a twin. ARP goes by the same rules, so each side learns
/// the one MAC address it may reach for the shared address.
pub fn twins(table: &str, twins: &[String], originals: &[String], twin_side: &[String]) -> String {
    let t = names(twins);
    let reach: Vec<String> = twins.iter().chain(twin_side).cloned().collect();
    let reach = names(&reach);
    let mut s = format!(
        "table bridge {table} {{\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n"
    );
    if !twins.is_empty() {
        let _ = writeln!(s, "\t\tiifname {t} oifname != {reach} drop");
        let _ = writeln!(s, "\t\toifname {t} iifname != {reach} drop");
    }
    if !originals.is_empty() && !twin_side.is_empty() {
        let (o, u) = (names(originals), names(twin_side));
        let _ = writeln!(s, "\t\tiifname {o} oifname {u} drop");
        let _ = writeln!(s, "\t\tiifname {u} oifname {o} drop");
    }
    s.push_str("\t}\n");
    if !twins.is_empty() {
        let _ = write!(
            s,
            "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\
             \t\tiifname {t} drop\n\t}}\n\
             \tchain output {{\n\t\ttype filter hook output priority filter; policy accept;\n\
             \t\toifname {t} drop\n\t}}\n"
        );
    }
    s.push_str("}\n");
    s
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

    #[test]
    fn twins_reach_their_side_and_originals_the_other() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let r = twins("t", &s(&["t3"]), &s(&["v3"]), &s(&["v4", "v5"]));
        assert!(r.starts_with("table bridge t {"), "{r}");
        for rule in [
            "iifname { \"t3\" } oifname != { \"t3\", \"v4\", \"v5\" } drop",
            "oifname { \"t3\" } iifname != { \"t3\", \"v4\", \"v5\" } drop",
            "iifname { \"v3\" } oifname { \"v4\", \"v5\" } drop",
            "iifname { \"v4\", \"v5\" } oifname { \"v3\" } drop",
            "hook input priority filter; policy accept;\n\t\tiifname { \"t3\" } drop",
            "hook output priority filter; policy accept;\n\t\toifname { \"t3\" } drop",
        ] {
            assert!(r.contains(rule), "{rule} in {r}");
        }
        // No empty set, which nft refuses: a twin side of none leaves the originals free.
        let none = twins("t", &s(&["t2"]), &s(&["v2"]), &[]);
        assert!(
            !none.contains("{  }") && !none.contains("iifname { \"v2\" }"),
            "{none}"
        );
    }
}
