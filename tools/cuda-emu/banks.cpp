// The emulator's shared-memory bank profile (`LK_EMU_BANKS=1` on the race-checking build): every
// shared-memory access a kernel makes is put back together into the warp request the GPU would
// see, and that request is counted in wavefronts, the passes the shared-memory pipeline needs for
// it, against the fewest passes its bytes could take. What ncu reports as "excessive wavefronts"
// (bank conflicts), without a GPU.
//
// Requests: the fibers of a warp run one after another, so the k-th access that lane l makes from
// one call site (the instrumented load or store's return address) is taken to be the same warp
// instruction as the k-th access of the other lanes from that site. Counts restart at each
// __syncthreads, where every lane of the block has made the same accesses, and at each block's end.
// Divergent code (lanes taking different paths through one site) is counted as if converged.
//
// Wavefronts, per the GPU's shared-memory pipeline (32 banks of 4 bytes, one 4-byte register of
// each lane a pass): a request's lanes go in phases of 128 bytes: a warp for accesses of 4 bytes or
// less, a half-warp for 8, a quarter-warp for 16; ldmatrix one 8×8 matrix (8 rows of 16 bytes) per
// phase; a cp.async destination as a store of its width. A load whose lanes go in pairs on one
// address (Tn and Tn^1, or Tn and Tn^2, for every active lane) packs two lanes' registers in a
// pass: phases of twice the lanes (NVIDIA developer forum, "Unexpected shared memory bank
// conflict"; with it, the count below matches ncu's on an H100). A phase takes as many wavefronts as the most
// distinct 4-byte words any one bank holds (lanes reading or writing one word share it); its ideal
// is one per 128 distinct bytes.
//
// Checked against ncu on an H100 (bench/results/2026-11-27-h100/ncu-gemm-f32-1024x400x784.log,
// gemm_simt64_warp_f32 at 1024×400×784, A·Bᵀ): 4278272 shared wavefronts, 387072 excessive; this
// profile of the same launch: 4285440 and 394240 (the difference: the epilogue's park store, which
// nvcc had made STS.64 / STS.128 and g++ four 4-byte stores).
//
// Not modelled: the g++ build's loads are those of the C++ (float4 as one 16-byte access: the
// profile build compiles with -fno-tree-sra), not nvcc's SASS, so a load that nvcc vectorises and
// g++ does not (or the reverse) is counted at another width; TMA, wgmma operand reads and
// atomics are not counted.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "emu_internal.h"

