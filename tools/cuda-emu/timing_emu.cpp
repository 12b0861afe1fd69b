// kernels/timing.cu's spin_ns_u64 reads the GPU's global timer through PTX; here it returns at once
// (the emulator runs each launch to completion before the next is enqueued, so there is no queue to
// fill ahead of a timed batch).
#include "cuda_emu.h"

extern "C" void spin_ns_u64(uint64_t) {}
LK_EMU_REGISTER(spin_ns_u64, 1, 1, 1)
