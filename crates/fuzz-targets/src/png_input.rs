//! The `png_input` target: an image given to `lenet predict`.

/// Decodes the bytes as `lenet predict` decodes a PNG file, down to the model's 28×28 input.
pub fn decode(data: &[u8]) {
    let _ = lenet_app::image_input::png_bytes_as_input(data);
}
