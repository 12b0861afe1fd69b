//! MNIST in the original IDX format, raw or gzip-compressed (`name` or `name.gz`).
//!
//! IDX: a big-endian header (magic `0x00000803` for u8 images with 3 dimensions, `0x00000801` for
//! u8 labels with 1), the dimension sizes as u32, then the bytes. Errors name the file and the byte
//! offset (in the decompressed stream for `.gz` files) where the data stopped making sense.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// The largest decompressed IDX file read (8 GiB; MNIST's training images are 47 MB).
const MAX_IDX_BYTES: u64 = 8 << 30;

/// One split: `images` is [n, rows·cols] scaled to [0, 1], `labels` is [n].
#[derive(Clone, Debug)]
pub struct MnistSplit {
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl MnistSplit {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image (saturating; [`MnistSplit::validate`] checks the sizes).
    pub fn dim(&self) -> usize {
        self.rows.saturating_mul(self.cols)
    }

    /// Checks that `images` holds `len()` images of `rows × cols` pixels (the fields are public:
    /// the trainers check a split before they index it).
    pub fn validate(&self) -> Result<()> {
        let need = self.rows.checked_mul(self.cols).and_then(|d| d.checked_mul(self.len()));
        if need != Some(self.images.len()) {
            return Err(Error::shape(
                "MnistSplit",
                format!("{} pixel values for {} images of {}×{}", self.images.len(), self.len(), self.rows, self.cols),
            ));
        }
        Ok(())
    }

    /// The pixels of image i.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let d = self.dim();
        self.images.get(i.checked_mul(d)?..i.checked_add(1)?.checked_mul(d)?)
    }

    /// The images in consecutive chunks of up to `rows` images (the last may be smaller):
    /// (images in the chunk, their pixels).
    pub fn image_chunks(&self, rows: usize) -> impl Iterator<Item = (usize, &[f32])> {
        let dim = self.dim().max(1);
        self.images.chunks(rows.max(1).saturating_mul(dim)).map(move |c| (c.len() / dim, c))
    }

    /// The first n examples (all if n ≥ len).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n.saturating_mul(self.dim()));
        self.labels.truncate(n);
    }
}

/// The train and test splits.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: MnistSplit,
    pub test: MnistSplit,
}

impl Mnist {
    /// Loads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte` (each raw or `.gz`) from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        Ok(Self { train: load_split(dir, "train")?, test: load_split(dir, "t10k")? })
    }

    /// The subset committed with the crate (`data/mnist-subset`: 6,000 train and 1,000 test
    /// images), so examples and tests run offline. Looked for in `$LATENTKIT_MNIST_SUBSET`, then
    /// in the source tree the binary was built from, then in `data/mnist-subset` under the current
    /// directory (for binaries copied to another machine).
    pub fn committed_subset() -> Result<Self> {
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-subset");
        let dir = match std::env::var_os("LATENTKIT_MNIST_SUBSET") {
            Some(d) => PathBuf::from(d),
            None if built_from.is_dir() => built_from,
            None => PathBuf::from("data/mnist-subset"),
        };
        Self::load(dir)
    }
}

fn load_split(dir: &Path, prefix: &str) -> Result<MnistSplit> {
    let (img_path, img) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (lbl_path, lbl) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (dims, pixels) = parse_idx(&img_path, &img, IMAGES_MAGIC, 3)?;
    let (ldims, labels) = parse_idx(&lbl_path, &lbl, LABELS_MAGIC, 1)?;
    if dims[0] != ldims[0] {
        return Err(Error::Format {
            path: lbl_path,
            offset: 4,
            msg: format!("{} labels for {} images in {}", ldims[0], dims[0], img_path.display()),
        });
    }
    if let Some(pos) = labels.iter().position(|&l| l > 9) {
        return Err(Error::Format {
            path: lbl_path,
            offset: 8 + pos as u64,
            msg: format!("label {} is not a digit", labels[pos]),
        });
    }
    Ok(MnistSplit {
        images: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        labels: labels.to_vec(),
        rows: dims[1],
        cols: dims[2],
    })
}

/// Reads `dir/name`, or `dir/name.gz` decompressed.
fn read_maybe_gz(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let io = |path: &Path, offset: u64, source| Error::Io { path: path.to_path_buf(), offset, source };
    if raw.is_file() {
        let bytes = std::fs::read(&raw).map_err(|e| io(&raw, 0, e))?;
        return Ok((raw, bytes));
    }
    let file = File::open(&gz).map_err(|e| {
        let e = std::io::Error::new(e.kind(), format!("{e} (looked for {} and {})", raw.display(), gz.display()));
        io(&gz, 0, e)
    })?;
    let bytes = read_idx_capped(flate2::read::GzDecoder::new(file), MAX_IDX_BYTES).map_err(|e| match e {
        CappedReadError::Io { offset, source } => io(&gz, offset, source),
        CappedReadError::TooLarge(n) => Error::Format {
            path: gz.clone(),
            offset: 4,
            msg: format!("the header promises {n} bytes, more than the {MAX_IDX_BYTES} this reader takes"),
        },
    })?;
    Ok((gz, bytes))
}

