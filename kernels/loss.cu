// Reconstruction losses, forward per row and backward per element.
//
// Shapes: pred/logits and target are [rows, cols] row-major; row_loss is [rows].
//   mse_fwd_f32:         row_loss[r] = Σ_c (pred[r,c] − target[r,c])²
//   mse_bwd_f32:         grad[i] = scale · 2 · (pred[i] − target[i])
//   bce_logits_fwd_f32:  row_loss[r] = Σ_c softplus(l) − l·t          (= −[t·log σ(l) + (1−t)·log(1−σ(l))])
//   bce_logits_bwd_f32:  grad[i] = scale · (σ(l[i]) − t[i])
// `scale` is the upstream gradient of the reported loss with respect to each row sum (e.g. 1/rows
// for a per-example mean), passed by the caller so the reduction is stated at the API.
//
// Work split: the forward kernels run one block per row (grid-stride over rows); the block's
// threads read the row with a stride of blockDim and combine with lk::block_sum, so the order of
// summation is fixed. The backward kernels are grid-stride pointwise loops.
#include "common.cuh"

LK_KERNEL void mse_fwd_f32(const float* __restrict__ pred, const float* __restrict__ target,
                           float* __restrict__ row_loss, int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* p = pred + r * cols;
        const float* t = target + r * cols;
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const float d = p[c] - t[c];
            s += d * d;
        }
        s = lk::block_sum(s);
        if (threadIdx.x == 0) row_loss[r] = s;
    }
}

LK_KERNEL void mse_bwd_f32(const float* __restrict__ pred, const float* __restrict__ target,
                           float scale, float* __restrict__ grad, int64_t n) {
    LK_GRID_STRIDE(i, n) { grad[i] = scale * 2.0f * (pred[i] - target[i]); }
}

LK_KERNEL void bce_logits_fwd_f32(const float* __restrict__ logits,
                                  const float* __restrict__ target, float* __restrict__ row_loss,
                                  int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* l = logits + r * cols;
        const float* t = target + r * cols;
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += lk::softplus(l[c]) - l[c] * t[c];
        s = lk::block_sum(s);
        if (threadIdx.x == 0) row_loss[r] = s;
    }
}

LK_KERNEL void bce_logits_bwd_f32(const float* __restrict__ logits,
                                  const float* __restrict__ target, float scale,
                                  float* __restrict__ grad, int64_t n) {
    LK_GRID_STRIDE(i, n) { grad[i] = scale * (lk::sigmoid(logits[i]) - target[i]); }
}
