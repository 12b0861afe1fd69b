// The emulator's fiber scheduler: runs a grid block by block, one fiber per CUDA thread, and
// resolves __syncthreads and warp collectives. x86-64 only (a six-register context switch; no
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

enum State { RUNNABLE, AT_BARRIER, AT_WARP, DONE };

struct Fiber {
    void* sp = nullptr;
    char* stack = nullptr;  // lowest usable byte (a PROT_NONE page sits below it)
    uint3 tid{};
    State st = RUNNABLE;
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

struct Scheduler {
    void* sched_sp = nullptr;
    std::vector<Fiber> fibers;
    Fiber* cur = nullptr;
    const ThreadBody* body = nullptr;
    const char* kernel = "";
    bool failed = false;
    bool reverse = false;
    pthread_t host_thread{};  // the thread running the fibers
    std::string error;
    uint64_t epoch = 0;
    std::unordered_map<void*, uint64_t> poisoned;
    // Dynamic shared memory: the launch's bytes end at a PROT_NONE page.
    char* dyn_region = nullptr;
    size_t dyn_region_bytes = 0;
    char* dyn = nullptr;
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
    snprintf(buf, sizeof buf, "block (%u, %u, %u) thread (%u, %u, %u)", lk_emu_block_idx.x, lk_emu_block_idx.y,
             lk_emu_block_idx.z, f.tid.x, f.tid.y, f.tid.z);
    return buf;
}

// Releases every warp whose participating lanes have all reached the same collective.
bool resolve_warps(size_t n) {
    bool released = false;
    for (size_t w0 = 0; w0 < n; w0 += 32) {
        const size_t lanes = std::min<size_t>(32, n - w0);
        Fiber* first = nullptr;
        for (size_t l = 0; l < lanes; ++l)
            if (S.fibers[w0 + l].st == AT_WARP) {
                first = &S.fibers[w0 + l];
                break;
            }
        if (!first) continue;
        const uint32_t mask = first->mask;
        bool ready = true;
        for (size_t l = 0; l < lanes && ready; ++l) {
            if (!(mask >> l & 1)) continue;
            const Fiber& f = S.fibers[w0 + l];
            if (f.st == DONE) continue;  // exited lanes are not waited for
            if (f.st != AT_WARP) {
                ready = false;  // still running or at a block barrier
                continue;
            }
            if (f.mask != mask || f.op != first->op) {
                fail(std::string("warp collective mismatch in ") + S.kernel + ": " + where(f) +
                     " waits on another collective or mask than lane " + std::to_string(first - &S.fibers[w0]));
                return false;
            }
        }
        if (!ready) continue;
        uint32_t part = 0;  // participating lanes
        for (size_t l = 0; l < lanes; ++l)
            if ((mask >> l & 1) && S.fibers[w0 + l].st == AT_WARP) part |= 1u << l;
        uint32_t ballot = 0;
        for (size_t l = 0; l < lanes; ++l)
            if ((part >> l & 1) && (S.fibers[w0 + l].in & 1)) ballot |= 1u << l;
        if (first->op == WARP_GATHER) {
            for (size_t l = 0; l < lanes; ++l) {
                if (!(part >> l & 1)) continue;
                Fiber& f = S.fibers[w0 + l];
                if (f.blob_bytes != first->blob_bytes) {
                    fail(std::string("warp gather size mismatch in ") + S.kernel + ": " + where(f));
                    return false;
                }
                char* out = static_cast<char*>(f.blobs_out);
                memset(out, 0xFF, 32 * f.blob_bytes);
                for (size_t s = 0; s < lanes; ++s)
                    if (part >> s & 1) memcpy(out + s * f.blob_bytes, S.fibers[w0 + s].blob, f.blob_bytes);
            }
        }
        for (size_t l = 0; l < lanes; ++l) {
            if (!(part >> l & 1)) continue;
            Fiber& f = S.fibers[w0 + l];
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
            else f.out = (src < (int)lanes && (part >> src & 1)) ? S.fibers[w0 + src].in : ~uint64_t(0);
        }
        for (size_t l = 0; l < lanes; ++l)
            if (part >> l & 1) S.fibers[w0 + l].st = RUNNABLE;
        released = true;
    }
    return released;
}

bool resolve_barrier(size_t n) {
    size_t waiting = 0, live = 0;
    for (size_t i = 0; i < n; ++i) {
        if (S.fibers[i].st == DONE) continue;
        ++live;
        if (S.fibers[i].st == AT_BARRIER) ++waiting;
    }
    if (live == 0 || waiting != live) return false;
    for (size_t i = 0; i < n; ++i)
        if (S.fibers[i].st == AT_BARRIER) S.fibers[i].st = RUNNABLE;
    return true;
}

bool run_block(size_t n) {
    ++S.epoch;
    if (S.dyn_bytes) memset(S.dyn, 0xFF, S.dyn_bytes);
    const unsigned bx = lk_emu_block_dim.x, by = lk_emu_block_dim.y;
    for (size_t i = 0; i < n; ++i) {
        Fiber& f = S.fibers[i];
        f.tid = uint3{(unsigned)(i % bx), (unsigned)(i / bx % by), (unsigned)(i / (bx * by))};
        f.st = RUNNABLE;
        init_stack(f);
    }
    for (;;) {
        for (size_t j = 0; j < n; ++j) {
            // LK_EMU_SCHEDULE=reverse runs the highest thread first: a missing barrier between one
            // thread's shared-memory write and another's read shows up in one of the two orders.
            Fiber& f = S.fibers[S.reverse ? n - 1 - j : j];
            if (f.st != RUNNABLE) continue;
            S.cur = &f;
            lk_emu_thread_idx = f.tid;
            lk_emu_switch(&S.sched_sp, f.sp);
            if (S.failed) return false;
        }
        size_t done = 0;
        for (size_t i = 0; i < n; ++i) done += S.fibers[i].st == DONE;
        if (done == n) return true;
        if (resolve_warps(n)) continue;
        if (S.failed) return false;
        if (resolve_barrier(n)) continue;
        // Nothing can move: name the first waiting thread of each kind.
        std::string why = std::string("deadlock in ") + S.kernel + ":";
        for (size_t i = 0; i < n; ++i) {
            const Fiber& f = S.fibers[i];
            if (f.st == AT_BARRIER) { why += " " + where(f) + " waits at __syncthreads;"; break; }
        }
        for (size_t i = 0; i < n; ++i) {
            const Fiber& f = S.fibers[i];
            if (f.st == AT_WARP) { why += " " + where(f) + " waits in a warp collective;"; break; }
        }
        fail(why);
        return false;
    }
}

}  // namespace

