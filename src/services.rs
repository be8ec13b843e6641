//! Management services, under the `management` supervisor: the tree service (dumps the
//! live tree on request), the system monitor (rates the host's CPU, memory, temperature
//! and disk), error analytics (signatures, patterns, correlations and risk of the
//! actors' exits) and the flight recorder (writes every bus message to disk).

pub mod error_analytics;
pub mod recorder;
pub mod system_monitor;
pub mod tree_service;
