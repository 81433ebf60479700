// bench/shim.cc: Google Benchmark behind the C interface of bench/bench.h. The only
// C++ in dsk: registration, the timing loop, counters, context and main.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench.h"

struct dsk_bench_state {
    benchmark::State *st;
};

namespace {

double g_bw = 0, g_peak_bf16 = 0, g_peak_f32 = 0;

// The fixture of the benchmark that ran last: kept across its repeated runs, freed
// when another benchmark needs its own (benchmarks run one after another).
const dsk_bench *g_cur_def = nullptr;
void *g_cur_fix = nullptr;
std::string g_cur_err;

std::vector<dsk_bench *> &defs()
{
    static std::vector<dsk_bench *> v;
    return v;
}

void release_fixture()
{
    if (g_cur_def && g_cur_fix && g_cur_def->teardown) g_cur_def->teardown(g_cur_fix);
    g_cur_def = nullptr;
    g_cur_fix = nullptr;
}

void run_one(benchmark::State &st, const dsk_bench *b)
{
    if (g_cur_def != b) {
        release_fixture();
        char err[256] = "";
        g_cur_fix = b->setup ? b->setup(b->params, err, sizeof err) : nullptr;
        g_cur_def = b;
        g_cur_err = err;
    }
    if (b->setup && !g_cur_fix) {
        st.SkipWithError(g_cur_err.empty() ? "setup failed" : g_cur_err.c_str());
        for (auto _ : st) {
        }
        return;
    }
    dsk_bench_state s{&st};
    b->run(&s, g_cur_fix);
    using C = benchmark::Counter;
    double peak = b->peak == DSK_PEAK_F32 ? g_peak_f32 : g_peak_bf16;
    if (b->bytes > 0) st.counters["GB"] = C(b->bytes * 1e-9, C::kIsIterationInvariantRate);
    if (b->flops > 0) st.counters["GFLOP"] = C(b->flops * 1e-9, C::kIsIterationInvariantRate);
    double t_bw = g_bw > 0 ? b->bytes / g_bw : 0, t_fl = peak > 0 ? b->flops / peak : 0;
    double roof = t_bw > t_fl ? t_bw : t_fl;
    if (roof > 0) st.counters["roofline"] = C(roof, C::kIsIterationInvariantRate);
}

}  // namespace

extern "C" {

void dsk_bench_register(const dsk_bench *b) { defs().push_back(new dsk_bench(*b)); }

int dsk_bench_next(dsk_bench_state *s) { return s->st->KeepRunning() ? 1 : 0; }

void dsk_bench_label(dsk_bench_state *s, const char *label) { s->st->SetLabel(label); }

void dsk_bench_fail(dsk_bench_state *s, const char *msg) { s->st->SkipWithError(msg); }

void dsk_bench_context(const char *key, const char *value) { benchmark::AddCustomContext(key, value); }

void dsk_bench_set_roof(double bw, double peak_bf16, double peak_f32)
{
    g_bw = bw;
    g_peak_bf16 = peak_bf16;
    g_peak_f32 = peak_f32;
}

int dsk_bench_main(int argc, char **argv, const char *default_filter)
{
    std::vector<char *> args(argv, argv + argc);
    bool has_filter = false;
    for (int i = 1; i < argc; i++)
        if (!std::strncmp(argv[i], "--benchmark_filter", 18)) has_filter = true;
    std::string f = std::string("--benchmark_filter=") + default_filter;
    if (!has_filter && default_filter) args.push_back(&f[0]);
    // Repetitions run back to back (no random interleaving): oneDNN's OpenMP workers
    // spin for a while after each call, and so do dsk's pool workers, so interleaving
    // the two makes each run against the other's spinning threads.
    int n = (int)args.size();
    args.push_back(nullptr);
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;

    const char *r = std::getenv("DSK_BENCH_REPS");
    int reps = r ? std::atoi(r) : 3;
    if (reps < 1) reps = 1;
    const char *mt = std::getenv("DSK_BENCH_MIN_TIME");
    double min_time = mt ? std::atof(mt) : 0.05;
    for (dsk_bench *b : defs()) {
        auto *reg = benchmark::RegisterBenchmark(b->name, run_one, b);
        reg->UseRealTime()->MinTime(min_time)->Unit(benchmark::kMicrosecond);
        if (reps > 1) reg->Repetitions(reps)->ReportAggregatesOnly(true);
    }
    benchmark::RunSpecifiedBenchmarks();
    release_fixture();
    benchmark::Shutdown();
    return 0;
}

}  // extern "C"
