//! gather_rows, gather_indices and gather_batch (both at once): the CPU and the GPU (each its own test) against the
//! reference and against a plain host computation over random tables (row lengths that are and
//! are not multiples of four, so rows start inside packed words), batches (repeated and empty
//! indices) and value tables; and their errors (bad tables, out-of-range or kernel-made
//! indices, a gather too large to address).

use conv_kernels::{Device, KernelError, pack_bytes};
use fovea_test_support::cases::proptest_config;
use fovea_test_support::{TestResult, test_device};
use proptest::prelude::*;
use tensor::{SeededRng, Tensor};

fn gather(
    dev: &Device,
    bytes: &[u8],
    row_len: usize,
    idx: &[u32],
    values: &Tensor,
) -> TestResult<Vec<f32>> {
    let table = dev.upload_byte_rows(bytes, row_len)?;
    let indices = dev.upload_indices(idx)?;
    Ok(dev
        .gather_rows(&table, &indices, &dev.upload(values)?)?
        .to_host()?
        .data()
        .to_vec())
}

fn body(dev: &Device, rows: usize, row_len: usize, picks: &[usize], seed: u64) -> TestResult {
    let mut rng = SeededRng::new(seed);
    let noise = Tensor::rand_uniform(&[rows * row_len], 0.0, 256.0, &mut rng)?;
    let bytes: Vec<u8> = noise.data().iter().map(|&v| v as u8).collect();
    let values = Tensor::randn(&[256], &mut rng)?;
    let idx: Vec<u32> = picks.iter().map(|&p| (p % rows) as u32).collect();
    let plain: Vec<f32> = idx
        .iter()
        .flat_map(|&i| &bytes[i as usize * row_len..][..row_len])
        .map(|&b| values.data()[b as usize])
        .collect();
    let got = gather(dev, &bytes, row_len, &idx, &values)?;
    assert_eq!(
        got,
        gather(&Device::Reference, &bytes, row_len, &idx, &values)?
    );
    assert_eq!(got, plain, "a gather copies values: exact");
    let labels: Vec<u32> = (0..rows as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let gathered = dev.gather_indices(&dev.upload_indices(&labels)?, &dev.upload_indices(&idx)?)?;
    let want: Vec<u32> = idx.iter().map(|&i| labels[i as usize]).collect();
    assert_eq!(gathered.to_host()?, want);
    assert_eq!(gathered.len(), idx.len());
    let (batch, batch_labels) = dev.gather_batch(
        &dev.upload_byte_rows(&bytes, row_len)?,
        &dev.upload_indices(&labels)?,
        &dev.upload_indices(&idx)?,
        &dev.upload(&values)?,
    )?;
    assert_eq!(batch.to_host()?.data(), &plain[..], "gather_batch's rows");
    assert_eq!(batch.dims(), &[idx.len(), row_len]);
    assert_eq!(batch_labels.to_host()?, want, "gather_batch's labels");
    Ok(())
}

fn gather_rows_matches_reference(dev: &Device) {
    proptest!(proptest_config(), |(
        rows in 1usize..40,
        row_len in 1usize..70,
        picks in prop::collection::vec(0usize..1000, 0..50),
        seed in any::<u64>(),
    )| {
        body(dev, rows, row_len, &picks, seed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    });
}
test_device!(gather_rows_matches_reference: reference, cpu, gpu);

fn gather_errors(dev: &Device) -> TestResult {
    fn spec<T>(r: Result<T, KernelError>) -> bool {
        matches!(r, Err(KernelError::InvalidSpec { .. }))
    }
    assert!(spec(dev.upload_byte_rows(&[1, 2, 3], 2)));
    assert!(spec(dev.upload_byte_rows(&[1, 2], 0)));
    let table = dev.upload_byte_rows(&[1, 2, 3, 4, 5, 6], 3)?;
    assert_eq!((table.rows(), table.row_len()), (2, 3));
    let values = dev.upload(&Tensor::zeros(&[256])?)?;
    let out_of_range = dev.upload_indices(&[0, 2])?;
    assert!(spec(dev.gather_rows(&table, &out_of_range, &values)));
    let ok = dev.upload_indices(&[1])?;
    let short = dev.upload(&Tensor::zeros(&[255])?)?;
    assert!(matches!(
        dev.gather_rows(&table, &ok, &short),
        Err(KernelError::Shape { .. })
    ));
    let labels = dev.upload_indices(&[7, 8])?;
    assert!(spec(dev.gather_indices(&labels, &out_of_range)));
    // A batch checks its indices against both the table and the labels.
    assert!(spec(dev.gather_batch(
        &table,
        &labels,
        &out_of_range,
        &values
    )));
    let one_label = dev.upload_indices(&[7])?;
    assert!(spec(dev.gather_batch(&table, &one_label, &ok, &values)));
    // Kernel-made indices have no known range: refused rather than trusted.
    let made = dev.gather_indices(&labels, &ok)?;
    assert!(spec(dev.gather_rows(&table, &made, &values)));
    // More values than a u32 offset reaches (4,097 rows of 1 MiB): refused before any work.
    let wide = dev.upload_byte_rows(&vec![0u8; 1 << 20], 1 << 20)?;
    let many = dev.upload_indices(&vec![0u32; 4097])?;
    assert!(spec(dev.gather_rows(&wide, &many, &values)));
    let empty = dev.upload_indices(&[])?;
    assert_eq!(
        dev.gather_rows(&table, &empty, &values)?.shape().dims(),
        [0, 3]
    );
    Ok(())
}
test_device!(gather_errors);

#[test]
fn bytes_pack_little_endian_four_to_a_word() {
    assert_eq!(pack_bytes(&[1, 2, 3, 4, 5]), vec![0x0403_0201, 5]);
    assert_eq!(pack_bytes(&[]), Vec::<u32>::new());
}
