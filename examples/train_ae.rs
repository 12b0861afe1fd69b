//! Trains the plain autoencoder x̂ = D(E(x)) (784-400-20 by default) on MNIST.
//!
//!     cargo run --release --example train_ae                     # CPU, committed subset
//!     cargo run --release --features cuda --example train_ae -- --device cuda
//!     cargo run --release --example train_ae -- --data data/mnist-full --epochs 10
//!
//! Options: --device cpu|cuda[:N]  --data DIR  --epochs N  --batch N  --lr X  --seed N
//!          --likelihood bernoulli|gaussian  --hidden N  --code N  --out DIR (writes metrics.csv)

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use latentkit::data::{Mnist, MnistSplit};
use latentkit::io::write_file_atomic;
use latentkit::nn::{Autoencoder, Likelihood};
use latentkit::ops::AdamConfig;
use latentkit::rng::{permutation, seeded};
use latentkit::train::Adam;
use latentkit::{Backend, CpuBackend, CudaBackend, Device, Error, Tensor};

struct Args {
    device: Device,
    data: Option<PathBuf>,
    epochs: usize,
    batch: usize,
    lr: f32,
    seed: u64,
    likelihood: Likelihood,
    hidden: usize,
    code: usize,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        device: Device::Cpu,
        data: None,
        epochs: 10,
        batch: 128,
        lr: 1e-3,
        seed: 0,
        likelihood: Likelihood::Bernoulli,
        hidden: 400,
        code: 20,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--device" => a.device = value()?.parse().map_err(|e: Error| e.to_string())?,
            "--data" => a.data = Some(value()?.into()),
            "--epochs" => a.epochs = num(value()?)?,
            "--batch" => a.batch = num(value()?)?,
            "--hidden" => a.hidden = num(value()?)?,
            "--code" => a.code = num(value()?)?,
            "--seed" => a.seed = num(value()?)? as u64,
            "--lr" => a.lr = value()?.parse().map_err(|e| format!("--lr: {e}"))?,
            "--out" => a.out = Some(value()?.into()),
            "--likelihood" => {
                a.likelihood = match value()?.as_str() {
                    "bernoulli" => Likelihood::Bernoulli,
                    "gaussian" => Likelihood::Gaussian,
                    other => return Err(format!("--likelihood: unknown {other:?}")),
                }
            }
            "-h" | "--help" => {
                println!("see the header of examples/train_ae.rs for the options");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?} (try --help)")),
        }
    }
    if a.batch == 0 || a.epochs == 0 {
        return Err("--batch and --epochs must be ≥ 1".into());
    }
    Ok(a)
}

/// Mean per-example loss over a split, in batches (the last one may be smaller).
fn evaluate<B: Backend>(b: &B, model: &mut Autoencoder<B>, split: &MnistSplit, batch: usize) -> latentkit::Result<f32> {
    let mut total = 0.0f64;
    for (n, pixels) in split.image_chunks(batch) {
        let x = Tensor::from_slice(b, &[n, split.dim()], pixels)?;
        total += f64::from(model.loss(b, &x)?) * n as f64;
    }
    Ok((total / split.len() as f64) as f32)
}

fn train<B: Backend>(b: &B, args: &Args, data: &Mnist) -> latentkit::Result<()> {
    let dim = data.train.dim();
    let mut rng = seeded(args.seed);
    let mut model = Autoencoder::new(b, &[dim, args.hidden, args.code], args.likelihood, &mut rng)?;
    let mut opt = Adam::new(b, &model.params_mut(), AdamConfig { lr: args.lr, ..AdamConfig::default() })?;
    let mut x = Tensor::zeros(b, &[args.batch, dim])?;
    let mut host_batch = vec![0.0f32; args.batch * dim];
    let steps_per_epoch = data.train.len() / args.batch;
    if steps_per_epoch == 0 {
        return Err(Error::InvalidArgument {
            op: "train_ae",
            msg: format!("batch {} exceeds the {} training images", args.batch, data.train.len()),
        });
    }
    // Rewritten whole (atomically) after every epoch, as the other examples do: a crash never
    // leaves a torn row.
    let mut csv = String::from("epoch,train_loss,test_loss,seconds\n");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.clone(), offset: 0, source: e })?;
    }
    let unit = match args.likelihood {
        Likelihood::Bernoulli => "nats/image",
        Likelihood::Gaussian => "squared error/image",
    };
    println!(
        "training {dim}-{}-{} autoencoder on {} ({} train / {} test images), batch {}, Adam lr {}",
        args.hidden,
        args.code,
        b.device(),
        data.train.len(),
        data.test.len(),
        args.batch,
        args.lr
    );
    for epoch in 1..=args.epochs {
        let t0 = Instant::now();
        let order = permutation(&mut rng, data.train.len());
        let mut sum = 0.0f64;
        for s in 0..steps_per_epoch {
            for (row, &i) in order[s * args.batch..(s + 1) * args.batch].iter().enumerate() {
                host_batch[row * dim..(row + 1) * dim].copy_from_slice(&data.train.images[i * dim..(i + 1) * dim]);
            }
            x.copy_from_slice(b, &host_batch)?;
            // A non-finite loss is an error before the update.
            let loss = model.train_step(b, &x, &mut opt)?;
            sum += f64::from(loss);
            if s % 10 == 0 || s + 1 == steps_per_epoch {
                print!(
                    "\repoch {epoch}/{} [{:>4}/{steps_per_epoch}] loss {:8.3}",
                    args.epochs,
                    s + 1,
                    sum / (s + 1) as f64
                );
                let _ = std::io::stdout().flush();
            }
        }
        let train_loss = sum / steps_per_epoch as f64;
        let test_loss = evaluate(b, &mut model, &data.test, args.batch.max(256))?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "\repoch {epoch}/{}: train {train_loss:.3}, test {test_loss:.3} {unit} ({secs:.1} s)        ",
            args.epochs
        );
        csv += &format!("{epoch},{train_loss:.4},{test_loss:.4},{secs:.3}\n");
        if let Some(dir) = &args.out {
            write_file_atomic(&dir.join("metrics.csv"), csv.as_bytes())?;
        }
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let result = (|| -> latentkit::Result<()> {
        let data = match &args.data {
            Some(dir) => Mnist::load(dir)?,
            None => Mnist::committed_subset()?,
        };
        match args.device {
            Device::Cpu => train(&CpuBackend, &args, &data),
            Device::Cuda(i) => train(&CudaBackend::new(i)?, &args, &data),
        }
    })();
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
