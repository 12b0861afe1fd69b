//! The MNIST IDX reader on the committed subset and on broken files.

use std::io::Write;

use latentkit::data::Mnist;
use latentkit::Error;

#[test]
fn committed_subset_loads_with_expected_shapes_and_statistics() {
    let m = Mnist::committed_subset().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (6000, 1000));
    assert_eq!((m.train.rows, m.train.cols), (28, 28));
    assert_eq!(m.train.images.len(), 6000 * 784);
    assert!(m.train.images.iter().all(|p| (0.0..=1.0).contains(p)));
    // MNIST's mean pixel is 0.1307 over the full training set.
    let mean = m.train.images.iter().map(|&p| f64::from(p)).sum::<f64>() / m.train.images.len() as f64;
    assert!((mean - 0.1307).abs() < 0.01, "mean pixel {mean}");
    for d in 0..10u8 {
        assert!(m.train.labels.contains(&d), "digit {d} missing");
    }
    // The first training label of MNIST is 5, the first test label 7.
    assert_eq!((m.train.labels[0], m.test.labels[0]), (5, 7));
}

fn write_split(dir: &std::path::Path, images: &[u8], labels: &[u8]) {
    for prefix in ["train", "t10k"] {
        std::fs::File::create(dir.join(format!("{prefix}-images-idx3-ubyte"))).unwrap().write_all(images).unwrap();
        std::fs::File::create(dir.join(format!("{prefix}-labels-idx1-ubyte"))).unwrap().write_all(labels).unwrap();
    }
}

fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("latentkit-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn wrong_magic_names_file_and_offset() {
    let dir = temp_dir("magic");
    let mut images = header(0x0000_0802, &[1, 2, 2]);
    images.extend([1, 2, 3, 4]);
    let mut labels = header(0x0000_0801, &[1]);
    labels.push(3);
    write_split(&dir, &images, &labels);
    match Mnist::load(&dir) {
        Err(Error::Format { path, offset, msg }) => {
            assert!(path.ends_with("train-images-idx3-ubyte"), "{path:?}");
            assert_eq!(offset, 0);
            assert!(msg.contains("magic"), "{msg}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_file_names_file_and_offset() {
    let dir = temp_dir("trunc");
    let mut images = header(0x0000_0803, &[2, 2, 2]);
    images.extend([1, 2, 3, 4, 5]); // 8 bytes promised
    let mut labels = header(0x0000_0801, &[2]);
    labels.extend([1, 2]);
    write_split(&dir, &images, &labels);
    let err = Mnist::load(&dir).unwrap_err();
    match &err {
        Error::Format { offset, msg, .. } => {
            assert_eq!(*offset, 21, "offset of the end of the data");
            assert!(msg.contains("truncated"), "{msg}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    assert!(err.to_string().contains("train-images-idx3-ubyte"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn label_count_mismatch_and_bad_labels_are_errors() {
    let dir = temp_dir("labels");
    let mut images = header(0x0000_0803, &[2, 1, 1]);
    images.extend([1, 2]);
    let mut labels = header(0x0000_0801, &[3]);
    labels.extend([1, 2, 3]);
    write_split(&dir, &images, &labels);
    assert!(matches!(Mnist::load(&dir), Err(Error::Format { .. })));
    let mut labels = header(0x0000_0801, &[2]);
    labels.extend([1, 12]);
    write_split(&dir, &images, &labels);
    match Mnist::load(&dir) {
        Err(Error::Format { offset, .. }) => assert_eq!(offset, 9),
        other => panic!("expected a format error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_files_are_io_errors() {
    let dir = temp_dir("missing");
    match Mnist::load(&dir) {
        Err(Error::Io { path, .. }) => assert!(path.to_string_lossy().contains("train-images")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Gzipped files load like plain ones; what a header promises bounds what is decompressed, so
/// extra data is an error at its offset and a header promising more than the reader takes is
/// refused before anything is inflated.
#[test]
fn gzipped_files_are_read_within_what_the_header_promises() {
    let dir = temp_dir("gz");
    let mut images = header(0x0000_0803, &[2, 2, 2]);
    images.extend([0, 64, 128, 255, 1, 2, 3, 4]);
    let mut labels = header(0x0000_0801, &[2]);
    labels.extend([3, 9]);
    let write = |images: &[u8]| {
        for prefix in ["train", "t10k"] {
            std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte.gz")), gzip(images)).unwrap();
            std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), gzip(&labels)).unwrap();
        }
    };
    write(&images);
    let m = Mnist::load(&dir).unwrap();
    assert_eq!((m.train.len(), m.train.dim(), m.test.labels.clone()), (2, 4, vec![3, 9]));
    assert_eq!(m.train.images[3], 1.0);

    // A megabyte past the 8 promised data bytes.
    let mut long = images.clone();
    long.extend(vec![7u8; 1 << 20]);
    write(&long);
    match Mnist::load(&dir) {
        Err(Error::Format { path, offset, msg }) => {
            assert!(path.ends_with("train-images-idx3-ubyte.gz"), "{path:?}");
            assert_eq!(offset, 16 + 8);
            assert!(msg.contains("trailing"), "{msg}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }

    // Cut inside the gzip trailer: an I/O error where decompression stopped (after the data).
    let gz = gzip(&images);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), &gz[..gz.len() - 4]).unwrap();
    match Mnist::load(&dir) {
        Err(Error::Io { path, offset, .. }) => {
            assert!(path.ends_with("train-images-idx3-ubyte.gz") && offset == 16 + 8, "{path:?} {offset}")
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }

    // 2^32 · 2^16 · 2^16 bytes promised.
    let mut huge = header(0x0000_0803, &[u32::MAX, 65_535, 65_535]);
    huge.extend([1, 2, 3, 4]);
    write(&huge);
    match Mnist::load(&dir) {
        Err(Error::Format { offset, msg, .. }) => assert!(offset == 4 && msg.contains("promises"), "{msg}"),
        other => panic!("expected a format error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A header promising more dimensions than the file holds is a format error at the file's end
/// (nothing is reserved for the promised count), and a split checks its pixels against its labels.
#[test]
fn idx_headers_and_splits_are_checked_before_use() {
    let path = std::path::Path::new("crafted-idx");
    for ndims in [3, 1 << 40, usize::MAX] {
        match latentkit::data::mnist::parse_idx(path, &[0, 0, 8, 3], 0x803, ndims) {
            Err(latentkit::Error::Format { offset: 4, msg, .. }) => assert!(msg.contains("dimension 0"), "{msg}"),
            other => panic!("{ndims} dimensions: expected a format error at offset 4, got {other:?}"),
        }
    }
    let mut split = latentkit::data::MnistSplit { images: vec![0.5; 12], labels: vec![1, 2, 3], rows: 2, cols: 2 };
    split.validate().unwrap();
    assert_eq!(split.image(2), Some(&[0.5f32; 4][..]));
    assert_eq!(split.image(usize::MAX), None);
    assert_eq!(split.image_chunks(usize::MAX).count(), 1);
    split.labels.push(4);
    let e = split.validate().unwrap_err();
    assert!(matches!(e, latentkit::Error::Shape { .. }) && e.to_string().contains("12 pixel values"), "{e}");
    split.cols = usize::MAX;
    assert!(split.validate().is_err());
    assert_eq!(split.image(1), None);
}
