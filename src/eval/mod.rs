//! Evaluation without faiss: exact retrieval metrics (precision@1, R-precision, MAP@R), pair
//! metrics for a siamese head (accuracy at a threshold, ROC-AUC), and a 2-D PCA projection for
//! embedding plots. Host-side code over embeddings and labels; the same inputs give the same
//! numbers whichever backend produced the embeddings.

mod pairs;
mod pca;
mod retrieval;

pub use pairs::{accuracy_at, best_threshold, roc_auc};
pub use pca::pca_2d;
pub use retrieval::{retrieval_metrics, DistanceKind, RetrievalMetrics};
