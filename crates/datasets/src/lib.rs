//! Datasets for Fovea: the IDX file format, Fashion-MNIST and MNIST fetched and verified by
//! checksum, and a shuffling `DataLoader`.
