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

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image i.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let d = self.dim();
        self.images.get(i * d..(i + 1) * d)
    }

    /// The images in consecutive chunks of up to `rows` images (the last may be smaller):
    /// (images in the chunk, their pixels).
    pub fn image_chunks(&self, rows: usize) -> impl Iterator<Item = (usize, &[f32])> {
        let dim = self.dim().max(1);
        self.images.chunks(rows.max(1) * dim).map(move |c| (c.len() / dim, c))
    }

    /// The first n examples (all if n ≥ len).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.images.truncate(n * self.dim());
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
    // The IDX header (the magic number, whose low byte counts the dimensions, then the
    // dimensions) bounds what is decompressed: one byte past what it promises is enough for
    // parse_idx to report trailing data, and a gzip bomb can't make the reader allocate more.
    let mut dec = flate2::read::GzDecoder::new(file);
    let mut bytes = Vec::new();
    let mut read = |bytes: &mut Vec<u8>, n: u64| {
        let at = bytes.len() as u64;
        (&mut dec).take(n).read_to_end(bytes).map_err(|e| io(&gz, at, e))
    };
    read(&mut bytes, 4)?;
    let ndims = bytes.get(3).map_or(0, |&d| u64::from(d));
    read(&mut bytes, 4 * ndims)?;
    let promised = (0..ndims as usize)
        .map(|d| be_u32(&bytes, 4 + 4 * d).map(u64::from))
        .try_fold(1u64, |a, d| d.and_then(|d| a.checked_mul(d)))
        .and_then(|n| n.checked_add(4 + 4 * ndims));
    match promised {
        Some(n) if n <= MAX_IDX_BYTES => {
            let rest = n + 1 - bytes.len() as u64;
            read(&mut bytes, rest)?
        }
        Some(n) => {
            return Err(Error::Format {
                path: gz,
                offset: 4,
                msg: format!("the header promises {n} bytes, more than the {MAX_IDX_BYTES} this reader takes"),
            })
        }
        // A header cut short or overflowing: parse_idx says which.
        None => 0,
    };
    Ok((gz, bytes))
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
    let mut dims = Vec::with_capacity(ndims);
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
