// Between the emulator's scheduler (runtime.cpp), its Hopper models (hopper.cpp) and its driver API
// (driver.cpp).
#pragma once
#include <string>

#include "cuda_emu.h"

namespace lk_emu {
// Runs every block of the grid, a cluster at a time (`cluster`: its blocks per dimension, 1, 1, 1
// without clusters; the driver checked that it divides the grid and has at most MAX_CLUSTER
// blocks); returns "" on success, else the reason it stopped.
std::string run_grid(const char* kernel, const ThreadBody& body, dim3 grid, dim3 block, size_t dyn_bytes,
                     dim3 cluster);
// The kernel being run ("" between launches), for the fault handler.
const char* running_kernel();
// Whether the calling host thread is running a kernel's fibers now (for the fault handler).
bool in_kernel_on_this_thread();
// "block (x, y, z) thread (x, y, z)" of the running fiber, into buf (async-signal-safe).
void describe_current_thread(char* buf, size_t len);
// A registered kernel, or nullptr.
const Registered* find_kernel(const std::string& name);

// For hopper.cpp, about the running thread and its cluster:
// lets the other threads run; the scheduler calls a pass in which only spinning threads ran and
// nothing changed (note_progress) a deadlock, naming `what` the thread waited for.
void spin(const char* what);
// Lets the other threads run once (not a wait: no deadlock can be called on it).
void let_others_run();
void note_progress();
unsigned current_rank();     // its block's rank in the cluster
unsigned cluster_blocks();   // blocks in the cluster
unsigned current_linear_tid();
size_t block_threads();
bool thread_done(unsigned rank, unsigned tid);
bool block_exited(unsigned rank);  // every thread of block `rank` of the cluster has exited
uint32_t& fiber_wg_issued();  // its wgmma operations issued, and groups committed, in this block
uint32_t& fiber_wg_group();
[[noreturn]] void fail_launch(const std::string& why);
// The shared window (a 32-bit shared-state-space address, as on the GPU): of a host pointer into the
// running block's shared memory, and the host bytes behind `bytes` at window address `w` of block
// `rank` of the cluster.
uint32_t smem_window(const void* p);
void* smem_host(unsigned rank, uint32_t w, size_t bytes);

// The running fiber's index in its cluster (rank · threads per block + thread).
size_t current_fiber();

// The shared-memory race checker (racecheck.cpp; live in builds made with `build.py --racecheck`,
// no-ops otherwise). Threads are cluster indices (current_fiber); clocks are vector clocks.
namespace race {
bool enabled();
void start_launch(char* const* dyn, size_t dyn_bytes, unsigned blocks);
void start_cluster(size_t threads, size_t per_block, dim3 block);
void add_static(void* p, size_t bytes);
// Each of the n threads gets the join of their clocks (a barrier among them); `whole_blocks`: every
// thread of their blocks takes part (__syncthreads, cluster barriers).
void barrier(const size_t* ts, size_t n, bool whole_blocks);
// Thread t's clock into sync object `key` (an arrival), or the object's into t's (a wait).
void release(uint64_t key, size_t t);
void acquire(uint64_t key, size_t t);
void move_clock(uint64_t from, uint64_t to);
void clear_clock(uint64_t key);
// A load or store of n bytes at p by the running thread, from the call site pc.
void access(const void* p, size_t n, bool write, const void* pc);
void suspend(bool on);
void async_write_issue(const void* p, size_t n, size_t t, unsigned rank);
void async_write_done(const void* p, size_t n, size_t t, uint32_t clk, unsigned rank, bool at_wait);
uint32_t clock_of(size_t t);
int wg_issue(void* const* ps, size_t n, size_t t, unsigned rank);
void wg_performed(int id);
void wg_retire(int id, size_t t);
// Sync-object keys: a named barrier of a block, an mbarrier's arrivals in progress, and the clock of
// its last completed phase of each parity.
inline uint64_t named_key(unsigned rank, int id) { return 1ull << 60 | (uint64_t)rank << 32 | (uint32_t)id; }
inline uint64_t mbar_key(unsigned rank, uint32_t w) { return 2ull << 60 | (uint64_t)rank << 32 | w; }
inline uint64_t mbar_done_key(unsigned rank, uint32_t w, uint32_t parity) {
    return (3ull + (parity & 1)) << 60 | (uint64_t)rank << 32 | w;
}
}  // namespace race

// The shared-memory bank profile (banks.cpp; on with LK_EMU_BANKS in builds made with
// `build.py --racecheck`): warp requests put back together from the threads' accesses, counted in
// wavefronts at the process's exit.
namespace banks {
enum Kind { LOAD, STORE, LDMATRIX, CP_ASYNC };
bool on();
// Thread t (cluster index) accesses n bytes of shared memory at p, from call site pc.
void record(size_t t, const void* p, size_t n, int kind, const void* pc);
// A barrier of whole blocks: the requests of these threads' warps are complete.
void close_warps(const size_t* ts, size_t n);
void start_cluster(size_t per_block);
// The launch is over: its last requests are counted (while its kernel's name is alive).
void end_launch();
void quiet(bool on);
// Wavefronts of one request (lanes: mask of the lanes in it), and the fewest it could take (*ideal).
uint64_t wavefronts(int kind, uint32_t lanes, const uintptr_t* addr, const uint32_t* bytes, uint64_t* ideal);
void report();
}  // namespace banks

// What cuTensorMapEncodeTiled (driver.cpp) keeps in a CUtensorMap's 128 opaque bytes for hopper.cpp's
// TMA copies: a rank-1 or -2 tensor of 2-byte elements, dims[0] innermost.
struct TmaMapModel {
    static constexpr uint64_t MAGIC = 0x6c6b2d746d61ull;  // "lk-tma"
    uint64_t magic;
    const char* base;
    uint64_t dims[2];
    uint64_t row_stride;  // bytes from one dims[1] index to the next
    uint32_t box[2];
    uint32_t rank;
    bool swizzle_128b;
    bool zero_fill;
};
}  // namespace lk_emu
