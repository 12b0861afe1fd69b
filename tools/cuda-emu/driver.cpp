// libcuda.so.1 for a machine without a GPU: the subset of the CUDA driver API that cudarc and
// latentkit call, over host memory and the fiber scheduler (runtime.cpp). Kernels are the ones
// build.py compiled from kernels/*.cu for the host; a module's fatbin is accepted and ignored, and
// functions are looked up by name among them. Work runs synchronously at the call that enqueues it
// (stream order is then trivially kept); a stream being captured records work into a graph instead,
// and launching the graph replays it.
//
// Memory checks (what compute-sanitizer's memcheck would say, in part): every device allocation
// ends at an inaccessible page, so reading or writing past its end faults, and the fault handler
// names the running kernel; the alignment gap before that page is a canary checked after each
// kernel; freed memory is unmapped; fresh allocations and shared memory are filled with NaN bytes.
#include <cuda.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "emu_internal.h"

namespace {

using namespace lk_emu;

constexpr size_t PAGE = 4096;
constexpr unsigned char CANARY = 0xA5;
constexpr int DEFAULT_DYN_SMEM = 48 * 1024;
// The emulated GPU: an sm_80 with an A100's limits, or with LK_EMU_SM=90 an sm_90 with an H100's
// (the Hopper kernels, gemm_wgmma.cu, load only there).
struct DeviceModel {
    int major, minor, sms, optin_smem, smem_per_sm, l2_bytes, clock_khz;
    const char* name;
};
const DeviceModel& device() {
    static const DeviceModel d = [] {
        const char* v = getenv("LK_EMU_SM");
        if (v && strcmp(v, "90") == 0)
            return DeviceModel{9, 0, 132, 232448, 233472, 50 << 20, 1755000, "latentkit CUDA emulator (CPU, sm_90)"};
        return DeviceModel{8, 0, 108, 166912, 167936, 40 << 20, 1410000, "latentkit CUDA emulator (CPU)"};
    }();
    return d;
}
constexpr size_t TOTAL_MEM = size_t(16) << 30;

struct Alloc {
    char* region;
    size_t region_bytes;
    size_t bytes;
};
struct Func {
    std::string name;
    const Binder* binder;
    dim3 cluster;  // compiled-in __cluster_dims__ (1, 1, 1 without)
    int max_dyn_smem = DEFAULT_DYN_SMEM;
};
using Op = std::function<CUresult()>;
struct Graph {
    std::vector<Op> ops;
};
struct Stream {
    bool capturing = false;
    Graph* graph = nullptr;
    CUresult capture_error = CUDA_SUCCESS;
};
struct Event {
    double ms = 0;
};

std::recursive_mutex G;
bool initialised = false;
std::map<uintptr_t, Alloc> allocs;  // by start address
std::unordered_map<std::string, Func*> functions;
int ctx_token, module_token;
thread_local CUcontext current_ctx = nullptr;
Stream null_stream;

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Stream* stream_of(CUstream s) { return s ? reinterpret_cast<Stream*>(s) : &null_stream; }

// The allocation holding [p, p + n), or nullptr.
const Alloc* find_alloc(uintptr_t p, size_t n) {
    auto it = allocs.upper_bound(p);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (p < it->first || p + n > it->first + it->second.bytes) return nullptr;
    return &it->second;
}

CUresult report(CUresult r, const std::string& why) {
    fprintf(stderr, "cuda-emu: %s\n", why.c_str());
    return r;
}

// Runs `op` now, or records it when the stream is being captured.
CUresult enqueue(CUstream s, Op op) {
    Stream* st = stream_of(s);
    if (st->capturing) {
        st->graph->ops.push_back(std::move(op));
        return CUDA_SUCCESS;
    }
    return op();
}

std::string check_canaries(const char* kernel) {
    for (auto& [start, a] : allocs) {
        const char* end = reinterpret_cast<const char*>(start) + a.bytes;
        const char* guard = a.region + a.region_bytes - PAGE;
        for (const char* p = end; p < guard; ++p)
            if ((unsigned char)*p != CANARY) {
                char buf[200];
                snprintf(buf, sizeof buf, "%s wrote %zu bytes past the end of a %zu-byte allocation at 0x%lx", kernel,
                         (size_t)(p - end) + 1, a.bytes, (unsigned long)start);
                memset(const_cast<char*>(end), CANARY, guard - end);
                return buf;
            }
    }
    return {};
}

// Recently freed allocations (a ring), so a fault can say "freed" rather than "never allocated".
struct Freed {
    uintptr_t start;
    size_t bytes;
};
Freed freed_ring[4096];
size_t freed_next = 0;
struct sigaction previous_segv, previous_bus;

// Says where `addr` lies: past the end of a live allocation, inside a freed one, or nowhere known.
// Runs in the signal handler: no allocation, no locks (the faulting thread may hold G).
int describe_address(char* buf, size_t len, uintptr_t addr) {
    for (auto& [start, a] : allocs) {
        const uintptr_t region = reinterpret_cast<uintptr_t>(a.region);
        if (addr >= region && addr < region + a.region_bytes)
            return snprintf(buf, len, "%ld bytes from the start of the %zu-byte allocation at 0x%lx",
                            (long)(addr - start), a.bytes, (unsigned long)start);
    }
    for (const Freed& f : freed_ring)
        if (f.bytes && addr >= f.start && addr < f.start + f.bytes + 256)
            return snprintf(buf, len, "inside a freed %zu-byte allocation at 0x%lx (offset %lu)", f.bytes,
                            (unsigned long)f.start, (unsigned long)(addr - f.start));
    return snprintf(buf, len, "not in any device allocation");
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
    if (!in_kernel_on_this_thread()) {
        // Not a kernel's access (for example a Rust thread's stack guard): the previous handler's.
        const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
        if (prev.sa_flags & SA_SIGINFO) {
            if (prev.sa_sigaction) return prev.sa_sigaction(sig, info, uctx);
        } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler) {
            return prev.sa_handler(sig);
        }
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    char where_buf[160], what[200], buf[512];
    describe_current_thread(where_buf, sizeof where_buf);
    describe_address(what, sizeof what, reinterpret_cast<uintptr_t>(info->si_addr));
    int len = snprintf(buf, sizeof buf, "cuda-emu: invalid memory access at %p in kernel %s, %s: %s (signal %d)\n",
                       info->si_addr, running_kernel(), where_buf, what, sig);
    if (len > 0) (void)!write(2, buf, (size_t)std::min<int>(len, (int)sizeof buf - 1));
    signal(sig, SIG_DFL);
    raise(sig);
}

CUresult launch_now(Func* f, dim3 grid, dim3 block, size_t smem, const ThreadBody& body) {
    const std::string err = run_grid(f->name.c_str(), body, grid, block, smem, f->cluster);
    if (!err.empty()) return report(CUDA_ERROR_LAUNCH_FAILED, err);
    const std::string canary = check_canaries(f->name.c_str());
    if (!canary.empty()) return report(CUDA_ERROR_ILLEGAL_ADDRESS, canary);
    return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

CUresult cuInit(unsigned int) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (!initialised) {
        struct sigaction sa {};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, &previous_segv);
        sigaction(SIGBUS, &sa, &previous_bus);
        initialised = true;
    }
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return CUDA_SUCCESS;
}

