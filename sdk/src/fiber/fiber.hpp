#pragma once
/// Stackful fibers for workflow code (Boost.Context stays in fiber.cpp). A fiber runs until it
/// yields or returns; the engine resumes it when what it waits for may have happened.
/// Stacks come from a pool, with a guard page below each, so thousands of parked runs are
/// cheap and an overflow faults instead of corrupting memory.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace reprise::detail {

class StackPool {
 public:
  explicit StackPool(std::size_t stack_size = 128 * 1024) : stack_size_(stack_size) {}
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  struct Stack {
    void* base = nullptr;  // highest address (stacks grow down)
    std::size_t size = 0;  // usable bytes
  };
  Stack take();
  void give_back(Stack stack);
  std::size_t stack_size() const { return stack_size_; }

 private:
  std::size_t stack_size_;
  std::mutex mutex_;
  std::vector<Stack> free_;  // stacks of finished fibers, reused before mapping new ones
};

/// Unwinds a fiber's stack (eviction, shutdown). Not a std::exception, so `catch (const
/// std::exception&)` in workflow code does not stop it; the engine keeps throwing it from
/// every context call of a fiber being unwound, so even `catch (...)` cannot keep it alive.
struct FiberUnwind {};

class Fiber {
 public:
  Fiber(StackPool& pool, std::function<void()> body);
  ~Fiber();  // unwinds the fiber if it is suspended
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  /// Runs the fiber until it yields or finishes.
  void resume();
  bool finished() const;
  /// Inside a fiber: returns control to whoever resumed it. Throws FiberUnwind when the
  /// fiber is being unwound.
  static void yield();
  /// True while the calling code runs on a fiber being unwound.
  static bool unwinding();
  /// Resumes a suspended fiber so it unwinds its stack to the end.
  void unwind();

 struct Impl;  // public only so fiber.cpp's helpers can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace reprise::detail
