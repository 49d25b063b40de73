//! Agreement between replicas, from node dumps and event streams (being built).
