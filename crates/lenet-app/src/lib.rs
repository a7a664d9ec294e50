//! The `lenet` application as a library: its commands, settings and file formats, so that
//! tests and fuzz targets reach the same code the `lenet` binary runs.

pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod file_out;
pub mod font;
pub mod image_input;
pub mod inference;
pub mod interrupt;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod resident;
pub mod restore;
pub mod run_dir;
pub mod worker_choice;
