//! Timing for the benchmark binaries: warm-up, then the median of repeated samples, each sample a
//! batch of calls long enough that launch latency and clock resolution do not dominate. On CUDA
//! a sample is timed with a pair of CUDA events on the backend's stream; elsewhere with the wall
//! clock around a synchronized batch. [`peak`] holds the instruction-throughput probes.

pub mod peak;

use std::time::Instant;

use crate::backend::Backend;
use crate::error::Result;

/// Median seconds per call of `f` over `samples` samples (at least 1).
pub fn median_secs<B: Backend>(b: &B, samples: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    b.synchronize()?;
    let t0 = Instant::now();
    f()?;
    b.synchronize()?;
    let one = t0.elapsed().as_secs_f64().max(1e-7);
    let reps = ((2e-3 / one).ceil() as usize).clamp(1, 1000);
    let mut times = Vec::with_capacity(samples.max(1));
    for _ in 0..samples.max(1) {
        times.push(sample_secs(b, reps, &mut f)? / reps as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[cfg(feature = "cuda")]
fn sample_secs<B: Backend>(b: &B, reps: usize, f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    use std::any::Any;
    if let Some(cuda) = (b as &dyn Any).downcast_ref::<crate::backend::CudaBackend>() {
        let ev = |e: cudarc::driver::DriverError| crate::Error::Cuda { context: "benchmark event", msg: e.to_string() };
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = cuda.context().new_event(flags).map_err(ev)?;
        let end = cuda.context().new_event(flags).map_err(ev)?;
        start.record(cuda.stream()).map_err(ev)?;
        for _ in 0..reps {
            f()?;
        }
        end.record(cuda.stream()).map_err(ev)?;
        end.synchronize().map_err(ev)?;
        return Ok(f64::from(start.elapsed_ms(&end).map_err(ev)?) * 1e-3);
    }
    wall_secs(b, reps, f)
}

#[cfg(not(feature = "cuda"))]
fn sample_secs<B: Backend>(b: &B, reps: usize, f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    wall_secs(b, reps, f)
}

fn wall_secs<B: Backend>(b: &B, reps: usize, f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    b.synchronize()?;
    let t0 = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    b.synchronize()?;
    Ok(t0.elapsed().as_secs_f64())
}
