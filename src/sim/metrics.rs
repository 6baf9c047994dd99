//! Prometheus metrics of the simulated apiserver.