struct ErrorText {
    CUresult code;
    const char* name;
    const char* text;
};
constexpr ErrorText ERRORS[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument (cuda-emu)"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory (cuda-emu)"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found (cuda-emu: kernel not emulated)"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure (cuda-emu: see stderr)"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered (cuda-emu: see stderr)"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported (cuda-emu)"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
};
const ErrorText& error_text(CUresult r) {
    static constexpr ErrorText unknown{CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "error (cuda-emu)"};
    for (const ErrorText& e : ERRORS)
        if (e.code == r) return e;
    return unknown;
}
CUresult cuGetErrorString(CUresult r, const char** s) {
    *s = error_text(r).text;
    return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult r, const char** s) {
    *s = error_text(r).name;
    return CUDA_SUCCESS;
}

// ---- device and context ----
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice) {
    snprintf(name, (size_t)len, "%s", device().name);
    return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem(size_t* bytes, CUdevice) {
    *bytes = TOTAL_MEM;
    return CUDA_SUCCESS;
}
CUresult cuMemGetInfo(size_t* free_bytes, size_t* total) {
    *free_bytes = TOTAL_MEM / 2;
    *total = TOTAL_MEM;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice) {
    switch (a) {
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = device().major; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = device().minor; break;
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = device().sms; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = device().optin_smem; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = DEFAULT_DYN_SMEM; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *v = device().smem_per_sm; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *v = 2048; break;
        case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *v = 1024; break;
        case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *v = 64; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *v = 2147483647; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: *v = 65535; break;
        case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *v = 65535; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = device().l2_bytes; break;
        case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: *v = 65536; break;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = device().clock_khz; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *v = 1215000; break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *v = 5120; break;
        case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *v = 1; break;
        default: *v = 0; break;  // memory pools, managed memory, ... : not supported
    }
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetUuid(CUuuid* u, CUdevice) {
    memset(u, 0x5A, sizeof *u);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) {
    *c = reinterpret_cast<CUcontext>(&ctx_token);
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext* c) {
    *c = current_ctx;
    return CUDA_SUCCESS;
}
CUresult cuCtxSetCurrent(CUcontext c) {
    current_ctx = c;
    return CUDA_SUCCESS;
}
CUresult cuCtxPushCurrent(CUcontext c) { return cuCtxSetCurrent(c); }
CUresult cuCtxSynchronize() { return CUDA_SUCCESS; }
CUresult cuCtxGetDevice(CUdevice* d) {
    *d = 0;
    return CUDA_SUCCESS;
}
CUresult cuCtxSetLimit(CUlimit, size_t) { return CUDA_SUCCESS; }
CUresult cuCtxGetStreamPriorityRange(int* least, int* greatest) {
    *least = 0;
    *greatest = -5;
    return CUDA_SUCCESS;
}

// ---- memory ----
CUresult cuMemAlloc(CUdeviceptr* dptr, size_t bytes) {
    std::lock_guard<std::recursive_mutex> l(G);
    const size_t body = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
    const size_t region_bytes = (body + PAGE - 1) / PAGE * PAGE + PAGE;
    char* region = static_cast<char*>(
        mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (region == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    char* guard = region + region_bytes - PAGE;
    mprotect(guard, PAGE, PROT_NONE);
    char* start = guard - body;
    memset(start, 0xFF, bytes);                       // NaN bytes until written
    memset(start + bytes, CANARY, body - bytes);      // the alignment gap before the guard page
    allocs[reinterpret_cast<uintptr_t>(start)] = Alloc{region, region_bytes, bytes};
    *dptr = reinterpret_cast<CUdeviceptr>(start);
    return CUDA_SUCCESS;
}
CUresult cuMemFree(CUdeviceptr p) {
    std::lock_guard<std::recursive_mutex> l(G);
    auto it = allocs.find(p);
    if (it == allocs.end()) return report(CUDA_ERROR_INVALID_VALUE, "cuMemFree of an address that is not an allocation");
    // No canary check here: only kernels can write past an allocation (copies are range-checked),
    // and every launch checks them all when it ends.
    munmap(it->second.region, it->second.region_bytes);
    freed_ring[freed_next++ % 4096] = Freed{it->first, it->second.bytes};
    allocs.erase(it);
    return CUDA_SUCCESS;
}
CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytes, CUstream) { return cuMemAlloc(dptr, bytes); }
CUresult cuMemFreeAsync(CUdeviceptr p, CUstream) { return cuMemFree(p); }

CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned int) {
    *p = malloc(std::max<size_t>(bytes, 1));
    return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void* p) {
    free(p);
    return CUDA_SUCCESS;
}

static CUresult check_range(CUdeviceptr p, size_t n, const char* what) {
    if (n == 0 || find_alloc(p, n)) return CUDA_SUCCESS;
    char buf[160];
    snprintf(buf, sizeof buf, "%s: [0x%lx, +%zu) is not inside one device allocation", what, (unsigned long)p, n);
    return report(CUDA_ERROR_INVALID_VALUE, buf);
}

CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (CUresult r = check_range(p, n, "cuMemsetD8")) return r;
    return enqueue(s, [=] {
        memset(reinterpret_cast<void*>(p), v, n);
        return CUDA_SUCCESS;
    });
}
CUresult cuMemsetD8(CUdeviceptr p, unsigned char v, size_t n) { return cuMemsetD8Async(p, v, n, nullptr); }
CUresult cuMemsetD32Async(CUdeviceptr p, unsigned int v, size_t n, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (CUresult r = check_range(p, n * 4, "cuMemsetD32")) return r;
    return enqueue(s, [=] {
        for (size_t i = 0; i < n; ++i) reinterpret_cast<unsigned int*>(p)[i] = v;
        return CUDA_SUCCESS;
    });
}
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (CUresult r = check_range(dst, n, "cuMemcpyHtoD")) return r;
    return enqueue(s, [=] {
        memcpy(reinterpret_cast<void*>(dst), src, n);
        return CUDA_SUCCESS;
    });
}
CUresult cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t n, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (CUresult r = check_range(src, n, "cuMemcpyDtoH")) return r;
    return enqueue(s, [=] {
        memcpy(dst, reinterpret_cast<const void*>(src), n);
        return CUDA_SUCCESS;
    });
}
CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (CUresult r = check_range(src, n, "cuMemcpyDtoD source")) return r;
    if (CUresult r = check_range(dst, n, "cuMemcpyDtoD destination")) return r;
    return enqueue(s, [=] {
        memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
        return CUDA_SUCCESS;
    });
}
CUresult cuMemcpyHtoD(CUdeviceptr dst, const void* src, size_t n) { return cuMemcpyHtoDAsync(dst, src, n, nullptr); }
CUresult cuMemcpyDtoH(void* dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoHAsync(dst, src, n, nullptr); }
CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoDAsync(dst, src, n, nullptr); }

