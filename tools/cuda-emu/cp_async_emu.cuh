// The CPU emulator's model of cp.async (kernels/cp_async.cuh includes it instead of its asm helpers
// when LK_CUDA_EMULATOR is defined; so does tc_ptx_emu.cuh):
// copies are queued per thread and performed at wait_group, so a read before the wait sees the old
// bytes; the part of a copy past its source size is zero-filled.
#pragma once
#include <vector>

namespace lk_emu_tc {

struct Copy {
    void* dst;
    const void* src;
    int bytes;  // from the source; the rest of `size` is zero-filled
    int size;   // 16 or 4
};
struct Pending {
    uint64_t epoch = 0;
    std::vector<Copy> open;                 // issued since the last commit
    std::vector<std::vector<Copy>> groups;  // committed, oldest first
};
extern "C" uint32_t lk_emu_cluster_rank();
inline Pending& pending() {
    static Pending per_thread[lk_emu::MAX_CLUSTER * 1024];  // by (block rank in the cluster, thread)
    Pending& p = per_thread[lk_emu_cluster_rank() * 1024 + lk_emu_linear_tid()];
    if (p.epoch != lk_emu_block_epoch()) {  // a new block: copies left by the last one died with it
        p.epoch = lk_emu_block_epoch();
        p.open.clear();
        p.groups.clear();
    }
    return p;
}
inline void require_aligned_to(const void* p, uintptr_t n, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % n) lk_emu_trap(what);
}

}  // namespace lk_emu_tc

__device__ __forceinline__ void cp_async_16(void* dst, const void* src, int src_bytes) {
    lk_emu_tc::require_aligned_to(dst, 16, "cp.async: shared destination not 16-byte aligned");
    if (src_bytes > 0) lk_emu_tc::require_aligned_to(src, 16, "cp.async: global source not 16-byte aligned");
    if (src_bytes < 0 || src_bytes > 16) lk_emu_trap("cp.async: source size outside [0, 16]");
    lk_emu_race_async_issue(dst, 16);
    lk_emu_tc::pending().open.push_back({dst, src, src_bytes, 16});
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, int src_bytes) {
    lk_emu_tc::require_aligned_to(dst, 4, "cp.async: shared destination not 4-byte aligned");
    if (src_bytes > 0) lk_emu_tc::require_aligned_to(src, 4, "cp.async: global source not 4-byte aligned");
    if (src_bytes < 0 || src_bytes > 4) lk_emu_trap("cp.async: source size outside [0, 4]");
    lk_emu_race_async_issue(dst, 4);
    lk_emu_tc::pending().open.push_back({dst, src, src_bytes, 4});
}
__device__ __forceinline__ void cp_async_commit() {
    lk_emu_tc::Pending& p = lk_emu_tc::pending();
    p.groups.push_back(std::move(p.open));
    p.open.clear();
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    lk_emu_tc::Pending& p = lk_emu_tc::pending();
    lk_emu_banks_quiet(1);  // the copies' bytes land: counted as requests at their issue
    while (p.groups.size() > (size_t)N) {
        for (const lk_emu_tc::Copy& c : p.groups.front()) {
            lk_emu_race_async_done(c.dst, (size_t)c.size);
            if (c.bytes) memcpy(c.dst, c.src, (size_t)c.bytes);
            memset(static_cast<char*>(c.dst) + c.bytes, 0, (size_t)(c.size - c.bytes));
        }
        p.groups.erase(p.groups.begin());
    }
    lk_emu_banks_quiet(0);
}

