//! Statistics of a run: ok/fail/info per operation, throughput, latency percentiles (being built).
