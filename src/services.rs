//! Management services, under the `management` supervisor: the tree service (dumps the
//! live tree on request) and the flight recorder (writes every bus message to disk).

pub mod recorder;
pub mod tree_service;
