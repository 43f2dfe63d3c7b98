# The two commands: `make demo` and `make test`. Both install what they need first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEMO_FLAGS ?=
BENCH_FLAGS ?=

.PHONY: all deps configure build demo test bench bench-quick bench-kernels clean format

all: build

deps:
	@scripts/install-deps

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS); \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tessera_cli
	$(BUILD_DIR)/tessera demo --checkpoint $(BUILD_DIR)/demo-cnn.safetensors $(DEMO_FLAGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The benchmark suite side by side with the peers (docs/benchmarks.md). The peers come from
# .venv-bench, created by scripts/setup-bench; without it they are reported as missing.
bench: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tessera_cli tessera_blas_peer
	$(BUILD_DIR)/tessera bench $(BENCH_FLAGS)

bench-quick: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tessera_cli tessera_blas_peer
	$(BUILD_DIR)/tessera bench --quick --json $(BUILD_DIR)/bench-quick.json $(BENCH_FLAGS)

# Tessera's kernels against raw oneDNN/OpenBLAS calls and plain loops (Google Benchmark).
bench-kernels: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target tessera_bench
	$(BUILD_DIR)/bench/tessera_bench

clean:
	rm -rf $(BUILD_DIR)

format:
	clang-format -i $$(git ls-files '*.h' '*.cpp' '*.inc')
