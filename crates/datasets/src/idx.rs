//! The IDX file format (as used by MNIST and its relatives): parsing, validation and encoding.
//!
//! An IDX file is a 4-byte magic number `[0, 0, type, ndims]`, `ndims` big-endian `u32`
//! dimension sizes, then the elements, big-endian, in row-major order. Files may be stored
//! gzip-compressed; compression is detected by the gzip magic bytes, not by the file name.
//!
//! Reading never allocates more than the data actually present: the header's sizes are
//! checked (with overflow checks) and the stream is read only up to the declared length plus
//! one byte, so a hostile header claiming billions of items yields
//! [`DatasetError::TruncatedData`] rather than a huge allocation.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use byteorder::{BigEndian, ByteOrder};
use flate2::read::MultiGzDecoder;

use crate::error::{DatasetError, Result};

/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Initial buffer reservation cap while streaming a file; the buffer grows with the data, never
/// with what the header claims.
const MAX_UPFRONT_RESERVE: u64 = 1 << 24;

/// The element type encoded in the third magic byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// `0x08`: unsigned byte.
    U8,
    /// `0x09`: signed byte.
    I8,
    /// `0x0B`: big-endian `i16`.
    I16,
    /// `0x0C`: big-endian `i32`.
    I32,
    /// `0x0D`: big-endian `f32`.
    F32,
    /// `0x0E`: big-endian `f64`.
    F64,
}

impl ElementType {
    /// All element types, in code order.
    pub const ALL: [ElementType; 6] = [
        Self::U8,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::F32,
        Self::F64,
    ];

    /// The type for a magic-number type code, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => Self::U8,
            0x09 => Self::I8,
            0x0B => Self::I16,
            0x0C => Self::I32,
            0x0D => Self::F32,
            0x0E => Self::F64,
            _ => return None,
        })
    }

    /// The magic-number type code.
    pub fn code(self) -> u8 {
        match self {
            Self::U8 => 0x08,
            Self::I8 => 0x09,
            Self::I16 => 0x0B,
            Self::I32 => 0x0C,
            Self::F32 => 0x0D,
            Self::F64 => 0x0E,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::F64 => "f64",
        };
        write!(f, "{name} (0x{:02X})", self.code())
    }
}

/// A validated IDX header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    /// The element type.
    pub element_type: ElementType,
    /// The dimension sizes, outermost first.
    pub dims: Vec<usize>,
}

impl IdxHeader {
    /// Header length in bytes: the magic number plus four bytes per dimension.
    pub fn header_len(&self) -> usize {
        4 + 4 * self.dims.len()
    }

    /// Number of elements (product of the dimensions; saturating, though a header from
    /// [`parse_header`] never overflows).
    pub fn numel(&self) -> usize {
        self.dims.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Total file length in bytes (header plus data; saturating like [`IdxHeader::numel`]).
    pub fn total_len(&self) -> usize {
        self.numel()
            .saturating_mul(self.element_type.size())
            .saturating_add(self.header_len())
    }
}

/// Parses and validates the header at the start of `bytes`, which may hold just the header or a
/// whole file. `path` only names the file in errors.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<IdxHeader> {
    if bytes.len() < 4 {
        return Err(DatasetError::TruncatedHeader {
            path: path.into(),
            expected: 4,
            found: bytes.len() as u64,
        });
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let bad_magic = || DatasetError::BadMagic {
        path: path.into(),
        found: magic,
    };
    if magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
        return Err(bad_magic());
    }
    let element_type = ElementType::from_code(magic[2]).ok_or_else(bad_magic)?;
    let ndims = usize::from(magic[3]);
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DatasetError::TruncatedHeader {
            path: path.into(),
            expected: header_len as u64,
            found: bytes.len() as u64,
        });
    }
    let raw: Vec<u32> = (0..ndims)
        .map(|i| BigEndian::read_u32(&bytes[4 + 4 * i..]))
        .collect();
    let overflow = || DatasetError::SizeOverflow {
        path: path.into(),
        dims: raw.clone(),
    };
    // Total length in u64 with overflow checks, and it must also fit in usize.
    let total = raw
        .iter()
        .try_fold(element_type.size() as u64, |acc, &d| {
            acc.checked_mul(u64::from(d))
        })
        .and_then(|data| data.checked_add(header_len as u64))
        .ok_or_else(overflow)?;
    if usize::try_from(total).is_err() {
        return Err(overflow());
    }
    Ok(IdxHeader {
        element_type,
        dims: raw.iter().map(|&d| d as usize).collect(),
    })
}

/// Whether `bytes` starts with the gzip magic bytes.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads a whole IDX file, decompressing it when it starts with the gzip magic bytes, and
/// returns the (decompressed) IDX bytes after checking that their length matches the header.
///
/// These are the bytes that published checksums describe.
pub fn read_idx_bytes(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    decode_idx_reader(file, path)
}

