# The README's commands. Each installs what is missing (scripts/install-deps.sh),
# configures and builds, then does its job.
#   make run       dsk info + the main job
#   make test      the whole suite through ctest
#   make sanitize  the suite under AddressSanitizer + UndefinedBehaviorSanitizer
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps build run test sanitize bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/dsk info
	./$(BUILD)/dsk run

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DDSK_SANITIZE=ON -DDSK_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

bench: build
	./$(BUILD)/dsk bench

clean:
	rm -rf $(BUILD) build-sanitize