// ---- modules and functions ----
CUresult cuModuleLoadData(CUmodule* m, const void*) {
    *m = reinterpret_cast<CUmodule>(&module_token);
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule) { return CUDA_SUCCESS; }
CUresult cuModuleGetFunction(CUfunction* out, CUmodule, const char* name) {
    std::lock_guard<std::recursive_mutex> l(G);
    auto it = functions.find(name);
    if (it == functions.end()) {
        // Kernels the emulator does not compile (inline PTX it has no model of) still resolve, so
        // their module loads; launching one fails with CUDA_ERROR_NOT_FOUND.
        const Registered* r = find_kernel(name);
        it = functions.emplace(name, new Func{name, r ? &r->binder : nullptr, r ? r->cluster : dim3{1, 1, 1}}).first;
    }
    *out = reinterpret_cast<CUfunction>(it->second);
    return CUDA_SUCCESS;
}
CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) {
    Func* fn = reinterpret_cast<Func*>(f);
    if (a == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        if (v < 0 || v > device().optin_smem) return CUDA_ERROR_INVALID_VALUE;
        fn->max_dyn_smem = v;
    }
    return CUDA_SUCCESS;
}
CUresult cuFuncGetAttribute(int* v, CUfunction_attribute a, CUfunction f) {
    Func* fn = reinterpret_cast<Func*>(f);
    switch (a) {
        case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *v = fn->max_dyn_smem; break;
        case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
        case CU_FUNC_ATTRIBUTE_NUM_REGS: *v = 64; break;
        default: *v = 0; break;
    }
    return CUDA_SUCCESS;
}
CUresult cuFuncSetCacheConfig(CUfunction, CUfunc_cache) { return CUDA_SUCCESS; }
// 2048 threads, 32 blocks and the model's shared memory per SM (registers ignored).
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, CUfunction, int threads, size_t smem,
                                                              unsigned int) {
    if (threads <= 0) return CUDA_ERROR_INVALID_VALUE;
    int n = std::min(32, 2048 / threads);
    if (smem) n = std::min<int>(n, (int)(device().smem_per_sm / (smem + 1024)));
    *blocks = n;
    return CUDA_SUCCESS;
}
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction f, int threads, size_t smem) {
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(blocks, f, threads, smem, 0);
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, CUstream s, void** params, void** extra) {
    std::lock_guard<std::recursive_mutex> l(G);
    Func* fn = reinterpret_cast<Func*>(f);
    if (!fn->binder) return report(CUDA_ERROR_NOT_FOUND, "kernel " + fn->name + " is not emulated");
    if (extra) return report(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel's `extra` is not emulated");
    const uint64_t threads = (uint64_t)bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || threads == 0 || threads > 1024 || bz > 64 || gy > 65535 || gz > 65535 ||
        gx > 2147483647u)
        return report(CUDA_ERROR_INVALID_VALUE, "launch of " + fn->name + " with grid (" + std::to_string(gx) +
                                                    ", " + std::to_string(gy) + ", " + std::to_string(gz) +
                                                    ") × block (" + std::to_string(bx) + ", " + std::to_string(by) +
                                                    ", " + std::to_string(bz) + ")");
    const dim3 c = fn->cluster;
    const unsigned cluster_blocks = c.x * c.y * c.z;
    if (cluster_blocks == 0 || cluster_blocks > MAX_CLUSTER || gx % c.x || gy % c.y || gz % c.z)
        return report(CUDA_ERROR_INVALID_CLUSTER_SIZE,
                      "launch of " + fn->name + ": its cluster (" + std::to_string(c.x) + ", " + std::to_string(c.y) +
                          ", " + std::to_string(c.z) + ") does not divide the grid or has over " +
                          std::to_string(MAX_CLUSTER) + " blocks (cuda-emu)");
    if ((int)smem > fn->max_dyn_smem)
        return report(CUDA_ERROR_INVALID_VALUE, "launch of " + fn->name + " with " + std::to_string(smem) +
                                                    " B of dynamic shared memory over its limit of " +
                                                    std::to_string(fn->max_dyn_smem) + " B");
    // Parameters are copied now, as the driver does (a captured launch keeps this copy).
    auto body = std::make_shared<ThreadBody>((*fn->binder)(params));
    const dim3 grid{gx, gy, gz}, block{bx, by, bz};
    return enqueue(s, [=] { return launch_now(fn, grid, block, smem, *body); });
}

