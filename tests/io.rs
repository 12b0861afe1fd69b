//! Checkpoints (round trip, atomicity, broken files) and PNG artefacts (layout, decodability).

mod common;

use common::TempDir;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use latentkit::io::{
    load_checkpoint, save_checkpoint, save_image_grid, save_line_plot, save_scatter, NamedTensor, Series,
};
use latentkit::rng::{seeded, uniform_vec};
use latentkit::Error;

fn tensors(seed: u64) -> Vec<NamedTensor> {
    let mut rng = seeded(seed);
    [("enc.w1", vec![400, 784]), ("enc.b1", vec![20]), ("scale", vec![1]), ("dec.w", vec![3, 5, 2])]
        .into_iter()
        .map(|(name, shape)| {
            let n = shape.iter().product();
            NamedTensor { name: name.to_string(), shape, data: uniform_vec(&mut rng, n, -2.0, 2.0) }
        })
        .collect()
}

fn metadata() -> BTreeMap<String, String> {
    [("step", "1200"), ("model", "vae"), ("lr", "0.001")].into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let dir = TempDir::new("roundtrip");
    let path = dir.join("model.safetensors");
    let saved = tensors(1);
    assert!(saved.iter().all(|t| t.data.iter().all(|&v| v != 0.0)));
    save_checkpoint(&path, &saved, &metadata()).unwrap();

    let (loaded, meta) = load_checkpoint(&path).unwrap();
    assert_eq!(meta, metadata());
    let mut want = saved.clone();
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(loaded.len(), want.len());
    for (got, want) in loaded.iter().zip(&want) {
        assert_eq!((&got.name, &got.shape), (&want.name, &want.shape));
        let bits = |d: &[f32]| d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.data), bits(&want.data), "tensor {}", got.name);
    }
    // Overwriting works and no temp file stays behind.
    save_checkpoint(&path, &tensors(2)[..1], &BTreeMap::new()).unwrap();
    let (loaded, meta) = load_checkpoint(&path).unwrap();
    assert!(meta.is_empty());
    assert_eq!(loaded, tensors(2)[..1].to_vec());
    assert_eq!(dir.entries(), BTreeSet::from(["model.safetensors".to_string()]));
}

#[test]
fn failed_save_leaves_existing_checkpoint_untouched() {
    let dir = TempDir::new("atomic");
    let path = dir.join("ckpt.safetensors");
    save_checkpoint(&path, &tensors(3), &metadata()).unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut bad = tensors(4);
    bad[1].shape = vec![21];
    assert!(matches!(save_checkpoint(&path, &bad, &metadata()), Err(Error::Shape { .. })));
    let mut dup = tensors(4);
    dup[2].name = dup[0].name.clone();
    assert!(matches!(save_checkpoint(&path, &dup, &metadata()), Err(Error::InvalidArgument { .. })));
    let mut empty = tensors(4);
    empty[0].name.clear();
    assert!(matches!(save_checkpoint(&path, &empty, &metadata()), Err(Error::InvalidArgument { .. })));
    // A save whose rename cannot happen (the target is a non-empty directory) cleans up too.
    let blocker = dir.join("blocker");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("x"), b"x").unwrap();
    assert!(matches!(save_checkpoint(&blocker, &tensors(4), &metadata()), Err(Error::Io { .. })));

    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(dir.entries(), BTreeSet::from(["blocker".to_string(), "ckpt.safetensors".to_string()]));
}

