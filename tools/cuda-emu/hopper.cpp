// The emulator's models of the Hopper PTX that kernels/gemm_wgmma.cu uses (the helpers' side is
// wgmma_ptx_emu.cuh): mbarriers, TMA tile copies, wgmma, clusters. What each models, and when an
// asynchronous operation takes effect, is said above its function; some of what a GPU would leave
// undefined (a wait on a barrier nobody initialised, an arrival on a phase whose arrivals are all
// in while its transaction bytes are not, a warpgroup whose threads issue different wgmma operands)
// fails the launch with the thread named. (An extra arrival after a phase completed counts toward
// the next one, as on the GPU: a protocol that over-arrives shows up as a deadlock or wrong data.)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"
#include "emu_internal.h"

namespace lk_emu {
namespace {

uint64_t key(unsigned rank, uint32_t w) { return (uint64_t)rank << 32 | w; }

// ---- mbarriers ----
// Phase `phase` is in progress; it completes when `pending` arrivals (of `expected`) and `tx`
// transaction bytes are both down to zero, and the next one starts.
struct Mbar {
    uint64_t epoch = 0;
    uint32_t expected = 0, pending = 0, phase = 0;
    int64_t tx = 0;
};
std::unordered_map<uint64_t, Mbar> mbars;  // by (block rank, shared-window address)

Mbar& mbar(unsigned rank, uint32_t w, const char* op) {
    auto it = mbars.find(key(rank, w));
    if (it == mbars.end() || it->second.epoch != lk_emu_block_epoch())
        fail_launch(std::string(op) + " on shared address " + std::to_string(w) + " of block rank " +
                    std::to_string(rank) + ", which no mbarrier.init of this block set up");
    return it->second;
}
// (rank, w): the barrier's place, for the race checker's clocks of its phases.
void complete_if_done(Mbar& b, unsigned rank, uint32_t w) {
    if (b.pending == 0 && b.tx == 0) {
        race::move_clock(race::mbar_key(rank, w), race::mbar_done_key(rank, w, b.phase));
        ++b.phase;
        b.pending = b.expected;
    }
    note_progress();
}

// ---- TMA ----
// Copies are queued when issued and performed when a thread of the destination block waits on their
// mbarrier (the latest a GPU could land them: a read of the stage before that wait sees the old
// bytes), or at once with LK_EMU_TMA=early (the earliest: a stage overwritten while it is still
// being read shows up instead).
struct TmaOp {
    uint64_t epoch;
    unsigned rank;
    uint32_t dst, bar;
    TmaMapModel map;
    int c0, c1;
    bool done;
    size_t issuer;        // the race checker's: the issuing thread, and its clock at the issue
    uint32_t issue_clock;
};
std::vector<TmaOp> tma_queue;

bool tma_early() {
    static const bool early = [] {
        const char* v = getenv("LK_EMU_TMA");
        return v && strcmp(v, "early") == 0;
    }();
    return early;
}

// One box: element (e, r) of the box is tensor element (c0 + e, c1 + r), zero outside the tensor,
// stored at byte r · box[0] · 2 + e · 2 from dst; with the 128-byte swizzle, the 16-byte chunk
// (address bits 4–6) is XORed with the 128-byte row within its 1024 bytes (bits 7–9). The mbarrier
// then counts the whole box's bytes, zero fill included.
void perform(TmaOp& op) {
    const TmaMapModel& m = op.map;
    const uint32_t row_bytes = m.box[0] * 2;
    for (uint32_t r = 0; r < m.box[1]; ++r)
        for (uint32_t e = 0; e < m.box[0]; ++e) {
            const int64_t gc = (int64_t)op.c0 + e, gr = (int64_t)op.c1 + r;
            uint16_t v = 0;
            if (gc >= 0 && (uint64_t)gc < m.dims[0] && gr >= 0 && (uint64_t)gr < m.dims[1])
                memcpy(&v, m.base + (uint64_t)gr * m.row_stride + (uint64_t)gc * 2, 2);
            uint32_t w = op.dst + r * row_bytes + e * 2;
            if (m.swizzle_128b) w ^= ((w >> 7) & 7) << 4;
            memcpy(smem_host(op.rank, w, 2), &v, 2);
        }
    op.done = true;
    race::async_write_done(smem_host(op.rank, op.dst, (size_t)row_bytes * m.box[1]), (size_t)row_bytes * m.box[1],
                           op.issuer, op.issue_clock, op.rank, false);
    Mbar& b = mbar(op.rank, op.bar, "a TMA copy's complete_tx");
    b.tx -= (int64_t)row_bytes * m.box[1];
    complete_if_done(b, op.rank, op.bar);
}

// ---- wgmma ----
// An operation of a warpgroup: each of its 128 threads issues it with its own accumulator
// fragment `d`; it is performed, in issue order, when a thread's wgmma.wait_group retires its group
// (so a stage released before that wait may be overwritten under it), once all 128 have issued it.
struct WgOp {
    uint64_t da, db;
    int scale_d, n, tnsp_a, tnsp_b, type;
    uint32_t group;
    float* d[128];
    uint32_t arrived;
    bool done;
    int race_id;  // the race checker's record of its operand reads, and the threads that retired it
    bool retired[128];
};
struct Warpgroup {
    uint64_t epoch = 0;
    std::vector<WgOp> ops;
};
std::unordered_map<uint64_t, Warpgroup> warpgroups;  // by (block rank, warpgroup)

Warpgroup& warpgroup() {
    if (block_threads() % 128) fail_launch("wgmma in a block whose size is not a multiple of 128 threads");
    Warpgroup& g = warpgroups[key(current_rank(), current_linear_tid() / 128)];
    if (g.epoch != lk_emu_block_epoch()) {
        g.epoch = lk_emu_block_epoch();
        g.ops.clear();
    }
    return g;
}

// Element (mn, k) of an operand through its descriptor (start address, LBO and SBO in 16-byte units
// at bits 0, 16 and 32; layout 1 = 128-byte swizzle at bits 62–63). K-major: 128-byte rows of 64 k
// values, 8-row groups SBO apart. MN-major: 128-byte rows of 64 m (n) values, one per k, 8-k groups
// SBO apart, 64-wide m (n) atoms LBO apart. Then the swizzle, as TMA wrote it.
uint32_t operand_address(uint64_t desc, bool mn_major, int mn, int k) {
    const uint32_t start = (uint32_t)(desc & 0x3FFF) << 4, lbo = (uint32_t)(desc >> 16 & 0x3FFF) << 4,
                   sbo = (uint32_t)(desc >> 32 & 0x3FFF) << 4;
    const uint32_t w = mn_major ? start + (mn / 64) * lbo + (k / 8) * sbo + (k % 8) * 128 + (mn % 64) * 2
                                : start + (mn / 8) * sbo + (mn % 8) * 128 + k * 2;
    return w ^ ((w >> 7) & 7) << 4;
}
float operand(uint64_t desc, bool mn_major, int mn, int k, int type) {
    uint16_t h;
    memcpy(&h, smem_host(current_rank(), operand_address(desc, mn_major, mn, k), 2), 2);
    return lk_emu_half_to_f32(h, type == 0);
}

// D (64 × n) = A (64 × 16) · B (16 × n) + (scale_d ? D : 0), the 16 products of each output summed
// in double. Thread t's fragment: d[4i + q] is row 16 (t / 32) + (t % 32) / 4 + 8 (q / 2), column
// 8i + 2 (t % 4) + q % 2.
void perform(WgOp& op) {
    for (uint64_t desc : {op.da, op.db})
        if ((desc >> 62) != 1 || (desc >> 49 & 7) != 0)
            fail_launch("a wgmma descriptor with another layout than the 128-byte swizzle at base offset 0 (not modelled)");
    std::vector<float> a(64 * 16), b(16 * (size_t)op.n);
    for (int m = 0; m < 64; ++m)
        for (int k = 0; k < 16; ++k) a[m * 16 + k] = operand(op.da, op.tnsp_a, m, k, op.type);
    for (int k = 0; k < 16; ++k)
        for (int n = 0; n < op.n; ++n) b[k * op.n + n] = operand(op.db, op.tnsp_b, n, k, op.type);
    for (int t = 0; t < 128; ++t) {
        const int lane = t % 32, g = lane / 4, q4 = lane % 4;
        for (int i = 0; i < op.n / 8; ++i)
            for (int q = 0; q < 4; ++q) {
                const int row = 16 * (t / 32) + g + 8 * (q / 2), col = 8 * i + 2 * q4 + q % 2;
                float& out = op.d[t][4 * i + q];
                double s = op.scale_d ? (double)out : 0.0;
                for (int k = 0; k < 16; ++k) s += (double)a[row * 16 + k] * (double)b[k * op.n + col];
                out = (float)s;
            }
    }
    op.done = true;
    race::wg_performed(op.race_id);
    note_progress();
}

// The race checker's view of a wgmma issued now: the bytes its operands read.
int race_wg_issue(uint64_t da, uint64_t db, int n, int tnsp_a, int tnsp_b) {
    if (!race::enabled()) return -1;
    std::vector<void*> ps;
    const unsigned rank = current_rank();
    auto add = [&](uint64_t desc, bool mn_major, int mn, int k) {
        ps.push_back(smem_host(rank, operand_address(desc, mn_major, mn, k), 2));
    };
    for (int m = 0; m < 64; ++m)
        for (int k = 0; k < 16; ++k) add(da, tnsp_a, m, k);
    for (int k = 0; k < 16; ++k)
        for (int c = 0; c < n; ++c) add(db, tnsp_b, c, k);
    return race::wg_issue(ps.data(), ps.size(), current_fiber(), rank);
}

}  // namespace
}  // namespace lk_emu

