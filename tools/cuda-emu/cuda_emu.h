// The CUDA C++ surface that latentkit's kernels use, for a host compiler (g++): keywords, built-in
// variables, vector types, intrinsics and warp / block collectives. Included ahead of every kernel
// source by tools/cuda-emu/build.py; the collectives run on the fiber scheduler in runtime.cpp.
//
// Semantics kept: one fiber per CUDA thread, all threads of a block run before the next block starts
// (so `static` storage is the block's shared memory), __syncthreads waits for every thread of the
// block that has not exited, warp collectives exchange values among the lanes of their mask that have
// not exited. Not kept: timing, memory-model reorderings (fibers switch only at collectives, so code
// that forgets a barrier between a shared-memory write and another thread's read reads stale or
// poisoned data, which is what the tests should see).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#define LK_CUDA_EMULATOR 1
// Device code takes its sm_80 paths (the tensor-core helpers come from the emulator's tc_ptx.cuh).
#define __CUDA_ARCH__ 800

#define __global__
#define __host__
#define __device__ static
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// Clusters: build.py reads the dimensions and registers them with the kernel.
#define __cluster_dims__(...)
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
// Function-scope `__shared__` arrays: one instance shared by the fibers of the running block.
#define __shared__ static

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned int x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

namespace lk_emu {
// The most blocks a cluster may have here (the driver refuses larger ones).
constexpr unsigned MAX_CLUSTER = 8;
// Exchange kinds of a warp collective (runtime.cpp resolves them when the lanes have all arrived).
enum WarpOp : int { WARP_SYNC, WARP_SHFL_IDX, WARP_SHFL_XOR, WARP_SHFL_DOWN, WARP_SHFL_UP, WARP_BALLOT, WARP_GATHER };
}  // namespace lk_emu

extern "C" {
// The running thread's indices and its block's geometry (set by the scheduler).
extern uint3 lk_emu_thread_idx;
extern uint3 lk_emu_block_idx;
extern dim3 lk_emu_block_dim;
extern dim3 lk_emu_grid_dim;
void lk_emu_syncthreads();
uint64_t lk_emu_warp_collective(int op, uint32_t mask, uint64_t value, int arg, int width);
[[noreturn]] void lk_emu_trap(const char* why);
long long lk_emu_clock64();  // a counter: one tick a call
void* lk_emu_dynamic_smem();
// Warp collective that hands every participating lane all 32 lanes' `bytes`-byte blobs (lane order;
// lanes outside the collective read as NaN bytes): the exchange that ldmatrix and mma.sync need.
void lk_emu_warp_gather(uint32_t mask, const void* in, size_t bytes, void* out_all);
// Counts the blocks run so far: per-thread state that must not outlive its block compares it.
uint64_t lk_emu_block_epoch();
// The calling thread's index within its block (x fastest).
unsigned lk_emu_linear_tid();
// Fills a shared array with NaN bytes the first time a block reaches its declaration.
void lk_emu_poison_shared(void* p, size_t bytes);
// The race checker's hooks (no-ops unless built with it): an asynchronous copy's destination is
// written from its issue to its wait (cp.async); accesses while suspended are not checked (atomics).
void lk_emu_race_async_issue(const void* dst, size_t bytes);
void lk_emu_race_async_done(const void* dst, size_t bytes);
void lk_emu_race_suspend(int on);
// The bank profile's hooks (banks.cpp): a lane's ldmatrix row address, and a span whose shared-memory
// accesses are a model's own, not the kernel's requests.
void lk_emu_banks_ldmatrix(const void* row);
void lk_emu_banks_quiet(int on);
}

#define threadIdx lk_emu_thread_idx
#define blockIdx lk_emu_block_idx
#define blockDim lk_emu_block_dim
#define gridDim lk_emu_grid_dim