namespace lk_emu {
namespace banks {
namespace {

struct Key {
    const void* pc;
    uint32_t occurrence;
    uint8_t kind;
    bool operator==(const Key& o) const { return pc == o.pc && occurrence == o.occurrence && kind == o.kind; }
};
struct KeyHash {
    size_t operator()(const Key& k) const {
        return std::hash<const void*>()(k.pc) ^ (size_t)k.occurrence * 0x9E3779B97F4A7C15ull ^ k.kind;
    }
};

// One warp request as its lanes make it.
struct Request {
    const char* kernel;  // the driver's name of the launch's function (alive until end_launch)
    uint32_t lanes = 0;  // mask of the lanes that made it
    uintptr_t addr[32];
    uint32_t bytes[32];
};

struct Warp {
    std::unordered_map<const void*, uint32_t> seen[32];  // per lane: accesses from each site so far
    std::unordered_map<Key, Request, KeyHash> open;
};

struct Site {
    uint64_t requests = 0, wavefronts = 0, ideal = 0;
};

struct Profile {
    int on = -1;  // -1: LK_EMU_BANKS not read yet
    const char* out = nullptr;  // a file to append the report to, or nullptr for stderr
    int quiet = 0;
    size_t per_block = 0;
    std::vector<Warp> warps;  // of the running cluster, by cluster thread / 32 (rounded per block)
    // (kernel name, site, kind) → totals.
    std::map<std::tuple<std::string, const void*, int>, Site> sites;
};
Profile P;

size_t warp_of(size_t t) {
    const size_t per_warp_row = (P.per_block + 31) / 32;
    return t / P.per_block * per_warp_row + t % P.per_block / 32;
}

// Wavefronts of one phase: the largest number of distinct words in one bank; ideal: 128 bytes a pass.
void phase(std::vector<uintptr_t>& words, uint64_t& wf, uint64_t& ideal) {
    if (words.empty()) return;
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    uint32_t per_bank[32] = {};
    uint32_t worst = 0;
    for (uintptr_t w : words) worst = std::max(worst, ++per_bank[w % 32]);
    wf += worst;
    ideal += (words.size() + 31) / 32;
    words.clear();
}

}  // namespace

uint64_t wavefronts(int kind, uint32_t lanes, const uintptr_t* addr, const uint32_t* bytes, uint64_t* ideal) {
    uint64_t wf = 0, id = 0;
    std::vector<uintptr_t> words;
    uint32_t width = 0;
    for (int l = 0; l < 32; ++l)
        if (lanes >> l & 1) width = std::max(width, bytes[l]);
    // Lanes per phase: matrices of 8 rows for ldmatrix, else 128 bytes of the widest access (one
    // register of each lane returned per wavefront), twice as many for a load whose lanes go in
    // pairs (Tn and Tn^1, or Tn and Tn^2, on one address: the returned registers are packed).
    int per_phase = kind == LDMATRIX ? 8 : width <= 4 ? 32 : width <= 8 ? 16 : 8;
    if (kind == LOAD && per_phase < 32) {
        bool pair1 = true, pair2 = true;
        for (int l = 0; l < 32; ++l) {
            if (!(lanes >> l & 1)) continue;
            pair1 &= !(lanes >> (l ^ 1) & 1) || addr[l ^ 1] == addr[l];
            pair2 &= !(lanes >> (l ^ 2) & 1) || addr[l ^ 2] == addr[l];
        }
        if (pair1 || pair2) per_phase *= 2;
    }
    for (int l0 = 0; l0 < 32; l0 += per_phase) {
        for (int l = l0; l < l0 + per_phase; ++l) {
            if (!(lanes >> l & 1)) continue;
            const uintptr_t first = addr[l] / 4, last = (addr[l] + std::max(bytes[l], 1u) - 1) / 4;
            for (uintptr_t w = first; w <= last; ++w) words.push_back(w);
        }
        phase(words, wf, id);
    }
    *ideal = id;
    return wf;
}

bool on() {
    if (P.on < 0) {
        const char* v = getenv("LK_EMU_BANKS");
        P.on = race::enabled() && v && *v && strcmp(v, "0") != 0;  // the hooks are the race build's
        if (P.on && strcmp(v, "1") != 0) P.out = v;
    }
    return P.on == 1;
}

void quiet(bool q) { P.quiet += q ? 1 : -1; }

void record(size_t t, const void* p, size_t n, int kind, const void* pc) {
    if (!on() || P.quiet || P.per_block == 0) return;
    const size_t w = warp_of(t);
    if (w >= P.warps.size()) P.warps.resize(w + 1);
    Warp& warp = P.warps[w];
    const unsigned lane = (unsigned)(t % P.per_block % 32);
    const uint32_t k = warp.seen[lane][pc]++;
    Request& r = warp.open[Key{pc, k, (uint8_t)kind}];
    if (!r.lanes) r.kernel = running_kernel();
    r.lanes |= 1u << lane;
    r.addr[lane] = reinterpret_cast<uintptr_t>(p);
    r.bytes[lane] = (uint32_t)n;
}

namespace {
void close_warp(Warp& warp) {
    for (auto& [key, r] : warp.open) {
        Site& s = P.sites[{r.kernel ? r.kernel : "?", key.pc, key.kind}];
        uint64_t ideal = 0;
        s.wavefronts += wavefronts(key.kind, r.lanes, r.addr, r.bytes, &ideal);
        s.ideal += ideal;
        ++s.requests;
    }
    warp.open.clear();
    for (auto& s : warp.seen) s.clear();
}
}  // namespace

void close_warps(const size_t* ts, size_t n) {
    if (!on()) return;
    size_t last = ~size_t(0);
    for (size_t i = 0; i < n; ++i) {
        const size_t w = warp_of(ts[i]);
        if (w != last && w < P.warps.size()) close_warp(P.warps[w]);
        last = w;
    }
}

// Counts every warp's open requests; per_block: the threads of a block from now on (0: no launch).
void start_cluster(size_t per_block) {
    if (!on()) return;
    for (Warp& w : P.warps) close_warp(w);
    P.per_block = per_block;
}

void end_launch() { start_cluster(0); }

namespace {
// "file:line" of each site, from the line tables of the library holding it (addr2line -i: of an
// access inlined from a header, the innermost frame in a kernel source, build.py's src/NAME.cpp,
// which is kernels/NAME.cu line for line).
std::map<const void*, std::string> source_lines(const std::vector<const void*>& pcs) {
    std::map<std::string, std::vector<const void*>> by_lib;
    std::map<const void*, uintptr_t> offset;
    for (const void* pc : pcs) {
        Dl_info info;
        if (!dladdr(pc, &info) || !info.dli_fname) continue;
        // The return address follows the call: the access is the instruction before it.
        offset[pc] = reinterpret_cast<uintptr_t>(pc) - reinterpret_cast<uintptr_t>(info.dli_fbase) - 1;
        by_lib[info.dli_fname].push_back(pc);
    }
    std::map<const void*, std::string> out;
    for (auto& [lib, list] : by_lib) {
        std::string cmd = "addr2line -a -i -e '" + lib + "'";
        std::map<uintptr_t, const void*> pc_of;
        for (const void* pc : list) {
            char b[32];
            snprintf(b, sizeof b, " 0x%lx", (unsigned long)offset[pc]);
            cmd += b;
            pc_of[offset[pc]] = pc;
        }
        FILE* f = popen(cmd.c_str(), "r");
        if (!f) continue;
        char line[4096];
        const void* cur = nullptr;
        bool in_kernel = false;  // cur's line is already a kernel source's
        while (fgets(line, sizeof line, f)) {
            std::string s(line);
            while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
            const size_t note = s.find(" (discriminator");
            if (note != std::string::npos) s.erase(note);
            if (s.rfind("0x", 0) == 0) {  // -a: the address before its frames
                auto it = pc_of.find((uintptr_t)strtoull(s.c_str(), nullptr, 16));
                cur = it == pc_of.end() ? nullptr : it->second;
                in_kernel = false;
                continue;
            }
            if (!cur || in_kernel) continue;
            const size_t src = s.rfind("/src/");
            const size_t cpp = s.find(".cpp:", src == std::string::npos ? 0 : src);
            if (src != std::string::npos && cpp != std::string::npos) {
                out[cur] = "kernels/" + s.substr(src + 5, cpp - src - 5) + ".cu" + s.substr(cpp + 4);
                in_kernel = true;
            } else if (!out.count(cur)) {
                out[cur] = src != std::string::npos ? "tools/cuda-emu/" + s.substr(src + 5) : s;
            }
        }
        pclose(f);
    }
    return out;
}

const char* kind_name(int kind) {
    switch (kind) {
        case LOAD: return "load";
        case STORE: return "store";
        case LDMATRIX: return "ldmatrix";
        case CP_ASYNC: return "cp.async";
        default: return "?";
    }
}
}  // namespace

void report() {
    if (!on()) return;
    P.on = 2;  // reported: later launches are not counted
    FILE* f = P.out ? fopen(P.out, "a") : stderr;
    if (!f) return;
    std::vector<const void*> pcs;
    for (auto& [k, s] : P.sites) pcs.push_back(std::get<1>(k));
    const auto lines = source_lines(pcs);
    std::map<std::string, Site> kernels;
    for (auto& [k, s] : P.sites) {
        Site& t = kernels[std::get<0>(k)];
        t.requests += s.requests;
        t.wavefronts += s.wavefronts;
        t.ideal += s.ideal;
    }
    const char* all = getenv("LK_EMU_BANKS_SITES");  // "all": the conflict-free sites too
    const bool every_site = all && strcmp(all, "all") == 0;
    fprintf(f, "cuda-emu shared-memory bank profile (wavefronts per warp request; excess = bank conflicts):\n");
    for (auto& [name, t] : kernels) {
        fprintf(f, "%s: %llu requests, %llu wavefronts, ideal %llu, excess %llu (%.1f%% of the wavefronts)\n",
                name.c_str(), (unsigned long long)t.requests, (unsigned long long)t.wavefronts,
                (unsigned long long)t.ideal, (unsigned long long)(t.wavefronts - t.ideal),
                t.wavefronts ? 100.0 * (double)(t.wavefronts - t.ideal) / (double)t.wavefronts : 0.0);
        for (auto& [k, s] : P.sites) {
            if (std::get<0>(k) != name || (s.wavefronts == s.ideal && !every_site)) continue;
            auto l = lines.find(std::get<1>(k));
            fprintf(f, "  %-8s %s: %llu requests, %.2f wavefronts each (ideal %.2f)\n", kind_name(std::get<2>(k)),
                    l == lines.end() ? "?" : l->second.c_str(), (unsigned long long)s.requests,
                    (double)s.wavefronts / (double)s.requests, (double)s.ideal / (double)s.requests);
        }
    }
    if (f != stderr) fclose(f);
}

namespace {
struct AtExit {
    ~AtExit() { report(); }
} at_exit;
}  // namespace

}  // namespace banks
}  // namespace lk_emu

// The emulator's headers: ldmatrix's row address (each lane's), and the quiet span around a model's
// own reads of shared memory (those are not the kernel's requests).
extern "C" void lk_emu_banks_ldmatrix(const void* row) {
    lk_emu::banks::record(lk_emu::current_fiber(), row, 16, lk_emu::banks::LDMATRIX, __builtin_return_address(0));
}
extern "C" void lk_emu_banks_quiet(int on) { lk_emu::banks::quiet(on != 0); }