// Runs a whole grid on the calling host thread (the driver holds its lock); an empty string when
// every thread finished, else what went wrong.
std::string run_grid(const char* kernel, const ThreadBody& body, dim3 grid, dim3 block, size_t dyn_bytes) {
    static const bool reverse = [] {
        const char* v = getenv("LK_EMU_SCHEDULE");
        return v && strcmp(v, "reverse") == 0;
    }();
    S.reverse = reverse;
    S.host_thread = pthread_self();
    S.kernel = kernel;
    S.body = &body;
    S.failed = false;
    S.error.clear();
    const size_t n = (size_t)block.x * block.y * block.z;
    if (S.fibers.size() < n) S.fibers.resize(n);
    // Dynamic shared memory ends at a PROT_NONE page: reading or writing past it faults.
    const size_t need = (dyn_bytes + PAGE - 1) / PAGE * PAGE + PAGE;
    if (dyn_bytes && need > S.dyn_region_bytes) {
        if (S.dyn_region) munmap(S.dyn_region, S.dyn_region_bytes);
        S.dyn_region = static_cast<char*>(
            mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        S.dyn_region_bytes = need;
        mprotect(S.dyn_region + need - PAGE, PAGE, PROT_NONE);
    }
    S.dyn_bytes = dyn_bytes;
    S.dyn = dyn_bytes ? S.dyn_region + S.dyn_region_bytes - PAGE - (dyn_bytes + 15) / 16 * 16 : nullptr;
    lk_emu_block_dim = block;
    lk_emu_grid_dim = grid;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                lk_emu_block_idx = uint3{x, y, z};
                if (!run_block(n)) {
                    S.kernel = "";
                    return S.error;
                }
            }
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

}  // namespace lk_emu

using namespace lk_emu;

extern "C" void lk_emu_syncthreads() {
    S.cur->st = AT_BARRIER;
    yield();
}

extern "C" uint64_t lk_emu_warp_collective(int op, uint32_t mask, uint64_t value, int arg, int width) {
    Fiber* f = S.cur;
    const unsigned lane = (unsigned)(f - S.fibers.data()) % 32;
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

extern "C" unsigned lk_emu_linear_tid() { return (unsigned)(S.cur - S.fibers.data()); }

extern "C" [[noreturn]] void lk_emu_trap(const char* why) {
    fail(std::string(why) + " in " + S.kernel + " at " + where(*S.cur));
    yield();
    __builtin_unreachable();
}

extern "C" void* lk_emu_dynamic_smem() { return S.dyn; }

extern "C" void lk_emu_poison_shared(void* p, size_t bytes) {
    uint64_t& e = S.poisoned[p];
    if (e != S.epoch) {
        e = S.epoch;
        memset(p, 0xFF, bytes);
    }
}
