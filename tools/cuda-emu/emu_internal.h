// Between the emulator's scheduler (runtime.cpp) and its driver API (driver.cpp).
#pragma once
#include <string>

#include "cuda_emu.h"

namespace lk_emu {
// Runs every block of the grid; returns "" on success, else the reason it stopped.
std::string run_grid(const char* kernel, const ThreadBody& body, dim3 grid, dim3 block, size_t dyn_bytes);
// The kernel being run ("" between launches), for the fault handler.
const char* running_kernel();
// Whether the calling host thread is running a kernel's fibers now (for the fault handler).
bool in_kernel_on_this_thread();
// "block (x, y, z) thread (x, y, z)" of the running fiber, into buf (async-signal-safe).
void describe_current_thread(char* buf, size_t len);
// The binder of a registered kernel, or nullptr.
const Binder* find_kernel(const std::string& name);
}  // namespace lk_emu
