//! Models for the linearizability checker (being built).
