//! The simulator scenario format.