/// Decodes IDX bytes from any reader (gzip-compressed or raw), with the same checks as
/// [`read_idx_bytes`]. `path` only names the source in errors.
pub fn decode_idx_reader<R: Read>(reader: R, path: &Path) -> Result<Vec<u8>> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let gz = {
        let head = reader.fill_buf().map_err(|e| DatasetError::io(path, e))?;
        head.len() >= 2 && is_gzip(head)
    };
    if gz {
        read_bounded(MultiGzDecoder::new(reader), path, true)
    } else {
        read_bounded(reader, path, false)
    }
}

/// Appends at most `n` more bytes from `reader` to `out`.
fn read_up_to<R: Read>(
    reader: &mut R,
    out: &mut Vec<u8>,
    n: u64,
    path: &Path,
    gz: bool,
) -> Result<()> {
    reader
        .take(n)
        .read_to_end(out)
        .map(|_| ())
        .map_err(|source| {
            if gz {
                DatasetError::Gzip {
                    path: path.into(),
                    source,
                }
            } else {
                DatasetError::io(path, source)
            }
        })
}

fn read_bounded<R: Read>(mut reader: R, path: &Path, gz: bool) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    read_up_to(&mut reader, &mut out, 4, path, gz)?;
    if out.len() == 4 {
        // Validate the magic before trusting ndims.
        if out[0] != 0 || out[1] != 0 || out[3] == 0 || ElementType::from_code(out[2]).is_none() {
            return Err(DatasetError::BadMagic {
                path: path.into(),
                found: [out[0], out[1], out[2], out[3]],
            });
        }
        let ndims = u64::from(out[3]);
        read_up_to(&mut reader, &mut out, 4 * ndims, path, gz)?;
    }
    let header = parse_header(&out, path)?;
    let total = header.total_len() as u64;
    let want = total - out.len() as u64 + 1;
    out.reserve(want.min(MAX_UPFRONT_RESERVE) as usize);
    read_up_to(&mut reader, &mut out, want, path, gz)?;
    let found = out.len() as u64;
    if found < total {
        return Err(DatasetError::TruncatedData {
            path: path.into(),
            expected: total,
            found,
        });
    }
    if found > total {
        return Err(DatasetError::TrailingData {
            path: path.into(),
            expected: total,
        });
    }
    Ok(out)
}

/// The elements of an IDX file, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Unsigned bytes.
    U8(Vec<u8>),
    /// Signed bytes.
    I8(Vec<i8>),
    /// 16-bit integers.
    I16(Vec<i16>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
}

impl IdxData {
    /// The element type.
    pub fn element_type(&self) -> ElementType {
        match self {
            Self::U8(_) => ElementType::U8,
            Self::I8(_) => ElementType::I8,
            Self::I16(_) => ElementType::I16,
            Self::I32(_) => ElementType::I32,
            Self::F32(_) => ElementType::F32,
            Self::F64(_) => ElementType::F64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed IDX file: dimensions plus typed elements.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: IdxData,
}

impl IdxArray {
    /// An array from dimensions and elements; `None` when the element count does not equal the
    /// product of the dimensions, there are no dimensions or more than 255, or a size exceeds `u32`.
    pub fn new(dims: Vec<usize>, data: IdxData) -> Option<Self> {
        let ok = !dims.is_empty()
            && dims.len() <= 255
            && dims.iter().all(|&d| u32::try_from(d).is_ok())
            && dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) == Some(data.len());
        ok.then_some(Self { dims, data })
    }

    /// The dimension sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The typed elements.
    pub fn data(&self) -> &IdxData {
        &self.data
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    /// Splits into dimensions and elements.
    pub fn into_parts(self) -> (Vec<usize>, IdxData) {
        (self.dims, self.data)
    }

    /// Encodes as (uncompressed) IDX bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ty = self.element_type();
        let mut out = Vec::with_capacity(4 + 4 * self.dims.len() + self.data.len() * ty.size());
        out.extend_from_slice(&[0, 0, ty.code(), self.dims.len() as u8]);
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        match &self.data {
            IdxData::U8(v) => out.extend_from_slice(v),
            IdxData::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
            IdxData::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            IdxData::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
        }
        out
    }
}

/// Parses complete, uncompressed IDX bytes. The length must match the header exactly.
/// `path` only names the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let header = parse_header(bytes, path)?;
    let total = header.total_len();
    if bytes.len() < total {
        return Err(DatasetError::TruncatedData {
            path: path.into(),
            expected: total as u64,
            found: bytes.len() as u64,
        });
    }
    if bytes.len() > total {
        return Err(DatasetError::TrailingData {
            path: path.into(),
            expected: total as u64,
        });
    }
    let payload = &bytes[header.header_len()..];
    let n = header.numel();
    // The allocations below are sized by `n`, which was just checked against the data present.
    let data = match header.element_type {
        ElementType::U8 => IdxData::U8(payload.to_vec()),
        ElementType::I8 => IdxData::I8(payload.iter().map(|&b| b as i8).collect()),
        ElementType::I16 => {
            let mut v = vec![0; n];
            BigEndian::read_i16_into(payload, &mut v);
            IdxData::I16(v)
        }
        ElementType::I32 => {
            let mut v = vec![0; n];
            BigEndian::read_i32_into(payload, &mut v);
            IdxData::I32(v)
        }
        ElementType::F32 => {
            let mut v = vec![0.0; n];
            BigEndian::read_f32_into(payload, &mut v);
            IdxData::F32(v)
        }
        ElementType::F64 => {
            let mut v = vec![0.0; n];
            BigEndian::read_f64_into(payload, &mut v);
            IdxData::F64(v)
        }
    };
    Ok(IdxArray {
        dims: header.dims,
        data,
    })
}

