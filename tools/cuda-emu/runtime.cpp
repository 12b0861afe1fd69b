// The emulator's fiber scheduler: runs a grid block by block (cluster by cluster), one fiber per CUDA
// thread, and resolves __syncthreads, warp collectives, named and cluster barriers. x86-64 only (a six-register context switch; no
// signal-mask syscalls as ucontext would make on every switch).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"
#include "emu_internal.h"

uint3 lk_emu_thread_idx;
uint3 lk_emu_block_idx;
dim3 lk_emu_block_dim;
dim3 lk_emu_grid_dim;

extern "C" void lk_emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .globl lk_emu_switch
    .hidden lk_emu_switch
    .type lk_emu_switch,@function
lk_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size lk_emu_switch, .-lk_emu_switch
)");

namespace lk_emu {
namespace {

// SPIN: runnable, but its last try (an mbarrier try_wait, a wgmma waiting for its warpgroup) found
// nothing to do; a pass in which only spinning threads ran and nothing changed is a deadlock.
enum State { RUNNABLE, AT_BARRIER, AT_WARP, AT_NAMED, AT_CLUSTER, SPIN, DONE };

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;  // lowest usable byte (a PROT_NONE page sits below it)
    uint3 tid{};
    unsigned rank = 0;  // its block's rank in the cluster (0 without clusters)
    State st = RUNNABLE;
    int named = 0;        // AT_NAMED: the barrier's id
    const char* spin_on = "";  // SPIN: what it waits for (deadlock reports)
    uint32_t wg_issued = 0, wg_group = 0;  // wgmma: operations issued and groups committed
    int op = 0, arg = 0, width = 32;
    uint32_t mask = 0;
    uint64_t in = 0, out = 0;
    const void* blob = nullptr;  // WARP_GATHER: this lane's bytes, and where all lanes' go
    void* blobs_out = nullptr;
    size_t blob_bytes = 0;
};

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr size_t PAGE = 4096;
constexpr size_t STACK_POISON_BYTES = 8 * 1024;

// A named barrier (bar.sync / bar.arrive) of one block.
struct Named {
    int count = 0, arrived = 0;
};

struct Scheduler {
    void* sched_sp = nullptr;
    std::vector<Fiber> fibers;  // the cluster's blocks, one after the other (n threads each)
    size_t n = 0;                // threads per block
    unsigned blocks = 1;         // blocks in the cluster
    uint3 block_idx[MAX_CLUSTER]{};
    Named named[MAX_CLUSTER][16];
    uint64_t progress = 0;  // counts what can let a waiting thread go on (hopper.cpp adds to it)
    Fiber* cur = nullptr;
    const ThreadBody* body = nullptr;
    const char* kernel = "";
    bool failed = false;
    bool reverse = false;
    uint64_t random = 0;  // LK_EMU_SCHEDULE=random[:seed]: the xorshift state, 0 when off
    std::vector<uint32_t> order;
    pthread_t host_thread{};  // the thread running the fibers
    std::string error;
    uint64_t epoch = 0;
    // Static __shared__ variables (function-scope statics here) by address: the epoch each block
    // of the cluster last poisoned them in, their shared-window offsets, and with clusters each
    // block's copy of them (the statics hold the running block's; see switch_statics).
    // (The launch's statics get window offsets when first converted: only the Hopper kernels do.)
    struct Static {
        char* p;
        size_t bytes;
        uint32_t window;  // 0: none yet
    };
    std::unordered_map<void*, uint64_t> poisoned[MAX_CLUSTER];
    std::vector<Static> statics;  // this launch's
    uint32_t static_window_end = 0;
    std::unordered_map<void*, std::vector<char>> static_copy[MAX_CLUSTER];
    unsigned live = 0;  // whose statics are in place
    // Dynamic shared memory, per block of the cluster: the launch's bytes end at a PROT_NONE page.
    char* dyn_region[MAX_CLUSTER]{};
    size_t dyn_region_bytes[MAX_CLUSTER]{};
    char* dyn[MAX_CLUSTER]{};
    size_t dyn_bytes = 0;
};
Scheduler S;

extern "C" [[noreturn]] void lk_emu_fiber_entry() {
    Fiber* f = S.cur;
    (*S.body)();
    f->st = DONE;
    lk_emu_switch(&f->sp, S.sched_sp);
    __builtin_unreachable();
}

void init_stack(Fiber& f) {
    if (!f.stack) {
        char* region = static_cast<char*>(
            mmap(nullptr, STACK_BYTES + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (region == MAP_FAILED) {
            fprintf(stderr, "cuda-emu: no memory for a fiber stack\n");
            abort();
        }
        mprotect(region, PAGE, PROT_NONE);  // a stack overflow faults instead of corrupting memory
        f.stack = region + PAGE;
    }
    uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + STACK_BYTES) & ~uintptr_t(15);
    // NaN bytes where the kernel's frame will be: a local read before it is written (garbage
    // registers on a GPU) reads as NaN, the same in every run, instead of a previous block's values.
    memset(reinterpret_cast<char*>(top) - STACK_POISON_BYTES, 0xFF, STACK_POISON_BYTES);
    void** sp = reinterpret_cast<void**>(top);
    *--sp = nullptr;                                           // entry's return address (never used)
    *--sp = reinterpret_cast<void*>(&lk_emu_fiber_entry);     // popped by lk_emu_switch's ret
    for (int i = 0; i < 6; ++i) *--sp = nullptr;              // rbp, rbx, r12–r15
    f.sp = sp;
}

void yield() {
    Fiber* f = S.cur;
    lk_emu_switch(&f->sp, S.sched_sp);
}

void fail(std::string why) {
    if (!S.failed) {
        S.failed = true;
        S.error = std::move(why);
    }
}

std::string where(const Fiber& f) {
    char buf[160];
    const uint3 b = S.block_idx[f.rank];
    snprintf(buf, sizeof buf, "block (%u, %u, %u) thread (%u, %u, %u)", b.x, b.y, b.z, f.tid.x, f.tid.y, f.tid.z);
    return buf;
}

// Releases every warp whose participating lanes have all reached the same collective.
bool resolve_warps() {
    bool released = false;
    for (unsigned r = 0; r < S.blocks; ++r) {
        Fiber* blk = S.fibers.data() + r * S.n;
        for (size_t w0 = 0; w0 < S.n; w0 += 32) {
            const size_t lanes = std::min<size_t>(32, S.n - w0);
            Fiber* first = nullptr;
            for (size_t l = 0; l < lanes; ++l)
                if (blk[w0 + l].st == AT_WARP) {
                    first = &blk[w0 + l];
                    break;
                }
            if (!first) continue;
            const uint32_t mask = first->mask;
            bool ready = true;
            for (size_t l = 0; l < lanes && ready; ++l) {
                if (!(mask >> l & 1)) continue;
                const Fiber& f = blk[w0 + l];
                if (f.st == DONE) continue;  // exited lanes are not waited for
                if (f.st != AT_WARP) {
                    ready = false;  // still running or at another barrier
                    continue;
                }
                if (f.mask != mask || f.op != first->op) {
                    fail(std::string("warp collective mismatch in ") + S.kernel + ": " + where(f) +
                         " waits on another collective or mask than lane " + std::to_string(first - &blk[w0]));
                    return false;
                }
            }
            if (!ready) continue;
            uint32_t part = 0;  // participating lanes
            for (size_t l = 0; l < lanes; ++l)
                if ((mask >> l & 1) && blk[w0 + l].st == AT_WARP) part |= 1u << l;
            uint32_t ballot = 0;
            for (size_t l = 0; l < lanes; ++l)
                if ((part >> l & 1) && (blk[w0 + l].in & 1)) ballot |= 1u << l;
            if (first->op == WARP_GATHER) {
                for (size_t l = 0; l < lanes; ++l) {
                    if (!(part >> l & 1)) continue;
                    Fiber& f = blk[w0 + l];
                    if (f.blob_bytes != first->blob_bytes) {
                        fail(std::string("warp gather size mismatch in ") + S.kernel + ": " + where(f));
                        return false;
                    }
                    char* out = static_cast<char*>(f.blobs_out);
                    memset(out, 0xFF, 32 * f.blob_bytes);
                    for (size_t s = 0; s < lanes; ++s)
                        if (part >> s & 1) memcpy(out + s * f.blob_bytes, blk[w0 + s].blob, f.blob_bytes);
                }
            }
            for (size_t l = 0; l < lanes; ++l) {
                if (!(part >> l & 1)) continue;
                Fiber& f = blk[w0 + l];
                const int width = f.width, base = (int)l / width * width;
                int src = (int)l;
                switch (f.op) {
                    case WARP_SHFL_IDX: src = base + (f.arg & (width - 1)); break;
                    case WARP_SHFL_XOR: src = (int)l ^ f.arg; if (src / width > (int)l / width || src >= 32) src = (int)l; break;
                    case WARP_SHFL_DOWN: src = (int)l + f.arg; if (src >= base + width) src = (int)l; break;
                    case WARP_SHFL_UP: src = (int)l - f.arg; if (src < base) src = (int)l; break;
                    default: break;
                }
                if (f.op == WARP_BALLOT) f.out = ballot;
                else if (f.op == WARP_SYNC || f.op == WARP_GATHER) f.out = 0;
                // Reading a lane outside the collective is undefined on the GPU: all-ones bits (a NaN).
                else f.out = (src < (int)lanes && (part >> src & 1)) ? blk[w0 + src].in : ~uint64_t(0);
            }
            for (size_t l = 0; l < lanes; ++l)
                if (part >> l & 1) blk[w0 + l].st = RUNNABLE;
            if (first->op == WARP_SYNC && race::enabled()) {  // __syncwarp orders its lanes' memory
                size_t ts[32], k = 0;
                for (size_t l = 0; l < lanes; ++l)
                    if ((part >> l & 1) || ((mask >> l & 1) && blk[w0 + l].st == DONE))
                        ts[k++] = (size_t)(&blk[w0 + l] - S.fibers.data());
                race::barrier(ts, k, false);
            }
            released = true;
        }
    }
    return released;
}

// Releases a block whose live threads all wait at __syncthreads (or, with `state` AT_CLUSTER, the
// cluster whose live threads all wait at a cluster barrier).
bool resolve_barrier(State state) {
    bool released = false;
    const size_t group = state == AT_CLUSTER ? S.blocks * S.n : S.n;
    for (size_t g0 = 0; g0 < S.blocks * S.n; g0 += group) {
        size_t waiting = 0, live = 0;
        for (size_t i = g0; i < g0 + group; ++i) {
            if (S.fibers[i].st == DONE) continue;
            ++live;
            if (S.fibers[i].st == state) ++waiting;
        }
        if (live == 0 || waiting != live) continue;
        for (size_t i = g0; i < g0 + group; ++i)
            if (S.fibers[i].st == state) S.fibers[i].st = RUNNABLE;
        if (race::enabled()) {  // the exited threads' accesses are before the barrier too
            std::vector<size_t> ts(group);
            for (size_t i = 0; i < group; ++i) ts[i] = g0 + i;
            race::barrier(ts.data(), group, true);
            banks::close_warps(ts.data(), group);
        }
        released = true;
    }
    return released;
}

// Puts the statics of block `rank` in place (clusters only: each block has its own copy).
void switch_statics(unsigned rank) {
    if (S.live == rank) return;
    for (const auto& st : S.statics) {
        std::vector<char>& out = S.static_copy[S.live][st.p];
        out.assign(st.p, st.p + st.bytes);
        auto in = S.static_copy[rank].find(st.p);
        if (in != S.static_copy[rank].end()) memcpy(st.p, in->second.data(), st.bytes);
        else memset(st.p, 0xFF, st.bytes);
    }
    S.live = rank;
}

// What a waiting thread waits for, for deadlock reports.
std::string waits_for(const Fiber& f) {
    switch (f.st) {
        case AT_BARRIER: return "at __syncthreads";
        case AT_WARP: return "in a warp collective";
        case AT_NAMED: return "at named barrier " + std::to_string(f.named);
        case AT_CLUSTER: return "at a cluster barrier";
        case SPIN: return std::string("for ") + f.spin_on;
        default: return "";
    }
}

bool run_cluster() {
    ++S.epoch;
    S.live = 0;
    race::start_cluster(S.blocks * S.n, S.n, lk_emu_block_dim);
    banks::start_cluster(S.n);
    for (unsigned r = 0; r < S.blocks; ++r) {
        if (S.dyn_bytes) memset(S.dyn[r], 0xFF, S.dyn_bytes);
        S.static_copy[r].clear();
        for (auto& nb : S.named[r]) nb = Named{};
    }
    const unsigned bx = lk_emu_block_dim.x, by = lk_emu_block_dim.y;
    const size_t total = S.blocks * S.n;
    for (size_t i = 0; i < total; ++i) {
        Fiber& f = S.fibers[i];
        const size_t t = i % S.n;
        f.tid = uint3{(unsigned)(t % bx), (unsigned)(t / bx % by), (unsigned)(t / (bx * by))};
        f.rank = (unsigned)(i / S.n);
        f.st = RUNNABLE;
        f.wg_issued = f.wg_group = 0;
        init_stack(f);
    }
    for (;;) {
        const uint64_t before = S.progress;
        bool moved = false;  // a thread ran and ended anywhere but in a spin
        if (S.random) {  // a fresh order of the warps each pass, lanes in order (Fisher-Yates, xorshift64)
            const size_t warps_per_block = (S.n + 31) / 32, warps = S.blocks * warps_per_block;
            std::vector<uint32_t> w(warps);
            for (size_t i = 0; i < warps; ++i) w[i] = (uint32_t)i;
            for (size_t i = warps - 1; i > 0; --i) {
                S.random ^= S.random << 13;
                S.random ^= S.random >> 7;
                S.random ^= S.random << 17;
                std::swap(w[i], w[S.random % (i + 1)]);
            }
            S.order.clear();
            for (uint32_t x : w) {
                const size_t r = x / warps_per_block, first = r * S.n + (x % warps_per_block) * 32;
                for (size_t i = first; i < std::min(first + 32, (r + 1) * S.n); ++i) S.order.push_back((uint32_t)i);
            }
        }
        for (size_t j = 0; j < total; ++j) {
            // LK_EMU_SCHEDULE=reverse runs the highest thread first: a missing barrier between one
            // thread's shared-memory write and another's read shows up in one of the two orders;
            // random:SEED runs them in a new order each pass.
            Fiber& f = S.fibers[S.random ? S.order[j] : S.reverse ? total - 1 - j : j];
            if (f.st != RUNNABLE && f.st != SPIN) continue;
            f.st = RUNNABLE;
            S.cur = &f;
            lk_emu_thread_idx = f.tid;
            lk_emu_block_idx = S.block_idx[f.rank];
            if (S.blocks > 1) switch_statics(f.rank);
            lk_emu_switch(&S.sched_sp, f.sp);
            if (S.failed) return false;
            moved |= f.st != SPIN;
        }
        size_t done = 0;
        for (size_t i = 0; i < total; ++i) done += S.fibers[i].st == DONE;
        if (done == total) return true;
        if (resolve_warps()) continue;
        if (S.failed) return false;
        if (resolve_barrier(AT_BARRIER) || resolve_barrier(AT_CLUSTER)) continue;
        if (moved || S.progress != before) continue;
        // Nothing can move: name the first waiting thread of each kind.
        std::string why = std::string("deadlock in ") + S.kernel + ":";
        for (State st : {AT_BARRIER, AT_WARP, AT_NAMED, AT_CLUSTER, SPIN}) {
            for (size_t i = 0; i < total; ++i) {
                const Fiber& f = S.fibers[i];
                if (f.st != st) continue;
                why += " " + where(f) + " waits " + waits_for(f) + ";";
                break;
            }
        }
        fail(why);
        return false;
    }
}

}  // namespace

// Runs a whole grid on the calling host thread (the driver holds its lock), one cluster at a time
// (a block is a cluster of one); an empty string when every thread finished, else what went wrong.
std::string run_grid(const char* kernel, const ThreadBody& body, dim3 grid, dim3 block, size_t dyn_bytes,
                     dim3 cluster) {
    // LK_EMU_SCHEDULE: "reverse", or "random[:SEED]" (the seed then never 0, and a new one each launch).
    static const char* const schedule = getenv("LK_EMU_SCHEDULE");
    static const bool reverse = schedule && strcmp(schedule, "reverse") == 0;
    static uint64_t seed =
        schedule && strncmp(schedule, "random", 6) == 0
            ? (schedule[6] == ':' ? strtoull(schedule + 7, nullptr, 10) : 1) * 0x9E3779B97F4A7C15ull | 1
            : 0;
    S.reverse = reverse;
    S.random = seed;
    if (seed) seed = (seed * 6364136223846793005ull + 1442695040888963407ull) | 1;  // the next launch's
    S.host_thread = pthread_self();
    S.kernel = kernel;
    S.body = &body;
    S.failed = false;
    S.error.clear();
    S.statics.clear();
    S.static_window_end = 0;
    S.n = (size_t)block.x * block.y * block.z;
    S.blocks = cluster.x * cluster.y * cluster.z;
    if (S.fibers.size() < S.blocks * S.n) S.fibers.resize(S.blocks * S.n);
    // Dynamic shared memory ends at a PROT_NONE page: reading or writing past it faults. Every block
    // of a cluster has the same offset in its pages, so a shared-window offset means the same bytes
    // in each (DSMEM, multicast).
    const size_t need = (dyn_bytes + PAGE - 1) / PAGE * PAGE + PAGE;
    for (unsigned r = 0; r < S.blocks; ++r) {
        if (dyn_bytes && need > S.dyn_region_bytes[r]) {
            if (S.dyn_region[r]) munmap(S.dyn_region[r], S.dyn_region_bytes[r]);
            S.dyn_region[r] = static_cast<char*>(
                mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            S.dyn_region_bytes[r] = need;
            mprotect(S.dyn_region[r] + need - PAGE, PAGE, PROT_NONE);
        }
        S.dyn[r] = dyn_bytes ? S.dyn_region[r] + S.dyn_region_bytes[r] - PAGE - (dyn_bytes + 15) / 16 * 16 : nullptr;
    }
    S.dyn_bytes = dyn_bytes;
    race::start_launch(S.dyn, dyn_bytes, S.blocks);
    lk_emu_block_dim = block;
    lk_emu_grid_dim = grid;
    for (unsigned z = 0; z < grid.z; z += cluster.z)
        for (unsigned y = 0; y < grid.y; y += cluster.y)
            for (unsigned x = 0; x < grid.x; x += cluster.x) {
                // Cluster ranks: x fastest.
                for (unsigned r = 0; r < S.blocks; ++r)
                    S.block_idx[r] = uint3{x + r % cluster.x, y + r / cluster.x % cluster.y,
                                           z + r / (cluster.x * cluster.y)};
                if (!run_cluster()) {
                    banks::end_launch();
                    S.kernel = "";
                    return S.error;
                }
            }
    banks::end_launch();
    S.kernel = "";
    return {};
}

const char* running_kernel() { return S.kernel; }

bool in_kernel_on_this_thread() { return S.kernel[0] && pthread_equal(S.host_thread, pthread_self()); }

void describe_current_thread(char* buf, size_t len) {
    const uint3 t = S.cur ? S.cur->tid : uint3{0, 0, 0};
    snprintf(buf, len, "block (%u, %u, %u) thread (%u, %u, %u)", lk_emu_block_idx.x, lk_emu_block_idx.y,
             lk_emu_block_idx.z, t.x, t.y, t.z);
}

// ---- for hopper.cpp ----
void spin(const char* what) {
    S.cur->st = SPIN;
    S.cur->spin_on = what;
    yield();
}
void let_others_run() { yield(); }
void note_progress() { ++S.progress; }
unsigned current_rank() { return S.cur->rank; }
unsigned cluster_blocks() { return S.blocks; }
unsigned current_linear_tid() { return (unsigned)((S.cur - S.fibers.data()) % S.n); }
size_t current_fiber() { return (size_t)(S.cur - S.fibers.data()); }
size_t block_threads() { return S.n; }
bool thread_done(unsigned rank, unsigned tid) { return S.fibers[rank * S.n + tid].st == DONE; }
bool block_exited(unsigned rank) {
    for (size_t i = rank * S.n; i < (rank + 1) * S.n; ++i)
        if (S.fibers[i].st != DONE) return false;
    return true;
}
uint32_t& fiber_wg_issued() { return S.cur->wg_issued; }
uint32_t& fiber_wg_group() { return S.cur->wg_group; }
[[noreturn]] void fail_launch(const std::string& why) {
    fail(why + " in " + S.kernel + " at " + where(*S.cur));
    yield();
    __builtin_unreachable();
}

// The shared window: the block's dynamic shared memory from DYN_WINDOW on (congruent to its host
// address modulo 1024, so that alignment in the window is alignment on the host), then its static
// __shared__ variables from STATIC_WINDOW on, under 2^18 (the wgmma descriptors' address field).
constexpr uint32_t DYN_WINDOW = 0x400, STATIC_WINDOW = 0x3C000, WINDOW_END = 0x40000;
uint32_t dyn_window_base() { return DYN_WINDOW + (uint32_t)(reinterpret_cast<uintptr_t>(S.dyn[0]) & 1023); }
uint32_t smem_window(const void* p) {
    const char* c = static_cast<const char*>(p);
    const char* d = S.dyn[S.cur->rank];
    if (d && c >= d && c < d + S.dyn_bytes) return dyn_window_base() + (uint32_t)(c - d);
    for (auto& st : S.statics) {
        if (c < st.p || c >= st.p + st.bytes) continue;
        if (!st.window) {
            const uint32_t w = STATIC_WINDOW + ((S.static_window_end + 15) & ~15u);
            if (w + st.bytes > WINDOW_END) fail_launch("static __shared__ variables past the emulated shared window");
            st.window = w;
            S.static_window_end = w - STATIC_WINDOW + (uint32_t)st.bytes;
        }
        return st.window + (uint32_t)(c - st.p);
    }
    fail_launch("a shared-memory address of something not in shared memory");
}
void* smem_host(unsigned rank, uint32_t w, size_t bytes) {
    const uint32_t d0 = dyn_window_base();
    if (S.dyn[rank] && w >= d0 && w + bytes <= d0 + S.dyn_bytes) return S.dyn[rank] + (w - d0);
    for (auto& st : S.statics) {
        char* base = st.p;
        const size_t size = st.bytes;
        const uint32_t s0 = st.window;
        if (s0 && w >= s0 && w + bytes <= s0 + size) {
            // Another block's statics: its copy (the statics in place are the running block's).
            if (rank != S.live) {
                std::vector<char>& copy = S.static_copy[rank][base];
                if (copy.size() != size) copy.assign(size, (char)0xFF);
                return copy.data() + (w - s0);
            }
            return base + (w - s0);
        }
    }
    fail_launch("shared-window address " + std::to_string(w) + " (" + std::to_string(bytes) +
                " bytes) is outside the block's shared memory");
}

}  // namespace lk_emu

using namespace lk_emu;

extern "C" void lk_emu_syncthreads() {
    S.cur->st = AT_BARRIER;
    yield();
}

extern "C" uint64_t lk_emu_warp_collective(int op, uint32_t mask, uint64_t value, int arg, int width) {
    Fiber* f = S.cur;
    const unsigned lane = current_linear_tid() % 32;
    if (!(mask >> lane & 1)) {
        fail(std::string("warp collective in ") + S.kernel + ": " + where(*f) + " is not in its own mask");
        yield();
    }
    if (width <= 0 || width > 32 || (width & (width - 1))) {
        fail(std::string("warp collective in ") + S.kernel + ": width " + std::to_string(width) +
             " is not a power of two ≤ 32");
        yield();
    }
    f->op = op;
    f->mask = mask;
    f->in = value;
    f->arg = arg;
    f->width = width;
    f->st = AT_WARP;
    yield();
    return f->out;
}

extern "C" void lk_emu_warp_gather(uint32_t mask, const void* in, size_t bytes, void* out_all) {
    Fiber* f = S.cur;
    f->blob = in;
    f->blobs_out = out_all;
    f->blob_bytes = bytes;
    lk_emu_warp_collective(WARP_GATHER, mask, 0, 0, 32);
}

extern "C" uint64_t lk_emu_block_epoch() { return S.epoch; }

extern "C" unsigned lk_emu_linear_tid() { return current_linear_tid(); }

extern "C" [[noreturn]] void lk_emu_trap(const char* why) { fail_launch(why); }

extern "C" void* lk_emu_dynamic_smem() { return S.dyn[S.cur->rank]; }

extern "C" void lk_emu_poison_shared(void* p, size_t bytes) {
    uint64_t& e = S.poisoned[S.cur->rank][p];
    if (e != S.epoch) {
        e = S.epoch;
        memset(p, 0xFF, bytes);
    }
    race::add_static(p, bytes);
    for (const auto& st : S.statics)
        if (st.p == p) return;
    S.statics.push_back({static_cast<char*>(p), bytes, 0});
}

// bar.sync (wait = 1) and bar.arrive (wait = 0) on named barrier `id` of `count` threads.
extern "C" void lk_emu_named_barrier(int id, int count, int wait) {
    Fiber* f = S.cur;
    if (id < 0 || id > 15 || count <= 0 || count % 32) fail_launch("named barrier with a bad id or thread count");
    Named& nb = S.named[f->rank][id];
    if (nb.arrived > 0 && nb.count != count) fail_launch("named barrier " + std::to_string(id) + " used with two thread counts");
    nb.count = count;
    ++S.progress;
    const uint64_t key = race::named_key(f->rank, id);
    race::release(key, current_fiber());
    if (++nb.arrived == count) {
        nb.arrived = 0;
        for (size_t i = f->rank * S.n; i < (f->rank + 1) * S.n; ++i)
            if (S.fibers[i].st == AT_NAMED && S.fibers[i].named == id) {
                S.fibers[i].st = RUNNABLE;
                race::acquire(key, i);
            }
        if (wait) race::acquire(key, current_fiber());
        race::clear_clock(key);
        return;
    }
    if (!wait) return;
    f->st = AT_NAMED;
    f->named = id;
    yield();
}

// The race checker's hooks for the emulator's headers (cp.async, atomics).
extern "C" void lk_emu_race_async_issue(const void* dst, size_t bytes) {
    if (banks::on()) banks::record(current_fiber(), dst, bytes, banks::CP_ASYNC, __builtin_return_address(0));
    race::async_write_issue(dst, bytes, current_fiber(), current_rank());
}
extern "C" void lk_emu_race_async_done(const void* dst, size_t bytes) {
    const size_t t = current_fiber();
    race::async_write_done(dst, bytes, t, race::clock_of(t), current_rank(), true);
}
extern "C" void lk_emu_race_suspend(int on) { race::suspend(on != 0); }

extern "C" void lk_emu_cluster_sync() {
    S.cur->st = AT_CLUSTER;
    yield();
}