#[test]
fn broken_checkpoints_are_reported_not_panicked_on() {
    let dir = TempDir::new("broken");
    let path = dir.join("full.safetensors");
    save_checkpoint(&path, &tensors(5), &metadata()).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    match load_checkpoint(&cut) {
        Err(e @ Error::Format { offset, .. }) => {
            assert_eq!(offset, (bytes.len() / 2) as u64);
            assert!(e.to_string().contains("cut.safetensors"), "{e}");
        }
        other => panic!("truncated file: {other:?}"),
    }
    // Cut inside the header and inside the length prefix.
    for len in [20, 3, 0] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        assert!(matches!(load_checkpoint(&cut), Err(Error::Format { .. })), "cut at {len}");
    }

    let missing = dir.join("missing.safetensors");
    assert!(matches!(load_checkpoint(&missing), Err(Error::Io { .. })));

    let junk = dir.join("junk.safetensors");
    let noise: Vec<u8> = uniform_vec(&mut seeded(6), 4096, 0.0, 255.0).iter().map(|&v| v as u8).collect();
    std::fs::write(&junk, noise).unwrap();
    match load_checkpoint(&junk) {
        Err(e @ Error::Format { .. }) => assert!(e.to_string().contains("junk.safetensors"), "{e}"),
        other => panic!("random bytes: {other:?}"),
    }
    // Valid JSON header but a dtype other than F32.
    let header = br#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    let mut f16 = (header.len() as u64).to_le_bytes().to_vec();
    f16.extend_from_slice(header);
    f16.extend_from_slice(&[0; 4]);
    let f16_path = dir.join("half.safetensors");
    std::fs::write(&f16_path, f16).unwrap();
    match load_checkpoint(&f16_path) {
        Err(e @ Error::Format { .. }) => assert!(e.to_string().contains("`h`") && e.to_string().contains("F16"), "{e}"),
        other => panic!("F16 file: {other:?}"),
    }
}

/// Decodes a PNG: (width, height, colour type, pixels).
fn decode(path: &Path) -> (usize, usize, png::ColorType, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, info.color_type, buf)
}

