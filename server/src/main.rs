//! The `flightdeck` binary.

/// mimalloc instead of the system allocator: rendering a page allocates
/// and frees thousands of small strings across the runtime's threads, and
/// glibc's malloc spent close to a third of the overview benchmark's CPU
/// on it (`_int_malloc`, `malloc_consolidate`, `_int_free`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    flightdeck::cli::main()
}
