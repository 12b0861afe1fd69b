// The emulator's shared-memory race checker (builds made with `build.py --racecheck`, which compile
// the kernels with g++'s -fsanitize=thread instrumentation and link these hooks in place of
// ThreadSanitizer's runtime): every load and store a kernel makes to shared memory is checked
// against the happens-before order its barriers give, as compute-sanitizer's racecheck does on a GPU.
//
// Order (vector clocks, one entry per thread of the cluster): __syncthreads and cluster barriers
// order everything before them in every thread of the block (cluster; exited threads included)
// before everything after; __syncwarp among its lanes; a named barrier's arrivals before the
// bar.sync waiters it releases; an mbarrier phase's arrivals (and the TMA copies completing on it)
// before a try_wait that sees the phase complete. Shuffles, ballots and the lanes' exchange inside
// ldmatrix / mma.sync order no memory, as in CUDA's memory model.
//
// Shadow: one cell per aligned 4-byte word of shared memory: its last write (thread, clock, bytes)
// and the reads since (one epoch, or a clock per thread when concurrent: FastTrack, Flanagan and
// Freund 2009), and the __syncthreads generation of the latest, which lets an access past a later
// __syncthreads skip the clock comparisons. A read that is not ordered after the last
// write of its bytes, a write not ordered after the last write or every read since, fails the launch
// with both threads named. Asynchronous accesses have windows: a cp.async destination is written
// from its issue to the thread's cp.async.wait_group, a TMA box from its issue to its landing, a
// wgmma operand read from its issue until a thread of the warpgroup retires it; any access to bytes
// inside such a window by another party is a race, and a write after the window must be ordered
// after its end (the waiting thread's clock). Atomics are not checked against each other.
//
// Not modelled: accesses of 1 or 2 bytes by two threads to different bytes of one word keep only
// the later writer (a race with the earlier one can be missed, never invented); global memory.
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "emu_internal.h"

