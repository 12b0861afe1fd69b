//! PyTorch's figures next to ours, from one GPU run: the bench examples take `--baselines FILE`
//! (repeatable), the JSON that `../shared/bench/torch_baselines.py --out FILE` wrote earlier in the
//! same call on the same card (scripts/gpu-run.sh runs the baselines before the benches), and
//! print a side-by-side table of the workloads both sides measured, with the ratio
//! PyTorch time / ours (> 1: ours faster).

use std::path::{Path, PathBuf};

/// The baseline script's JSON files, merged: a key is looked up in each file in turn.
#[derive(Default)]
pub struct Baselines {
    files: Vec<(PathBuf, serde_json::Value)>,
}

impl Baselines {
    /// Reads every file; an unreadable file or one that is not a JSON object is an error naming it.
    pub fn load(paths: &[PathBuf]) -> Result<Self, String> {
        let files = paths
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).map_err(|e| format!("--baselines {}: {e}", p.display()))?;
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("--baselines {}: {e}", p.display()))?;
                if !v.is_object() {
                    return Err(format!("--baselines {}: not a JSON object", p.display()));
                }
                Ok((p.clone(), v))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { files })
    }

    /// The number at `path` (object keys from the top), from the first file that has one.
    pub fn num(&self, path: &[&str]) -> Option<f64> {
        self.files.iter().find_map(|(_, v)| path.iter().try_fold(v, |v, k| v.get(k))?.as_f64())
    }

    /// The card the baselines ran on (`ceil.device`), if recorded.
    pub fn device(&self) -> Option<String> {
        self.files.iter().find_map(|(_, v)| v.get("ceil")?.get("device")?.as_str().map(str::to_string))
    }

    fn names(&self) -> String {
        let name = |p: &Path| p.file_name().map_or(p.display().to_string(), |n| n.to_string_lossy().into_owned());
        self.files.iter().map(|(p, _)| name(p)).collect::<Vec<_>>().join(", ")
    }
}

/// One workload: our time and PyTorch's variants of it.
struct Row {
    workload: String,
    ours_secs: f64,
    ours_note: String,
    theirs: Vec<(String, f64)>,
}

/// Rows gathered while a bench runs, printed at its end.
#[derive(Default)]
pub struct SideBySide {
    rows: Vec<Row>,
}

impl SideBySide {
    /// Adds a workload if PyTorch measured any variant of it (`theirs`: label and seconds, `None`
    /// where the JSON lacks that key).
    pub fn add(&mut self, workload: &str, ours_secs: f64, ours_note: &str, theirs: &[(&str, Option<f64>)]) {
        let theirs: Vec<(String, f64)> = theirs.iter().filter_map(|&(l, s)| Some((l.to_string(), s?))).collect();
        if !theirs.is_empty() {
            self.rows.push(Row { workload: workload.into(), ours_secs, ours_note: ours_note.into(), theirs });
        }
    }

    /// The table (nothing when no row was added), under a line naming both devices.
    pub fn print(&self, baselines: &Baselines, ours_device: &str) {
        if self.rows.is_empty() {
            return;
        }
        println!();
        println!(
            "## side by side: latentkit on {ours_device}, PyTorch on {} ({}); ratio = PyTorch time / ours",
            baselines.device().unwrap_or_else(|| "an unnamed device".into()),
            baselines.names()
        );
        println!("| workload | latentkit | PyTorch | ratio |");
        println!("|---|---|---|---|");
        for r in &self.rows {
            let theirs: Vec<String> = r.theirs.iter().map(|(l, s)| format!("{l} {}", fmt_secs(*s))).collect();
            // The ratio column names each side by its label less any parenthesised note.
            let short = |l: &str| l.split(" (").next().unwrap_or(l).to_string();
            let ratios: Vec<String> =
                r.theirs.iter().map(|(l, s)| format!("{:.2}× {}", s / r.ours_secs, short(l))).collect();
            let note = if r.ours_note.is_empty() { String::new() } else { format!(" ({})", r.ours_note) };
            println!(
                "| {} | {}{note} | {} | {} |",
                r.workload,
                fmt_secs(r.ours_secs),
                theirs.join(", "),
                ratios.join(", ")
            );
        }
    }
}

/// Milliseconds in the JSON to seconds.
pub fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|x| x * 1e-3)
}

/// Seconds in the unit that suits them: "3.056 ms", "242.9 µs".
pub fn fmt_secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}