using namespace lk_emu;

extern "C" uint32_t lk_emu_smem_window(const void* p) { return smem_window(p); }
// The host bytes behind an ldmatrix row address (16 bytes at window address w of the running block).
extern "C" void* lk_emu_smem_ptr(uint32_t w) { return smem_host(current_rank(), w, 16); }

extern "C" long long lk_emu_clock64() {
    static long long t = 0;
    return ++t;
}

extern "C" void lk_emu_mbar_init(uint32_t bar, uint32_t count) {
    if (bar % 8) fail_launch("mbarrier.init on a shared address that is not 8-byte aligned");
    smem_host(current_rank(), bar, 8);  // inside the block's shared memory
    if (count == 0 || count >= (1u << 20)) fail_launch("mbarrier.init with an arrival count outside 1 .. 2^20 - 1");
    Mbar& b = mbars[key(current_rank(), bar)];
    b = Mbar{lk_emu_block_epoch(), count, count, 0, 0};
    for (uint64_t k : {race::mbar_key(current_rank(), bar), race::mbar_done_key(current_rank(), bar, 0),
                       race::mbar_done_key(current_rank(), bar, 1)})
        race::clear_clock(k);
    note_progress();
}

// mbarrier.arrive (with .expect_tx when tx_bytes > 0) on the barrier at window address `bar` of
// block `rank` of the cluster (-1: the caller's own).
extern "C" void lk_emu_mbar_arrive(uint32_t bar, int rank, uint32_t tx_bytes) {
    const unsigned r = rank < 0 ? current_rank() : (unsigned)rank;
    if (r >= cluster_blocks()) fail_launch("an mbarrier arrival on block rank " + std::to_string(r) + " outside the cluster");
    if (r != current_rank() && block_exited(r))
        fail_launch("an mbarrier arrival on block rank " + std::to_string(r) + " of the cluster, which has exited");
    Mbar& b = mbar(r, bar, "mbarrier.arrive");
    if (b.pending == 0)
        fail_launch("mbarrier.arrive on a phase whose arrivals are all in, waiting for its transaction bytes (more arrivals than its count)");
    b.tx += tx_bytes;
    --b.pending;
    race::release(race::mbar_key(r, bar), current_fiber());
    complete_if_done(b, r, bar);
}

