//! Porcupine corpus formats: etcd Jepsen logs and kv EDN-like logs (being built).
