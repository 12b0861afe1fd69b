// The bank profile's wavefront count (banks.cpp) on warp requests whose cost the GPU's
// shared-memory pipeline is known to have (32 banks of 4 bytes, 128 bytes a wavefront). build.py
// --racecheck builds and runs it against the library it just linked; a wrong count fails the build.
#include <stdio.h>

#include <cstdint>
#include <functional>

#include "emu_internal.h"

namespace {
int failures = 0, cases = 0;

// A request of all 32 lanes (or `lanes`), lane l at byte address at(l), `bytes` wide.
void expect(const char* what, int kind, uint32_t bytes, const std::function<uintptr_t(int)>& at, uint64_t want_wf,
            uint64_t want_ideal, uint32_t lanes = 0xFFFFFFFFu) {
    ++cases;
    uintptr_t addr[32];
    uint32_t width[32];
    for (int l = 0; l < 32; ++l) {
        addr[l] = 4096 + at(l);
        width[l] = bytes;
    }
    uint64_t ideal = 0;
    const uint64_t wf = lk_emu::banks::wavefronts(kind, lanes, addr, width, &ideal);
    if (wf != want_wf || ideal != want_ideal) {
        fprintf(stderr, "banks_test: %s: %llu wavefronts (ideal %llu), expected %llu (ideal %llu)\n", what,
                (unsigned long long)wf, (unsigned long long)ideal, (unsigned long long)want_wf,
                (unsigned long long)want_ideal);
        ++failures;
    }
}
}  // namespace

int main() {
    using lk_emu::banks::LDMATRIX;
    using lk_emu::banks::LOAD;
    using lk_emu::banks::STORE;
    expect("4-byte, consecutive", LOAD, 4, [](int l) { return 4 * l; }, 1, 1);
    expect("4-byte, stride 2 words: 2-way", LOAD, 4, [](int l) { return 8 * l; }, 2, 1);
    expect("4-byte, stride 32 words: 32-way", STORE, 4, [](int l) { return 128 * l; }, 32, 1);
    expect("4-byte, stride 33 words (padded column)", LOAD, 4, [](int l) { return 132 * l; }, 1, 1);
    expect("4-byte, one word for all (broadcast)", LOAD, 4, [](int) { return 64; }, 1, 1);
    expect("4-byte, two lanes a word", LOAD, 4, [](int l) { return 4 * (l / 2); }, 1, 1);
    expect("4-byte, lanes 0-15 only", LOAD, 4, [](int l) { return 4 * l; }, 1, 1, 0xFFFFu);
    expect("2-byte, consecutive", STORE, 2, [](int l) { return 2 * l; }, 1, 1);
    expect("8-byte, consecutive: a half-warp a wavefront", LOAD, 8, [](int l) { return 8 * l; }, 2, 2);
    expect("8-byte, stride 16 bytes: 2-way per half-warp", LOAD, 8, [](int l) { return 16 * l; }, 4, 2);
    expect("16-byte, consecutive: a quarter-warp a wavefront", LOAD, 16, [](int l) { return 16 * l; }, 4, 4);
    expect("16-byte, stride 32 bytes: 2-way per quarter", LOAD, 16, [](int l) { return 32 * l; }, 8, 4);
    expect("16-byte store, a quarter-warp on one address", STORE, 16, [](int l) { return 16 * (l / 8); }, 4, 4);
    expect("16-byte load, a quarter-warp on one address: pairs", LOAD, 16, [](int l) { return 16 * (l / 8); }, 2, 2);
    expect("16-byte load, Tn == Tn^1: pairs", LOAD, 16, [](int l) { return 16 * (l / 2); }, 2, 2);
    expect("16-byte load, Tn == Tn^2: pairs", LOAD, 16, [](int l) { return 16 * (l % 2 + l / 4 * 2); }, 2, 2);
    expect("16-byte load, four addresses (lane % 4): no pairs", LOAD, 16, [](int l) { return 16 * (l % 4); }, 4, 4);
    expect("16-byte load, 4 lanes an address (lane / 4)", LOAD, 16, [](int l) { return 16 * (l / 4); }, 2, 2);
    expect("8-byte load, Tn == Tn^1: a warp a wavefront", LOAD, 8, [](int l) { return 8 * (l / 2); }, 1, 1);
    // ldmatrix x4: lanes 8i..8i+7 give matrix i's 8 rows of 16 bytes.
    expect("ldmatrix, rows 64 bytes apart: 4-way", LDMATRIX, 16, [](int l) { return 64 * (l % 8) + 4096 * (l / 8); },
           16, 4);
    expect("ldmatrix, rows 128 bytes apart, 128-byte swizzle", LDMATRIX, 16,
           [](int l) { return 128 * (l % 8) + 16 * ((l % 8) ^ (l / 8)); }, 4, 4);
    expect("ldmatrix, rows 128 bytes apart, no swizzle: 8-way", LDMATRIX, 16, [](int l) { return 128 * (l % 8); }, 32,
           4);
    if (failures) return 1;
    printf("banks_test: %d wavefront counts as expected\n", cases);
    return 0;
}