enum CappedReadError {
    /// A read failed after `offset` bytes.
    Io { offset: u64, source: std::io::Error },
    /// The header promises this many bytes, more than the cap.
    TooLarge(u64),
}

/// Reads an IDX stream no further than its header allows: the magic number (0, 0, the u8 type
/// 0x08, the dimension count), the dimensions, then the data they promise and one byte more, so
/// parse_idx can still report trailing data. A decompressed stream (a gzip bomb, a header with
/// another magic number or type) can't make it allocate more; what it read is returned as it is
/// when the header is cut short, overflows or has another magic, for parse_idx to report.
fn read_idx_capped(mut r: impl Read, cap: u64) -> std::result::Result<Vec<u8>, CappedReadError> {
    let mut bytes = Vec::new();
    let mut read = |bytes: &mut Vec<u8>, n: u64| {
        (&mut r).take(n).read_to_end(bytes).map_err(|source| CappedReadError::Io { offset: bytes.len() as u64, source })
    };
    read(&mut bytes, 4)?;
    if bytes.len() < 4 || bytes[..3] != [0, 0, 0x08] {
        return Ok(bytes);
    }
    let ndims = u64::from(bytes[3]);
    read(&mut bytes, 4 * ndims)?;
    let promised = (0..ndims as usize)
        .map(|d| be_u32(&bytes, 4 + 4 * d).map(u64::from))
        .try_fold(1u64, |a, d| d.and_then(|d| a.checked_mul(d)))
        .and_then(|n| n.checked_add(4 + 4 * ndims));
    match promised {
        Some(n) if n <= cap => {
            let rest = n + 1 - bytes.len() as u64;
            read(&mut bytes, rest)?;
            Ok(bytes)
        }
        Some(n) => Err(CappedReadError::TooLarge(n)),
        None => Ok(bytes),
    }
}

fn be_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    bytes.get(offset..offset + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an IDX file of u8 with `ndims` dimensions; returns the dimensions and the data.
pub fn parse_idx<'a>(path: &Path, bytes: &'a [u8], magic: u32, ndims: usize) -> Result<(Vec<usize>, &'a [u8])> {
    let fmt = |offset: usize, msg: String| Error::Format { path: path.to_path_buf(), offset: offset as u64, msg };
    let got = be_u32(bytes, 0).ok_or_else(|| fmt(bytes.len(), "file ends inside the 4-byte magic number".into()))?;
    if got != magic {
        return Err(fmt(
            0,
            format!("magic number {got:#010x}, expected {magic:#010x} (IDX u8 with {ndims} dimension(s))"),
        ));
    }
    let mut dims = Vec::new();
    for d in 0..ndims {
        let off = 4 + 4 * d;
        let v = be_u32(bytes, off)
            .ok_or_else(|| fmt(bytes.len(), format!("file ends inside dimension {d} of the header")))?;
        dims.push(v as usize);
    }
    let header = 4 + 4 * ndims;
    let need = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| fmt(4, format!("dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have < need {
        return Err(fmt(
            bytes.len(),
            format!("truncated: header {dims:?} promises {need} data bytes, file holds {have}"),
        ));
    }
    if have > need {
        return Err(fmt(
            header + need,
            format!("{} trailing bytes after the {need} data bytes of {dims:?}", have - need),
        ));
    }
    Ok((dims, &bytes[header..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that counts what is taken from it.
    struct Counting<'a> {
        data: &'a [u8],
        taken: usize,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.data.len() - self.taken);
            buf[..n].copy_from_slice(&self.data[self.taken..self.taken + n]);
            self.taken += n;
            Ok(n)
        }
    }

    #[test]
    fn capped_read_stops_one_byte_past_the_promised_data() {
        // 2 labels promised, a megabyte there.
        let mut data = vec![0, 0, 8, 1, 0, 0, 0, 2];
        data.extend(vec![7u8; 1 << 20]);
        let mut r = Counting { data: &data, taken: 0 };
        let got = read_idx_capped(&mut r, 1 << 30).ok().unwrap();
        assert_eq!((got.len(), r.taken), (8 + 2 + 1, 11));
        // Another magic number: only the 4 bytes that show it.
        data[2] = 9;
        let mut r = Counting { data: &data, taken: 0 };
        assert_eq!(read_idx_capped(&mut r, 1 << 30).ok().unwrap().len(), 4);
        assert_eq!(r.taken, 4);
        // More than the cap: nothing past the header.
        data[2] = 8;
        let mut r = Counting { data: &data, taken: 0 };
        assert!(matches!(read_idx_capped(&mut r, 9), Err(CappedReadError::TooLarge(10))));
        assert_eq!(r.taken, 8);
    }
}