// ---- streams, events, graphs ----
CUresult cuStreamCreate(CUstream* s, unsigned int) {
    *s = reinterpret_cast<CUstream>(new Stream());
    return CUDA_SUCCESS;
}
CUresult cuStreamCreateWithPriority(CUstream* s, unsigned int flags, int) { return cuStreamCreate(s, flags); }
CUresult cuStreamDestroy(CUstream s) {
    delete reinterpret_cast<Stream*>(s);
    return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream s) {
    if (stream_of(s)->capturing)
        return report(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamSynchronize on a capturing stream");
    return CUDA_SUCCESS;
}
CUresult cuStreamQuery(CUstream) { return CUDA_SUCCESS; }
CUresult cuStreamWaitEvent(CUstream, CUevent, unsigned int) { return CUDA_SUCCESS; }
CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
    std::lock_guard<std::recursive_mutex> l(G);
    return enqueue(s, [=] {
        fn(data);
        return CUDA_SUCCESS;
    });
}
CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode) {
    std::lock_guard<std::recursive_mutex> l(G);
    Stream* st = stream_of(s);
    if (st->capturing || !s) return CUDA_ERROR_ILLEGAL_STATE;
    st->capturing = true;
    st->graph = new Graph();
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream s, CUgraph* g) {
    std::lock_guard<std::recursive_mutex> l(G);
    Stream* st = stream_of(s);
    if (!st->capturing) return CUDA_ERROR_ILLEGAL_STATE;
    st->capturing = false;
    *g = reinterpret_cast<CUgraph>(st->graph);
    st->graph = nullptr;
    return CUDA_SUCCESS;
}
CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus* status) {
    *status = stream_of(s)->capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}