namespace lk_emu {
namespace race {
namespace {

constexpr uint16_t NONE = 0xFFFF;

struct Epoch {
    uint16_t tid;
    uint32_t clk;
};

struct Cell {
    uint64_t block = 0;  // the cluster run the cell was last touched in (older: empty)
    uint32_t wclk = 0;
    uint16_t wtid = NONE;
    uint8_t wmask = 0;      // bytes of the word the last write covered
    uint8_t pend_w = 0;     // asynchronous writes (cp.async, TMA) in flight
    uint16_t rtid = NONE;   // one read epoch, or NONE
    uint32_t rclk = 0;
    int32_t rvc = -1;       // concurrent reads: a read clock vector (index into Checker::rvcs)
    int32_t wg[2] = {-1, -1};  // wgmma operand reads (indices into Checker::wg_ops) of two warpgroups
    // The latest __syncthreads generation (of the block whose memory this is) of the accesses
    // recorded here, ASYNC after a landed copy or an access from another block: a thread of the block
    // past a later __syncthreads is ordered after all of them, with no clock to compare.
    uint32_t gen = 0;
};
constexpr uint32_t ASYNC = 0xFFFFFFFFu;

// A shared-memory range with its cells: the dynamic shared memory of each block of the cluster, and
// each static __shared__ variable (one host copy, the running block's; cells per block rank).
struct Region {
    char* lo;
    char* hi;
    int rank;  // -1: a static (the running thread's block)
    bool dynamic;
    std::vector<Cell> cells[MAX_CLUSTER];
};

struct WgRead {
    size_t warpgroup;  // its first thread (cluster index)
    bool in_flight = true;
    std::vector<Epoch> retired;  // threads whose wgmma.wait_group retired it, at their clocks then
};

struct Checker {
    bool on = false;
    uint64_t block = 0;  // cluster runs so far
    size_t threads = 0;  // per cluster
    size_t per_block = 0;
    dim3 bdim{};
    std::vector<uint32_t> vc;  // threads × threads
    std::vector<uint32_t> gen;  // per thread: the __syncthreads it last passed (counted per block)
    std::vector<uint32_t> tmp;
    std::vector<Region> regions;
    char* lo = nullptr;  // bounds of every region, for a quick rejection
    char* hi = nullptr;
    // Read clock vectors (threads entries each) of cells read concurrently, and the free ones.
    std::vector<uint32_t> rvcs;
    std::vector<int32_t> rvc_free;
    std::vector<WgRead> wg_ops;
    // Sync objects' clocks: named barriers, mbarrier phases (accumulating, and last completed of each
    // parity), by key.
    std::vector<std::pair<uint64_t, std::vector<uint32_t>>> objs;
    int suspended = 0;
};
Checker C;

uint32_t* vc_of(size_t t) { return C.vc.data() + t * C.threads; }
uint32_t* rvc(int32_t i) { return C.rvcs.data() + (size_t)i * C.threads; }

void join_into(uint32_t* dst, const uint32_t* src) {
    for (size_t i = 0; i < C.threads; ++i) dst[i] = dst[i] > src[i] ? dst[i] : src[i];
}

std::vector<uint32_t>& obj(uint64_t key) {
    for (auto& o : C.objs)
        if (o.first == key) return o.second;
    C.objs.emplace_back(key, std::vector<uint32_t>(C.threads, 0));
    return C.objs.back().second;
}

std::string who(size_t t) {
    const size_t r = t / C.per_block, l = t % C.per_block;
    char buf[96];
    snprintf(buf, sizeof buf, "thread (%zu, %zu, %zu)%s", l % C.bdim.x, l / C.bdim.x % C.bdim.y,
             l / ((size_t)C.bdim.x * C.bdim.y), C.threads > C.per_block ? (" of cluster rank " + std::to_string(r)).c_str() : "");
    return buf;
}

// The region holding p (each block's dynamic shared memory has its own addresses; the statics are
// the running block's, their cells per block rank).
Region* region_of(const char* p) {
    if (p < C.lo || p >= C.hi) return nullptr;
    for (Region& r : C.regions)
        if (p >= r.lo && p < r.hi) return &r;
    return nullptr;
}

Cell& cell(Region& r, unsigned rank, size_t word) {
    Cell& c = r.cells[r.rank < 0 ? rank : 0][word];
    if (c.block != C.block) c = Cell{C.block};
    return c;
}

[[noreturn]] void report(const Region& r, size_t off, const std::string& what, const std::string& other) {
    C.on = false;  // the launch ends here; the failure names the first race
    fail_launch("shared-memory race: " + what + " byte " + std::to_string(off) + " of " +
                (r.dynamic ? "dynamic shared memory" : "a static __shared__ variable") + ", " + other);
}

bool unordered(uint16_t tid, uint32_t clk, size_t t, const uint32_t* v) { return tid != NONE && tid != t && clk > v[tid]; }

// Whether some thread that retired wgmma read `wg` is ordered before the clock v.
bool wg_retired_before(int wg, const uint32_t* v) {
    for (const Epoch& e : C.wg_ops[wg].retired)
        if (e.clk <= v[e.tid]) return true;
    return false;
}

// Whether thread t belongs to block `rank` (whose shared memory the cell is): only then do its
// __syncthreads generations order it against the cell's accesses.
bool own(size_t t, unsigned rank) { return t / C.per_block == rank; }

void free_reads(Cell& c) {
    if (c.rvc >= 0) C.rvc_free.push_back(c.rvc);
    c.rvc = -1;
    c.rtid = NONE;
}

void check_read(Region& r, unsigned rank, size_t off, uint8_t mask, size_t t) {
    Cell& c = cell(r, rank, off / 4);
    const uint32_t* v = vc_of(t);
    if (c.pend_w) report(r, off, who(t) + " reads", "which an asynchronous copy (cp.async / TMA) is still writing: no wait between");
    const uint32_t clk = v[t], g = own(t, rank) ? C.gen[t] : ASYNC;
    if (g != ASYNC && g > c.gen) {  // past a __syncthreads after every access recorded here
        free_reads(c);
        c.rtid = (uint16_t)t;
        c.rclk = clk;
        c.gen = g;
        return;
    }
    if ((c.wmask & mask) && unordered(c.wtid, c.wclk, t, v))
        report(r, off, who(t) + " reads", "written by " + who(c.wtid) + " with no barrier between");
    c.gen = g == ASYNC ? ASYNC : std::max(c.gen, g);
    if (c.rtid == NONE || c.rtid == t || c.rclk <= v[c.rtid]) {
        c.rtid = (uint16_t)t;
        c.rclk = clk;
        return;
    }
    if (c.rvc < 0) {  // FastTrack's read-shared state: a clock per thread
        if (C.rvc_free.empty()) {
            C.rvc_free.push_back((int32_t)(C.rvcs.size() / C.threads));
            C.rvcs.resize(C.rvcs.size() + C.threads);
        }
        c.rvc = C.rvc_free.back();
        C.rvc_free.pop_back();
        std::fill_n(rvc(c.rvc), C.threads, 0u);
    }
    rvc(c.rvc)[t] = clk;
}

// A write by thread t, or an asynchronous copy it issues: ordered after the cell's last write and
// every read since (and, for a wgmma operand, after a wait that retired the wgmma).
void check_write(Region& r, unsigned rank, size_t off, uint8_t mask, size_t t, const char* what) {
    Cell& c = cell(r, rank, off / 4);
    const uint32_t* v = vc_of(t);
    if (c.pend_w) report(r, off, who(t) + " " + what, "which an asynchronous copy is still writing: no wait between");
    for (int wg : c.wg)
        if (wg >= 0 && (C.wg_ops[wg].in_flight || !wg_retired_before(wg, v)))
            report(r, off, who(t) + " " + what,
                   "an operand of a wgmma of " + who(C.wg_ops[wg].warpgroup) +
                       "'s warpgroup, with no wgmma.wait_group of that warpgroup ordered before");
    const uint32_t g = own(t, rank) ? C.gen[t] : ASYNC;
    if (g == ASYNC || g <= c.gen) {  // not past a __syncthreads after them: compare clocks
        if (unordered(c.wtid, c.wclk, t, v))
            report(r, off, who(t) + " " + what, "written by " + who(c.wtid) + " with no barrier between");
        if (unordered(c.rtid, c.rclk, t, v))
            report(r, off, who(t) + " " + what, "read by " + who(c.rtid) + " with no barrier between");
        if (c.rvc >= 0) {
            const uint32_t* reads = rvc(c.rvc);
            uint32_t late = 0;  // any read not ordered before (vectorizes; the rare report finds which)
            for (size_t u = 0; u < C.threads; ++u) late |= (uint32_t)(reads[u] > v[u]) & (uint32_t)(u != t);
            if (late)
                for (size_t u = 0; u < C.threads; ++u)
                    if (u != t && reads[u] > v[u])
                        report(r, off, who(t) + " " + what, "read by " + who(u) + " with no barrier between");
        }
    }
    free_reads(c);
    c.wg[0] = c.wg[1] = -1;
    c.wtid = (uint16_t)t;
    c.wclk = v[t];
    c.wmask = mask;
    c.gen = g;
}

// Calls f(region, byte offset, byte mask) for each word of [p, p + n) in region r.
template <typename F>
void words_in(Region& r, const char* p, size_t n, F f) {
    size_t off = (size_t)(p - r.lo);
    const size_t end = off + n;
    while (off < end) {
        const size_t stop = std::min(end, off / 4 * 4 + 4);
        f(r, off, (uint8_t)(((1u << (stop - off)) - 1) << (off % 4)));
        off = stop;
    }
}
template <typename F>
void words(const void* p, size_t n, F f) {
    const char* c = static_cast<const char*>(p);
    if (Region* r = region_of(c)) words_in(*r, c, n, f);
}

}  // namespace

bool enabled() {
#ifdef LK_EMU_RACECHECK
    return true;
#else
    return false;
#endif
}

// A launch begins: its dynamic shared memory (one range per block of a cluster); the statics
// register as blocks reach them (add_static).
void start_launch(char* const* dyn, size_t dyn_bytes, unsigned blocks) {
    if (!enabled()) return;
    C.regions.clear();
    for (unsigned b = 0; b < blocks && dyn_bytes; ++b) {
        C.regions.push_back(Region{dyn[b], dyn[b] + dyn_bytes, (int)b, true, {}});
        C.regions.back().cells[0].resize((dyn_bytes + 3) / 4);
    }
    C.lo = C.hi = nullptr;
    for (Region& r : C.regions) {
        if (!C.lo || r.lo < C.lo) C.lo = r.lo;
        if (!C.hi || r.hi > C.hi) C.hi = r.hi;
    }
}

// A cluster's run begins (its cells start empty): `threads` threads, `per_block` a block of `block`.
void start_cluster(size_t threads, size_t per_block, dim3 block) {
    if (!enabled()) return;
    C.on = true;
    ++C.block;
    C.per_block = per_block;
    C.bdim = block;
    if (C.threads != threads) {
        C.threads = threads;
        C.vc.assign(threads * threads, 0);
        C.gen.assign(threads, 0);
    }
    // Clocks and generations go on from the last cluster's instead of restarting (a reset costs
    // threads² per block): what a thread knew of another's clock then is below that thread's clock
    // now, and the cells start empty.
    const uint32_t g = *std::max_element(C.gen.begin(), C.gen.end()) + 1;
    for (size_t t = 0; t < threads; ++t) {
        ++vc_of(t)[t];
        C.gen[t] = g;
    }
    C.rvcs.clear();
    C.rvc_free.clear();
    C.wg_ops.clear();
    C.objs.clear();
}

void add_static(void* p, size_t bytes) {
    if (!enabled()) return;
    char* c = static_cast<char*>(p);
    for (Region& r : C.regions)
        if (r.lo == c) return;
    C.regions.push_back(Region{c, c + bytes, -1, false, {}});
    for (auto& cells : C.regions.back().cells) cells.resize((bytes + 3) / 4);
    if (!C.lo || c < C.lo) C.lo = c;
    if (!C.hi || c + bytes > C.hi) C.hi = c + bytes;
}

// Every thread of `ts` (cluster indices) gets the join of their clocks, then ticks its own.
void barrier(const size_t* ts, size_t n, bool whole_blocks) {
    if (!C.on || n == 0) return;
    C.tmp.assign(C.threads, 0);
    uint32_t g = 0;
    for (size_t i = 0; i < n; ++i) {
        join_into(C.tmp.data(), vc_of(ts[i]));
        g = std::max(g, C.gen[ts[i]]);
    }
    for (size_t i = 0; i < n; ++i) {
        uint32_t* v = vc_of(ts[i]);
        memcpy(v, C.tmp.data(), C.threads * 4);
        ++v[ts[i]];
        if (whole_blocks) C.gen[ts[i]] = g + 1;
    }
}

void release(uint64_t key, size_t t) {
    if (!C.on) return;
    join_into(obj(key).data(), vc_of(t));
    ++vc_of(t)[t];
}

void acquire(uint64_t key, size_t t) {
    if (!C.on) return;
    join_into(vc_of(t), obj(key).data());
}

// The accumulated clock of `from` becomes `to`'s (an mbarrier phase completing); `from` restarts.
void move_clock(uint64_t from, uint64_t to) {
    if (!C.on) return;
    std::vector<uint32_t>& f = obj(from);
    obj(to) = f;
    std::fill(f.begin(), f.end(), 0u);
}

void clear_clock(uint64_t key) {
    if (!C.on) return;
    std::vector<uint32_t>& o = obj(key);
    std::fill(o.begin(), o.end(), 0u);
}

void access(const void* p, size_t n, bool write, const void* pc) {
    const char* c = static_cast<const char*>(p);
    if (!C.on || c < C.lo || c >= C.hi || C.suspended) return;
    Region* reg = region_of(c);
    if (!reg) return;
    const size_t t = current_fiber();
    if (banks::on()) banks::record(t, p, n, write ? banks::STORE : banks::LOAD, pc);
    const unsigned rank = current_rank();
    words_in(*reg, c, n, [&](Region& r, size_t off, uint8_t mask) {
        if (write) check_write(r, rank, off, mask, t, "writes");
        else check_read(r, rank, off, mask, t);
    });
}

void suspend(bool on) { C.suspended += on ? 1 : -1; }

// An asynchronous copy into [p, p + n) of block `rank`, issued by thread t: checked as its write
// now, then in flight until async_write_done.
void async_write_issue(const void* p, size_t n, size_t t, unsigned rank) {
    if (!C.on) return;
    words(p, n, [&](Region& r, size_t off, uint8_t mask) {
        check_write(r, rank, off, mask, t, "starts an asynchronous copy into");
        ++cell(r, rank, off / 4).pend_w;
    });
}

// The copy landed: its bytes are thread t's write at clock clk; `at_wait`: landed at t's own wait
// (cp.async), so t's later __syncthreads order it too (not so for TMA, landing on its own).
void async_write_done(const void* p, size_t n, size_t t, uint32_t clk, unsigned rank, bool at_wait) {
    if (!C.on) return;
    words(p, n, [&](Region& r, size_t off, uint8_t mask) {
        Cell& c = cell(r, rank, off / 4);
        if (c.pend_w) --c.pend_w;
        free_reads(c);
        c.gen = at_wait && own(t, rank) ? C.gen[t] : ASYNC;
        c.wtid = (uint16_t)t;
        c.wclk = clk;
        c.wmask = mask;
    });
}

uint32_t clock_of(size_t t) { return C.on ? vc_of(t)[t] : 0; }

// A wgmma's operand bytes (the `n` byte addresses in ps) read by thread t's warpgroup, issued now:
// returns the read's index for wg_retire.
int wg_issue(void* const* ps, size_t n, size_t t, unsigned rank) {
    if (!C.on) return -1;
    const int id = (int)C.wg_ops.size();
    const size_t group = t / 128 * 128;
    C.wg_ops.push_back(WgRead{group, true, {}});
    for (size_t i = 0; i < n; ++i)
        words(ps[i], 2, [&](Region& r, size_t off, uint8_t mask) {
            Cell& c = cell(r, rank, off / 4);
            if (c.pend_w)
                report(r, off, who(t) + "'s warpgroup issues a wgmma reading",
                       "which an asynchronous copy is still writing: no wait between");
            if ((c.wmask & mask) && unordered(c.wtid, c.wclk, t, vc_of(t)))
                report(r, off, who(t) + "'s warpgroup issues a wgmma reading",
                       "written by " + who(c.wtid) + " with no barrier between");
            // Two warpgroups' reads at most (the two consumers of a 128×256 tile's B).
            int& slot = c.wg[0] < 0 || C.wg_ops[c.wg[0]].warpgroup == group ? c.wg[0] : c.wg[1];
            slot = id;
        });
    return id;
}

void wg_performed(int id) {
    if (C.on && id >= 0) C.wg_ops[id].in_flight = false;
}

void wg_retire(int id, size_t t) {
    if (C.on && id >= 0) C.wg_ops[id].retired.push_back({(uint16_t)t, vc_of(t)[t]});
}

}  // namespace race
}  // namespace lk_emu

