//! One module per `lenet` subcommand, each with a `run` taking that subcommand's options.

pub mod eval;
pub mod inspect;
pub mod predict;
pub mod summary;
pub mod train;
