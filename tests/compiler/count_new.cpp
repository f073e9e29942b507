// Replaces global operator new/delete to count allocations on a thread while a flag is set (the
// "a cache-hit call does not allocate" test). Its own file, so no caller inlines the pair.
#include <cstddef>
#include <cstdlib>
#include <new>

thread_local bool t_count_news = false;
thread_local size_t t_news = 0;

void* operator new(size_t n) {
  if (t_count_news) ++t_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
// the nothrow forms too: sanitizers replace every form, and a pair must come from one side
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  if (t_count_news) ++t_news;
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