#ifdef LK_EMU_RACECHECK
// ThreadSanitizer's instrumentation entry points (g++ -fsanitize=thread), served by the checker.
using lk_emu::race::access;
// The call site of the instrumented access (for the bank profile) is the hook's return address.
#define hook(p, n, write) access(p, n, write, __builtin_return_address(0))
extern "C" {
#define LK_TSAN_RW(N)                                                            \
    void __tsan_read##N(void* p) { hook(p, N, false); }                          \
    void __tsan_write##N(void* p) { hook(p, N, true); }                          \
    void __tsan_unaligned_read##N(void* p) { hook(p, N, false); }                \
    void __tsan_unaligned_write##N(void* p) { hook(p, N, true); }                \
    void __tsan_volatile_read##N(void* p) { hook(p, N, false); }                 \
    void __tsan_volatile_write##N(void* p) { hook(p, N, true); }                 \
    void __tsan_unaligned_volatile_read##N(void* p) { hook(p, N, false); }       \
    void __tsan_unaligned_volatile_write##N(void* p) { hook(p, N, true); }
LK_TSAN_RW(1)
LK_TSAN_RW(2)
LK_TSAN_RW(4)
LK_TSAN_RW(8)
LK_TSAN_RW(16)
#undef LK_TSAN_RW
void __tsan_read_range(void* p, size_t n) { hook(p, n, false); }
void __tsan_write_range(void* p, size_t n) { hook(p, n, true); }
#undef hook
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_atomic_thread_fence(int) {}
void __tsan_atomic_signal_fence(int) {}
// Atomics outside shared memory only (std::shared_ptr and the like in the emulator's own headers):
// fibers of a launch run on one host thread, so the host's atomics serve.
#define LK_TSAN_ATOMIC(N, T)                                                                             \
    T __tsan_atomic##N##_load(const volatile T* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); } \
    void __tsan_atomic##N##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_exchange(volatile T* a, T v, int) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_add(volatile T* a, T v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_sub(volatile T* a, T v, int) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_and(volatile T* a, T v, int) { return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_or(volatile T* a, T v, int) { return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_xor(volatile T* a, T v, int) { return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); } \
    T __tsan_atomic##N##_fetch_nand(volatile T* a, T v, int) { return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST); } \
    int __tsan_atomic##N##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) {                 \
        return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);          \
    }                                                                                                    \
    int __tsan_atomic##N##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) {                   \
        return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);           \
    }                                                                                                    \
    T __tsan_atomic##N##_compare_exchange_val(volatile T* a, T c, T v, int, int) {                       \
        __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                \
        return c;                                                                                        \
    }
LK_TSAN_ATOMIC(8, uint8_t)
LK_TSAN_ATOMIC(16, uint16_t)
LK_TSAN_ATOMIC(32, uint32_t)
LK_TSAN_ATOMIC(64, uint64_t)
#undef LK_TSAN_ATOMIC
}
#endif