#[test]
fn image_grid_layout_matches_documented_formula() {
    let dir = TempDir::new("grid");
    let path = dir.join("grid.png");
    let (n, h, w, cols, scale) = (16, 28, 28, 4, 2);
    let mut images = uniform_vec(&mut seeded(7), n * h * w, -0.1, 1.1);
    images[5] = f32::NAN;
    save_image_grid(&path, &images, n, h, w, cols, scale).unwrap();

    let (pw, ph, color, px) = decode(&path);
    assert_eq!(color, png::ColorType::Grayscale);
    assert_eq!((pw, ph), ((4 * 28 + 3) * 2, (4 * 28 + 3) * 2));
    let expect = |v: f32| if v.is_nan() { 0 } else { (255.0 * v.clamp(0.0, 1.0)).round() as u8 };
    // Tile 0, pixel (3, 5): every copy of the scaled-up pixel.
    let v = images[3 * w + 5];
    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        assert_eq!(px[(3 * scale + dy) * pw + 5 * scale + dx], expect(v));
    }
    assert_eq!(px[5 * scale], 0, "NaN draws as 0");
    // Image 6 is in row 1, column 2; check its pixel (10, 20).
    let v = images[6 * h * w + 10 * w + 20];
    assert_eq!(px[((h + 1) + 10) * scale * pw + (2 * (w + 1) + 20) * scale], expect(v));
    // The gap column right of tile 0 has value round(0.2·255) = 51.
    assert_eq!(px[w * scale], 51);

    // Fewer images than columns: the grid shrinks to n columns; a partial last row is gap-filled.
    save_image_grid(&path, &images[..3 * h * w], 3, h, w, 8, 1).unwrap();
    assert_eq!(decode(&path).0, 3 * 28 + 2);
    save_image_grid(&path, &images[..5 * h * w], 5, h, w, 4, 1).unwrap();
    let (pw, ph, _, px) = decode(&path);
    assert_eq!((pw, ph), (4 * 28 + 3, 2 * 28 + 1));
    assert_eq!(px[(ph - 1) * pw + pw - 1], 51);

    let bad = |imgs: &[f32], n, h, w, cols, scale| save_image_grid(&path, imgs, n, h, w, cols, scale);
    assert!(matches!(bad(&images, n, h, w + 1, cols, scale), Err(Error::Shape { .. })));
    assert!(matches!(bad(&images, n, h, w, 0, scale), Err(Error::InvalidArgument { .. })));
    assert!(matches!(bad(&images, n, h, w, cols, 0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(bad(&[], 0, h, w, cols, scale), Err(Error::InvalidArgument { .. })));
    assert!(matches!(bad(&images, n, h, w, cols, usize::MAX), Err(Error::InvalidArgument { .. })));
    assert_eq!(dir.entries(), BTreeSet::from(["grid.png".to_string()]));
}

fn distinct_colours(px: &[u8]) -> BTreeSet<[u8; 3]> {
    px.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

#[test]
fn line_plot_draws_axes_series_and_legend() {
    let dir = TempDir::new("lines");
    let path = dir.join("loss.png");
    let train: Vec<(f64, f64)> = (0..200).map(|i| (f64::from(i), 100.0 * (-f64::from(i) / 40.0).exp() + 3.0)).collect();
    let mut test: Vec<(f64, f64)> =
        (0..20).map(|i| (f64::from(i * 10), 110.0 * (-f64::from(i) / 4.0).exp() + 5.0)).collect();
    test[3].1 = f64::NAN;
    test[4].0 = f64::INFINITY;
    let series = [Series { name: "train loss", points: &train }, Series { name: "test loss", points: &test }];
    save_line_plot(&path, "VAE loss", "epoch", "loss", &series, 640, 400).unwrap();

    let (w, h, color, px) = decode(&path);
    assert_eq!((w, h, color), (640, 400, png::ColorType::Rgb));
    let colours = distinct_colours(&px);
    assert!(colours.contains(&[255, 255, 255]) && colours.contains(&[0, 0, 0]));
    assert!(colours.contains(&[31, 119, 180]) && colours.contains(&[255, 127, 14]), "both series drawn");
    assert!(colours.len() >= 3);
    // Background dominates; the corner is background.
    assert_eq!(&px[..3], &[255, 255, 255]);

    // Tiny spans, a single point and huge magnitudes still plot.
    let one = [(1.0, 1e-7)];
    save_line_plot(&path, "", "", "", &[Series { name: "x", points: &one }], 200, 150).unwrap();
    let big = [(0.0, -3e12), (1.0, 5e12)];
    save_line_plot(&path, "big", "x", "y", &[Series { name: "b", points: &big }], 300, 200).unwrap();

    let nan = [(f64::NAN, 1.0)];
    assert!(matches!(save_line_plot(&path, "t", "x", "y", &[], 640, 400), Err(Error::InvalidArgument { .. })));
    let only_nan = [Series { name: "n", points: &nan }];
    assert!(matches!(save_line_plot(&path, "t", "x", "y", &only_nan, 640, 400), Err(Error::InvalidArgument { .. })));
    assert!(matches!(save_line_plot(&path, "t", "x", "y", &series, 30, 20), Err(Error::InvalidArgument { .. })));
    assert!(matches!(save_line_plot(&path, "t", "x", "y", &series, 0, 400), Err(Error::InvalidArgument { .. })));
    let extreme = [(0.0, -f64::MAX), (1.0, f64::MAX)];
    let extreme = [Series { name: "e", points: &extreme }];
    assert!(matches!(save_line_plot(&path, "t", "x", "y", &extreme, 640, 400), Err(Error::InvalidArgument { .. })));
    assert_eq!(dir.entries(), BTreeSet::from(["loss.png".to_string()]));
}

#[test]
fn scatter_colours_points_by_label() {
    let dir = TempDir::new("scatter");
    let path = dir.join("embedding.png");
    let mut rng = seeded(8);
    let labels: Vec<u8> = (0..500).map(|i| (i % 10) as u8).collect();
    let xy = uniform_vec(&mut rng, 1000, -1.0, 1.0);
    let mut points: Vec<(f32, f32)> =
        labels.iter().zip(xy.chunks_exact(2)).map(|(&l, c)| (c[0] + 3.0 * f32::from(l), c[1] - f32::from(l))).collect();
    points[0] = (f32::NAN, 0.0);
    save_scatter(&path, "embedding", &points, &labels, 480, 480).unwrap();

    let (w, h, color, px) = decode(&path);
    assert_eq!((w, h, color), (480, 480, png::ColorType::Rgb));
    let colours = distinct_colours(&px);
    assert!(colours.contains(&[255, 255, 255]));
    assert!(colours.len() >= 12, "background, black and ten class colours: {}", colours.len());

    assert!(matches!(save_scatter(&path, "t", &points, &labels[1..], 480, 480), Err(Error::Shape { .. })));
    assert!(matches!(save_scatter(&path, "t", &[], &[], 480, 480), Err(Error::InvalidArgument { .. })));
    assert!(matches!(save_scatter(&path, "t", &points, &labels, 40, 40), Err(Error::InvalidArgument { .. })));
    assert!(matches!(save_scatter(&path, "t", &points, &labels, 1 << 20, 480), Err(Error::InvalidArgument { .. })));
    assert_eq!(dir.entries(), BTreeSet::from(["embedding.png".to_string()]));
}
