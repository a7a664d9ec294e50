//! The training set held on the GPU: uploaded once as bytes (a quarter of its `f32` size), each
//! batch gathered on the device from the epoch's shuffled indices and mapped through the
//! loader's byte values, so a step sends only its indices and the batch equals the host
//! loader's bit for bit. Used for `--device gpu` runs without augmentation (the crops and
//! flips are drawn on the host).

use conv_kernels::{ByteRows, Device, DeviceTensor, IndexTensor};
use datasets::DataLoader;

/// A dataset's images and labels on the device, and the loader's byte values.
pub struct ResidentSet {
    images: ByteRows,
    labels: IndexTensor,
    values: DeviceTensor,
    /// `[1, rows, cols]` of one image.
    image_dims: [usize; 3],
}

/// One step's input on the device.
pub struct DeviceBatch {
    /// `[B, 1, rows, cols]`.
    pub images: DeviceTensor,
    /// `B` labels.
    pub labels: IndexTensor,
}

impl DeviceBatch {
    /// A batch built on the host (by the data loader), uploaded: images and labels.
    pub fn upload(device: &Device, batch: datasets::Batch) -> anyhow::Result<DeviceBatch> {
        Ok(DeviceBatch {
            images: device.upload_owned(batch.images)?,
            labels: device.upload_indices(&batch.labels)?,
        })
    }
}

impl ResidentSet {
    /// Uploads `loader`'s dataset when `device` is a GPU and the loader does not augment
    /// (`None` otherwise: batches are then built on the host and uploaded each step).
    pub fn upload(device: &Device, loader: &DataLoader) -> anyhow::Result<Option<ResidentSet>> {
        if device.gpu_context().is_none() || !loader.augmentation().is_none() {
            return Ok(None);
        }
        let ds = loader.dataset();
        let images = device.upload_byte_rows(ds.images(), ds.image_size())?;
        let labels: Vec<u32> = ds.labels().iter().map(|&l| u32::from(l)).collect();
        let values =
            tensor::Tensor::new(tensor::Shape::new(&[256])?, loader.byte_values().to_vec())?;
        Ok(Some(ResidentSet {
            images,
            labels: device.upload_indices(&labels)?,
            values: device.upload(&values)?,
            image_dims: [1, ds.rows(), ds.cols()],
        }))
    }

    /// The batch of these dataset indices, gathered on `device` (only the indices are sent).
    pub fn batch(&self, device: &Device, indices: &[usize]) -> anyhow::Result<DeviceBatch> {
        let idx: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
        let idx = device.upload_indices(&idx)?;
        let [c, h, w] = self.image_dims;
        let (images, labels) =
            device.gather_batch(&self.images, &self.labels, &idx, &self.values)?;
        Ok(DeviceBatch {
            images: images.reshape(&[indices.len(), c, h, w])?,
            labels,
        })
    }
}
