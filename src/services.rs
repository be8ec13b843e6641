//! Management services, under the `management` supervisor: the tree service (dumps the
//! live tree on request), the system monitor (rates the host's CPU, memory, temperature
//! and disk), error analytics (signatures, patterns, correlations and risk of the
//! actors' exits), the flight recorder (writes every bus message to disk) and the
//! telemetry they all export through. Each lives with what it needs: the analytics
//! model beside its actor, the recording format beside the recorder, the tree's text
//! beside the tree service.

pub mod analytics;
pub mod audit;
pub mod monitor;
pub mod recorder;
pub mod telemetry;
pub mod tree;