inline void __syncthreads() { lk_emu_syncthreads(); }
inline void __syncwarp(uint32_t mask = 0xffffffffu) { lk_emu_warp_collective(lk_emu::WARP_SYNC, mask, 0, 0, 32); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __nanosleep(unsigned) {}
inline long long clock64() { return lk_emu_clock64(); }
[[noreturn]] inline void __trap() { lk_emu_trap("__trap() called"); }

template <typename T>
inline uint64_t lk_emu_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp collectives move at most 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T>
inline T lk_emu_from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}
template <typename T>
inline T lk_emu_shuffle(int op, uint32_t mask, T v, int arg, int width) {
    return lk_emu_from_bits<T>(lk_emu_warp_collective(op, mask, lk_emu_bits(v), arg, width));
}
template <typename T>
inline T __shfl_sync(uint32_t mask, T v, int src, int width = 32) {
    return lk_emu_shuffle(lk_emu::WARP_SHFL_IDX, mask, v, src, width);
}
template <typename T>
inline T __shfl_xor_sync(uint32_t mask, T v, int lane_mask, int width = 32) {
    return lk_emu_shuffle(lk_emu::WARP_SHFL_XOR, mask, v, lane_mask, width);
}
template <typename T>
inline T __shfl_down_sync(uint32_t mask, T v, unsigned delta, int width = 32) {
    return lk_emu_shuffle(lk_emu::WARP_SHFL_DOWN, mask, v, (int)delta, width);
}
template <typename T>
inline T __shfl_up_sync(uint32_t mask, T v, unsigned delta, int width = 32) {
    return lk_emu_shuffle(lk_emu::WARP_SHFL_UP, mask, v, (int)delta, width);
}
inline uint32_t __ballot_sync(uint32_t mask, int pred) {
    return (uint32_t)lk_emu_warp_collective(lk_emu::WARP_BALLOT, mask, pred ? 1 : 0, 0, 32);
}
inline int __any_sync(uint32_t mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(uint32_t mask, int pred) {
    // Every participating lane's bit must be set; the ballot only holds the participants' bits.
    return (__ballot_sync(mask, pred) & mask) == (__ballot_sync(mask, 1) & mask);
}

// Correctly rounded arithmetic: the host's IEEE operations (built with -ffp-contract=off, so a
// separate multiply and add are never fused, as __fmul_rn / __fadd_rn promise on the GPU).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

// Shared-memory addresses stay host pointers here (only gemm_tc.cu converts, inside the PTX the emulator replaces).
inline size_t __cvta_generic_to_shared(const void* p) { return reinterpret_cast<size_t>(p); }
inline unsigned int __float_as_uint(float x) { return lk_emu_from_bits<unsigned int>(lk_emu_bits(x)); }
inline float __uint_as_float(unsigned int x) { return lk_emu_from_bits<float>(lk_emu_bits(x)); }
// A bfloat16 (bf16) or IEEE half's bits as a float (exact): the tensor-core models' operand reads.
inline float lk_emu_half_to_f32(uint16_t h, bool bf16) {
    if (bf16) return __uint_as_float((uint32_t)h << 16);
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0) return (sign ? -1.0f : 1.0f) * ldexpf((float)man, -24);  // zero and subnormals
    return __uint_as_float(sign | ((exp + 112) << 23) | (man << 13));
}
inline int __float_as_int(float x) { return lk_emu_from_bits<int>(lk_emu_bits(x)); }
inline float __int_as_float(int x) { return lk_emu_from_bits<float>(lk_emu_bits(x)); }
inline int __double2loint(double d) { return (int)(uint32_t)lk_emu_bits(d); }
inline int __double2hiint(double d) { return (int)(uint32_t)(lk_emu_bits(d) >> 32); }
inline double __hiloint2double(int hi, int lo) {
    return lk_emu_from_bits<double>(((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo);
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((uint64_t)a * b) >> 32); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned int __brev(unsigned int x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
template <typename T>
inline T __ldg(const T* p) {
    return *p;
}
template <typename T>
inline void __stwb(T* p, T v) {
    *p = v;
}
template <typename T>
inline void __stcs(T* p, T v) {
    *p = v;
}
template <typename T>
inline T __ldcs(const T* p) {
    return *p;
}
template <typename T>
inline T __ldcg(const T* p) {
    return *p;
}

// CUDA's integer min / max overloads (mixed signedness and widths pick the wider type).
template <typename A, typename B>
inline auto min(A a, B b) -> typename std::common_type<A, B>::type {
    using C = typename std::common_type<A, B>::type;
    return (C)a < (C)b ? (C)a : (C)b;
}
template <typename A, typename B>
inline auto max(A a, B b) -> typename std::common_type<A, B>::type {
    using C = typename std::common_type<A, B>::type;
    return (C)a > (C)b ? (C)a : (C)b;
}

// Atomics: fibers of one launch run on one host thread and switch only at collectives, so a plain
// read-modify-write is atomic. The race checker does not check them (against each other, as on a GPU).
#define LK_EMU_ATOMIC(name, update)  \
    template <typename T>             \
    inline T name(T* p, T v) {        \
        lk_emu_race_suspend(1);       \
        T old = *p;                   \
        *p = (update);                \
        lk_emu_race_suspend(0);       \
        return old;                   \
    }
LK_EMU_ATOMIC(atomicAdd, old + v)
LK_EMU_ATOMIC(atomicSub, old - v)
LK_EMU_ATOMIC(atomicMax, old > v ? old : v)
LK_EMU_ATOMIC(atomicMin, old < v ? old : v)
LK_EMU_ATOMIC(atomicExch, v)
LK_EMU_ATOMIC(atomicOr, old | v)
LK_EMU_ATOMIC(atomicAnd, old & v)
#undef LK_EMU_ATOMIC
template <typename T>
inline T atomicCAS(T* p, T cmp, T v) {
    lk_emu_race_suspend(1);
    T old = *p;
    if (old == cmp) *p = v;
    lk_emu_race_suspend(0);
    return old;
}

// Kernel registration: build.py appends one `LK_EMU_REGISTER(name)` per kernel to its source, which
// records how to turn cuLaunchKernel's `void** kernelParams` into a call with the kernel's own
// parameter types (copied at launch, as the driver copies them; a captured graph replays the copy).
#include <functional>
#include <memory>
#include <tuple>
#include <utility>

namespace lk_emu {
using ThreadBody = std::function<void()>;
using Binder = std::function<ThreadBody(void** params)>;
// A kernel as its registrar recorded it: how to bind its parameters, and its __cluster_dims__.
struct Registered {
    Binder binder;
    dim3 cluster;
};
void register_kernel(const char* name, Binder binder, dim3 cluster);

template <typename... A, size_t... I>
ThreadBody bind_params(void (*k)(A...), void** p, std::index_sequence<I...>) {
    auto args = std::make_shared<std::tuple<std::decay_t<A>...>>(*static_cast<std::decay_t<A>*>(p[I])...);
    return [k, args]() { std::apply(k, *args); };
}
template <typename... A>
struct Registrar {
    Registrar(const char* name, void (*k)(A...), dim3 cluster) {
        register_kernel(name, [k](void** p) { return bind_params(k, p, std::index_sequence_for<A...>{}); }, cluster);
    }
};
}  // namespace lk_emu
// `x, y, z`: the kernel's __cluster_dims__ (1, 1, 1 without).
#define LK_EMU_REGISTER(name, x, y, z) static lk_emu::Registrar lk_emu_registrar_##name(#name, &name, dim3{x, y, z});