/// Reads and parses an IDX file, gzip-compressed or raw.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|e| DatasetError::io(path, e))?;
    parse_idx_reader(file, path)
}

/// Decodes (gzip-compressed or raw) and parses IDX bytes from any reader: [`read_idx`] without
/// the file, and what the IDX fuzz targets run. `path` only names the source in errors.
pub fn parse_idx_reader<R: Read>(reader: R, path: &Path) -> Result<IdxArray> {
    let bytes = decode_idx_reader(reader, path)?;
    parse_idx(&bytes, path)
}

/// Splits validated `u8` IDX bytes into header and payload without converting elements: the
/// fast path for image and label files. Fails when the element type is not `u8`.
pub fn parse_idx_u8(mut bytes: Vec<u8>, path: &Path) -> Result<(IdxHeader, Vec<u8>)> {
    let header = parse_header(&bytes, path)?;
    if header.element_type != ElementType::U8 {
        return Err(DatasetError::WrongElementType {
            path: path.into(),
            expected: ElementType::U8,
            found: header.element_type,
        });
    }
    let total = header.total_len();
    if bytes.len() < total {
        return Err(DatasetError::TruncatedData {
            path: path.into(),
            expected: total as u64,
            found: bytes.len() as u64,
        });
    }
    if bytes.len() > total {
        return Err(DatasetError::TrailingData {
            path: path.into(),
            expected: total as u64,
        });
    }
    bytes.drain(..header.header_len());
    Ok((header, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("mem.idx")
    }

    #[test]
    fn roundtrip_every_type_in_memory() {
        let cases = vec![
            IdxData::U8(vec![0, 1, 255, 7, 8, 9]),
            IdxData::I8(vec![-128, -1, 0, 1, 127, 5]),
            IdxData::I16(vec![-32768, -1, 0, 1, 32767, 300]),
            IdxData::I32(vec![i32::MIN, -1, 0, 1, i32::MAX, 70000]),
            IdxData::F32(vec![-1.5, 0.0, 1.0, f32::MAX, f32::MIN_POSITIVE, 3.25]),
            IdxData::F64(vec![-1.5, 0.0, 1.0, f64::MAX, f64::MIN_POSITIVE, 3.25]),
        ];
        for data in cases {
            let arr = IdxArray::new(vec![2, 3], data).expect("valid array");
            let bytes = arr.to_bytes();
            assert_eq!(bytes[2], arr.element_type().code());
            assert_eq!(parse_idx(&bytes, p()).expect("parses"), arr);
        }
    }

    #[test]
    fn header_errors() {
        assert!(matches!(
            parse_header(&[0, 0, 8], p()),
            Err(DatasetError::TruncatedHeader {
                expected: 4,
                found: 3,
                ..
            })
        ));
        assert!(matches!(
            parse_header(&[1, 0, 8, 1], p()),
            Err(DatasetError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_header(&[0, 0, 7, 1], p()),
            Err(DatasetError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_header(&[0, 0, 8, 0], p()),
            Err(DatasetError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_header(&[0, 0, 8, 2, 0, 0, 0, 1], p()),
            Err(DatasetError::TruncatedHeader {
                expected: 12,
                found: 8,
                ..
            })
        ));
        let huge = [
            0, 0, 0x0E, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ];
        assert!(matches!(
            parse_header(&huge, p()),
            Err(DatasetError::SizeOverflow { .. })
        ));
    }

    #[test]
    fn new_rejects_wrong_length() {
        assert!(IdxArray::new(vec![2, 2], IdxData::U8(vec![1, 2, 3])).is_none());
        assert!(IdxArray::new(vec![], IdxData::U8(vec![])).is_none());
    }

    #[test]
    fn u8_fast_path_and_type_check() {
        let arr = IdxArray::new(vec![3], IdxData::U8(vec![4, 5, 6])).expect("valid");
        let (h, payload) = parse_idx_u8(arr.to_bytes(), p()).expect("parses");
        assert_eq!(h.dims, vec![3]);
        assert_eq!(payload, vec![4, 5, 6]);
        let arr = IdxArray::new(vec![1], IdxData::I32(vec![4])).expect("valid");
        assert!(matches!(
            parse_idx_u8(arr.to_bytes(), p()),
            Err(DatasetError::WrongElementType {
                found: ElementType::I32,
                ..
            })
        ));
    }
}