extern "C" bool lk_emu_mbar_try_wait(uint32_t bar, uint32_t parity) {
    const unsigned rank = current_rank();
    const uint64_t epoch = lk_emu_block_epoch();
    for (size_t i = 0; i < tma_queue.size(); ++i) {
        TmaOp& op = tma_queue[i];
        if (!op.done && op.epoch == epoch && op.rank == rank && op.bar == bar) perform(op);
    }
    if (((mbar(rank, bar, "mbarrier.try_wait").phase & 1) != (parity & 1))) {
        race::acquire(race::mbar_done_key(rank, bar, parity), current_fiber());
        return true;
    }
    spin("an mbarrier phase (mbarrier.try_wait)");
    return false;
}

// cp.async.bulk.tensor.2d global → shared, completing on the mbarrier at `bar`: into the calling
// block, or with a non-zero `cta_mask` into the same addresses of each block of the cluster in the
// mask (each block's own mbarrier at `bar`).
extern "C" void lk_emu_tma_load_2d(uint32_t dst, const void* map, uint32_t bar, int c0, int c1, uint32_t cta_mask) {
    TmaMapModel m;
    memcpy(&m, map, sizeof m);
    if (m.magic != TmaMapModel::MAGIC) fail_launch("a TMA copy through something cuTensorMapEncodeTiled did not write");
    if (dst % 128) fail_launch("a TMA copy to a shared address that is not 128-byte aligned");
    const uint32_t mask = cta_mask ? cta_mask : 1u << current_rank();
    if (cta_mask >> cluster_blocks()) fail_launch("a TMA multicast to blocks outside the cluster");
    if (tma_queue.size() > 256) {  // drop what is done (and what earlier blocks left)
        std::vector<TmaOp> live;
        for (auto& op : tma_queue)
            if (!op.done && op.epoch == lk_emu_block_epoch()) live.push_back(op);
        tma_queue.swap(live);
    }
    for (unsigned r = 0; r < cluster_blocks(); ++r) {
        if (!(mask >> r & 1)) continue;
        if (r != current_rank() && block_exited(r))
            fail_launch("a TMA multicast into block rank " + std::to_string(r) + " of the cluster, which has exited");
        mbar(r, bar, "a TMA copy");
        const size_t bytes = (size_t)m.box[0] * 2 * m.box[1];
        void* host = smem_host(r, dst, bytes);  // the whole box lies in shared memory
        // Race checker: the box is written from now until it lands, after what the issuer did so far
        // (its clock goes to the barrier the copy completes on).
        const size_t t = current_fiber();
        const uint32_t clk = race::clock_of(t);
        race::async_write_issue(host, bytes, t, r);
        race::release(race::mbar_key(r, bar), t);
        tma_queue.push_back(TmaOp{lk_emu_block_epoch(), r, dst, bar, m, c0, c1, false, t, clk});
        if (tma_early()) perform(tma_queue.back());
    }
    note_progress();
}