CUresult cuGraphInstantiateWithFlags(CUgraphExec* e, CUgraph g, unsigned long long) {
    *e = reinterpret_cast<CUgraphExec>(new Graph(*reinterpret_cast<Graph*>(g)));
    return CUDA_SUCCESS;
}
CUresult cuGraphUpload(CUgraphExec, CUstream) { return CUDA_SUCCESS; }
CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    if (stream_of(s)->capturing) return report(CUDA_ERROR_NOT_SUPPORTED, "graph launch into a capture");
    for (const Op& op : reinterpret_cast<Graph*>(e)->ops)
        if (CUresult r = op()) return r;
    return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph g) {
    delete reinterpret_cast<Graph*>(g);
    return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec e) {
    delete reinterpret_cast<Graph*>(e);
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* e, unsigned int) {
    *e = reinterpret_cast<CUevent>(new Event());
    return CUDA_SUCCESS;
}
CUresult cuEventDestroy(CUevent e) {
    delete reinterpret_cast<Event*>(e);
    return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent e, CUstream s) {
    std::lock_guard<std::recursive_mutex> l(G);
    Event* ev = reinterpret_cast<Event*>(e);
    return enqueue(s, [ev] {
        ev->ms = now_ms();
        return CUDA_SUCCESS;
    });
}
CUresult cuEventRecordWithFlags(CUevent e, CUstream s, unsigned int) { return cuEventRecord(e, s); }
CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventQuery(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventElapsedTime(float* ms, CUevent a, CUevent b) {
    *ms = (float)(reinterpret_cast<Event*>(b)->ms - reinterpret_cast<Event*>(a)->ms);
    return CUDA_SUCCESS;
}

// Checks the driver's rules for what hopper.cpp models (2-byte elements, rank ≤ 2, no interleave,
// unit element strides) and stores the map's fields in its 128 opaque bytes (TmaMapModel).
CUresult cuTensorMapEncodeTiled(CUtensorMap* map, CUtensorMapDataType type, cuuint32_t rank, void* base,
                                const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                                const cuuint32_t* element_strides, CUtensorMapInterleave interleave,
                                CUtensorMapSwizzle swizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill fill) {
    static_assert(sizeof(TmaMapModel) <= sizeof(CUtensorMap), "the model fits the opaque map");
    const bool two_bytes = type == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 || type == CU_TENSOR_MAP_DATA_TYPE_FLOAT16 ||
                           type == CU_TENSOR_MAP_DATA_TYPE_UINT16;
    if (!map || !base || !dims || !box || !element_strides || (rank > 1 && !strides))
        return report(CUDA_ERROR_INVALID_VALUE, "cuTensorMapEncodeTiled: a null argument");
    if (!two_bytes || rank < 1 || rank > 2 || interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
        return report(CUDA_ERROR_NOT_SUPPORTED, "cuTensorMapEncodeTiled: cuda-emu models 2-byte elements, rank 1-2, no interleave");
    if (reinterpret_cast<uintptr_t>(base) % 16) return report(CUDA_ERROR_INVALID_VALUE, "cuTensorMapEncodeTiled: base not 16-byte aligned");
    TmaMapModel m{};
    m.magic = TmaMapModel::MAGIC;
    m.base = static_cast<const char*>(base);
    m.rank = rank;
    m.swizzle_128b = swizzle == CU_TENSOR_MAP_SWIZZLE_128B;
    m.zero_fill = fill == CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
    if (swizzle != CU_TENSOR_MAP_SWIZZLE_NONE && !m.swizzle_128b)
        return report(CUDA_ERROR_NOT_SUPPORTED, "cuTensorMapEncodeTiled: cuda-emu models no swizzle or the 128-byte one");
    if (!m.zero_fill) return report(CUDA_ERROR_NOT_SUPPORTED, "cuTensorMapEncodeTiled: cuda-emu models the zero fill");
    for (cuuint32_t i = 0; i < 2; ++i) {
        m.dims[i] = i < rank ? dims[i] : 1;
        m.box[i] = i < rank ? box[i] : 1;
        if (i < rank && (dims[i] == 0 || dims[i] > (1ull << 32) || box[i] == 0 || box[i] > 256 || element_strides[i] != 1))
            return report(CUDA_ERROR_INVALID_VALUE, "cuTensorMapEncodeTiled: a dimension, box or element stride out of range");
    }
    m.row_stride = rank > 1 ? strides[0] : m.dims[0] * 2;
    if (rank > 1 && (strides[0] % 16 || strides[0] >= (1ull << 40)))
        return report(CUDA_ERROR_INVALID_VALUE, "cuTensorMapEncodeTiled: a stride not a multiple of 16");
    if ((m.box[0] * 2) % 16 || (m.swizzle_128b && m.box[0] * 2 > 128))
        return report(CUDA_ERROR_INVALID_VALUE, "cuTensorMapEncodeTiled: the box's inner extent does not suit the swizzle");
    memset(map, 0, sizeof *map);
    memcpy(map, &m, sizeof m);
    return CUDA_SUCCESS;
}

}  // extern "C"

// ---- kernel registry (filled by the kernels' static registrars) ----
namespace lk_emu {
namespace {
std::unordered_map<std::string, Registered>& registry() {
    static std::unordered_map<std::string, Registered> r;
    return r;
}
}  // namespace
void register_kernel(const char* name, Binder binder, dim3 cluster) { registry()[name] = {std::move(binder), cluster}; }
const Registered* find_kernel(const std::string& name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : &it->second;
}
}  // namespace lk_emu
