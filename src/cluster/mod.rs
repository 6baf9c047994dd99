//! The only code that talks to a real apiserver: connecting under hard deadlines, the
//! read-only gate, the collectors that fill a Snapshot, and the probes. Nothing outside this
//! module holds a `kube::Client`.

pub mod collect;
pub mod connect;
pub mod error;
pub mod gate;
pub mod objects;
pub mod probe;
pub mod rbac;
pub mod read;
pub mod snapshot;
pub mod transport;

pub use collect::refresh;
pub use connect::{Cluster, ConnectOptions, KubeconfigEnv};
pub use error::{AccessError, ErrorKind};
pub use gate::Gate;
pub use objects::{AccessReview, ResourceType};
pub use snapshot::{Snapshot, Source};