extern "C" uint32_t lk_emu_cluster_rank() { return current_rank(); }

extern "C" void lk_emu_wgmma(float* d, uint64_t da, uint64_t db, int scale_d, int n, int tnsp_a, int tnsp_b, int type) {
    Warpgroup& g = warpgroup();
    const uint32_t k = fiber_wg_issued()++;
    if (k == g.ops.size()) {
        g.ops.push_back(WgOp{da, db, scale_d, n, tnsp_a, tnsp_b, type, fiber_wg_group(), {}, 0, false,
                             race_wg_issue(da, db, n, tnsp_a, tnsp_b), {}});
    } else {
        const WgOp& o = g.ops[k];
        if (o.da != da || o.db != db || o.scale_d != scale_d || o.n != n || o.tnsp_a != tnsp_a || o.tnsp_b != tnsp_b ||
            o.type != type || o.group != fiber_wg_group())
            fail_launch("wgmma number " + std::to_string(k) + " of this warpgroup with other operands than its other threads'");
    }
    WgOp& op = g.ops[k];
    op.d[current_linear_tid() % 128] = d;
    ++op.arrived;
    note_progress();
}

extern "C" void lk_emu_wgmma_commit() { ++fiber_wg_group(); }

// wgmma.wait_group `pending`: performs the caller's operations of every group but the newest
// `pending` committed ones (waiting for the rest of the warpgroup to issue them first). The other
// threads run once before that, as late as a GPU could read the operands: a stage released
// before this wait may be refilled first (with LK_EMU_TMA=early) and the product then reads it.
extern "C" void lk_emu_wgmma_wait(int pending) {
    Warpgroup& g = warpgroup();
    const uint32_t groups = fiber_wg_group(), issued = fiber_wg_issued();
    const unsigned rank = current_rank(), wg0 = current_linear_tid() / 128 * 128;
    bool yielded = false;
    for (uint32_t k = 0; k < issued; ++k) {
        if (g.ops[k].done || g.ops[k].group + (uint32_t)pending >= groups) continue;
        if (!yielded) {
            yielded = true;
            let_others_run();
            if (g.ops[k].done) continue;
        }
        while (g.ops[k].arrived < 128) {
            for (unsigned t = 0; t < 128; ++t)
                if (!g.ops[k].d[t] && thread_done(rank, wg0 + t))
                    fail_launch("wgmma.wait_group on an operation that thread " + std::to_string(wg0 + t) +
                                " of the warpgroup exited without issuing");
            spin("the rest of its warpgroup's wgmma");
        }
        if (!g.ops[k].done) perform(g.ops[k]);
    }
    // Race checker: what this wait retired, the thread has seen read.
    const unsigned lane = current_linear_tid() % 128;
    for (uint32_t k = 0; k < issued; ++k) {
        WgOp& op = g.ops[k];
        if (op.group + (uint32_t)pending >= groups || op.retired[lane]) continue;
        op.retired[lane] = true;
        race::wg_retire(op.race_id, current_fiber());
    }
}
