#include "fiber/fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <stdexcept>

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

// The C++ runtime keeps "exceptions being handled" per thread. Workflow code may wait inside
// a catch block (a compensation after a failure), so each fiber keeps its own copy of that
// state, swapped in and out on every switch: otherwise two fibers' handlers would interleave
// on one list.
namespace __cxxabiv1 {
struct __cxa_eh_globals;
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
}  // namespace __cxxabiv1

namespace reprise::detail {
namespace ctx = boost::context;

namespace {

struct EhGlobals {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

EhGlobals* thread_eh_globals() {
  return reinterpret_cast<EhGlobals*>(__cxxabiv1::__cxa_get_globals());
}

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

/// Adapts StackPool to Boost.Context's stack allocator concept.
struct PooledStackAllocator {
  StackPool* pool;
  ctx::stack_context allocate() {
    auto s = pool->take();
    ctx::stack_context sc;
    sc.sp = s.base;
    sc.size = s.size;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { pool->give_back({sc.sp, sc.size}); }
};

thread_local struct Fiber::Impl* t_current = nullptr;

}  // namespace

StackPool::Stack StackPool::take() {
  {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      auto s = free_.back();
      free_.pop_back();
      return s;
    }
  }
  auto page = page_size();
  std::size_t usable = (stack_size_ + page - 1) / page * page;
  std::size_t total = usable + page;  // one guard page below the stack
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  ::mprotect(mem, page, PROT_NONE);
  return {static_cast<char*>(mem) + total, usable};
}

void StackPool::give_back(Stack stack) {
  std::lock_guard lock(mutex_);
  free_.push_back(stack);
}

StackPool::~StackPool() {
  for (auto& s : free_) {
    auto total = s.size + page_size();
    ::munmap(static_cast<char*>(s.base) - total, total);
  }
}

struct Fiber::Impl {
  // Declared first so it is destroyed last: the fiber's frames may refer to what it captured.
  std::function<void()> body;
  ctx::fiber caller;    // who resumed it, while it runs
  ctx::fiber fiber;     // the suspended fiber, or empty while it runs / after it finished
  bool finished = false;
  bool unwind_requested = false;
  EhGlobals eh;         // this fiber's exception-handling state while it is suspended
};

Fiber::Fiber(StackPool& pool, std::function<void()> body) : impl_(std::make_unique<Impl>()) {
  impl_->body = std::move(body);
  Impl* self = impl_.get();
  impl_->fiber = ctx::fiber(std::allocator_arg, PooledStackAllocator{&pool}, [self](ctx::fiber&& caller) {
    self->caller = std::move(caller);
    try {
      if (!self->unwind_requested) self->body();
    } catch (const FiberUnwind&) {
      // unwound: nothing else to do
    }
    self->finished = true;
    return std::move(self->caller);
  });
}

Fiber::~Fiber() {
  if (!finished() && impl_->fiber) unwind();
  if (!finished() && impl_->fiber) {
    // Code that keeps swallowing the unwinding (catch (...) around a wait, in a loop) cannot be
    // unwound; its stack is abandoned rather than destroyed under frames still using it.
    new ctx::fiber(std::move(impl_->fiber));
    new std::function<void()>(std::move(impl_->body));
  }
}

void Fiber::resume() {
  if (impl_->finished || !impl_->fiber) return;
  auto* previous = t_current;
  auto* g = thread_eh_globals();
  EhGlobals saved = *g;
  *g = impl_->eh;
  t_current = impl_.get();
  impl_->fiber = std::move(impl_->fiber).resume();
  t_current = previous;
  impl_->eh = *g;
  *g = saved;
}

bool Fiber::finished() const { return impl_->finished; }

void Fiber::yield() {
  auto* self = t_current;
  if (!self) throw std::logic_error("reprise: a workflow call was made outside a workflow fiber");
  // While unwinding, every wait first hands control back, so code that swallows FiberUnwind
  // and waits again costs the unwinder one of its bounded rounds instead of spinning here.
  self->caller = std::move(self->caller).resume();
  if (self->unwind_requested) throw FiberUnwind{};
}

bool Fiber::unwinding() { return t_current && t_current->unwind_requested; }

void Fiber::unwind() {
  impl_->unwind_requested = true;
  // Code that swallows FiberUnwind and waits again is resumed (and thrown at) again; give up
  // after a few rounds rather than loop forever on a badly written catch (...).
  for (int i = 0; i < 16 && !impl_->finished && impl_->fiber; ++i) resume();
}

}  // namespace reprise::detail
