// Thread-count helpers shared by every kernel. Python-free.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#ifdef CDML_HAVE_OPENMP
#include <omp.h>
#endif

namespace cdml {

/// True when the core was compiled with OpenMP.
inline bool openmp_enabled() {
#ifdef CDML_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

/// Number of threads OpenMP would use by default (1 without OpenMP).
inline int max_threads() {
#ifdef CDML_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// num_threads <= 0 means "all available".
inline int resolve_threads(int num_threads) {
    return num_threads > 0 ? num_threads : max_threads();
}

/// Index of the calling thread inside a parallel region (0 without OpenMP).
inline int thread_index() {
#ifdef CDML_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/// A sequence of dependent phases run inside ONE parallel region, without OpenMP
/// barriers between them. Every thread calls run(phase, nchunks, body) for every phase,
/// in the same order; chunks are handed out by an atomic counter, and a thread leaves a
/// phase once all of its chunks are done (not once all threads have arrived). On a busy
/// machine a descheduled thread therefore delays a phase by at most the one chunk it
/// holds, and a thread that never got a CPU delays nothing, where a barrier would wait
/// a scheduler time slice per phase. An exception thrown by a chunk is kept (the first
/// one), the remaining chunks are skipped, and rethrow() raises it after the region, so
/// nothing escapes the OpenMP region.
class PhasedWork {
public:
    explicit PhasedWork(int nphases) : phases_(new Phase[nphases]) {}

    template <class F>
    void run(int phase, int64_t nchunks, F&& body) {
        Phase& ph = phases_[phase];
        for (;;) {
            const int64_t c = ph.next.fetch_add(1, std::memory_order_relaxed);
            if (c >= nchunks) break;
            if (!failed_.load(std::memory_order_relaxed)) {
                try {
                    body(c);
                } catch (...) {
                    record(std::current_exception());
                }
            }
            ph.done.fetch_add(1, std::memory_order_acq_rel);
        }
        // wait for chunks other threads still hold: yield a little, then sleep briefly so a
        // waiting thread does not take CPU time from the ones still working
        for (int spins = 0; ph.done.load(std::memory_order_acquire) < nchunks; ++spins) {
            if (spins < 64) std::this_thread::yield();
            else std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    }
    bool failed() const { return failed_.load(std::memory_order_acquire); }
    /// Rethrow the first exception a chunk raised (call after the parallel region).
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    struct Phase {
        std::atomic<int64_t> next{0};
        std::atomic<int64_t> done{0};
    };
    void record(std::exception_ptr e) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = e;
        failed_.store(true, std::memory_order_release);
    }
    std::unique_ptr<Phase[]> phases_;
    std::atomic<bool> failed_{false};
    std::mutex mutex_;
    std::exception_ptr error_;
};

/// Threads for a kernel call of about `work` inner-loop evaluations: 1 below `serial_below`.
/// Waking a thread team costs microseconds on an idle machine but milliseconds on a loaded
/// one (measured here: 12 ms per call at load 4 on 2 cores), so small calls stay serial.
/// Kernels give identical results for any thread count, so this changes only speed.
inline int threads_for_work(int num_threads, double work, double serial_below = 3e7) {
    return work < serial_below ? 1 : resolve_threads(num_threads);
}

}  // namespace cdml
